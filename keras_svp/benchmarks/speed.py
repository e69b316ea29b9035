"""Median time of one training step, the step `fit` runs."""

import statistics
import time

import keras


def step_time(model, x, y, warmup=3, repeats=10):
    """Times `repeats` training steps of `model` on one batch after warm-up.

    Each step is `model.train_on_batch`, which returns the logs as NumPy
    values, so the step has finished on the device when the clock stops.

    Args:
        model: a compiled model.
        x, y: one batch.
        warmup: steps run first and not timed (compilation, caches).
        repeats: timed steps.

    Returns:
        A dict with `step_ms` (median), `step_ms_min` and `repeats`.
    """
    for _ in range(warmup):
        model.train_on_batch(x, y)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - start)
    return {
        "step_ms": 1e3 * statistics.median(times),
        "step_ms_min": 1e3 * min(times),
        "repeats": repeats,
        "backend": keras.backend.backend(),
    }
