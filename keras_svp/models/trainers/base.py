import keras
from keras.src.trainers.data_adapters.data_adapter_utils import unpack_x_y_sample_weight


def computed_after(tensors, *values):
    """`values`, unchanged, made to depend by data on all of `tensors`.

    XLA orders a compiled step's operations by their data alone: TF control
    dependencies do not reach it, and on CPU an optimization barrier did
    not stop its scheduler from running the next units' forward passes
    before the previous unit's backward pass, which kept several units'
    activations alive at once. A scalar zero computed from `tensors`,
    added to each value, does order them. It is `0 * isnan(sum)`, so it is
    exactly zero even where `tensors` hold NaN or infinities, and the
    gradients with respect to the tied values are the originals' own.

    The trainers tie a unit's input and its weights: what a unit computes
    from its weights alone (a normalization's scale broadcast to the
    activations' shape, a kernel's transposed copy) depends on nothing
    the step computes, and XLA otherwise computes it for every unit at the
    start of the step and keeps it until the unit runs, which grows with
    depth.

    Args:
        tensors: what must be computed first (a unit's gradients or
            updated weights).
        *values: tensors or None.

    Returns:
        A tuple of `values`, each plus the zero (None stays None).
    """
    total = sum(keras.ops.sum(keras.ops.cast(t, "float32")) for t in tensors)
    zero = keras.ops.cast(keras.ops.isnan(total), "float32") * 0.0
    return tuple(
        v if v is None else keras.ops.add(v, keras.ops.cast(zero, v.dtype))
        for v in values
    )


class SVPTrainerBase(keras.Model):
    """What the backend trainers share; each may override it."""

    def _cross_replica_batch(self, features, previous):
        """The whole batch's alignment features, for the alignment loss.

        JAX (`keras.distribution`) and a single device already see the whole
        batch; the TensorFlow trainer gathers it across `tf.distribute`
        replicas.
        """
        return features, previous

    def _build_before_fit(self, input_shape):
        """Builds the model before Keras' `fit` starts."""
        self.build(input_shape)

    def _raise_for_invalid_batch(self, data):
        """Raises the first failed check of `check_batch` on a concrete batch.

        PyTorch runs it eagerly in the step; JAX on the host before the
        compiled step. TensorFlow turns the checks into graph assertions.
        """
        x, y, _ = unpack_x_y_sample_weight(data)
        for ok, message in self.check_batch(x, y):
            if not ok:
                raise ValueError(message)
