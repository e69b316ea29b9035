"""Per-unit diagnostics of an SVP model, as numbers and as plots.

Every SVP unit has a fixed projection `z = reduce(h) @ R` that serves as
its local classifier during training. These functions run a trained (or
untrained) model at inference on a validation set and report, per unit:

- `unit_report`: the local accuracy of the unit's projection head
  (`argmax z == y`), its local prediction loss and its alignment loss with
  the previous unit, as the training step computes them;
- `unit_projections`: the projected activations `z` themselves;
- `linear_probes`: the test accuracy of a linear classifier trained on
  each unit's frozen activations, which shows how much each unit adds to
  the one before, whatever its fixed projection can read out;
- `pca_2d` / `plot_unit_embedding`: a 2-D PCA embedding of one unit's `z`,
  colored by label; `plot_unit_report`: local accuracy and losses by depth.

They work on any built `SVPModel`, whatever its `mode` (a `"bp"` model has
the same projections, untrained as classifiers).
"""

import keras
import numpy as np
from keras import ops

from keras_svp import losses
from keras_svp.layers.unit import SVPUnit
from keras_svp.layers.unit import call_layer


def _svp_units(model):
    units = [layer for layer in model.layer_chain() if isinstance(layer, SVPUnit)]
    if not units or not model.built:
        raise ValueError(
            "Diagnostics need a built SVP model with at least one SVP unit: "
            "call the model on data (or fit it) first."
        )
    return units


def _numpy(x):
    return ops.convert_to_numpy(ops.cast(x, "float32"))


def _unit_batches(model, x, batch_size):
    """Yields, per batch, `[(unit, z, features, previous_features, h), ...]`.

    The arrays are NumPy (float32): diagnostics take no gradients. `h`, the
    unit's activation, stays a backend tensor, for callers that need it.
    """
    x = np.asarray(x)
    for start in range(0, len(x), batch_size):
        h = ops.convert_to_tensor(x[start : start + batch_size])
        previous = None
        if model.input_projection is not None:
            first = _svp_units(model)[0]
            previous = _numpy(
                model.input_projection(h, training=False)
                if first.alignment_target == "projection"
                else model.input_projection.features(h)
            )
        rows = []
        for layer in model.layer_chain():
            h = call_layer(layer, h, False)
            if isinstance(layer, SVPUnit):
                z = layer.project(h, training=False)
                features = _numpy(layer.alignment_features(h, z))
                rows.append((layer, _numpy(z), features, previous, h))
                previous = features
            # The head needs not run: diagnostics are about the units.
        yield rows


def _per_unit(model, x, batch_size, value):
    """`{unit name: value(unit, z, h) of every batch, concatenated}`."""
    names = [unit.name for unit in _svp_units(model)]
    parts = {name: [] for name in names}
    for rows in _unit_batches(model, x, batch_size):
        for unit, z, _, _, h in rows:
            parts[unit.name].append(value(unit, z, h))
    return {name: np.concatenate(parts[name]) for name in names}


def unit_projections(model, x, batch_size=256):
    """Every SVP unit's projected activations `z` at inference.

    Args:
        model: a built `SVPModel` / `SVPSequential`.
        x: inputs, a NumPy array (or anything `np.asarray` takes).
        batch_size: samples per forward pass.

    Returns:
        A dict `{unit name: float32 array (N, projection_dim)}`, in the
        order of the units.

    Example:

        >>> import keras, numpy as np
        >>> from keras_svp import SVPDense, SVPSequential
        >>> model = SVPSequential(
        ...     [SVPDense(8, name="a"), SVPDense(8, name="b"), keras.layers.Dense(3)]
        ... )
        >>> _ = model(np.zeros((1, 4)))
        >>> {k: v.shape for k, v in unit_projections(model, np.ones((5, 4))).items()}
        {'a': (5, 3), 'b': (5, 3)}
    """
    return _per_unit(model, x, batch_size, lambda unit, z, h: z)


