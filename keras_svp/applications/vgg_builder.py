"""VGG-style networks of `SVPConv2D` units."""

import functools
import math

import keras

from keras_svp.applications.common import check_int
from keras_svp.applications.common import plain_layers
from keras_svp.applications.common import svp_sequential
from keras_svp.layers import SVPConv2D
from keras_svp.layers import SVPDense
from keras_svp.layers.pooling import MaxPooling2D

# Filters per convolution; "M" is a 2x2 max pooling after the previous one.
VGG11 = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")

# What one SVP unit holds: one convolution, or a stage (the convolutions up
# to and including the next pooling).
UNITS = ("convolution", "stage")

# SVPConv2D's arguments that shape its body; a stage's plain convolutions
# take them too (with SVPConv2D's defaults), so that the stage is uniform.
_BODY_ARGS = (
    "activation",
    "normalization",
    "use_bias",
    "kernel_initializer",
    "kernel_regularizer",
)


def _plain_convolution(filters, options):
    """Conv2D -> normalization -> activation, like an `SVPConv2D` body."""
    conv = functools.partial(keras.layers.Conv2D, filters, 3, padding="same")
    return plain_layers(SVPConv2D, conv, options, _BODY_ARGS)


def vgg(
    config,
    num_classes=10,
    input_shape=(32, 32, 3),
    width_multiplier=1.0,
    classifier_units=(),
    mode="svp",
    input_alignment=False,
    head_from_projection="auto",
    seed=None,
    name="vgg",
    units="convolution",
    head_convolutions=0,
    **unit_options,
):
    """A VGG-style CNN: 3x3 `SVPConv2D` units (BatchNorm, ReLU, max pooling).

    With `units="convolution"` every convolution is one SVP unit (the
    paper's setting); a max pooling (`"M"` in `config`) is fused into the
    unit before it, so the unit's projection sees the pooled map. With
    `units="stage"` the convolutions up to each pooling form one unit,
    trained by one local loss (block-wise, like SVP+ for transformers):
    the stage's last convolution is its `SVPConv2D`, the ones before it are
    plain Conv2D -> BatchNorm -> ReLU layers. In BP mode both give the same
    network. A pooling that would shrink the map below 1x1 is left out, which
    lets VGG-11's five poolings serve 28x28 inputs (28 -> 14 -> 7 -> 3 -> 1).
    After the last convolution: `Flatten`, optional `SVPDense` units, and a
    `Dense(num_classes)` head.

    With `head_convolutions=k` the last `k` convolutions are not SVP units
    but part of the output head: one `keras.Sequential` named `"head"` of
    plain Conv2D -> normalization -> activation [-> max pooling] layers
    (with the units' body options), `Flatten` and the `Dense(num_classes)`
    classifier, trained together by the compiled loss on the last unit's
    detached activations. Such a head reads the last unit better than one
    `Dense` layer does and trains the last convolutions for the model's
    output instead of a fixed random projection. It costs little memory:
    a CNN's last maps are small, and its first unit holds the most.

    Args:
        config: sequence of filter counts (ints) and `"M"`s, e.g. `VGG11`.
        num_classes: number of classes.
        input_shape: `(height, width, channels)` of the images; decides
            which poolings fit and builds the model. `None` keeps every
            pooling and leaves the model unbuilt.
        width_multiplier: scales every filter count (at least 1 filter),
            e.g. `0.125` for a tiny test network.
        classifier_units: widths of `SVPDense` units between the flattened
            features and the head (VGG's fully connected layers).
        mode: `"svp"` or `"bp"`.
        input_alignment: whether the first unit aligns with a fixed random
            projection of the input (see `SVPModel`).
        head_from_projection: whether the head starts at the last unit's
            projection (`"auto"`, `True` or `False`; see `SVPModel`).
        seed: seed of that input projection (see `SVPModel`).
        name: model name.
        units: `"convolution"` (one unit per convolution) or `"stage"`
            (one unit per stage of convolutions between poolings).
        head_convolutions: how many of the last convolutions belong to the
            output head instead of SVP units (default 0). At least one
            convolution must stay an SVP unit, and `classifier_units` must
            be empty.
        **unit_options: passed to every SVP unit, e.g.
            `projection_pool_size=2` to shrink the projections of wide maps.

    Returns:
        A built, uncompiled `SVPSequential`.

    Example:

        >>> model = vgg((8, "M", 16, "M"), input_shape=(8, 8, 1))
        >>> [layer.filters for layer in model.layers[:2]]
        [8, 16]
    """
    if width_multiplier <= 0:
        raise ValueError(f"width_multiplier must be > 0, got {width_multiplier!r}.")
    if input_shape is not None and len(input_shape) != 3:
        raise ValueError(
            f"input_shape must be (height, width, channels), got {input_shape!r}."
        )
    check_int("num_classes", num_classes)
    if units not in UNITS:
        raise ValueError(f"units must be one of {UNITS}, got {units!r}.")
    check_int("head_convolutions", head_convolutions, minimum=0)
    if head_convolutions and classifier_units:
        raise ValueError(
            "head_convolutions and classifier_units cannot be combined: the "
            "SVPDense units would come after the head's convolutions. Use one "
            "of them."
        )
    # Unknown size: every pooling is kept.
    known = input_shape is not None and None not in tuple(input_shape[:2])
    size = min(input_shape[:2]) if known else None
    plan = []  # [filters, pool_size] per convolution
    for item in config:
        if item == "M":
            if not plan:
                raise ValueError("config must start with a filter count, not 'M'.")
            if plan[-1][1] is None and (size is None or size >= 2):
                plan[-1][1] = 2
                size = None if size is None else size // 2
            continue
        check_int("a filter count in config", item)
        plan.append([max(1, int(math.ceil(item * width_multiplier))), None])
    if head_convolutions >= len(plan):
        raise ValueError(
            f"head_convolutions={head_convolutions} leaves no SVP unit: the "
            f"network has {len(plan)} convolutions. Use at most {len(plan) - 1}."
        )
    unit_plan = plan[: len(plan) - head_convolutions]
    layers = []
    for index, (filters, pool_size) in enumerate(unit_plan):
        ends_stage = pool_size is not None or index == len(unit_plan) - 1
        if units == "stage" and not ends_stage:
            layers += _plain_convolution(filters, unit_options)
        else:
            layers.append(SVPConv2D(filters, 3, pool_size=pool_size, **unit_options))
    if head_convolutions:
        head = []
        for filters, pool_size in plan[len(unit_plan) :]:
            head += _plain_convolution(filters, unit_options)
            if pool_size is not None:
                head.append(MaxPooling2D(pool_size))
        head += [keras.layers.Flatten(), keras.layers.Dense(num_classes)]
        layers.append(keras.Sequential(head, name="head"))
    else:
        layers.append(keras.layers.Flatten())
        layers += [SVPDense(units, **unit_options) for units in classifier_units]
        layers.append(keras.layers.Dense(num_classes, name="head"))
    return svp_sequential(
        layers, mode, input_shape, input_alignment, seed, name, head_from_projection
    )


