import keras
import tensorflow as tf
from keras.src.trainers.data_adapters.data_adapter_utils import unpack_x_y_sample_weight


class TensorFlowSVPTrainer(keras.Model):
    """SVP steps on TensorFlow: one `GradientTape` per unit."""

    def _build_on_first_trace(self, data):
        # Without a distribution strategy Keras' TF trainer builds the model
        # while tracing the step; the SVP step needs it built beforehand.
        if not self.built:
            self._symbolic_build(data_batch=data)

    def _assert_valid_batch(self, data):
        """Returns `data` once the batch's checks have passed.

        Graph assertions stop the step with their message; the step reads
        the data only after them, so that no op (a loss that rejects labels
        in its own words, say) runs first. XLA (`jit_compile=True`) drops
        assertions: there only the array checks before `fit` apply.
        """
        x, y, _ = unpack_x_y_sample_weight(data)
        asserts = [
            tf.debugging.Assert(ok, [message]) for ok, message in self.check_batch(x, y)
        ]
        with tf.control_dependencies(asserts):
            return tf.nest.map_structure(
                lambda t: t if t is None else tf.identity(t), data
            )

    def train_step(self, data):
        data = self._assert_valid_batch(data)
        if self.mode != "svp":
            return super().train_step(data)
        self._build_on_first_trace(data)
        x, y, sample_weight = unpack_x_y_sample_weight(data)
        gradients, variables, unit_losses = [], [], []
        h, previous, total = x, None, 0.0
        for index, segment in enumerate(self._svp_units()):
            weights = segment.trainable_weights
            # A fresh tape per unit: it records this unit alone and is
            # released before the next unit runs.
            with tf.GradientTape() as tape:
                loss, (h, previous, prediction, alignment) = self.unit_forward(
                    index, h, y, sample_weight, previous, training=True
                )
                scaled = self.optimizer.scale_loss(loss)
            if weights:
                unit_gradients = tape.gradient(scaled, weights)
                gradients += unit_gradients
                variables += weights
                # The next unit waits for this unit's gradients: otherwise
                # the graph executor may run forward passes ahead and keep
                # several units' activations alive at once.
                with tf.control_dependencies(unit_gradients):
                    h, previous = tf.identity(h), tf.identity(previous)
            total += loss
            unit_losses.append((prediction, alignment))
        head_weights = self.head_weights
        with tf.GradientTape() as tape:
            head_loss, y_pred = self.head_forward(h, y, sample_weight, training=True)
            scaled = self.optimizer.scale_loss(head_loss)
        gradients += tape.gradient(scaled, head_weights)
        variables += head_weights
        # One optimizer step for all units, so that the iteration count,
        # learning-rate schedules and global clipping behave as in Keras.
        self.optimizer.apply(gradients, variables)
        self._update_svp_metrics(x, total + head_loss, head_loss, unit_losses)
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    def test_step(self, data):
        data = self._assert_valid_batch(data)
        if self.mode != "svp":
            return super().test_step(data)
        self._build_on_first_trace(data)
        x, y, sample_weight = unpack_x_y_sample_weight(data)
        total, head_loss, unit_losses, y_pred = self.svp_forward(
            x, y, sample_weight, training=False
        )
        self._update_svp_metrics(x, total, head_loss, unit_losses)
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)
