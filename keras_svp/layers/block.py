import keras

from keras_svp.layers.unit import SVPUnit
from keras_svp.layers.unit import call_layer
from keras_svp.projections import REDUCTIONS


@keras.saving.register_keras_serializable(package="keras_svp")
class SVPBlock(SVPUnit):
    """Any stack of Keras layers trained as one SVP unit (the paper's SVP+).

    Use it for transformer blocks, residual blocks or any sub-network whose
    inside should be trained by ordinary backpropagation while the block as
    a whole learns from its own local loss.

    The wrapped layers keep their own dtype policies: under a global
    `keras.config.set_dtype_policy("mixed_float16")` they all follow it;
    when passing `dtype=` to the block alone, pass it to the wrapped layers
    too.

    Args:
        layers: non-empty list of Keras layers, applied in order.
        reduction: how the block's output becomes one vector per sample
            before the projection: `"flatten"`, `"mean"` (over tokens or
            spatial positions) or `"cls"` (first token).
        **kwargs: the SVP options of `SVPUnit` (`projection_dim`,
            `projection_dropout`, `projection_scale`, `alignment_weight`,
            `alignment_target`, `projection_pool_size`, `seed`) and base
            `Layer` arguments.

    Returns:
        Called on a tensor, the output of the last wrapped layer.

    Example:

        >>> import numpy as np
        >>> block = SVPBlock(
        ...     [keras.layers.Dense(16), keras.layers.LayerNormalization()],
        ...     reduction="mean",
        ...     projection_dim=10,
        ... )
        >>> tuple(block(np.zeros((2, 5, 8))).shape)
        (2, 5, 16)
    """

    def __init__(self, layers, reduction="flatten", **kwargs):
        super().__init__(**kwargs)
        layers = list(layers) if layers is not None else []
        if not layers:
            raise ValueError(
                "SVPBlock needs at least one layer to wrap, got an empty list."
            )
        for layer in layers:
            if not isinstance(layer, keras.layers.Layer):
                raise TypeError(
                    "SVPBlock wraps Keras layers; got "
                    f"{layer!r} of type {type(layer).__name__}."
                )
        if reduction not in REDUCTIONS:
            raise ValueError(
                f"reduction must be one of {REDUCTIONS}, got {reduction!r}."
            )
        self.block_layers = layers
        self.reduction = reduction

    def build_body(self, input_shape):
        # A symbolic pass builds every wrapped layer with its real input shape
        # and tells us the block's output shape.
        x = keras.KerasTensor(input_shape, dtype=self.compute_dtype)
        for layer in self.block_layers:
            x = layer(x)

    def call(self, inputs, training=None):
        x = inputs
        for layer in self.block_layers:
            x = call_layer(layer, x, training)
        return x

    def compute_output_shape(self, input_shape):
        # Always from `input_shape`: a shape cached at build time would carry
        # the build-time batch size (and token count) to every later input.
        x = keras.KerasTensor(input_shape, dtype=self.compute_dtype)
        for layer in self.block_layers:
            x = layer.compute_output_spec(x)
        return tuple(x.shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "layers": [
                    keras.saving.serialize_keras_object(layer)
                    for layer in self.block_layers
                ],
                "reduction": self.reduction,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["layers"] = [
            keras.saving.deserialize_keras_object(layer) for layer in config["layers"]
        ]
        return cls(**config)
