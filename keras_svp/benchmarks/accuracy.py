"""Test accuracy of SVP against backprop, and the ablation of SVP's options.

- `accuracy_runs`: one architecture (`"mlp"`: 3 x 1024 `SVPDense`, the
  paper's MLP; `"mlp-dense-head"`: the same network with its last hidden
  layer in the output head; `"cnn"`: `models.build_cnn`, three `SVPConv2D` units;
  `"cnn-conv-head"`: the same network with its last convolution in the
  output head; `"cnn-wide"` and `"cnn-wide-conv-head"`: the same two at
  twice the filters) trained in each mode with each seed, same epochs,
  optimizer and data for all.
- `ablation_runs`: SVP with one open choice of the method changed at a
  time (alignment, projection dropout, projection scale, projection size,
  input alignment), on the MLP (which settled the package's defaults) or
  on either CNN.
- `summarize_accuracy`: mean and standard deviation of the test accuracy
  over seeds, one row per configuration.

Every run returns a flat dict (a *row*) that `report.accuracy_table` and
`json` understand. A quick end-to-end check of the harness (numbers mean
nothing) is `train_limit=2000, epochs=1, seeds=(0,)`.
"""

import inspect
import math
import numbers
import statistics
import time

import keras
import numpy as np

import keras_svp
from keras_svp import datasets
from keras_svp.benchmarks import models

# The MLP's variants: `models.build_mlp` options per architecture.
MLP_OPTIONS = {
    "mlp": {},
    "mlp-dense-head": {"head_layers": 1},
}
# The small CNN's variants: `models.build_cnn` options per architecture.
CNN_OPTIONS = {
    "cnn": {},
    "cnn-conv-head": {"head_convolutions": 1},
    "cnn-wide": {"width_multiplier": 2},
    "cnn-wide-conv-head": {"width_multiplier": 2, "head_convolutions": 1},
}
ARCHITECTURES = (*MLP_OPTIONS, *CNN_OPTIONS)
MODES = ("svp", "bp")
SCHEDULES = ("cosine", "constant")

# The paper's MLP (Table 1): three hidden layers of 1024 units.
MLP_DEPTH = 3
MLP_WIDTH = 1024

# The fields `train_and_evaluate` measures.
RESULT_KEYS = ("test_accuracy", "train_accuracy", "train_seconds")
# Keys of a row that vary within one configuration (not part of its identity).
PER_RUN_KEYS = ("seed",) + RESULT_KEYS

# The knobs the ablation varies, on the units and on the model.
UNIT_KNOBS = (
    "alignment_weight",
    "projection_dropout",
    "projection_scale",
    "projection_dim",
    "alignment_target",
    "projection_pool_size",
)
MODEL_KNOBS = ("input_alignment", "head_from_projection")
# Knobs only a unit with a feature map takes: variants that change them are
# left out of a dense network's ablation.
FEATURE_MAP_KNOBS = ("projection_pool_size",)

# Each variant changes one knob; a variant whose settings equal the package
# defaults is the same model as "default" and is skipped (see
# `ablation_variants`).
ABLATION_VARIANTS = (
    ("default", {}),
    ("alignment_weight=0", {"alignment_weight": 0.0}),
    # At weight 1 the alignment loss is about a hundredth of the prediction
    # loss (compare the `<unit>_alignment_loss` and `_prediction_loss` logs
    # of `fit`), so only much larger weights show whether more alignment helps.
    ("alignment_weight=10", {"alignment_weight": 10.0}),
    ("alignment_weight=100", {"alignment_weight": 100.0}),
    ("projection_dropout=0", {"projection_dropout": 0.0}),
    ("projection_dropout=0.1", {"projection_dropout": 0.1}),
    ("projection_scale=fan_in", {"projection_scale": "fan_in"}),
    ("projection_scale=jl", {"projection_scale": "jl"}),
    ("projection_dim=10", {"projection_dim": 10}),
    ("projection_dim=32", {"projection_dim": 32}),
    ("projection_dim=128", {"projection_dim": 128}),
    ("input_alignment=False", {"input_alignment": False}),
    ("input_alignment=True", {"input_alignment": True}),
    ("head_from_projection=False", {"head_from_projection": False}),
    ("alignment_target=activation", {"alignment_target": "activation"}),
    ("projection_pool_size=2", {"projection_pool_size": 2}),
)