def unit_report(model, x, y, batch_size=256):
    """Local accuracy, prediction loss and alignment loss of every unit.

    The losses are those of the training step at inference (no projection
    dropout): the cross-entropy of the unit's projection `z` against the
    labels, and the alignment loss between its features and the previous
    unit's (0 for a first unit without `input_alignment`). Both are means
    over the batches, weighted by batch size; the alignment loss compares
    the geometry within a batch, so it depends on `batch_size` (use the
    training batch size).

    Args:
        model: a built `SVPModel` / `SVPSequential`.
        x: validation inputs.
        y: integer labels, shape `(N,)`.
        batch_size: samples per batch.

    Returns:
        A list of dicts, one per unit in order, with keys `name`, `index`,
        `local_accuracy`, `prediction_loss` and `alignment_loss` (floats).

    Example:

        >>> import keras, numpy as np
        >>> from keras_svp import SVPDense, SVPSequential
        >>> model = SVPSequential([SVPDense(8), SVPDense(8), keras.layers.Dense(3)])
        >>> _ = model(np.zeros((1, 4)))
        >>> x, y = np.random.rand(6, 4), np.array([0, 1, 2, 0, 1, 2])
        >>> rows = unit_report(model, x, y)
        >>> [sorted(row) for row in rows][0]
        ['alignment_loss', 'index', 'local_accuracy', 'name', 'prediction_loss']
        >>> rows[0]["alignment_loss"]
        0.0
    """
    y = np.asarray(y).reshape(-1)
    if len(y) != len(x):
        raise ValueError(f"x and y differ in length: {len(x)} and {len(y)}.")
    units = _svp_units(model)
    sums = np.zeros((len(units), 3))
    for start, rows in zip(
        range(0, len(y), batch_size), _unit_batches(model, x, batch_size)
    ):
        labels = y[start : start + batch_size]
        n = len(labels)
        for index, (unit, z, features, previous, _) in enumerate(rows):
            sums[index, 0] += np.sum(np.argmax(z, axis=-1) == labels)
            sums[index, 1] += n * float(losses.local_prediction_loss(labels, z))
            if previous is not None and unit.alignment_weight > 0:
                alignment = losses.alignment_loss(features, previous)
                sums[index, 2] += n * float(alignment)
    means = sums / len(y)
    return [
        {
            "name": unit.name,
            "index": index,
            "local_accuracy": float(means[index, 0]),
            "prediction_loss": float(means[index, 1]),
            "alignment_loss": float(means[index, 2]),
        }
        for index, unit in enumerate(units)
    ]


def unit_features(model, x, batch_size=256):
    """Every SVP unit's reduced activation at inference: what its projection reads.

    Args:
        model: a built `SVPModel` / `SVPSequential`.
        x: inputs, a NumPy array (or anything `np.asarray` takes).
        batch_size: samples per forward pass.

    Returns:
        A dict `{unit name: float32 array (N, D)}`, in the order of the
        units: `reduce(h)` of each unit's activation `h` (flattened, pooled
        or one token, as the unit's projection takes it).

    Example:

        >>> import keras, numpy as np
        >>> from keras_svp import SVPDense, SVPSequential
        >>> model = SVPSequential(
        ...     [SVPDense(8, name="a"), SVPDense(6, name="b"), keras.layers.Dense(3)]
        ... )
        >>> _ = model(np.zeros((1, 4)))
        >>> {k: v.shape for k, v in unit_features(model, np.ones((5, 4))).items()}
        {'a': (5, 8), 'b': (5, 6)}
    """
    return _per_unit(
        model, x, batch_size, lambda unit, z, h: _numpy(unit.projection.features(h))
    )


