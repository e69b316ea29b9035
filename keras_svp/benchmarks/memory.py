"""Peak memory of one training step, by each backend's own accounting.

`step_memory(model, x, y)` measures the very training step `fit` runs, with
the figure the current Keras backend gives for it; the headline number is
`step_mib`, the memory the step needs on top of what the model already holds
(weights, optimizer slots), in MiB (2**20 bytes). What it counts differs by
backend, so compare SVP with backprop on one backend, not backends with each
other:

* **JAX** -- XLA's memory analysis of the compiled train step. Keras' JAX
  trainer runs `jax.jit(model.train_step, donate_argnums=0)` over
  `state = (trainable, non_trainable, optimizer, metrics)` values; the same
  function is lowered and compiled here for the batch's shapes (nothing is
  run) and `compiled.memory_analysis()` read. `step_mib` is
  `temp_size_in_bytes`: every buffer XLA allocates during the step besides
  its arguments and outputs -- activations kept for the backward pass,
  gradients, optimizer temporaries -- after XLA's scheduling and buffer
  reuse. It is exact for the compiled program and deterministic. Limits: it
  is the plan of the compiler, not a measurement; if the model runs eagerly
  (`run_eagerly=True` or `jit_compile=False`) `fit` does not run this
  program.
* **PyTorch** -- the activations autograd holds for the backward pass. One
  real step (`model.train_on_batch`) runs under
  `torch.autograd.graph.saved_tensors_hooks`; every tensor autograd saves is
  counted by its storage (a storage saved twice counts once) until autograd
  releases it, and `step_mib` is the peak of the bytes saved at the same
  time. In SVP mode every unit calls `backward()` before the next unit runs,
  which frees its saved tensors, so the peak is one unit's; with backprop it
  is every layer's. The model's own variables (a kernel that a matmul saves)
  are not counted: they are held anyway. Limits: PyTorch keeps no statistics
  of its CPU allocator, so gradients, optimizer temporaries and tensors
  alive only between two ops are not counted; this is the memory that
  separates SVP from backprop, not the whole step's. On a GPU the CUDA
  allocator's peak over the step is reported beside it (`device_step_mib`).
* **TensorFlow** -- the peak of TensorFlow's own allocator during real
  steps: `tf.config.experimental.get_memory_info(device)["peak"]` after
  `reset_memory_stats(device)`, minus the bytes allocated before the step.
  The step is the one `fit` runs (`train_on_batch`, after one warm-up step
  that traces it): `model.jit_compile` decides whether it is XLA-compiled,
  and Keras turns XLA off by default on machines without a GPU. With XLA the
  compiled program takes its buffers from the same allocator, so the figure
  is XLA's real peak; TensorFlow has no Python API for XLA's buffer
  assignment (`experimental_get_compiler_ir` gives HLO text only), so a
  runtime peak is the one figure that covers both cases. Limits: it counts
  everything the allocator hands out during the step (activations,
  gradients, optimizer temporaries, outputs). On CPU the statistics exist
  only with oneDNN's allocator (the default on x86 Linux;
  `TF_ENABLE_ONEDNN_OPTS=0` removes them), and that allocator serves
  requests under 256 KiB elsewhere, uncounted: small models measure 0.
  Without XLA the graph executor runs ready ops in whatever order it likes,
  so a step's peak varies from run to run (an SVP unit's forward pass can
  run before the previous unit's backward pass and keep both units'
  activations alive): `step_memory` measures `repeats` steps and reports
  the worst as `step_mib` and the best as `step_mib_min`. With XLA the
  allocator serves the compiled program's buffers in large rounded blocks,
  and its figure depends on what earlier models left in its pools; when
  `XLA_FLAGS` carries `--xla_dump_to=DIR` (`benchmarks --tf-xla` sets it
  for its TensorFlow worker), `step_mib` is instead XLA's own buffer
  assignment of the compiled step, its preallocated temporary buffer
  (`xla_temp_mib`), the figure JAX reports; the allocator's peak stays in
  `allocator_step_mib`.

`peak_rss(depth, width, batch_size, mode)` is a cross-check independent of
every backend's accounting: a fresh Python process builds
`benchmarks.models.build_mlp`, runs a few steps and reports its peak
resident set size, over all steps and (on Linux) over the steps after the
first. It counts everything (the runtime, tracing and compilation,
gradients, optimizer temporaries, memory the allocator keeps), so it is
coarse, but no accounting can hide memory from it. On a GPU it also
reports the device's peak allocated memory (`device_peak_mib`, by each
backend's device statistics); its children do not preallocate the device.
"""

