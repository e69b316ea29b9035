"""The paper's multilayer perceptron of `SVPDense` units."""

import functools

import keras

from keras_svp.applications.common import check_int
from keras_svp.applications.common import plain_layers
from keras_svp.applications.common import svp_sequential
from keras_svp.layers import SVPDense

# SVPDense's arguments that shape its body; the head's plain hidden layers
# (`head_layers`) take them too, with SVPDense's defaults.
_BODY_ARGS = (
    "activation",
    "normalization",
    "use_bias",
    "kernel_initializer",
    "bias_initializer",
    "kernel_regularizer",
    "bias_regularizer",
)


def _plain_dense(width, options):
    """Dense -> normalization -> activation, like an `SVPDense` body."""
    return plain_layers(
        SVPDense, functools.partial(keras.layers.Dense, width), options, _BODY_ARGS
    )


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
    head_layers=0,
    **unit_options,
):
    """The paper's MLP: `depth` `SVPDense` units of `width`, then a linear head.

    Each hidden layer is one SVP unit (dense -> layer normalization -> GELU
    with its own fixed projection and local loss); the head,
    `Dense(num_classes)`, outputs logits and is trained by the compiled
    loss. The returned model is not compiled.

    With `head_layers=k` the last `k` hidden layers are not SVP units but
    part of the output head: one `keras.Sequential` named `"head"` of plain
    Dense -> normalization -> activation layers (with the units' body
    options) and the `Dense(num_classes)` classifier, trained together by
    the compiled loss on the last unit's detached activation. The last
    hidden layer is then trained for the model's output instead of for a
    fixed random projection. In BP mode the network is the same either way.

    Unit seeds are drawn from NumPy's global generator, so
    `keras.utils.set_random_seed` before the call makes the model
    reproducible.

    Args:
        num_classes: number of classes (the head's width and every unit's
            projection size).
        depth: number of hidden layers (paper: 3), each an SVP unit but
            the last `head_layers`.
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
        head_layers: how many of the last hidden layers belong to the
            output head instead of SVP units (default 0); at least one
            layer must stay an SVP unit.
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
    check_int("head_layers", head_layers, minimum=0)
    if head_layers >= depth:
        raise ValueError(
            f"head_layers={head_layers} leaves no SVP unit: the MLP has {depth} "
            f"hidden layers. Use at most {depth - 1}, or a larger depth."
        )
    layers = [keras.layers.Flatten()] if flatten else []
    layers += [SVPDense(width, **unit_options) for _ in range(depth - head_layers)]
    if head_layers:
        head = [
            layer
            for _ in range(head_layers)
            for layer in _plain_dense(width, unit_options)
        ]
        head.append(keras.layers.Dense(num_classes))
        layers.append(keras.Sequential(head, name="head"))
    else:
        layers.append(keras.layers.Dense(num_classes, name="head"))
    return svp_sequential(
        layers, mode, input_shape, input_alignment, seed, name, head_from_projection
    )
