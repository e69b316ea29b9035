"""The paper's multilayer perceptron of `SVPDense` units."""

import keras

from keras_svp.applications.common import check_int
from keras_svp.applications.common import svp_sequential
from keras_svp.layers import SVPDense


def mlp(
    num_classes=10,
    depth=3,
    width=1024,
    mode="svp",
    flatten=True,
    input_shape=None,
    input_alignment=False,
    head_from_projection="auto",
    seed=None,
    name="mlp",
    **unit_options,
):
    """The paper's MLP: `depth` `SVPDense` units of `width`, then a linear head.

    Each hidden layer is one SVP unit (dense -> layer normalization -> GELU
    with its own fixed projection and local loss); the head,
    `Dense(num_classes)`, outputs logits and is trained by the compiled
    loss. The returned model is not compiled.

    Unit seeds are drawn from NumPy's global generator, so
    `keras.utils.set_random_seed` before the call makes the model
    reproducible.

    Args:
        num_classes: number of classes (the head's width and every unit's
            projection size).
        depth: number of hidden SVP units (paper: 3).
        width: units per hidden layer (paper: 1024).
        mode: `"svp"` (local training) or `"bp"` (end-to-end
            backpropagation of the same network).
        flatten: whether to start with `Flatten`, for image inputs.
        input_shape: optional input shape without the batch axis; when
            given the model is built.
        input_alignment: whether the first unit aligns with a fixed random
            projection of the input (see `SVPModel`).
        head_from_projection: whether the head starts at the last unit's
            projection (`"auto"`, `True` or `False`; see `SVPModel`).
        seed: seed of the model's input projection.
        name: model name.
        **unit_options: passed to every `SVPDense`, e.g.
            `projection_dropout=0.0` or `alignment_weight=0.5`.

    Returns:
        An uncompiled `SVPSequential`.

    Example:

        >>> import numpy as np
        >>> model = mlp(num_classes=10, depth=2, width=32, input_shape=(8, 8, 1))
        >>> model.compile(
        ...     "adam",
        ...     keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        ... )
        >>> model.predict(np.zeros((4, 8, 8, 1)), verbose=0).shape
        (4, 10)
    """
    check_int("depth", depth)
    check_int("width", width)
    check_int("num_classes", num_classes)
    layers = [keras.layers.Flatten()] if flatten else []
    layers += [SVPDense(width, **unit_options) for _ in range(depth)]
    layers.append(keras.layers.Dense(num_classes, name="head"))
    return svp_sequential(
        layers, mode, input_shape, input_alignment, seed, name, head_from_projection
    )
