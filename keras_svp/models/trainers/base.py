import keras
from keras.src.trainers.data_adapters.data_adapter_utils import unpack_x_y_sample_weight


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