import argparse
import glob
import json
import os
import re
import resource
import subprocess
import sys

import keras

from keras_svp.benchmarks import speed

MIB = 2**20


def step_memory(model, x, y, repeats=3):
    """Peak memory of one training step of `model`, by the backend's accounting.

    Builds the model, its metrics and optimizer for `(x, y)` if needed. On
    PyTorch and TensorFlow it runs real training steps, which update the
    model's weights; on JAX it only compiles the step.

    Args:
        model: a compiled Keras model (e.g. from `benchmarks.models`).
        x: one batch of inputs (NumPy or backend arrays).
        y: the batch's labels.
        repeats: TensorFlow only: how many steps to measure (after one
            warm-up step that traces the function); the largest peak is
            reported.

    Returns:
        A dict with `backend`, `method` (what was measured, in words) and
        `step_mib` (the headline figure, MiB), plus backend-specific fields:

        * jax: `temp_mib` (= `step_mib`), `argument_mib`, `output_mib`,
          `alias_mib` (outputs written in place of donated arguments) and
          `jit_compile` (whether `fit` runs the compiled step).
        * torch: `saved_peak_mib` (= `step_mib`), `saved_total_mib` (bytes
          of every tensor saved during the step, counted at every save),
          `backward_passes` (how many times the saved bytes fell back to
          zero: units plus head in SVP mode, one with backprop),
          `saved_after_mib` (still saved when the step ended; 0 expected)
          and `device_step_mib` (on a GPU, the CUDA allocator's peak during
          the step above what it held before: everything the step
          allocates; None without one).
        * tensorflow: `step_mib_min` (the best of the `repeats` steps),
          `repeats`, `held_mib` (allocated before the step: the model's
          weights and optimizer slots, and whatever else the process
          holds), `device` and `jit_compile` (whether the step is
          XLA-compiled).

    Raises:
        RuntimeError: on TensorFlow, if it keeps no memory statistics for
            the device.
    """
    name = keras.backend.backend()
    if name == "jax":
        return _jax_step_memory(model, x, y)
    if name == "torch":
        return _torch_step_memory(model, x, y)
    if name == "tensorflow":
        return _tensorflow_step_memory(model, x, y, repeats)
    raise ValueError(f"No memory accounting for the {name!r} backend.")


def _jax_step_memory(model, x, y):
    import jax

    model._symbolic_build(data_batch=(x, y))
    state = (
        [v.value for v in model.trainable_variables],
        [v.value for v in model.non_trainable_variables],
        [v.value for v in model.optimizer.variables],
        [v.value for v in model.metrics_variables],
    )
    # Keras' JAX trainer jits the step exactly so (make_train_function).
    step = jax.jit(model.train_step, donate_argnums=0)
    analysis = step.lower(state, (x, y)).compile().memory_analysis()
    temp = analysis.temp_size_in_bytes / MIB
    return {
        "backend": "jax",
        "method": "XLA memory analysis of the jitted train step (temp bytes)",
        "step_mib": temp,
        "temp_mib": temp,
        "argument_mib": analysis.argument_size_in_bytes / MIB,
        "output_mib": analysis.output_size_in_bytes / MIB,
        "alias_mib": analysis.alias_size_in_bytes / MIB,
        "jit_compile": bool(model.jit_compile and not model.run_eagerly),
    }


class _SavedTensors:
    """Bytes of the tensors autograd holds, live and at their peak.

    Counted by storage, so that a storage saved by several ops (or a view of
    it) counts once, for as long as one of them holds it.
    """

    def __init__(self, ignore):
        self.ignore = ignore  # data pointers of storages not to count
        self.live = {}  # data pointer -> [references, bytes]
        self.bytes = 0
        self.peak = 0
        self.total = 0
        self.drops_to_zero = 0

    def pack(self, tensor):
        storage = tensor.untyped_storage()
        key, size = storage.data_ptr(), storage.nbytes()
        if key in self.ignore or size == 0:
            return tensor
        self.total += tensor.numel() * tensor.element_size()
        entry = self.live.get(key)
        if entry is None:
            self.live[key] = [1, size]
            self.bytes += size
            self.peak = max(self.peak, self.bytes)
        else:
            entry[0] += 1
        return _Saved(self, key, tensor)

    @staticmethod
    def unpack(saved):
        return saved.tensor if isinstance(saved, _Saved) else saved

    def release(self, key):
        entry = self.live[key]
        entry[0] -= 1
        if entry[0] == 0:
            del self.live[key]
            self.bytes -= entry[1]
            if self.bytes == 0:
                self.drops_to_zero += 1


