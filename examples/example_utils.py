"""What the example scripts share: arguments, data, training and the report.

Each example (`mlp.py`, `vgg.py`, `vit_svp_plus.py`) adds its model's
arguments and a `build_model(args, input_shape, num_classes)` function; this
module loads the data set (optionally a tiny slice for `--quick`), builds
`tf.data` pipelines with Keras' augmentation layers where the paper's setting
has augmentation (CIFAR, Imagenette), trains, and prints test accuracy,
training time and the process's peak resident memory.
"""

import argparse
import inspect
import json
import os
import platform
import resource
import sys
import time

AUGMENTED = ("cifar10", "cifar100", "imagenette")
DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10", "cifar100", "imagenette")
QUICK_TRAIN, QUICK_TEST = 512, 256


def parser(description, default_dataset, default_epochs, default_lr, quick=None):
    """The arguments every example takes; the example adds its model's.

    `quick` overrides `epochs`, `batch_size` and `learning_rate` under
    `--quick` (default: 1 epoch, the usual batch size and rate); a value
    given on the command line always wins.
    """
    p = argparse.ArgumentParser(
        description=description,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--dataset", default=default_dataset, choices=DATASETS)
    p.add_argument("--mode", default="svp", choices=("svp", "bp"))
    p.add_argument("--epochs", type=int, default=None, help=f"default {default_epochs}")
    p.add_argument("--batch-size", type=int, default=None, help="default 128")
    p.add_argument(
        "--learning-rate",
        type=float,
        default=None,
        help=f"Adam's; default {default_lr}",
    )
    p.add_argument(
        "--schedule",
        default="cosine",
        choices=("cosine", "constant"),
        help="learning rate over training: cosine decay to 0, or constant",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--augment",
        default="auto",
        choices=("auto", "on", "off"),
        help=f"random flips and translations; 'auto': on for {', '.join(AUGMENTED)}",
    )
    p.add_argument(
        "--data-dir",
        default=None,
        help="directory (or .npz file) of the data set; default: "
        "keras_svp.datasets.default_data_dir(dataset)",
    )
    p.add_argument(
        "--source",
        default="auto",
        choices=("auto", "local", "keras", "tfds"),
        help="where to load the data from (see keras_svp.datasets.load_dataset)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke test: {QUICK_TRAIN} training and {QUICK_TEST} test images, "
        "a tiny model, few epochs",
    )
    p.add_argument(
        "--probes",
        action="store_true",
        help="after training, also measure a linear probe on each SVP unit's "
        "activations (keras_svp.diagnostics.linear_probes, 5 epochs)",
    )
    p.add_argument(
        "--random-head",
        action="store_true",
        help="start the output head at its own random initializer, not at the "
        "last unit's projection (head_from_projection=False; the runs on the "
        "docs' Examples page before commit 1075536 started it so)",
    )
    p.add_argument("--json", default=None, help="also write the results here")
    p.set_defaults(
        usual={
            "epochs": default_epochs,
            "batch_size": 128,
            "learning_rate": default_lr,
        },
        quick_settings={"epochs": 1, **(quick or {})},
    )
    return p


def head_start(args):
    """The models' `head_from_projection` for these arguments."""
    return False if args.random_head else "auto"


def load_data(args):
    """`(x_train, y_train), (x_test, y_test)`, sliced for `--quick`."""
    from keras_svp import datasets

    kwargs = {}
    if args.dataset != "digits":
        kwargs = {"path": args.data_dir, "source": args.source}
    (x_train, y_train), (x_test, y_test) = datasets.load(args.dataset, **kwargs)
    if args.quick:
        x_train, y_train = x_train[:QUICK_TRAIN], y_train[:QUICK_TRAIN]
        x_test, y_test = x_test[:QUICK_TEST], y_test[:QUICK_TEST]
    return (x_train, y_train), (x_test, y_test)


def augmentation(seed):
    """The paper's CIFAR augmentation in Keras layers: random horizontal
    flips and random shifts of up to 1/8 of the image (4 pixels at 32x32,
    like padding by 4 and cropping back), zero-filled."""
    import keras

    # A list, not a keras.Sequential: each preprocessing layer runs inside
    # tf.data on every backend, a Sequential of them only on TensorFlow.
    return [
        keras.layers.RandomFlip("horizontal", seed=seed),
        keras.layers.RandomTranslation(
            0.125, 0.125, fill_mode="constant", seed=seed + 1
        ),
    ]


def pipelines(args, data):
    """Batched training and test `tf.data` pipelines."""
    import tensorflow as tf

    from keras_svp.datasets import to_tf_dataset

    (x_train, y_train), (x_test, y_test) = data
    train = to_tf_dataset(
        x_train, y_train, args.batch_size, shuffle=True, seed=args.seed
    )
    augment = args.augment == "on" or (
        args.augment == "auto" and args.dataset in AUGMENTED
    )
    if augment:
        layers = augmentation(args.seed)

        def augment_batch(x, y):
            for layer in layers:
                x = layer(x, training=True)
            return x, y

        train = train.map(augment_batch, num_parallel_calls=tf.data.AUTOTUNE)
    return train, to_tf_dataset(x_test, y_test, args.batch_size), augment


def learning_rate(args, train):
    """Adam's learning rate: `--learning-rate`, decayed to 0 over all steps
    along a cosine with `--schedule cosine` (the same in both modes)."""
    from keras_svp.benchmarks.accuracy import learning_rate_over

    steps = args.epochs * int(train.cardinality())
    return learning_rate_over(args.learning_rate, args.schedule, steps)


def peak_rss_mib():
    """Peak resident memory of this process so far, in MiB (Linux: KiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def run(args, build_model):
    """Trains `build_model(args, input_shape, num_classes)` and reports."""
    import keras

    settings = {**args.usual, **(args.quick_settings if args.quick else {})}
    for name, value in settings.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    keras.utils.set_random_seed(args.seed)
    data = load_data(args)
    (x_train, y_train), _ = data
    num_classes = int(max(y_train.max(), data[1][1].max())) + 1
    if args.dataset == "cifar100":
        num_classes = 100
    train, test, augmented = pipelines(args, data)
    model = build_model(args, x_train.shape[1:], num_classes)
    model.compile(
        keras.optimizers.Adam(learning_rate(args, train)),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    epoch_times = []

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            epoch_times.append(time.perf_counter() - self.start)

    verbose = 0 if args.quick else 2
    start = time.perf_counter()
    # shuffle=False: the tf.data pipeline reshuffles every epoch itself.
    model.fit(
        train,
        epochs=args.epochs,
        shuffle=False,
        callbacks=[EpochTimer()],
        verbose=verbose,
    )
    fit_s = time.perf_counter() - start
    results = model.evaluate(test, verbose=0, return_dict=True)
    report = {
        "example": os.path.basename(inspect.getfile(build_model)),
        "backend": keras.backend.backend(),
        "dataset": args.dataset,
        "mode": args.mode,
        "epochs": args.epochs,
        "quick": args.quick,
        "augmented": augmented,
        "train_size": len(x_train),
        "parameters": model.count_params(),
        "test_accuracy": float(results["accuracy"]),
        "fit_s": fit_s,
        "first_epoch_s": epoch_times[0],
        "later_epoch_s": (
            sum(epoch_times[1:]) / (len(epoch_times) - 1)
            if len(epoch_times) > 1
            else None
        ),
        "peak_rss_mib": peak_rss_mib(),
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs",
        "args": vars(args),
    }
    if args.probes:
        from keras_svp import diagnostics

        probes = diagnostics.linear_probes(
            model, data[0], data[1], batch_size=args.batch_size, seed=args.seed
        )
        report["probe_accuracy"] = {p["name"]: p["probe_accuracy"] for p in probes}
    later = report["later_epoch_s"]
    print(
        f"{report['example']} {report['backend']} {args.dataset} mode={args.mode} "
        f"epochs={args.epochs}: test accuracy {report['test_accuracy']:.4f}, "
        f"fit {fit_s:.1f} s (first epoch {epoch_times[0]:.1f} s"
        + (f", later {later:.1f} s/epoch" if later else "")
        + f"), peak RSS {report['peak_rss_mib']:.0f} MiB, "
        f"{report['parameters']:,} parameters"
    )
    if args.probes:
        print(
            "linear probes' test accuracy by unit: "
            + ", ".join(f"{k} {v:.4f}" for k, v in report["probe_accuracy"].items())
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return report


RUN_COLUMNS = "| script | backend | data set | mode | epochs | test acc |"


def _reports(paths):
    for path in sorted(paths):
        with open(path) as f:
            yield json.load(f)


def _run_cells(r):
    """The cells of `RUN_COLUMNS` for one report."""
    script = r["example"]
    # Options that change the model, where not the script's default.
    args = r.get("args", {})
    if args.get("config", "vgg11") != "vgg11":
        script += f" --config {args['config']}"
    if args.get("width_multiplier", 1.0) != 1.0:
        script += f" --width-multiplier {args['width_multiplier']:g}"
    if args.get("units", "convolution") != "convolution":
        script += f" --units {args['units']}"
    if args.get("seed", 0) != 0:
        script += f" --seed {args['seed']}"
    return (
        f"| {script} | {r['backend']} | {r['dataset']} | {r['mode']} | "
        f"{r['epochs']} | {r['test_accuracy']:.4f} |"
    )


def results_table(paths):
    """A Markdown table of the reports that `--json` wrote."""
    rows = [
        RUN_COLUMNS + " 1st epoch s | later s/epoch | peak RSS MiB | machine |",
        "| --- " * 10 + "|",
    ]
    for r in _reports(paths):
        later = "-" if r["later_epoch_s"] is None else f"{r['later_epoch_s']:.1f}"
        rows.append(
            _run_cells(r) + f" {r['first_epoch_s']:.1f} | "
            f"{later} | {r['peak_rss_mib']:.0f} | {r['machine']} |"
        )
    return "\n".join(rows)


def probes_table(paths):
    """A Markdown table of the linear probes of the reports that have them."""
    probed = [r for r in _reports(paths) if "probe_accuracy" in r]
    if not probed:
        return ""
    # Runs of models with fewer units leave the last columns empty.
    units = max(len(r["probe_accuracy"]) for r in probed)
    rows = [
        RUN_COLUMNS + "".join(f" probe after unit {i + 1} |" for i in range(units)),
        "| --- " * (6 + units) + "|",
    ]
    for r in probed:
        cells = [f" {v:.4f} |" for v in r["probe_accuracy"].values()]
        cells += [" |"] * (units - len(cells))
        rows.append(_run_cells(r) + "".join(cells))
    return "\n".join(rows)


if __name__ == "__main__":
    # python examples/example_utils.py docs/examples/*.json
    print(results_table(sys.argv[1:]))
    print()
    print(probes_table(sys.argv[1:]))