def package_defaults(num_classes=10):
    """The package's current defaults of the ablated knobs.

    Read from the signatures of `SVPUnit` and `SVPModel`, so the ablation
    follows the package when its defaults change.

    Args:
        num_classes: number of classes; a `projection_dim` default of `None`
            means the number of classes.

    Returns:
        A dict from every name in `UNIT_KNOBS` and `MODEL_KNOBS` to its
        default value.
    """
    unit = inspect.signature(keras_svp.SVPUnit.__init__).parameters
    model = inspect.signature(keras_svp.SVPModel.__init__).parameters
    found = {name: unit[name].default for name in UNIT_KNOBS}
    found.update({name: model[name].default for name in MODEL_KNOBS})
    if found["projection_dim"] is None:
        found["projection_dim"] = num_classes
    return found


def _changes_feature_map(change):
    """Whether a variant's change sets a knob of convolutional units only."""
    return bool(set(change) & set(FEATURE_MAP_KNOBS))


def ablation_variants(num_classes=10, architecture="mlp"):
    """The ablation's variants, without those identical to the defaults.

    Args:
        num_classes: number of classes (the default projection size).
        architecture: the network the variants are for; the MLPs leave out
            the variants of knobs only convolutional units take
            (`FEATURE_MAP_KNOBS`).

    Returns:
        A list of `(name, settings)`: `settings` holds every knob of
        `package_defaults` with the variant's change applied. `"default"`
        comes first.
    """
    _check_architecture(architecture)
    defaults = package_defaults(num_classes)
    variants = []
    for name, change in ABLATION_VARIANTS:
        settings = {**defaults, **change}
        if name != "default" and settings == defaults:
            continue
        if architecture in MLP_OPTIONS and _changes_feature_map(change):
            continue
        variants.append((name, settings))
    return variants


def load_data(dataset="fashion_mnist", train_limit=None, seed=0):
    """Loads a data set, optionally keeping a random subset of its training data.

    Args:
        dataset: `"fashion_mnist"` or `"digits"` (see `keras_svp.datasets`).
        train_limit: keep this many training examples (a fixed random subset
            that depends on `seed` only); `None` keeps all.
        seed: seed of the subset.

    Returns:
        `(x_train, y_train), (x_test, y_test)`, NumPy arrays.
    """
    (x_train, y_train), (x_test, y_test) = datasets.load(dataset)
    if train_limit is not None and train_limit < len(x_train):
        if train_limit < 1:
            raise ValueError(f"train_limit must be >= 1, got {train_limit!r}.")
        keep = np.random.default_rng(seed).permutation(len(x_train))[:train_limit]
        keep.sort()
        x_train, y_train = x_train[keep], y_train[keep]
    return (x_train, y_train), (x_test, y_test)


def build_model(
    architecture,
    mode,
    num_classes=10,
    seed=0,
    learning_rate=1e-3,
    input_alignment=False,
    **unit_options,
):
    """Builds and compiles one benchmark model.

    The model comes from `models.build_mlp` (3 x 1024, with `Flatten`) with
    the architecture's `MLP_OPTIONS` (`"-dense-head"`: `head_layers=1`) or
    `models.build_cnn` with its `CNN_OPTIONS` (`"-wide"`:
    `width_multiplier=2`; `"-conv-head"`: `head_convolutions=1`).

    Args:
        architecture: one of `ARCHITECTURES`.
        mode: `"svp"` or `"bp"`.
        num_classes: number of classes.
        seed: seed of the weights, projections and dropout masks.
        learning_rate: Adam's learning rate.
        input_alignment: the `SVPSequential` option of that name.
        **unit_options: passed to every SVP unit; `head_from_projection`
            goes to the model.

    Returns:
        A compiled, unbuilt `SVPSequential`.
    """
    _check_architecture(architecture)
    options = {
        "num_classes": num_classes,
        "seed": seed,
        "input_alignment": bool(input_alignment),
        "learning_rate": learning_rate,
        **unit_options,
    }
    if architecture in MLP_OPTIONS:
        return models.build_mlp(
            MLP_DEPTH,
            MLP_WIDTH,
            mode,
            flatten=True,
            **MLP_OPTIONS[architecture],
            **options,
        )
    return models.build_cnn(mode, **CNN_OPTIONS[architecture], **options)


