"""`python -m keras_svp.benchmarks`: SVP against backprop, side by side.

Each backend runs in its own process (Keras picks its backend at import);
this process gathers their JSON rows into one Markdown table and plot.
"""

import argparse
import gc
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from keras_svp.benchmarks import memory
from keras_svp.benchmarks import report
from keras_svp.benchmarks import speed
from keras_svp.benchmarks.accuracy import ARCHITECTURES

ALL = ("memory", "architectures", "speed", "accuracy", "ablation")

# The full profile follows the protocol; --quick only checks that
# the harness works end to end (its numbers mean nothing).
PROFILES = {
    "full": {
        "depths": "2,4,8,16,32",
        "width": 2048,
        "batch_size": 1024,
        "speed_repeats": 10,
        "rss_steps": 2,
        "rss_depths": None,  # every depth
        "speed_depths": None,  # every depth
        "image_batch_size": 64,
        "arch_mlp_width": 1024,
        "vgg_width_multiplier": 1.0,
        "vit_dim": 192,
        "vit_heads": 3,
        "vit_depths": "6,12",
        "dataset": "fashion_mnist",
        # The MLP and small CNN, and that CNN with its last
        # convolution in the head; the wide CNNs cost 2 to 3 times as much
        # to train and have their own committed runs.
        "architectures": "mlp,cnn,cnn-conv-head",
        "epochs": 3,
        "seeds": "0,1,2",
        "ablation_epochs": 3,
        "ablation_seeds": "0,1",
        "ablation_variants": None,  # every variant
        "train_limit": None,
    },
    "quick": {
        "depths": "2,4",
        # TensorFlow's CPU allocator counts buffers of 256 KiB and more only.
        "width": 256,
        "batch_size": 256,
        "speed_repeats": 3,
        "rss_steps": 2,
        # One depth spawns two of the slow fresh processes instead of four,
        # and compiles two step-time models and a hand-written step.
        "rss_depths": "deepest",
        "speed_depths": "deepest",
        # Tiny networks, but ViT activations (64 x 65 x 32 floats) that
        # TensorFlow's allocator counts, at two depths: the test checks that
        # SVP's step memory stays flat while backprop's grows. Two and three
        # blocks: tracing a deeper ViT's step takes TensorFlow seconds, and
        # on JAX a one-block SVP step needs less than any deeper one.
        "image_batch_size": 64,
        "arch_mlp_width": 64,
        "vgg_width_multiplier": 0.0625,
        "vit_dim": 32,
        "vit_heads": 2,
        "vit_depths": "2,3",
        "dataset": "digits",
        # The CNN's training is tested by test_benchmark_accuracy; its
        # SVPConv2D step runs in the architectures benchmark.
        "architectures": "mlp",
        "epochs": 1,
        "seeds": "0",
        "ablation_epochs": 1,
        "ablation_seeds": "0",
        # tests/test_benchmark_accuracy.py trains every variant already.
        "ablation_variants": "default,projection_dim=32",
        "train_limit": 300,
    },
}


# Environment variables that change what is measured; the recorded command
# names those that are set.
ENV = (
    "XLA_FLAGS",
    "TF_ENABLE_ONEDNN_OPTS",
    "GLIBC_TUNABLES",
    "OMP_NUM_THREADS",
    "OMP_WAIT_POLICY",
)

