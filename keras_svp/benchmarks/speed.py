"""Median time of one training step, the step `fit` runs."""

import statistics
import time

import keras
import numpy as np

# The Linux guest kernels of some virtual machines (this project's
# Firecracker VMs among them) hand free memory back to the host ("free page
# reporting"); memory touched again after that is faulted in from the host,
# far more slowly than from the guest's own free pages. The kernel counts
# what it has handed back here.
REPORTED_KIB = "/sys/module/page_reporting/parameters/reported_kib"


# glibc settings under which freed memory stays in the process for reuse,
# as GPU frameworks' caching allocators keep theirs: one arena, no
# mmap-backed blocks (XLA's CPU runtime allocates a step's temporary buffer,
# 1.5 GiB for a depth-32 BP step, as one block and frees it after the step),
# no trimming of the heap's top. Without them every step of a model takes
# its large buffers fresh from the kernel, and a step's time then depends on
# page faults, which on a virtual machine that hands free memory back to
# its host can cost more than the step's arithmetic.
RETAIN_FREED_MEMORY = (
    "glibc.malloc.arena_max=1:glibc.malloc.mmap_max=0:"
    "glibc.malloc.trim_threshold=68719476736"
)


def _page_faults():
    """Minor page faults of this process so far, or None where unknown."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _reported_kib():
    """KiB the guest kernel has handed back to its host so far, or None."""
    try:
        with open(REPORTED_KIB) as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def _mib_of_pages(pages):
    import resource

    return pages * resource.getpagesize() / 2**20


# How `step_times` runs the steps it times.
LOOPS = ("train_on_batch", "fit")
# With loop="fit", each sample times a `fit` call of FIT_STEPS steps and one
# of twice as many: their difference is FIT_STEPS steps as `fit` runs them,
# without the per-call cost both share (data adapter, callbacks, and on JAX
# gathering and writing back the variables).
FIT_STEPS = 10


def _fit(model, batches, batch_size):
    model.fit(*batches, batch_size=batch_size, epochs=1, verbose=0, shuffle=False)


def step_times(models, x, y, warmup=3, repeats=10, loop="train_on_batch"):
    """Times training steps of several models on one batch, interleaved.

    The models take turns, one step each, so that a change in the machine's
    load (other processes on shared cores) falls on all of them alike and
    their ratios stay meaningful. Each step is `model.train_on_batch`, which
    returns the logs as NumPy values, so the step has finished on the device
    when the clock stops.

    With `loop="fit"` each timed sample is the step as `fit` runs it, with
    no callback that would wait for each step's logs: a `fit` call over
    `FIT_STEPS` copies of the batch and one over twice as many are timed,
    and their difference divided by `FIT_STEPS`. `train_on_batch` adds a
    cost to every call that `fit` pays once per call (on JAX, gathering
    every variable into the compiled step's state and writing it back; on
    every backend, resetting the metrics), and
    the difference cancels that cost. Warm-up counts pairs of `fit` calls
    then, and the page faults are the difference's too.

    Besides time, each step's memory traffic with the operating system is
    counted, because it can cost more than the arithmetic: the memory the
    process faulted in during the step (minor page faults: memory the
    allocator took fresh from the kernel rather than reused), and, where
    the kernel reports it, the memory it handed back to a virtual
    machine's host meanwhile, which the next step faults in from the host.

    Args:
        models: a dict from a name to a compiled model.
        x, y: one batch.
        warmup: steps each model runs first, not timed (compilation, caches).
        repeats: timed steps (with `loop="fit"`: timed `fit` calls) per
            model.
        loop: `"train_on_batch"` or `"fit"`.

    Returns:
        A dict from each name to a dict with `step_ms` (median),
        `step_ms_min`, `repeats`, `backend`, `loop`, `faulted_mib` and
        `host_reclaimed_mib` (per step). `faulted_mib` is the median MiB faulted in
        per step, page faults times the page size (a fault that maps a
        huge page counts as one small page), None where the platform does
        not count page faults. `host_reclaimed_mib` is the MiB the guest
        kernel handed back to its host per round of timed steps (one step
        of every model; a figure of the whole round, the same for every
        model), None where the kernel does not report it.
    """
    if loop not in LOOPS:
        raise ValueError(f"loop must be one of {LOOPS}, got {loop!r}.")
    if loop == "train_on_batch":
        steps_per_sample = 1

        def sample(model):
            return _timed(lambda: model.train_on_batch(x, y))

    else:
        short = (np.concatenate([x] * FIT_STEPS), np.concatenate([y] * FIT_STEPS))
        long = tuple(np.concatenate([part] * 2) for part in short)
        steps_per_sample = 3 * FIT_STEPS

        def sample(model):
            short_s, short_faults = _timed(lambda: _fit(model, short, len(x)))
            long_s, long_faults = _timed(lambda: _fit(model, long, len(x)))
            faults = None
            if short_faults is not None:
                faults = max(long_faults - short_faults, 0) / FIT_STEPS
            return (long_s - short_s) / FIT_STEPS, faults

    for model in models.values():
        for _ in range(warmup):
            sample(model)
    times = {name: [] for name in models}
    faults = {name: [] for name in models}
    reported_before = _reported_kib()
    for _ in range(repeats):
        for name, model in models.items():
            seconds, faulted_mib = sample(model)
            times[name].append(seconds)
            if faulted_mib is not None:
                faults[name].append(faulted_mib)
    reported_after = _reported_kib()
    reclaimed = None
    if reported_before is not None and reported_after is not None:
        # Per round of samples (one of every model), per step of a sample.
        reclaimed = (reported_after - reported_before) / 1024 / repeats
        reclaimed /= steps_per_sample
    return _results(times, faults, repeats, loop, reclaimed)


def _timed(run):
    """Seconds `run()` took and the MiB it faulted in (None if uncounted)."""
    faults_before = _page_faults()
    start = time.perf_counter()
    run()
    seconds = time.perf_counter() - start
    if faults_before is None:
        return seconds, None
    return seconds, _mib_of_pages(_page_faults() - faults_before)


def _results(times, faults, repeats, loop, reclaimed):
    return {
        name: {
            "step_ms": 1e3 * statistics.median(t),
            "step_ms_min": 1e3 * min(t),
            "repeats": repeats,
            "backend": keras.backend.backend(),
            "loop": loop,
            "faulted_mib": statistics.median(faults[name]) if faults[name] else None,
            "host_reclaimed_mib": reclaimed,
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