class _Saved:
    """What autograd keeps for one saved tensor; uncounts it when released."""

    __slots__ = ("counter", "key", "tensor")

    def __init__(self, counter, key, tensor):
        self.counter, self.key, self.tensor = counter, key, tensor

    def __del__(self):
        self.counter.release(self.key)


def _torch_step_memory(model, x, y):
    import gc

    import torch

    model._symbolic_build(data_batch=(x, y))
    ignore = {v.value.untyped_storage().data_ptr() for v in model.variables}
    counter = _SavedTensors(ignore)
    # On a GPU the caching allocator also gives the step's whole peak
    # (gradients and optimizer temporaries too), above what it held before.
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    with torch.autograd.graph.saved_tensors_hooks(counter.pack, counter.unpack):
        model.train_on_batch(x, y)
    device_step = None
    if cuda:
        torch.cuda.synchronize()
        device_step = (torch.cuda.max_memory_allocated() - before) / MIB
    gc.collect()
    return {
        "backend": "torch",
        "method": "peak bytes of tensors saved by autograd during one train step",
        "step_mib": counter.peak / MIB,
        "saved_peak_mib": counter.peak / MIB,
        "saved_total_mib": counter.total / MIB,
        "backward_passes": counter.drops_to_zero,
        "saved_after_mib": counter.bytes / MIB,
        "device_step_mib": device_step,
    }


def _tensorflow_step_memory(model, x, y, repeats):
    import tensorflow as tf

    device = "GPU:0" if tf.config.list_logical_devices("GPU") else "CPU:0"
    try:
        tf.config.experimental.reset_memory_stats(device)
    except ValueError as error:
        raise RuntimeError(
            f"TensorFlow keeps no memory statistics for {device} here ({error}). "
            "On CPU they come with oneDNN's allocator: unset "
            "TF_ENABLE_ONEDNN_OPTS=0."
        ) from error
    x, y = tf.convert_to_tensor(x), tf.convert_to_tensor(y)
    jit = bool(model.jit_compile and not model.run_eagerly)
    dump = xla_dump_dir() if jit else None
    seen = set(_buffer_assignments(dump)) if dump else set()
    model.train_on_batch(x, y)  # builds, traces (and compiles) the step
    xla_temp = None
    if dump:
        compiled = [
            path
            for path in set(_buffer_assignments(dump)) - seen
            if "one_step_on_data" in os.path.basename(path)
        ]
        temps = [xla_temp_bytes(path) for path in compiled]
        temps = [t for t in temps if t is not None]
        xla_temp = max(temps) / MIB if temps else None
    peaks, held = [], None
    for _ in range(max(1, int(repeats))):
        tf.config.experimental.reset_memory_stats(device)
        before = tf.config.experimental.get_memory_info(device)["current"]
        model.train_on_batch(x, y)
        peak = tf.config.experimental.get_memory_info(device)["peak"]
        peaks.append((peak - before) / MIB)
        held = before / MIB if held is None else min(held, before / MIB)
    if model.run_eagerly:
        kind = "eager"
    else:
        kind = "XLA-compiled" if jit else "graph-mode, not XLA"
    method = (
        f"TF allocator peak over one train step ({kind}), "
        f"get_memory_info({device!r}), worst of {len(peaks)}"
    )
    result = {
        "backend": "tensorflow",
        "method": method,
        "step_mib": max(peaks),
        "step_mib_min": min(peaks),
        "allocator_step_mib": max(peaks),
        "repeats": len(peaks),
        "held_mib": held,
        "device": device,
        "jit_compile": jit,
        "xla_temp_mib": xla_temp,
    }
    if xla_temp is not None:
        # XLA's own figure, as on JAX: exact, and free of the allocator's
        # rounding and of what earlier models left in its pools.
        result["method"] = (
            "XLA buffer assignment of the compiled train step (temp bytes, "
            "from --xla_dump_to)"
        )
        result["step_mib"] = result["step_mib_min"] = xla_temp
    return result


def xla_dump_dir():
    """The directory that `XLA_FLAGS=--xla_dump_to=...` names, or None."""
    match = re.search(r"--xla_dump_to=(\S+)", os.environ.get("XLA_FLAGS", ""))
    return match.group(1) if match else None


def _buffer_assignments(directory):
    return glob.glob(os.path.join(directory, "*buffer-assignment.txt"))