def linear_probes(
    model, train, test, epochs=5, batch_size=128, learning_rate=1e-3, seed=0
):
    """Test accuracy of a linear classifier on each unit's frozen activations.

    During training a unit's local classifier is its fixed random
    projection. A linear probe, a `Dense(num_classes)` trained with Adam on
    the unit's activations (`unit_features`) while the model stays frozen,
    measures how well the best linear read-out separates the classes
    there. Along the chain it shows how much each unit adds to the one
    before (in backprop the later layers usually add more than in local
    learning). The model is not changed.

    Args:
        model: a built `SVPModel` / `SVPSequential`, trained or not.
        train: `(x, y)` to train the probes on (integer labels).
        test: `(x, y)` to measure them on.
        epochs: the probes' training epochs.
        batch_size: their batch size (and the forward passes').
        learning_rate: their Adam learning rate.
        seed: seeds their initial weights.

    Returns:
        A list of dicts, one per unit in order, with keys `name`, `index`,
        `features` (the width `D` probed) and `probe_accuracy` (in [0, 1]).

    Example:

        >>> import keras, numpy as np
        >>> from keras_svp import SVPDense, SVPSequential
        >>> model = SVPSequential([SVPDense(8), SVPDense(8), keras.layers.Dense(2)])
        >>> _ = model(np.zeros((1, 4)))
        >>> x, y = np.random.rand(20, 4), np.arange(20) % 2
        >>> rows = linear_probes(model, (x, y), (x, y), epochs=1)
        >>> [sorted(row) for row in rows][0]
        ['features', 'index', 'name', 'probe_accuracy']
    """
    (x_train, y_train), (x_test, y_test) = train, test
    y_train = np.asarray(y_train).reshape(-1)
    y_test = np.asarray(y_test).reshape(-1)
    for name, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        if len(x) != len(y):
            raise ValueError(
                f"The {name} inputs and labels differ in length: {len(x)} and {len(y)}."
            )
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    features_train = unit_features(model, x_train, batch_size)
    features_test = unit_features(model, x_test, batch_size)
    rows = []
    for index, name in enumerate(features_train):
        width = features_train[name].shape[1]
        probe = keras.Sequential(
            [
                keras.Input((width,)),
                keras.layers.Dense(
                    num_classes,
                    kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
                ),
            ]
        )
        probe.compile(
            keras.optimizers.Adam(learning_rate),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        probe.fit(
            features_train[name],
            y_train,
            epochs=epochs,
            batch_size=batch_size,
            verbose=0,
        )
        logits = probe.predict(features_test[name], batch_size=1024, verbose=0)
        accuracy = float(np.mean(np.argmax(logits, axis=-1) == y_test))
        rows.append(
            {
                "name": name,
                "index": index,
                "features": int(width),
                "probe_accuracy": accuracy,
            }
        )
    return rows


def pca_2d(z):
    """The first two principal components of `z`, with NumPy's SVD.

    Args:
        z: array `(N, D)` with `N >= 2`.

    Returns:
        `(coordinates, explained)`: the `(N, 2)` projection of the centered
        `z` on its two leading principal axes, and the fraction of the
        variance each axis explains (two floats; 0 for a constant `z`).

    Example:

        >>> z = np.array([[0.0, 0.0, 1.0], [2.0, 0.0, 1.0], [4.0, 1.0, 1.0]])
        >>> coordinates, explained = pca_2d(z)
        >>> coordinates.shape, round(float(explained.sum()), 6)
        ((3, 2), 1.0)
    """
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or len(z) < 2:
        raise ValueError(f"pca_2d needs an (N, D) array with N >= 2, got {z.shape}.")
    centered = z - z.mean(axis=0)
    _, singular, vt = np.linalg.svd(centered, full_matrices=False)
    axes = np.zeros((2, z.shape[1]))
    axes[: min(2, len(vt))] = vt[:2]
    coordinates = centered @ axes.T
    variance = singular**2
    total = variance.sum()
    explained = np.zeros(2)
    if total > 0:
        top = variance[:2] / total
        explained[: len(top)] = top
    return coordinates, explained


def plot_unit_embedding(model, x, y, unit=-1, ax=None, batch_size=256):
    """Scatter plot of a 2-D PCA embedding of one unit's projections `z`.

    Args:
        model: a built SVP model.
        x: inputs.
        y: integer labels (points are colored by label).
        unit: index (negative counts from the last) or name of the unit.
        ax: a matplotlib `Axes` to draw on; default: a new figure.
        batch_size: samples per forward pass.

    Returns:
        The matplotlib `Axes`.

    Example:

        >>> import keras, numpy as np
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> from keras_svp import SVPDense, SVPSequential
        >>> model = SVPSequential([SVPDense(8), SVPDense(8), keras.layers.Dense(3)])
        >>> _ = model(np.zeros((1, 4)))
        >>> x, y = np.random.rand(6, 4), np.array([0, 1, 2, 0, 1, 2])
        >>> ax = plot_unit_embedding(model, x, y, unit=0)
        >>> len(ax.collections) > 0
        True
    """
    import matplotlib.pyplot as plt

    projections = unit_projections(model, x, batch_size)
    names = list(projections)
    name = unit if isinstance(unit, str) else names[unit]
    if name not in projections:
        raise ValueError(f"No SVP unit named {name!r}; the units are {names}.")
    coordinates, explained = pca_2d(projections[name])
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4.5))
    points = ax.scatter(
        coordinates[:, 0], coordinates[:, 1], c=np.asarray(y), cmap="tab10", s=6
    )
    ax.legend(*points.legend_elements(), title="label", fontsize="small")
    ax.set_xlabel(f"PC 1 ({explained[0]:.0%} of variance)")
    ax.set_ylabel(f"PC 2 ({explained[1]:.0%} of variance)")
    ax.set_title(f"{name}: projected activations")
    return ax


def plot_unit_report(report, ax=None):
    """Local accuracy (left axis) and losses (right axis) by unit.

    Args:
        report: the list `unit_report` returns.
        ax: a matplotlib `Axes`; default: a new figure.

    Returns:
        The matplotlib `Axes` of the accuracy.

    Example:

        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> rows = [
        ...     {"name": "a", "index": 0, "local_accuracy": 0.5,
        ...      "prediction_loss": 1.2, "alignment_loss": 0.0},
        ...     {"name": "b", "index": 1, "local_accuracy": 0.7,
        ...      "prediction_loss": 0.9, "alignment_loss": 0.1},
        ... ]
        >>> ax = plot_unit_report(rows)
        >>> ax.get_ylabel()
        'local accuracy'
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    index = [row["index"] for row in report]
    ax.plot(index, [row["local_accuracy"] for row in report], "o-", label="accuracy")
    ax.set_xlabel("unit")
    ax.set_xticks(index, [row["name"] for row in report], rotation=30, ha="right")
    ax.set_ylabel("local accuracy")
    ax.set_ylim(0, 1)
    losses_ax = ax.twinx()
    for key, style in (("prediction_loss", "s--"), ("alignment_loss", "^:")):
        losses_ax.plot(index, [row[key] for row in report], style, label=key)
    losses_ax.set_ylabel("loss")
    handles = ax.get_legend_handles_labels()
    more = losses_ax.get_legend_handles_labels()
    ax.legend(handles[0] + more[0], handles[1] + more[1], fontsize="small")
    return ax
