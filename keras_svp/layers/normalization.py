import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_svp")
class LayerNormalization(keras.layers.LayerNormalization):
    """`keras.layers.LayerNormalization`, written so that XLA frees its input.

    Same weights, config and result as Keras' layer (up to rounding), but
    computed as `(x - mean) * rsqrt(var + eps) * gamma + beta`. Keras' own
    form, `x * inv + (beta - mean * inv)` with `inv = rsqrt(var + eps) *
    gamma`, makes XLA keep one batch-by-width tensor per unit alive through
    the whole SVP step on JAX (the compiled step's temp memory then grows
    with depth); this form keeps it flat. PyTorch keeps Keras' fused kernel.
    """

    def call(self, inputs):
        if self.rms_scaling or keras.backend.backend() == "torch":
            return super().call(inputs)
        dtype = keras.backend.result_type(inputs.dtype, "float32")
        x = ops.cast(inputs, dtype)
        mean = ops.mean(x, axis=self.axis, keepdims=True)
        variance = ops.mean(ops.square(x - mean), axis=self.axis, keepdims=True)
        outputs = (x - mean) * ops.rsqrt(variance + self.epsilon)
        if self.scale:
            outputs = outputs * ops.cast(self._broadcast(self.gamma, x), dtype)
        if self.center:
            outputs = outputs + ops.cast(self._broadcast(self.beta, x), dtype)
        return ops.cast(outputs, self.compute_dtype)

    def _broadcast(self, weight, x):
        axes = [self.axis] if isinstance(self.axis, int) else list(self.axis)
        axes = [a % len(x.shape) for a in axes]
        if axes == [len(x.shape) - 1]:
            return weight
        shape = [1] * len(x.shape)
        for a in axes:
            shape[a] = x.shape[a]
        return ops.reshape(weight, shape)
