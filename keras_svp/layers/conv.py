import keras

from keras_svp.layers.pooling import MaxPooling2D
from keras_svp.layers.unit import SVPUnit
from keras_svp.layers.unit import normalization_layer


@keras.saving.register_keras_serializable(package="keras_svp")
class SVPConv2D(SVPUnit):
    """Conv2D -> normalization -> activation [-> max pooling], one SVP unit.

    The projection sees the whole flattened feature map (after the optional
    pooling), as in the paper. `projection_pool_size` average-pools the map
    before flattening, for the projection only: a memory saver for wide maps
    that leaves the forward pass untouched.

    Args:
        filters: number of output channels, as in `keras.layers.Conv2D`.
        kernel_size: size of the convolution window.
        strides: strides of the convolution.
        padding: `"same"` (default) or `"valid"`.
        activation: activation after the normalization (default `"relu"`;
            `"gelu"`, which SVPDense uses, moved the small CNN on
            Fashion-MNIST by no more than the spread between seeds, in
            either mode: `docs/benchmarks/cpu-cnn-5-gelu`).
        normalization: `"batch"` (default), `"layer"` or `None`.
        pool_size: optional max-pooling window after the activation
            (non-overlapping; `keras_svp.layers.pooling.MaxPooling2D`, whose
            gradient keeps no index map).
        use_bias: whether the convolution has a bias.
        kernel_initializer: initializer of the kernel.
        kernel_regularizer: regularizer of the kernel; its loss joins this
            unit's local loss.
        **kwargs: the SVP options of `SVPUnit` (`projection_dim`,
            `projection_dropout`, `projection_scale`, `alignment_weight`,
            `alignment_target`, `projection_pool_size`: an optional
            average-pooling window before the projection, `seed`) and base
            `Layer` arguments.

    Returns:
        Called on images of shape `(batch, height, width, channels)`, the
        feature map of shape `(batch, height', width', filters)` (after the
        optional pooling).

    Example:

        >>> import numpy as np
        >>> layer = SVPConv2D(8, 3, pool_size=2, projection_dim=10)
        >>> tuple(layer(np.zeros((2, 8, 8, 1)), training=False).shape)
        (2, 4, 4, 8)
    """

    def __init__(
        self,
        filters,
        kernel_size,
        strides=1,
        padding="same",
        activation="relu",
        normalization="batch",
        pool_size=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = kernel_size
        self.strides = strides
        self.padding = padding
        self.activation = keras.activations.get(activation)
        self.normalization = normalization
        self.pool_size = pool_size
        self.use_bias = use_bias
        self.conv = keras.layers.Conv2D(
            filters,
            kernel_size,
            strides=strides,
            padding=padding,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            kernel_regularizer=kernel_regularizer,
            dtype=self.dtype_policy,
            name="conv",
        )
        self.norm = normalization_layer(
            normalization, self.dtype_policy, "normalization"
        )
        self.pool = (
            MaxPooling2D(
                pool_size,
                data_format=self.conv.data_format,
                dtype=self.dtype_policy,
                name="pool",
            )
            if pool_size
            else None
        )
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def build_body(self, input_shape):
        self.conv.build(input_shape)
        if self.norm is not None:
            self.norm.build(self.conv.compute_output_shape(input_shape))

    def call(self, inputs, training=None):
        x = self.conv(inputs)
        if self.norm is not None:
            x = self.norm(x, training=training)
        x = self.activation(x)
        if self.pool is not None:
            x = self.pool(x)
        return x

    def compute_output_shape(self, input_shape):
        shape = self.conv.compute_output_shape(input_shape)
        if self.pool is not None:
            shape = self.pool.compute_output_shape(shape)
        return shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "strides": self.strides,
                "padding": self.padding,
                "activation": keras.activations.serialize(self.activation),
                "normalization": self.normalization,
                "pool_size": self.pool_size,
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(
                    self.conv.kernel_initializer
                ),
                "kernel_regularizer": keras.regularizers.serialize(
                    self.conv.kernel_regularizer
                ),
            }
        )
        return config
