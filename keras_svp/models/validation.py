"""Checks of user data that would otherwise train silently wrong."""

import numpy as np


def check_array_labels(y, num_classes):
    """Raises a clear error for labels that do not fit `num_classes` classes.

    Sparse labels must be integers in `[0, num_classes)`; one-hot labels must
    have `num_classes` columns. Only arrays are checked here (datasets are
    checked batch by batch in the training step).
    """
    if y is None or not hasattr(y, "shape") or not hasattr(y, "dtype"):
        return
    y = np.asarray(y)
    if y.ndim >= 2 and y.shape[-1] != 1:
        if y.shape[-1] != num_classes:
            raise ValueError(
                f"One-hot labels have {y.shape[-1]} columns but the model "
                f"has num_classes={num_classes}. Pass labels of shape "
                f"(batch, {num_classes}), or integer class ids of shape "
                "(batch,)."
            )
        return
    if y.size == 0:
        return
    if np.issubdtype(y.dtype, np.floating) and not np.all(np.isfinite(y)):
        raise ValueError("Labels contain NaN or Inf values.")
    low, high = y.min(), y.max()
    if low < 0 or high >= num_classes:
        raise ValueError(
            f"Labels must be class ids in [0, {num_classes}) for "
            f"num_classes={num_classes}, but they range over [{low}, {high}]. "
            "Check the labels, or the model's num_classes and output head."
        )
    if np.issubdtype(y.dtype, np.floating) and not np.all(y == np.round(y)):
        raise ValueError(
            "Sparse labels must be whole class ids, but some are fractional. "
            "Pass integer labels, or one-hot rows of shape "
            f"(batch, {num_classes})."
        )


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