def xla_temp_bytes(path):
    """The size of XLA's preallocated temporary buffer in a buffer-assignment
    dump (`*buffer-assignment.txt`), or None if it has none.

    XLA:CPU puts every temporary of a compiled program in one
    `preallocated-temp` allocation: the same figure as JAX's
    `memory_analysis().temp_size_in_bytes`.
    """
    with open(path) as f:
        for line in f:
            if line.startswith("allocation") and "preallocated-temp" in line:
                return int(re.search(r"size (\d+)", line).group(1))
    return None


# Resident set size, in a fresh process ------------------------------------


# The child's --jit-compile values and what model.compile gets for each.
JIT_COMPILE = {"auto": "auto", "true": True, "false": False}


def peak_rss(
    depth,
    width,
    batch_size,
    mode,
    steps=5,
    timeout=600,
    jit_compile="auto",
    activation=None,
):
    """Peak resident memory of a fresh process training `build_mlp` a few steps.

    Runs `python -m keras_svp.benchmarks.memory --rss ...` with the current
    Keras backend. The child builds `build_mlp(depth, width, mode)` and
    `synthetic_batch(batch_size, width)`, builds the model, its metrics and
    optimizer, reads its resident set size (RSS), runs `steps` training
    steps (`train_on_batch`; the first also traces and compiles the step)
    and reads its peak RSS (`VmHWM` on Linux, see `_max_rss_mib`).

    On Linux the child also resets its peak RSS after the first step
    (`/proc/self/clear_refs`) and measures the remaining steps alone: the
    `warm_*` figures, free of tracing and compilation. The child runs with
    `MALLOC_MMAP_THRESHOLD_=131072` (unless set already): glibc then maps
    every buffer of 128 KiB or more on its own and unmaps it when freed, so
    RSS follows the live buffers (JAX and PyTorch allocate through malloc)
    instead of whatever malloc kept from earlier steps. TensorFlow's CPU
    allocator keeps its memory, so its `warm_*` figures show little.

    Args:
        depth: number of `SVPDense` units.
        width: their width (and the input width).
        batch_size: batch size.
        mode: `"svp"` or `"bp"`.
        steps: training steps to run (at least 1).
        timeout: seconds to wait for the child.
        jit_compile: `"auto"`, `True` or `False`, the child's
            `model.compile(jit_compile=...)` (`True`: TensorFlow's step runs
            through XLA).

    Returns:
        A dict, sizes in MiB, with `backend`, `steps`, `rss_peak_mib` (the
        child's peak RSS over its whole life), `rss_before_mib` (RSS right
        before the first step), `rss_step_mib` (peak minus before: what the
        steps, compilation included, added), and `warm_before_mib`,
        `warm_peak_mib`, `warm_step_mib` (the same over steps 2 to `steps`;
        None where the peak cannot be reset or `steps` is 1), and
        `device_peak_mib`: on a GPU the device's peak allocated memory over
        the child's whole life (`device_peak_mib()`: weights, optimizer
        state and the steps), None without one.

    Raises:
        RuntimeError: if the child fails.
    """
    # Children may run in parallel with each other and with the caller (the
    # benchmark worker runs them two at a time while it measures steps
    # in-process): each one's peak RSS is its own.
    command = [
        sys.executable,
        "-m",
        "keras_svp.benchmarks.memory",
        "--rss",
        f"--depth={int(depth)}",
        f"--width={int(width)}",
        f"--batch-size={int(batch_size)}",
        f"--mode={mode}",
        f"--steps={max(1, int(steps))}",
        f"--jit-compile={str(jit_compile).lower()}",
    ] + ([f"--activation={activation}"] if activation else [])
    env = dict(os.environ, KERAS_BACKEND=keras.backend.backend())
    # Freed memory goes back to the kernel at once, so that the RSS of the
    # steps after the first shows what they hold, not what glibc caches.
    if env.get("GLIBC_TUNABLES") == speed.RETAIN_FREED_MEMORY:
        del env["GLIBC_TUNABLES"]
    env.setdefault("MALLOC_MMAP_THRESHOLD_", "131072")
    # The child measures host memory and may run beside other processes on
    # the same accelerator: it must not claim the whole device up front, as
    # JAX and TensorFlow do by default on a GPU.
    env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    env.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    # Dumping compiled programs would add its own memory and time.
    flags = re.sub(r"--xla_dump_to=\S+", "", env.get("XLA_FLAGS", "")).strip()
    if flags:
        env["XLA_FLAGS"] = flags
    else:
        env.pop("XLA_FLAGS", None)
    child = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        stdout, stderr = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        raise
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if child.returncode != 0 or not lines:
        raise RuntimeError(
            f"The peak-RSS child process failed (exit code {child.returncode}):\n"
            f"{stderr[-3000:]}"
        )
    result = json.loads(lines[-1])
    result["rss_step_mib"] = result["rss_peak_mib"] - result["rss_before_mib"]
    warm = result["warm_peak_mib"] is not None
    result["warm_step_mib"] = (
        result["warm_peak_mib"] - result["warm_before_mib"] if warm else None
    )
    return result


