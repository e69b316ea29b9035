"""Casting that costs nothing when there is nothing to cast."""

import keras
from keras import ops


def as_dtype(x, dtype):
    """`x` as a backend tensor of `dtype`, cast only if it has another dtype.

    `ops.cast` to the dtype a tensor already has still pays Keras' dispatch,
    which eager PyTorch pays on every call of a training step.

    Args:
        x: a tensor, array or number.
        dtype: a Keras dtype name, e.g. `"float32"`.

    Returns:
        A backend tensor of `dtype`.

    Example:

        >>> import numpy as np
        >>> keras.backend.standardize_dtype(as_dtype(np.ones(2), "float32").dtype)
        'float32'
    """
    x = ops.convert_to_tensor(x)
    if keras.backend.standardize_dtype(x.dtype) != dtype:
        x = ops.cast(x, dtype)
    return x
