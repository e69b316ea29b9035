"""SVP versus backpropagation on the same MLP, on real data sets.

For every data set, trains `Flatten -> SVPDense(W) x 3 -> Dense(10)` once
with `mode="svp"` (every unit learns from its own local loss) and once with
`mode="bp"` (end-to-end backpropagation), from the same seed, and prints
test accuracy and training time per epoch. It runs on whichever backend
`KERAS_BACKEND` selects.

Usage:

    KERAS_BACKEND=jax python examples/compare.py
    KERAS_BACKEND=torch python examples/compare.py --datasets digits --epochs 10
    python examples/compare.py --json results/compare-jax.json
    python examples/compare.py --summarize results/compare-*.json

`--summarize` only reads result files written by `--json` (from any
backends) and prints them as one table, without training anything.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time

DEFAULT_EPOCHS = {"digits": 30, "fashion_mnist": 5}
DEFAULT_DATASETS = ("digits", "fashion_mnist")
MODES = ("svp", "bp")

COLUMNS = [
    ("backend", "backend", "{}"),
    ("dataset", "dataset", "{}"),
    ("mode", "mode", "{}"),
    ("epochs", "epochs", "{}"),
    ("test_accuracy", "test acc", "{:.4f}"),
    ("first_epoch_s", "1st epoch s (incl. compile)", "{:.2f}"),
    ("later_epoch_s", "later epochs s/epoch (mean)", "{:.2f}"),
    ("fit_s", "total fit s", "{:.1f}"),
]


class EpochTimer:
    """Wall time of every epoch, recorded by a Keras callback."""

    def __init__(self):
        import keras

        times = self.times = []

        class _Callback(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self._start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                times.append(time.perf_counter() - self._start)

        self.callback = _Callback()


def build_model(mode, width, seed):
    import keras

    import keras_svp

    keras.utils.set_random_seed(seed)
    return keras_svp.SVPSequential(
        [
            keras.layers.Flatten(),
            keras_svp.SVPDense(width),
            keras_svp.SVPDense(width),
            keras_svp.SVPDense(width),
            keras.layers.Dense(10),
        ],
        mode=mode,
        name=f"mlp_{mode}",
    )


def run_one(dataset, data, mode, args, epochs):
    import keras
    import numpy as np

    (x_train, y_train), (x_test, y_test) = data
    model = build_model(mode, args.width, args.seed)
    model.compile(
        optimizer=keras.optimizers.Adam(args.learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    timer = EpochTimer()
    start = time.perf_counter()
    history = model.fit(
        x_train,
        y_train,
        batch_size=args.batch_size,
        epochs=epochs,
        callbacks=[timer.callback],
        verbose=args.verbose,
    )
    fit_s = time.perf_counter() - start
    metrics = model.evaluate(
        x_test, y_test, batch_size=args.batch_size, verbose=0, return_dict=True
    )
    # Accuracy from the predictions themselves, independent of the metrics
    # machinery; the two must agree.
    logits = model.predict(x_test, batch_size=args.batch_size, verbose=0)
    accuracy = float(np.mean(np.argmax(logits, axis=-1) == y_test))
    if abs(accuracy - float(metrics["accuracy"])) > 1e-4:
        print(
            f"WARNING: {dataset}/{mode}: evaluate() accuracy "
            f"{metrics['accuracy']:.4f} != predict() accuracy {accuracy:.4f}",
            file=sys.stderr,
        )
    later = timer.times[1:]
    return {
        "backend": keras.backend.backend(),
        "dataset": dataset,
        "mode": mode,
        "epochs": epochs,
        "width": args.width,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "seed": args.seed,
        "train_samples": int(len(x_train)),
        "test_samples": int(len(x_test)),
        "test_accuracy": accuracy,
        "evaluate_accuracy": float(metrics["accuracy"]),
        "test_loss": float(metrics["loss"]),
        "train_accuracy_last_epoch": float(history.history["accuracy"][-1]),
        "first_epoch_s": timer.times[0],
        "later_epoch_s": statistics.mean(later) if later else None,
        "epoch_s": timer.times,
        "fit_s": fit_s,
    }


def format_table(rows):
    header = [title for _, title, _ in COLUMNS]
    body = [
        [
            "-" if row.get(key) is None else fmt.format(row[key])
            for key, _, fmt in COLUMNS
        ]
        for row in rows
    ]
    widths = [max(len(cell) for cell in column) for column in zip(header, *body)]

    def line(cells):
        return "  ".join(cell.ljust(w) for cell, w in zip(cells, widths)).rstrip()

    lines = [line(header), line("-" * w for w in widths)]
    lines += [line(cells) for cells in body]
    return "\n".join(lines)


def summarize(paths):
    rows, totals = [], []
    for path in paths:
        with open(path) as f:
            report = json.load(f)
        rows.extend(report["results"])
        totals.append(f"{report['backend']} {report['total_s']:.0f} s")
    print(format_table(rows))
    print("\nwall time per backend (data loading and training): " + ", ".join(totals))
    return rows


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--datasets",
        nargs="+",
        default=list(DEFAULT_DATASETS),
        help="data sets to run (digits, fashion_mnist); default: both",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="epochs for every data set; default: "
        + ", ".join(f"{k} {v}" for k, v in DEFAULT_EPOCHS.items()),
    )
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--fashion-mnist-dir",
        default=None,
        help="directory of the Fashion-MNIST IDX files "
        "(default: see keras_svp.datasets.load_fashion_mnist)",
    )
    parser.add_argument("--json", metavar="PATH", help="write the results here")
    parser.add_argument("--verbose", type=int, default=0, help="Keras fit verbosity")
    parser.add_argument(
        "--summarize",
        nargs="+",
        metavar="JSON",
        help="print one table from result files written by --json, and exit",
    )
    args = parser.parse_args(argv)
    if args.epochs is not None and args.epochs < 1:
        parser.error("--epochs must be at least 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.summarize:
        summarize(args.summarize)
        return 0

    import keras

    from keras_svp import datasets

    backend = keras.backend.backend()
    print(f"KERAS_BACKEND={backend}, keras {keras.__version__}", flush=True)
    results = []
    start = time.perf_counter()
    for name in args.datasets:
        key = name.strip().lower().replace("-", "_")
        kwargs = {}
        if key == "fashion_mnist" and args.fashion_mnist_dir:
            kwargs["path"] = args.fashion_mnist_dir
        if key == "digits":
            kwargs["seed"] = args.seed
        data = datasets.load(key, **kwargs)
        epochs = args.epochs or DEFAULT_EPOCHS.get(key, 5)
        for mode in args.modes:
            result = run_one(key, data, mode, args, epochs)
            results.append(result)
            print(
                f"{backend} {key} {mode}: test acc {result['test_accuracy']:.4f}, "
                f"{result['fit_s']:.1f} s for {epochs} epochs",
                flush=True,
            )
    total_s = time.perf_counter() - start
    print()
    print(format_table(results))
    print(f"\n{backend}: {total_s:.1f} s in all (data loading included)")
    if args.json:
        directory = os.path.dirname(args.json)
        if directory:
            os.makedirs(directory, exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(
                {
                    "backend": backend,
                    "keras_version": keras.__version__,
                    "python": platform.python_version(),
                    "cpu_count": os.cpu_count(),
                    "env": {
                        k: os.environ[k]
                        for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")
                        if k in os.environ
                    },
                    "total_s": total_s,
                    "argv": sys.argv[1:] if argv is None else list(argv),
                    "results": results,
                },
                f,
                indent=2,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
