"""Starting the output head at the last unit's fixed projection."""

import keras
import numpy as np

# Layers between the last unit and a `Dense` head that leave its values as
# they are.
_PASSING = (keras.layers.Dropout, keras.layers.Identity)


def _reduction_of(layer):
    """The projection reduction `layer` computes, or None if it is none."""
    from keras_svp.applications.vit_layers import TokenPooling

    if isinstance(layer, keras.layers.Flatten):
        return "flatten"
    if isinstance(layer, TokenPooling):
        return layer.reduction
    if isinstance(
        layer,
        (keras.layers.GlobalAveragePooling1D, keras.layers.GlobalAveragePooling2D),
    ):
        if layer.data_format == "channels_last" and not layer.keepdims:
            return "mean"
    return None


def _read_obstacle(unit, activation_shape, before):
    """Why the layers `before` the head do not give it what `R` reads."""
    reads = None  # the activation as it is
    for layer in before:
        if isinstance(layer, _PASSING):
            continue
        reduction = _reduction_of(layer)
        if reduction is None or reads is not None:
            return (
                f"layer '{layer.name}' ({type(layer).__name__}) between the "
                f"last unit '{unit.name}' and the head changes what the head "
                "reads"
            )
        reads = reduction
    wanted = unit.projection.reduction
    if len(activation_shape) == 2:
        # A vector's reduction is the vector (pooling one would not build).
        return None
    if reads != wanted:
        how = "the activation unreduced" if reads is None else f"'{reads}'"
        return (
            f"the last unit '{unit.name}' projects its activation reduced by "
            f"'{wanted}', while the head reads {how}"
        )
    return None


def head_start_obstacle(unit, activation_shape, head_layers, head, num_classes):
    """Why the head cannot start at `unit`'s projection, or None if it can.

    The last unit's projection `R` is a linear classifier of the unit's
    reduced activation (flattened, or a transformer's class or mean token),
    the one its local loss trains the unit for. A `Dense(num_classes)` head
    that reads the same reduced activation (after `Flatten`, `TokenPooling`
    or global average pooling, as the projection reduces it; `Dropout` and
    `Identity` may sit between) has a kernel of `R`'s shape whose rows match
    `R`'s, so it can start as that classifier.

    Args:
        unit: the last SVP unit (built).
        activation_shape: the shape of its activation, batch first.
        head_layers: the layers after it, in order.
        head: the trainable one among them.
        num_classes: the model's number of classes.

    Returns:
        None, or a string that names what stands in the way.
    """
    projection = unit.projection
    if type(head) is not keras.layers.Dense:
        return (
            f"the output head '{head.name}' is a {type(head).__name__}, not a "
            "keras.layers.Dense"
        )
    obstacle = _read_obstacle(
        unit, activation_shape, head_layers[: head_layers.index(head)]
    )
    if obstacle is not None:
        return obstacle
    if projection.pool_size is not None:
        return f"the last unit '{unit.name}' pools its activation for the projection"
    if projection.projection_dim != num_classes:
        return (
            f"the last unit '{unit.name}' projects to projection_dim="
            f"{projection.projection_dim}, not num_classes={num_classes}"
        )
    if head.lora_enabled or head.quantization_mode is not None:
        return f"the head '{head.name}' has a LoRA or quantized kernel"
    if tuple(head.kernel.shape) != tuple(projection.kernel.shape):
        return (
            f"the head's kernel has shape {tuple(head.kernel.shape)}, the "
            f"projection's {tuple(projection.kernel.shape)}"
        )
    return None


def start_head_at_projection(unit, head):
    """Sets `head`'s kernel to `unit`'s projection matrix (its bias stays)."""
    # A copy through the host: on JAX, assigning the projection's array would
    # make both variables one buffer, which a compiled step donates twice.
    matrix = np.array(keras.ops.convert_to_numpy(unit.projection.kernel))
    head.kernel.assign(matrix.astype(head.kernel.dtype))