def _current_rss_mib():
    """The resident set size now (Linux), else the peak so far."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / MIB
    except (OSError, ValueError, IndexError):
        return _max_rss_mib()


def _max_rss_mib():
    """The peak resident set size so far.

    On Linux this is `VmHWM`, the peak of this process's own memory map.
    Not `ru_maxrss`: at `exec` Linux carries the parent's peak into it, so a
    child started by a large benchmark process would report at least the
    parent's size (it did: BP and SVP children of one worker reported the
    same peak), and `clear_refs` does not reset that part.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # KiB
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # KiB on Linux, bytes on macOS.
    return peak / MIB if sys.platform == "darwin" else peak / 1024


def _reset_peak_rss():
    """Resets the peak RSS to the current RSS (Linux >= 4.0); True if done."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def device_peak_mib():
    """The accelerator's peak allocated memory in this process so far, MiB.

    JAX: the first device's `memory_stats()["peak_bytes_in_use"]`;
    PyTorch: `torch.cuda.max_memory_allocated()`; TensorFlow:
    `get_memory_info("GPU:0")["peak"]`. None on a machine without one (CPU
    devices keep no such statistics).
    """
    name = keras.backend.backend()
    if name == "jax":
        import jax

        device = jax.local_devices()[0]
        stats = device.memory_stats() if device.platform != "cpu" else None
        peak = (stats or {}).get("peak_bytes_in_use")
    elif name == "torch":
        import torch

        peak = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None
    elif name == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_logical_devices("GPU")
        peak = tf.config.experimental.get_memory_info("GPU:0")["peak"] if gpus else None
    else:
        peak = None
    return None if peak is None else peak / MIB


def _rss_child(
    depth, width, batch_size, mode, steps, jit_compile="auto", activation=None
):
    from keras_svp.benchmarks.models import build_mlp
    from keras_svp.benchmarks.models import synthetic_batch

    units = {"activation": activation} if activation else {}
    model = build_mlp(depth, width, mode, jit_compile=jit_compile, **units)
    x, y = synthetic_batch(batch_size, width)
    model._symbolic_build(data_batch=(x, y))
    before = _current_rss_mib()
    model.train_on_batch(x, y)
    peak = _max_rss_mib()  # read before a reset clears it
    warm_before = warm_peak = None
    if steps > 1 and _reset_peak_rss():
        warm_before = _current_rss_mib()
    for _ in range(steps - 1):
        model.train_on_batch(x, y)
    if warm_before is not None:
        warm_peak = _max_rss_mib()
    return {
        "backend": keras.backend.backend(),
        "steps": steps,
        "jit_compile": bool(model.jit_compile),
        "rss_before_mib": before,
        "rss_peak_mib": max(peak, _max_rss_mib()),
        "warm_before_mib": warm_before,
        "warm_peak_mib": warm_peak,
        "device_peak_mib": device_peak_mib(),
    }


def main(argv=None):
    """Command line of the peak-RSS child process; prints one JSON line.

    Args:
        argv: the arguments (default `sys.argv[1:]`).
    """
    parser = argparse.ArgumentParser(
        prog="python -m keras_svp.benchmarks.memory",
        description="Peak RSS of a few training steps of benchmarks.build_mlp.",
    )
    parser.add_argument("--rss", action="store_true", required=True)
    parser.add_argument("--depth", type=int, required=True)
    parser.add_argument("--width", type=int, required=True)
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--mode", choices=("svp", "bp"), required=True)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--jit-compile", choices=JIT_COMPILE, default="auto")
    parser.add_argument("--activation", help="the units' (default: their own)")
    args = parser.parse_args(argv)
    result = _rss_child(
        args.depth,
        args.width,
        args.batch_size,
        args.mode,
        max(1, args.steps),
        JIT_COMPILE[args.jit_compile],
        args.activation,
    )
    print(json.dumps(result), flush=True)


def exit_process(code=0):
    """Ends a benchmark child process at once, the way `multiprocessing` ends
    its children: its results are printed or on disk, and the interpreter's
    normal shutdown (TensorFlow's teardown of the traced steps) would add
    seconds to every run. Under a profiler or tracer (`python -m cProfile`,
    coverage) it returns instead: they write their results at a normal
    exit."""
    if sys.getprofile() is not None or sys.gettrace() is not None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
    exit_process(0)
