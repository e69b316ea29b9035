"""Checks of user data that would otherwise train silently wrong.

Arrays are checked once, on the host, before `fit`. Every batch (arrays,
datasets, generators, data loaders alike) is also checked inside the step:
shapes when the step is traced, and values (NaN or Inf inputs, labels out
of range) by flags that each backend's trainer turns into an error.
"""

import numpy as np
from keras import ops
from keras import tree

CLEAN_THE_DATA = (
    "Clean the data (drop or impute those samples, e.g. with "
    "numpy.nan_to_num) before training."
)
NONFINITE_INPUTS = f"A batch of inputs contains NaN or Inf values. {CLEAN_THE_DATA}"


def labels_out_of_range(num_classes, low="", high=""):
    found = f": they range over [{low}, {high}]" if low != "" else " (or NaN)"
    return (
        f"Labels must be class ids in [0, {num_classes}) for "
        f"num_classes={num_classes}, but some are not{found}. Check the "
        "labels, or the model's num_classes and output head."
    )


def check_label_shape(y, num_classes):
    """Raises a clear error for labels that are neither class ids of shape
    `(batch,)` / `(batch, 1)` nor one-hot rows of shape `(batch,
    num_classes)`. Reads static shapes only, so it also runs while a step is
    traced."""
    shape = tuple(y.shape)
    if len(shape) == 1 or (len(shape) == 2 and shape[1] in (1, num_classes)):
        return
    if len(shape) == 2:
        raise ValueError(
            f"One-hot labels have {shape[1]} columns but the model has "
            f"num_classes={num_classes}. Pass labels of shape (batch, "
            f"{num_classes}), or integer class ids of shape (batch,)."
        )
    raise ValueError(
        f"Labels have shape {shape}; expected integer class ids of shape "
        f"(batch,) or one-hot rows of shape (batch, {num_classes})."
    )


def _is_sparse(y):
    return len(y.shape) == 1 or (len(y.shape) == 2 and y.shape[1] == 1)


def _is_float(x):
    return "float" in str(getattr(x, "dtype", ""))


def check_array_inputs(x):
    """Raises a clear error for float input arrays holding NaN or Inf."""
    for array in tree.flatten(x):
        if not isinstance(array, np.ndarray) or not _is_float(array):
            continue
        finite = np.isfinite(array.reshape(len(array), -1)).all(axis=1)
        if not finite.all():
            raise ValueError(
                f"{int((~finite).sum())} of the {len(array)} input samples "
                f"contain NaN or Inf values. {CLEAN_THE_DATA}"
            )


def check_array_labels(y, num_classes):
    """Raises a clear error for label arrays that do not fit `num_classes`.

    Sparse labels must be whole numbers in `[0, num_classes)`; one-hot
    labels must have `num_classes` columns.
    """
    if y is None or not hasattr(y, "shape") or not hasattr(y, "dtype"):
        return
    check_label_shape(y, num_classes)
    y = np.asarray(y)
    if not _is_sparse(y) or y.size == 0:
        return
    if _is_float(y) and not np.all(np.isfinite(y)):
        raise ValueError("Labels contain NaN or Inf values.")
    low, high = y.min(), y.max()
    if low < 0 or high >= num_classes:
        raise ValueError(labels_out_of_range(num_classes, low, high))
    if _is_float(y) and not np.all(y == np.round(y)):
        raise ValueError(
            "Sparse labels must be whole class ids, but some are fractional. "
            "Pass integer labels, or one-hot rows of shape "
            f"(batch, {num_classes})."
        )


def batch_value_checks(x, y, num_classes):
    """Flags for what only a batch's values can tell.

    Returns a list of `(ok, message)`: `ok` is a boolean scalar, True when
    the batch passes; the trainers raise `message` when it is False. NumPy
    batches are checked with NumPy, on the host, and tensors with
    `keras.ops`, where they live.
    """
    checks = []
    inputs = [i for i in tree.flatten(x) if i is not None and _is_float(i)]
    for array in inputs:
        xp = _ops(array)
        checks.append((xp.all(xp.isfinite(array)), NONFINITE_INPUTS))
    if y is not None and hasattr(y, "shape") and _is_sparse(y):
        xp = _ops(y)
        ok = xp.logical_and(xp.min(y) >= 0, xp.max(y) < num_classes)
        if _is_float(y):
            ok = xp.logical_and(ok, xp.all(xp.isfinite(y)))
        checks.append((ok, labels_out_of_range(num_classes)))
    return checks


def _ops(array):
    return np if isinstance(array, np.ndarray) else ops


def input_shape_of(x):
    """The input shape, batch axis `None`, of an array or a `tf.data`
    dataset of `x` or `(x, ...)` elements; `None` for anything else."""
    if hasattr(x, "element_spec"):
        spec = x.element_spec
        if isinstance(spec, (tuple, list)):
            spec = spec[0]
        shape = getattr(spec, "shape", None)
        if shape is None or shape.rank is None:
            return None
        return (None,) + tuple(shape)[1:]
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        try:
            return (None,) + tuple(x.shape)[1:]
        except ValueError:  # unknown rank
            return None
    return None