def train_and_evaluate(model, data, epochs, batch_size=128):
    """Trains `model` with `fit` and measures its test accuracy.

    Args:
        model: a compiled model.
        data: `(x_train, y_train), (x_test, y_test)`.
        epochs: training epochs.
        batch_size: training batch size.

    Returns:
        A dict with `test_accuracy` (fraction in [0, 1], from `predict`),
        `train_accuracy` (the last epoch's running training accuracy, or
        `None`) and `train_seconds` (wall time of `fit`, compilation
        included).
    """
    (x_train, y_train), (x_test, y_test) = data
    start = time.perf_counter()
    history = model.fit(
        x_train,
        y_train,
        epochs=epochs,
        batch_size=batch_size,
        shuffle=True,
        verbose=0,
    )
    train_seconds = time.perf_counter() - start
    logits = model.predict(x_test, batch_size=1024, verbose=0)
    predicted = np.argmax(np.asarray(logits), axis=-1)
    test_accuracy = float(np.mean(predicted == np.asarray(y_test)))
    train_accuracy = history.history.get("accuracy")
    return {
        "test_accuracy": test_accuracy,
        "train_accuracy": float(train_accuracy[-1]) if train_accuracy else None,
        "train_seconds": train_seconds,
    }


def _num_classes(data):
    (_, y_train), (_, y_test) = data
    return int(max(np.max(y_train), np.max(y_test))) + 1


def _run(
    benchmark,
    architecture,
    mode,
    seed,
    data,
    dataset,
    epochs,
    batch_size,
    learning_rate,
    schedule,
    input_alignment,
    unit_options,
    extra=None,
    reuse=(),
):
    row = {
        "benchmark": benchmark,
        "backend": keras.backend.backend(),
        "architecture": architecture,
        "dataset": dataset,
        **(extra or {}),
        "mode": mode,
        "seed": seed,
        "epochs": epochs,
        "train_size": len(data[0][0]),
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "schedule": schedule,
    }
    options = {"input_alignment": bool(input_alignment), **unit_options}
    num_classes = _num_classes(data)
    done = _same_run({**row, **options}, reuse, num_classes)
    if done is not None:
        result = {key: done[key] for key in RESULT_KEYS}
    else:
        model = build_model(
            architecture,
            mode,
            num_classes=num_classes,
            seed=seed,
            learning_rate=learning_rate_over(
                learning_rate,
                schedule,
                epochs * math.ceil(len(data[0][0]) / batch_size),
            ),
            input_alignment=input_alignment,
            **unit_options,
        )
        result = train_and_evaluate(model, data, epochs, batch_size)
        del model
        keras.backend.clear_session()
    return {**row, **result, **options}, done


def _run_identity(row, num_classes):
    """What makes two rows the same run: everything but results and labels,
    with the ablated knobs the row leaves out set to the package defaults."""
    identity = {
        key: value
        for key, value in row.items()
        if key not in RESULT_KEYS + ("benchmark", "variant")
    }
    for knob, default in package_defaults(num_classes).items():
        if identity.get(knob) is None:
            identity[knob] = default
    return identity


def _same_run(planned, rows, num_classes):
    """The row among `rows` that trained exactly the `planned` run, or None."""
    wanted = _run_identity(planned, num_classes)
    for row in rows:
        if _run_identity(row, num_classes) == wanted:
            return row
    return None


def _check_architecture(architecture):
    if architecture not in ARCHITECTURES:
        raise ValueError(
            f"architecture must be one of {ARCHITECTURES}, got {architecture!r}."
        )


def _check_epochs(epochs):
    if not isinstance(epochs, numbers.Integral) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}.")


