import keras


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
