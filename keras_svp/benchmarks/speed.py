"""Median time of one training step, the step `fit` runs."""

import statistics
import time

import keras


def step_times(models, x, y, warmup=3, repeats=10):
    """Times training steps of several models on one batch, interleaved.

    The models take turns, one step each, so that a change in the machine's
    load (other processes on shared cores) falls on all of them alike and
    their ratios stay meaningful. Each step is `model.train_on_batch`, which
    returns the logs as NumPy values, so the step has finished on the device
    when the clock stops.

    Args:
        models: a dict from a name to a compiled model.
        x, y: one batch.
        warmup: steps each model runs first, not timed (compilation, caches).
        repeats: timed steps per model.

    Returns:
        A dict from each name to a dict with `step_ms` (median),
        `step_ms_min`, `repeats` and `backend`.
    """
    for model in models.values():
        for _ in range(warmup):
            model.train_on_batch(x, y)
    times = {name: [] for name in models}
    for _ in range(repeats):
        for name, model in models.items():
            start = time.perf_counter()
            model.train_on_batch(x, y)
            times[name].append(time.perf_counter() - start)
    return {
        name: {
            "step_ms": 1e3 * statistics.median(t),
            "step_ms_min": 1e3 * min(t),
            "repeats": repeats,
            "backend": keras.backend.backend(),
        }
        for name, t in times.items()
    }


def step_time(model, x, y, warmup=3, repeats=10):
    """`step_times` of one model.

    Example:

        >>> import keras, numpy as np, keras_svp
        >>> model = keras_svp.SVPSequential(
        ...     [keras_svp.SVPDense(8, seed=0), keras.layers.Dense(3)])
        >>> model.compile("adam", keras.losses.SparseCategoricalCrossentropy(True))
        >>> x, y = np.ones((4, 5), "float32"), np.array([0, 1, 2, 0])
        >>> step_time(model, x, y, warmup=1, repeats=2)["step_ms"] > 0
        True
    """
    return step_times({"model": model}, x, y, warmup, repeats)["model"]