def learning_rate_over(learning_rate, schedule, steps):
    """Adam's learning rate for a run of `steps` training steps.

    Args:
        learning_rate: the initial (or constant) rate.
        schedule: `"cosine"` (decay to 0 over `steps`) or `"constant"`.
        steps: the run's number of training steps.

    Returns:
        A float or a `keras.optimizers.schedules.CosineDecay`.

    Example:

        >>> float(learning_rate_over(1e-3, "cosine", 100)(100))
        0.0
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}.")
    if schedule == "constant":
        return learning_rate
    return keras.optimizers.schedules.CosineDecay(learning_rate, steps)


def accuracy_runs(
    architecture,
    modes=MODES,
    seeds=(0, 1, 2),
    epochs=3,
    dataset="fashion_mnist",
    batch_size=128,
    learning_rate=1e-3,
    schedule="cosine",
    train_limit=None,
    progress=None,
    input_alignment=False,
    **unit_options,
):
    """Trains one architecture in each mode with each seed; one row per run.

    Every run uses the same data, epochs, batch size and Adam learning rate
    and schedule; the seed fixes the weights, the projections and the data
    order.

    Args:
        architecture: `"mlp"` (3 x 1024 `SVPDense` after a `Flatten`, the
            paper's MLP), `"mlp-dense-head"` (the same with its last hidden
            layer in the output head: `head_layers=1`), `"cnn"`
            (`models.build_cnn`), `"cnn-conv-head"`
            (`models.build_cnn(head_convolutions=1)`), `"cnn-wide"`
            (`models.build_cnn(width_multiplier=2)`: 64, 128 and 256
            filters) or `"cnn-wide-conv-head"` (both).
        modes: modes to train, from `"svp"` and `"bp"`.
        seeds: seeds, one run per mode and seed.
        epochs: training epochs.
        dataset: `"fashion_mnist"` or `"digits"`.
        batch_size: training batch size.
        learning_rate: Adam's learning rate.
        schedule: `"cosine"` (decay to 0 over the run, the default) or
            `"constant"`.
        train_limit: keep this many training examples (a fixed random
            subset, the same for every run); `None` keeps all.
        progress: optional `callable(str)`, told about every finished run.
        input_alignment: the `SVPSequential` option (first unit aligned
            with a projection of the input).
        **unit_options: passed to every SVP unit (`projection_dropout`,
            `projection_scale`, `projection_dim`, `alignment_weight`, ...);
            `head_from_projection` goes to the model.

    Returns:
        A list of dicts, one per `(mode, seed)`, with `benchmark`
        (`"accuracy"`), `backend`, `architecture`, `dataset`, `mode`,
        `seed`, `epochs`, `train_size`, `batch_size`, `learning_rate`,
        `schedule`, `test_accuracy` (in [0, 1]), `train_accuracy`, `train_seconds`,
        `input_alignment` and the `unit_options`.
    """
    _check_epochs(epochs)
    for mode in modes:
        if mode not in MODES:
            raise ValueError(f"modes must be from {MODES}, got {mode!r}.")
    _check_architecture(architecture)
    data = load_data(dataset, train_limit)
    rows = []
    for seed in seeds:
        for mode in modes:
            row, _ = _run(
                "accuracy",
                architecture,
                mode,
                int(seed),
                data,
                dataset,
                epochs,
                batch_size,
                learning_rate,
                schedule,
                input_alignment,
                unit_options,
            )
            rows.append(row)
            if progress is not None:
                progress(
                    f"accuracy {row['backend']} {architecture} {mode} seed {seed}: "
                    f"{100 * row['test_accuracy']:.2f}% "
                    f"({row['train_seconds']:.0f} s)"
                )
    return rows


def ablation_runs(
    epochs,
    seeds,
    dataset="fashion_mnist",
    train_limit=None,
    progress=None,
    batch_size=128,
    learning_rate=1e-3,
    variants=None,
    schedule="cosine",
    reuse=(),
    architecture="mlp",
):
    """SVP with one option changed at a time, by default on the MLP (3 x 1024).

    The variants (`ablation_variants`): the package defaults; no alignment
    (`alignment_weight=0`) and much more of it (10 and 100); projection dropout
    0 and 0.1; projection scale `"fan_in"` and `"jl"`; projection size 10, 32
    and 128; `input_alignment` False and True; alignment of the reduced
    activations instead of the projections (`alignment_target="activation"`);
    the head started at random rather than at the last unit's projection
    (`head_from_projection=False`); and, on a CNN, the projection of a 2x2
    average-pooled map (`projection_pool_size=2`, the memory saver for wide
    maps). A variant identical to the defaults is left out, since `"default"`
    already measures it.

    Args:
        epochs: training epochs.
        seeds: seeds; every variant runs with every seed.
        dataset: `"fashion_mnist"` or `"digits"`.
        train_limit: keep this many training examples; `None` keeps all.
        progress: optional `callable(str)`, told about every finished run.
        batch_size: training batch size.
        learning_rate: Adam's learning rate.
        variants: optional subset of variant names to run.
        schedule: `"cosine"` or `"constant"` (see `accuracy_runs`).
        reuse: rows of runs done already (e.g. `accuracy_runs`' MLP rows).
            A variant whose run is among them (same model, options, seed,
            data and budget; usually `"default"`) takes that row's results
            instead of training the same model again.
        architecture: the network, one of `ARCHITECTURES` (see
            `accuracy_runs`).

    Returns:
        A list of dicts as `accuracy_runs` returns, with `benchmark`
        `"ablation"`, `mode` `"svp"`, the `architecture`, a `variant`
        name, and the resolved value of every ablated knob
        (`alignment_weight`, `projection_dropout`, `projection_scale`,
        `projection_dim`, `alignment_target`, `projection_pool_size`,
        `input_alignment`, `head_from_projection`).
    """
    _check_epochs(epochs)
    _check_architecture(architecture)
    data = load_data(dataset, train_limit)
    chosen = ablation_variants(_num_classes(data), architecture)
    if variants is not None:
        known = {name for name, _ in chosen}
        unknown = set(variants) - known
        convolutional = {
            name
            for name, change in ABLATION_VARIANTS
            if name in unknown and _changes_feature_map(change)
        }
        if convolutional:
            raise ValueError(
                f"Ablation variants {sorted(convolutional)} change a knob of "
                f"convolutional units only; the {architecture!r} network has "
                "none. Leave them out, or ablate a CNN (an architecture "
                f"from {list(CNN_OPTIONS)})."
            )
        if unknown:
            raise ValueError(
                f"Unknown ablation variants {sorted(unknown)}; known: {sorted(known)}."
            )
        chosen = [(name, settings) for name, settings in chosen if name in variants]
    rows = []
    for seed in seeds:
        for name, settings in chosen:
            settings = dict(settings)
            input_alignment = settings.pop("input_alignment")
            row, done = _run(
                "ablation",
                architecture,
                "svp",
                int(seed),
                data,
                dataset,
                epochs,
                batch_size,
                learning_rate,
                schedule,
                input_alignment,
                settings,
                extra={"variant": name},
                reuse=reuse,
            )
            rows.append(row)
            if progress is not None:
                how = f"{row['train_seconds']:.0f} s"
                if done is not None:
                    how = f"the {done['benchmark']} run of the same model and seed"
                progress(
                    f"ablation {row['backend']} {name} seed {seed}: "
                    f"{100 * row['test_accuracy']:.2f}% ({how})"
                )
    return rows


def summarize_accuracy(rows):
    """Mean and standard deviation of the test accuracy per configuration.

    Rows belong to one configuration when they agree on every key except
    the per-run ones (`seed`, `test_accuracy`, `train_accuracy`,
    `train_seconds`): architecture, mode, backend, data, budget and options.

    Args:
        rows: rows from `accuracy_runs` or `ablation_runs` (or any dicts
            with a `test_accuracy`).

    Returns:
        One dict per configuration, in order of first appearance: the
        configuration's keys, then `n` (number of runs), `seeds`,
        `test_accuracy_mean`, `test_accuracy_std` (sample standard
        deviation, 0 for a single run) and `train_seconds_mean` (`None` if
        no row has it).
    """
    groups = {}
    for row in rows:
        config = {k: v for k, v in row.items() if k not in PER_RUN_KEYS}
        key = tuple(sorted((k, repr(v)) for k, v in config.items()))
        groups.setdefault(key, (config, []))[1].append(row)
    summary = []
    for config, members in groups.values():
        accuracies = [float(r["test_accuracy"]) for r in members]
        seconds = [
            float(r["train_seconds"])
            for r in members
            if r.get("train_seconds") is not None
        ]
        summary.append(
            {
                **config,
                "n": len(members),
                "seeds": [r.get("seed") for r in members],
                "test_accuracy_mean": statistics.fmean(accuracies),
                "test_accuracy_std": (
                    statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
                ),
                "train_seconds_mean": statistics.fmean(seconds) if seconds else None,
            }
        )
    return summary


def format_summary(summary, label_keys=("architecture", "mode")):
    """A Markdown table of `summarize_accuracy`'s output.

    Args:
        summary: the list `summarize_accuracy` returns.
        label_keys: keys whose values name a row of the table (e.g.
            `("variant",)` for the ablation).

    Returns:
        The table as a string: label, test accuracy in % (mean ± std), n,
        and mean training seconds per run.
    """
    lines = [
        "| " + " ".join(label_keys) + " | test accuracy % | n | train s/run |",
        "| --- | --- | --- | --- |",
    ]
    for entry in summary:
        label = " ".join(str(entry.get(k)) for k in label_keys)
        seconds = entry["train_seconds_mean"]
        lines.append(
            f"| {label} | {100 * entry['test_accuracy_mean']:.2f} ± "
            f"{100 * entry['test_accuracy_std']:.2f} | {entry['n']} | "
            f"{'–' if seconds is None else f'{seconds:.0f}'} |"
        )
    return "\n".join(lines)