# The architectures benchmark's synthetic images (CIFAR-10's shape).
IMAGE_SHAPE = (32, 32, 3)
# Adam's rate when --learning-rates is not given (the earlier reports' rate).
DEFAULT_LEARNING_RATE = 1e-3


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m keras_svp.benchmarks",
        description="Memory, speed and accuracy of SVP against backprop.",
    )
    parser.add_argument(
        "--backend",
        default="all",
        help="tensorflow, jax, torch, a comma-separated list, or all",
    )
    parser.add_argument(
        "--only", default=",".join(ALL), help=f"comma-separated subset of {ALL}"
    )
    parser.add_argument("--quick", action="store_true", help="tiny CI profile")
    parser.add_argument(
        "--tf-xla",
        action="store_true",
        help="memory, architectures and speed: compile TensorFlow's train step "
        "with XLA (model.compile(jit_compile=True)), which Keras leaves off "
        "on a CPU; JAX always compiles with XLA, PyTorch is unaffected",
    )
    parser.add_argument(
        "--allocator",
        choices=("retain", "system"),
        default="retain",
        help="the workers' C allocator: 'retain' (default) has glibc keep freed "
        "memory for reuse, as GPU frameworks' caching allocators do, so that "
        "step times do not depend on page faults (on a virtual machine that "
        "hands free memory back to its host, faulting a BP step's buffers in "
        "again can cost more than its arithmetic); 'system': glibc's defaults. "
        "A GLIBC_TUNABLES of your own is left as it is",
    )
    parser.add_argument("--depths", help="comma-separated depths")
    parser.add_argument("--width", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument(
        "--rss-depths",
        help="depths of the peak-RSS cross-check: comma-separated, 'deepest' "
        "or 'all' (the default)",
    )
    parser.add_argument(
        "--speed-depths",
        help="depths of the step-time benchmark: comma-separated, 'deepest' "
        "or 'all' (the default)",
    )
    parser.add_argument(
        "--speed-loop",
        choices=speed.LOOPS,
        default="train_on_batch",
        help="how the step-time benchmark runs the steps it times: one "
        "train_on_batch call per step (the default), or inside fit: the "
        f"difference of fit calls of {speed.FIT_STEPS} and "
        f"{2 * speed.FIT_STEPS} steps, per step (train_on_batch adds a cost "
        "per call: on JAX it gathers and writes back every variable)",
    )
    parser.add_argument(
        "--image-batch-size", type=int, help="architectures: images per batch"
    )
    parser.add_argument(
        "--arch-mlp-width", type=int, help="architectures: the MLP's width"
    )
    parser.add_argument(
        "--vgg-width-multiplier", type=float, help="architectures: VGG-11's width"
    )
    parser.add_argument("--vit-dim", type=int, help="architectures: ViT token size")
    parser.add_argument("--vit-heads", type=int, help="architectures: ViT heads")
    parser.add_argument(
        "--vit-depths", help="architectures: ViT depths, comma-separated"
    )
    parser.add_argument("--epochs", type=int, help="accuracy epochs")
    parser.add_argument("--seeds", help="accuracy seeds, comma-separated")
    parser.add_argument("--ablation-epochs", type=int)
    parser.add_argument("--ablation-seeds")
    parser.add_argument(
        "--ablation-variants", help="comma-separated variant names (default: all)"
    )
    parser.add_argument(
        "--ablation-architecture",
        default="mlp",
        help="the network the ablation trains, from "
        + ",".join(ARCHITECTURES)
        + " (default: mlp, which set the package defaults)",
    )
    parser.add_argument(
        "--ablation-backends",
        default="jax",
        help="backends that run the ablation (it is backend-independent "
        "and the slowest part); 'all' for every backend",
    )
    parser.add_argument("--dataset", help="fashion_mnist or digits")
    parser.add_argument(
        "--train-limit",
        type=int,
        help="accuracy and ablation runs: train on this many training "
        "examples, a fixed random subset (default: all; the test set is "
        "always whole)",
    )
    parser.add_argument(
        "--schedule",
        default="cosine",
        choices=("cosine", "constant"),
        help="accuracy and ablation runs: Adam's rate decays to 0 along a "
        "cosine, or stays constant",
    )
    parser.add_argument(
        "--architectures",
        help="accuracy architectures, from "
        + ",".join(ARCHITECTURES)
        + " (-dense-head: the mlp's last hidden layer in the output head; "
        "-wide: the cnn at twice the filters; -conv-head: its last "
        "convolution in the output head); default: "
        + PROFILES["full"]["architectures"],
    )
    parser.add_argument(
        "--learning-rates",
        default=f"{DEFAULT_LEARNING_RATE:g}",
        help="accuracy runs: Adam's learning rates (the schedule's peak), "
        "comma-separated; every mode and seed is trained at each",
    )
    parser.add_argument(
        "--activation",
        help="memory, speed and accuracy runs: the SVP units' activation "
        "(e.g. relu), the same in both modes (default: the units' own: gelu "
        "for SVPDense, relu for SVPConv2D)",
    )
    parser.add_argument("--out", default="results/benchmarks", help="output dir")
    parser.add_argument(
        "--summarize",
        action="store_true",
        help="only re-render results.md and the plot from --out's JSON",
    )
    parser.add_argument(
        "--combine",
        help="comma-separated result folders: write their rows together into "
        "--out (results.json, results.md) without running anything, e.g. two "
        "runs of the same model with different seeds",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.combine is not None:
        args.combine = [path for path in args.combine.split(",") if path]
        missing = [
            path
            for path in args.combine
            if not os.path.isfile(os.path.join(path, "results.json"))
        ]
        if missing or not args.combine:
            parser.error(
                f"--combine needs result folders holding results.json; "
                f"{missing or 'none given'} has none. Give the --out folders "
                "of earlier runs."
            )
    profile = PROFILES["quick" if args.quick else "full"]
    for key, value in profile.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    args.depths = _int_list(args.depths)
    for key in ("rss_depths", "speed_depths"):
        setattr(args, key, _depth_subset(getattr(args, key), args.depths))
    args.vit_depths = _int_list(args.vit_depths)
    args.seeds = _int_list(args.seeds)
    try:
        args.learning_rates = [float(rate) for rate in args.learning_rates.split(",")]
    except ValueError:
        parser.error(
            f"--learning-rates takes comma-separated numbers, e.g. 0.001,0.004; "
            f"got {args.learning_rates!r}"
        )
    if any(not rate > 0 for rate in args.learning_rates):
        parser.error(f"--learning-rates must be positive, got {args.learning_rates}")
    args.ablation_seeds = _int_list(args.ablation_seeds)
    if args.train_limit is not None and args.train_limit < 1:
        parser.error(
            f"--train-limit must be a positive number of examples, got "
            f"{args.train_limit}; leave it out to train on all of them"
        )
    if args.ablation_variants is not None:
        args.ablation_variants = args.ablation_variants.split(",")
    args.only = [name for name in args.only.split(",") if name]
    unknown = set(args.only) - set(ALL)
    if unknown:
        parser.error(f"unknown benchmarks {sorted(unknown)}; choose from {ALL}")
    args.architectures = [name for name in args.architectures.split(",") if name]
    unknown = [name for name in args.architectures if name not in ARCHITECTURES]
    if unknown:
        parser.error(
            f"unknown --architectures {unknown}; choose from {list(ARCHITECTURES)}"
        )
    if args.ablation_architecture not in ARCHITECTURES:
        parser.error(
            f"unknown --ablation-architecture {args.ablation_architecture!r}; "
            f"choose from {list(ARCHITECTURES)}"
        )
    if args.activation is not None:
        import keras

        try:
            keras.activations.get(args.activation)
        except ValueError:
            parser.error(
                f"unknown --activation {args.activation!r}; give a Keras "
                "activation name, e.g. relu or gelu"
            )
    backends = args.backend.split(",")
    args.backends = list(report.BACKENDS) if backends == ["all"] else backends
    for backend in args.backends:
        if backend not in report.BACKENDS:
            parser.error(f"unknown backend {backend!r}; choose from {report.BACKENDS}")
    ablation = args.ablation_backends.split(",")
    args.ablation_backends = list(report.BACKENDS) if ablation == ["all"] else ablation
    return args


def _depth_subset(value, depths):
    """`--rss-depths` / `--speed-depths`: None is every depth of `depths`."""
    if value is None or value == "all":
        return list(depths)
    if value == "deepest":
        return [max(depths)]
    return _int_list(value)


def _int_list(value):
    """A comma-separated option (or a profile's int) as a list of ints."""
    return [int(item) for item in str(value).split(",")]


def _subset_text(train_limit):
    if train_limit is None:
        return ""
    return f" ({train_limit} training examples)"


def _rates_text(rates):
    if rates == [DEFAULT_LEARNING_RATE]:
        return ""  # reports name no rate for the default
    return " from Adam " + ", ".join(f"{rate:g}" for rate in rates)


def progress(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def run_worker(args):
    """Runs the benchmarks on this process's backend; returns the rows."""
    # Every `clear_session` runs a full garbage collection, which spends
    # much of its time scanning the objects of the imported libraries
    # (Keras and its backend, imported with this module), none of them
    # garbage. Frozen, they are skipped (half the time a call in the JAX
    # quick worker); what the benchmarks build is still collected.
    gc.collect()
    gc.freeze()
    try:
        return _run_benchmarks(args)
    finally:
        gc.unfreeze()


def _run_benchmarks(args):
    import keras

    from keras_svp.benchmarks import models
    from keras_svp.benchmarks import speed

    backend = keras.backend.backend()
    rows = []
    shape = {"width": args.width, "batch_size": args.batch_size}
    jit = True if args.tf_xla and backend == "tensorflow" else "auto"
    # --activation reaches every MLP this run builds, in both modes.
    units = {"activation": args.activation} if args.activation else {}
    x, y = models.synthetic_batch(args.batch_size, args.width)

    # The fresh processes of the RSS cross-check run in the background, two
    # at a time, while the step memory and the architectures are measured
    # in-process (each child's peak RSS is its own); they are collected
    # before the speed benchmark, which must have the machine to itself.
    rss_children = {}
    if "memory" in args.only:
        pool = ThreadPoolExecutor(max_workers=2)
        for depth in args.depths:
            if depth in args.rss_depths:
                for mode in ("bp", "svp"):
                    rss_children[depth, mode] = pool.submit(
                        memory.peak_rss,
                        depth,
                        args.width,
                        args.batch_size,
                        mode,
                        steps=args.rss_steps,
                        jit_compile=jit,
                        **units,
                    )
        pool.shutdown(wait=False)
        for depth in args.depths:
            for mode in ("bp", "svp"):
                model = models.build_mlp(
                    depth, args.width, mode, jit_compile=jit, **units
                )
                result = memory.step_memory(model, x, y)
                common = {"backend": backend, "depth": depth, "mode": mode, **shape}
                rows.append({"benchmark": "memory", **common, **result})
                progress(
                    f"memory {backend} depth {depth} {mode}: "
                    f"{result['step_mib']:.1f} MiB"
                )
                del model
                keras.backend.clear_session()

    if "architectures" in args.only:
        from keras_svp.benchmarks import architectures

        configs = architectures.configurations(
            image_shape=IMAGE_SHAPE,
            mlp_width=args.arch_mlp_width,
            vgg_width_multiplier=args.vgg_width_multiplier,
            vit_dim=args.vit_dim,
            vit_heads=args.vit_heads,
            vit_depths=args.vit_depths,
        )
        rows += architectures.memory_rows(
            configs,
            args.image_batch_size,
            IMAGE_SHAPE,
            progress=progress,
            jit_compile=jit,
        )

    for (depth, mode), child in rss_children.items():
        rss = child.result()
        common = {"backend": backend, "depth": depth, "mode": mode, **shape}
        rows.append({"benchmark": "rss", **common, **rss})
        progress(
            f"peak RSS {backend} depth {depth} {mode}: "
            f"+{rss['rss_step_mib']:.0f} MiB in a fresh process"
        )

    if "speed" in args.only:
        for depth in args.speed_depths:
            # Both modes in turns, so that the machine's load falls on both.
            pair = {
                mode: models.build_mlp(
                    depth, args.width, mode, jit_compile=jit, **units
                )
                for mode in ("bp", "svp")
            }
            results = speed.step_times(
                pair, x, y, repeats=args.speed_repeats, loop=args.speed_loop
            )
            for mode, result in results.items():
                rows.append(
                    {
                        "benchmark": "speed",
                        "backend": backend,
                        "depth": depth,
                        "mode": mode,
                        **shape,
                        "jit_compile": bool(pair[mode].jit_compile),
                        **result,
                    }
                )
                progress(
                    f"speed {backend} depth {depth} {mode}: {result['step_ms']:.1f} ms"
                )
            del pair
            keras.backend.clear_session()
            if backend == "jax":
                from keras_svp.benchmarks import reference_jax

                # Left out, the hand-written step keeps the units' default.
                if units and args.activation not in reference_jax.ACTIVATIONS:
                    progress(f"no hand-written JAX step with {args.activation} units")
                    continue
                ms = reference_jax.reference_step_time(
                    depth, args.width, x, y, repeats=args.speed_repeats, **units
                )
                rows.append(
                    {
                        "benchmark": "speed",
                        "backend": backend,
                        "depth": depth,
                        "mode": "reference",
                        **shape,
                        "step_ms": ms,
                    }
                )
                progress(f"speed jax depth {depth} hand-written SVP: {ms:.1f} ms")

    if "accuracy" in args.only or "ablation" in args.only:
        from keras_svp.benchmarks import accuracy

        budget = {
            "dataset": args.dataset,
            "train_limit": args.train_limit,
            "schedule": args.schedule,
        }
        trained = []
        if "accuracy" in args.only:
            for architecture in args.architectures:
                for learning_rate in args.learning_rates:
                    trained += accuracy.accuracy_runs(
                        architecture,
                        seeds=args.seeds,
                        epochs=args.epochs,
                        learning_rate=learning_rate,
                        progress=progress,
                        **budget,
                        **units,
                    )
        rows += trained
        if "ablation" in args.only and backend in args.ablation_backends:
            # The default variant is the accuracy benchmark's SVP MLP when
            # the budgets agree: it is not trained twice.
            rows += accuracy.ablation_runs(
                epochs=args.ablation_epochs,
                seeds=args.ablation_seeds,
                variants=args.ablation_variants,
                architecture=args.ablation_architecture,
                progress=progress,
                reuse=trained,
                **budget,
            )
    return rows


def versions():
    import importlib.metadata as metadata

    found = {"python": platform.python_version()}
    for name in ("keras", "numpy", "tensorflow-cpu", "tensorflow", "jax", "torch"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def profile_text(args):
    parts = []
    if {"memory", "speed"} & set(args.only):
        text = f"MLP width {args.width}, batch {args.batch_size}, depths {args.depths}"
        if "speed" in args.only and args.speed_depths != args.depths:
            text += f" (step time at depths {args.speed_depths})"
        if "speed" in args.only and args.speed_loop == "fit":
            text += (
                f", steps timed inside fit (fit calls of {speed.FIT_STEPS} and "
                f"{2 * speed.FIT_STEPS} steps, their difference per step)"
            )
        if args.activation:
            text += f", {args.activation} units"
        parts.append(text)
    if "architectures" in args.only:
        parts.append(
            f"architectures: MLP 3 x {args.arch_mlp_width}, VGG-11 width "
            f"x{args.vgg_width_multiplier:g}, the small CNN (one unit per "
            "convolution, and its last convolution in the head), "
            f"ViT SVP+ dim {args.vit_dim} "
            f"({args.vit_heads} heads, patch 4, one block per unit) at depths "
            f"{args.vit_depths}; {args.image_batch_size} synthetic "
            f"{'x'.join(map(str, IMAGE_SHAPE))} images per batch"
        )
    if "accuracy" in args.only:
        parts.append(
            f"accuracy: {','.join(args.architectures)} on {args.dataset}"
            f"{_subset_text(args.train_limit)}, "
            f"{args.epochs} epochs ({args.schedule} learning rate"
            f"{_rates_text(args.learning_rates)}), seeds {args.seeds}"
            + (f", {args.activation} units" if args.activation else "")
        )
    if "ablation" in args.only:
        parts.append(
            f"ablation: SVP {args.ablation_architecture} on {args.dataset}"
            f"{_subset_text(args.train_limit)}, "
            f"{args.ablation_epochs} epochs "
            f"({args.schedule} learning rate), seeds {args.ablation_seeds}"
        )
    retain = args.allocator == "retain" and "GLIBC_TUNABLES" not in os.environ
    if "speed" in args.only and retain:
        parts.append(
            "step time with glibc keeping freed memory for reuse (--allocator "
            f"retain: GLIBC_TUNABLES={speed.RETAIN_FREED_MEMORY})"
        )
    if args.tf_xla and {"memory", "architectures", "speed"} & set(args.only):
        parts.append("TensorFlow's train step XLA-compiled (--tf-xla)")
    return "; ".join(parts)


def cpu_model():
    """The processor's model name (Linux's /proc/cpuinfo).

    Elsewhere `platform.processor()`, which may be "" or repeat
    `platform.machine()`.

    Step times and TensorFlow's CPU memory statistics (oneDNN) depend on it.
    """
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def render(out):
    """Writes results.md and the memory plot from out's results.json."""
    rows = report.load_json([os.path.join(out, "results.json")])
    with open(os.path.join(out, "context.json")) as f:
        context = json.load(f)
    text = report.markdown(rows, context=context)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(text)
    print(text)
    plot = report.plot_memory(rows, os.path.join(out, "memory_vs_depth.png"))
    if plot:
        progress(f"plot: {plot}")


def combine(folders, out, argv=None):
    """Writes the rows of several result folders together into `out`.

    The context names the folders and each one's command, machine and
    versions, so that the report says where every row came from.
    """
    rows = report.load_json([os.path.join(path, "results.json") for path in folders])
    _check_combinable(rows, folders)
    contexts = []
    for path in folders:
        with open(os.path.join(path, "context.json")) as f:
            contexts.append(json.load(f))
    argv = list(sys.argv[1:] if argv is None else argv)
    context = {"command": "python -m keras_svp.benchmarks " + " ".join(argv)}
    for path, earlier in zip(folders, contexts):
        context[f"rows of {path}"] = "; ".join(
            f"{key}: {earlier[key]}"
            for key in ("command", "machine", "versions")
            if key in earlier
        )
    report.save_json(rows, os.path.join(out, "results.json"))
    with open(os.path.join(out, "context.json"), "w") as f:
        json.dump(context, f, indent=1)
    render(out)


def _check_combinable(rows, folders):
    """Refuses rows that the report would mix up: the same run twice, or
    runs of one model whose budgets or options differ (they would be
    averaged as one)."""
    from keras_svp.benchmarks.accuracy import PER_RUN_KEYS

    configs, runs = {}, set()
    for row in rows:
        if row["benchmark"] not in ("accuracy", "ablation"):
            continue
        label = tuple(
            row.get(key)
            for key in (
                "benchmark",
                "backend",
                "architecture",
                "mode",
                "learning_rate",
                "variant",
            )
        )
        config = {k: v for k, v in row.items() if k not in PER_RUN_KEYS}
        first = configs.setdefault(label, config)
        differing = sorted(
            key for key in set(config) | set(first) if config.get(key) != first.get(key)
        )
        if differing:
            raise SystemExit(
                f"--combine: the {' '.join(str(v) for v in label if v)} runs in "
                f"{', '.join(folders)} differ in {differing}; the report would "
                "average them as one model. Combine runs of the same budget "
                "and options only."
            )
        if (label, row.get("seed")) in runs:
            raise SystemExit(
                f"--combine: seed {row.get('seed')} of "
                f"{' '.join(str(v) for v in label if v)} appears twice in "
                f"{', '.join(folders)}; combine folders of different seeds."
            )
        runs.add((label, row.get("seed")))


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    if args.worker:
        import keras

        rows = run_worker(args)
        report.save_json(
            rows, os.path.join(args.out, f"{keras.backend.backend()}.json")
        )
        return 0
    if args.summarize:
        render(args.out)
        return 0
    if args.combine:
        combine(args.combine, args.out, argv)
        return 0
    argv = list(sys.argv[1:] if argv is None else argv)
    paths, started = [], time.time()
    for backend in args.backends:
        progress(f"=== {backend}")
        env = dict(os.environ, KERAS_BACKEND=backend)
        if backend == "tensorflow":
            # TensorFlow keeps CPU memory statistics only with oneDNN's
            # allocator, which it turns on by default on some x86 CPUs
            # (Intel's), not on others (AMD's). A setting of the user's
            # stands; the memory benchmark then says what is missing.
            env.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
        if args.allocator == "retain" and "GLIBC_TUNABLES" not in env:
            env["GLIBC_TUNABLES"] = speed.RETAIN_FREED_MEMORY
        dump = None
        if args.tf_xla and backend == "tensorflow" and memory.xla_dump_dir() is None:
            # The memory benchmark reads XLA's buffer assignment from the dump.
            dump = tempfile.mkdtemp(prefix="keras-svp-xla-")
            env["XLA_FLAGS"] = (
                env.get("XLA_FLAGS", "") + f" --xla_dump_to={dump}"
            ).strip()
        command = [sys.executable, "-m", "keras_svp.benchmarks", *argv, "--worker"]
        try:
            result = subprocess.run(command, env=env)
        finally:
            if dump:
                shutil.rmtree(dump, ignore_errors=True)
        if result.returncode != 0:
            progress(f"{backend} failed with exit code {result.returncode}")
            return result.returncode
        paths.append(os.path.join(args.out, f"{backend}.json"))
    rows = report.load_json(paths)
    context = {
        "command": "".join(f"{k}={os.environ[k]} " for k in ENV if k in os.environ)
        + "python -m keras_svp.benchmarks "
        + " ".join(argv),
        "machine": os.environ.get(
            "KERAS_SVP_DEVICE",
            ", ".join(dict.fromkeys(p for p in (platform.machine(), cpu_model()) if p))
            + f", {os.cpu_count()} CPU cores, no GPU",
        ),
        "versions": ", ".join(f"{k} {v}" for k, v in versions().items()),
        "wall time": f"{time.time() - started:.0f} s",
        "profile": "quick (checks the harness, numbers mean nothing)"
        if args.quick
        else profile_text(args),
    }
    report.save_json(rows, os.path.join(args.out, "results.json"))
    with open(os.path.join(args.out, "context.json"), "w") as f:
        json.dump(context, f, indent=1)
    render(args.out)
    return 0


if __name__ == "__main__":
    code = main()
    if "--worker" in sys.argv:
        memory.exit_process(code)
    sys.exit(code)
