"""Starting the output head at the last unit's fixed projection.

The last unit's projection `R` is a linear classifier of the unit's reduced
activation (flattened, or a transformer's class or mean token), the one its
local loss trains the unit for. A `Dense(num_classes)` head that reads the
same reduced activation (after `Flatten`, `TokenPooling` or global average
pooling, as the projection reduces it; `Dropout` and `Identity` may sit
between) has a kernel of `R`'s shape whose rows match `R`'s, so it can start
as that classifier.

The head is given `R` as its kernel initializer while the model builds it,
so that it starts there however Keras builds the model: eagerly, or
symbolically while a step is traced, where no variable can be read or set.
"""

import contextlib

import keras

from keras_svp.layers.unit import SVPUnit

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


class HeadStart:
    """Where the head is, and why it cannot start at the projection, if not.

    Made from the model's layer chain before it is built: the last SVP unit,
    then the layers that pass or reduce its activation, then the head.

    Args:
        chain: the model's layers in order (at least one SVP unit).
    """

    def __init__(self, chain):
        self.unit_index = max(
            i for i, layer in enumerate(chain) if isinstance(layer, SVPUnit)
        )
        self.unit = chain[self.unit_index]
        # What the layers between reduce the activation by, in order.
        self.reads, self.head, self.obstacle = [], None, None
        for layer in chain[self.unit_index + 1 :]:
            if isinstance(layer, _PASSING):
                continue
            reduction = _reduction_of(layer)
            if reduction is None:
                self.head = layer
                break
            self.reads.append(reduction)
        if self.head is None:
            self.obstacle = f"no layer follows the last unit '{self.unit.name}'"
        elif type(self.head) is not keras.layers.Dense:
            self.obstacle = (
                f"layer '{self.head.name}' ({type(self.head).__name__}) after "
                f"the last unit '{self.unit.name}' is not a keras.layers.Dense "
                "head (only Flatten, Dropout, Identity, TokenPooling or global "
                "average pooling may come before one)"
            )
        elif self.head.built:
            # Its weights may be a user's own (e.g. transferred): keep them.
            self.obstacle = f"the head '{self.head.name}' was built before the model"
        elif not self.head.trainable:
            self.obstacle = f"the Dense layer '{self.head.name}' is not trainable"
        elif self.head.lora_rank or self.head.quantization_mode is not None:
            self.obstacle = (
                f"the head '{self.head.name}' has a LoRA or quantized kernel"
            )

    def check(self, activation_shape, head_input_shape, num_classes):
        """Sets `obstacle` from the built unit and the head's input shape.

        Args:
            activation_shape: the last unit's activation shape, batch first.
            head_input_shape: what the head receives, batch first.
            num_classes: the model's number of classes.
        """
        if self.obstacle is not None:
            return
        projection = self.unit.projection
        reads = self.reads
        if len(reads) > 1:
            self.obstacle = (
                f"the layers between the last unit '{self.unit.name}' and the "
                f"head reduce its activation {len(reads)} times"
            )
        elif len(activation_shape) > 2 and reads != [projection.reduction]:
            how = f"'{reads[0]}'" if reads else "the activation unreduced"
            self.obstacle = (
                f"the last unit '{self.unit.name}' projects its activation "
                f"reduced by '{projection.reduction}', while the head reads {how}"
            )
        elif projection.pool_size is not None:
            self.obstacle = (
                f"the last unit '{self.unit.name}' pools its activation for "
                "the projection"
            )
        elif projection.projection_dim != num_classes:
            self.obstacle = (
                f"the last unit '{self.unit.name}' projects to projection_dim="
                f"{projection.projection_dim}, not num_classes={num_classes}"
            )
        else:
            kernel = (head_input_shape[-1], self.head.units)
            if kernel != tuple(projection.kernel.shape):
                self.obstacle = (
                    f"the head's kernel would have shape {kernel}, the "
                    f"projection's {tuple(projection.kernel.shape)}"
                )

    @contextlib.contextmanager
    def initializer(self):
        """While the head is built, its kernel initializer is `R`.

        Restored after, so that the head's config (and a saved model) keeps
        the initializer it was given, not a copy of `R`.
        """
        given = self.head.kernel_initializer
        self.head.kernel_initializer = keras.initializers.Constant(
            self.unit.projection.matrix()
        )
        try:
            yield
        finally:
            self.head.kernel_initializer = given
