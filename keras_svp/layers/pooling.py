import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_svp")
class MaxPooling2D(keras.layers.MaxPooling2D):
    """`keras.layers.MaxPooling2D`, written so that its gradient needs no index map.

    Same config and forward result as Keras' layer. When the windows do not
    overlap (`strides` equal to `pool_size`, `"valid"` padding, the default
    for a pooling window given alone), the map is cropped to a multiple of
    the window, reshaped so that each window has its own axes, and reduced
    with `ops.max`. Keras' JAX pooling is XLA's `reduce_window`, whose
    gradient builds an index map (`iota`) as large as each pooled input and
    keeps them alive through the step, where they can outweigh the
    activations, so that SVP saves little or no step memory over backprop.
    The reshaped form has no index map and runs faster under XLA (JAX, and
    TensorFlow with `jit_compile=True`), and on PyTorch saves the pooled
    output for backward instead of 64-bit indices. TensorFlow's graph mode
    keeps its fused kernel, which is faster there and keeps no index map
    either. Overlapping windows or `"same"` padding use Keras' pooling on
    every backend.

    The gradient differs from Keras' only where a window holds several
    equal maxima: `ops.max` shares it between them, Keras' pooling gives it
    to one. After a ReLU such ties are zeros, whose gradient the ReLU
    discards anyway.

    Args:
        pool_size: int or tuple of 2 ints, the window.
        strides: int, tuple of 2 ints or `None` (default: `pool_size`).
        padding: `"valid"` (default) or `"same"`.
        data_format: `"channels_last"`, `"channels_first"` or `None` (the
            Keras config's `image_data_format`).
        **kwargs: base `Layer` arguments.

    Example:

        >>> import numpy as np
        >>> x = np.arange(32, dtype="float32").reshape(1, 4, 4, 2)
        >>> y = MaxPooling2D(2)(x)
        >>> tuple(y.shape)
        (1, 2, 2, 2)
        >>> [float(v) for v in keras.ops.convert_to_numpy(y)[0, :, :, 0].ravel()]
        [10.0, 14.0, 26.0, 30.0]
    """

    def call(self, inputs):
        windows_tile = (
            tuple(self.strides) == tuple(self.pool_size) and self.padding == "valid"
        )
        spatial = (1, 2) if self.data_format == "channels_last" else (2, 3)
        # The reshape needs the map's size, and at least one whole window.
        sized = all(
            inputs.shape[axis] is not None and inputs.shape[axis] >= size
            for axis, size in zip(spatial, self.pool_size)
        )
        if not (windows_tile and sized) or _tensorflow_without_xla():
            return super().call(inputs)
        return block_max_pool(inputs, self.pool_size, self.data_format)


def block_max_pool(x, pool_size, data_format="channels_last"):
    """Max over non-overlapping `pool_size` windows of a 4-D feature map.

    Rows and columns that do not fill a whole window are dropped, as
    `"valid"` pooling drops them.
    """
    pool_height, pool_width = pool_size
    spatial = (1, 2) if data_format == "channels_last" else (2, 3)
    height = x.shape[spatial[0]] // pool_height
    width = x.shape[spatial[1]] // pool_width
    if data_format == "channels_last":
        x = x[:, : height * pool_height, : width * pool_width, :]
        x = ops.reshape(x, (-1, height, pool_height, width, pool_width, x.shape[3]))
        return ops.max(x, axis=(2, 4))
    x = x[:, :, : height * pool_height, : width * pool_width]
    x = ops.reshape(x, (-1, x.shape[1], height, pool_height, width, pool_width))
    return ops.max(x, axis=(3, 5))


def _tensorflow_without_xla():
    """Whether this call runs on TensorFlow outside an XLA compilation."""
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    try:  # What tf.function(jit_compile=True) enters while it traces.
        from tensorflow.python.ops.control_flow_util import GraphOrParentsInXlaContext
    except ImportError:  # a TensorFlow without it: its fused kernel, always
        return True
    return not GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())