def vgg11(
    num_classes=10,
    input_shape=(32, 32, 3),
    width_multiplier=1.0,
    mode="svp",
    name="vgg11",
    **kwargs,
):
    """VGG-11 of `SVPConv2D` units, for 28x28 or 32x32 images.

    Eight 3x3 convolutions (64, 128, 256, 256, 512, 512, 512, 512 filters
    times `width_multiplier`) with BatchNorm and ReLU, five 2x2 max
    poolings (four on 28x28 inputs), then a `Dense(num_classes)` head.

    Args:
        num_classes: number of classes (the head's width).
        input_shape: `(height, width, channels)` of the images.
        width_multiplier: scales every layer's number of filters.
        mode: `"svp"` or `"bp"`.
        name: the model's name.
        **kwargs: passed on to `vgg` (and from there to the `SVPConv2D`
            units).

    Returns:
        A built, uncompiled `SVPSequential`.

    Example:

        >>> model = vgg11(input_shape=(28, 28, 1), width_multiplier=0.125)
        >>> len(model.layers), model.compute_output_shape((None, 28, 28, 1))
        (10, (None, 10))
    """
    return vgg(
        VGG11,
        num_classes=num_classes,
        input_shape=input_shape,
        width_multiplier=width_multiplier,
        mode=mode,
        name=name,
        **kwargs,
    )
