import contextlib

import keras
import tensorflow as tf
from keras.src.trainers.data_adapters.data_adapter_utils import unpack_x_y_sample_weight

from keras_svp.models.trainers.base import SVPTrainerBase
from keras_svp.models.trainers.base import computed_after
from keras_svp.models.trainers.unit_updates import UnitUpdates


class TensorFlowSVPTrainer(SVPTrainerBase):
    """SVP steps on TensorFlow: one `GradientTape` per unit.

    Each unit's update is applied right after its gradients (`UnitUpdates`)
    and the next unit waits for it, so its gradients are freed first. Under
    a `tf.distribute` strategy with several replicas all units' gradients
    go through one `apply`, as Keras' cross-replica update expects.
    """

    def _build_before_fit(self, input_shape):
        # Variables must be created in the model's tf.distribute strategy.
        with self.distribute_strategy.scope():
            self.build(input_shape)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Without a distribution strategy Keras' TF trainer creates the
        # optimizer's and metrics' variables while tracing the first step,
        # and a tf.function that creates variables is traced twice, which
        # doubles the first step's tracing time. Build them before, as
        # Keras does on JAX and PyTorch and under a strategy.
        if self._distribute_strategy is not None:
            return super()._maybe_symbolic_build(iterator, data_batch)
        with self.distribute_strategy.scope():
            self._symbolic_build(iterator=iterator, data_batch=data_batch)

    def _cross_replica_batch(self, features, previous):
        # Under a tf.distribute strategy each replica holds part of the batch,
        # but the alignment loss compares every pair of samples: gather the
        # whole batch. Only this replica's rows carry gradients; summed
        # across replicas, as the optimizer does, they give the gradient of
        # the whole batch's alignment loss. This replica's rows go first (the
        # loss does not depend on the order of the samples).
        context = tf.distribute.get_replica_context()
        if previous is None or context is None or context.num_replicas_in_sync == 1:
            return features, previous
        size = tf.shape(features)[:1]
        sizes = context.all_gather(size, axis=0)
        start = tf.reduce_sum(sizes[: context.replica_id_in_sync_group])
        rows = tf.range(tf.reduce_sum(sizes))
        others = tf.logical_or(rows < start, rows >= start + size[0])

        def whole_batch(mine):
            everyone = context.all_gather(tf.stop_gradient(mine), axis=0)
            return tf.concat([mine, tf.boolean_mask(everyone, others)], axis=0)

        return whole_batch(features), whole_batch(previous)

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

    @contextlib.contextmanager
    def _weights_computed_after(self, done, weights, tape):
        """Runs a unit on its weights, tied under XLA to `done`.

        Under XLA the unit reads its weights as values tied to the previous
        unit's update (see `computed_after`): a `StatelessScope` maps its
        variables to them, and the other state its call updates
        (normalization statistics, random seeds) is assigned after.

        Yields:
            What to take the unit's gradients with respect to: the tied
            values, or `weights` themselves outside XLA.
        """
        if done is None or not weights or not self.jit_compile:
            yield weights
            return
        values = list(computed_after(done, *[w.value for w in weights]))
        tape.watch(values)
        mapping = list(zip(weights, values))
        with keras.StatelessScope(state_mapping=mapping, collect_losses=True) as scope:
            yield values
        for variable in self.non_trainable_variables:
            value = scope.get_current_value(variable)
            if value is not None:
                variable.assign(value)

    def train_step(self, data):
        data = self._assert_valid_batch(data)
        if self.mode != "svp":
            return super().train_step(data)
        self._build_on_first_trace(data)
        x, y, sample_weight = unpack_x_y_sample_weight(data)
        update = UnitUpdates(
            self.optimizer,
            self.trainable_variables,
            each_unit=self.distribute_strategy.num_replicas_in_sync == 1,
        )
        unit_losses = []
        h, previous, total, done = x, None, 0.0, None
        for index, segment in enumerate(self._svp_units()):
            weights = segment.trainable_weights
            # A fresh tape per unit: it records this unit alone and is
            # released before the next unit runs.
            with tf.GradientTape() as tape:
                with self._weights_computed_after(done, weights, tape) as sources:
                    loss, aux = self.unit_forward(
                        index, h, y, sample_weight, previous, training=True
                    )
                h, previous, prediction, alignment, value = aux
                scaled = self.optimizer.scale_loss(loss)
            if weights:
                unit_gradients = tape.gradient(scaled, sources)
                done = unit_gradients
                if update(unit_gradients, weights):
                    # Reads of the updated weights, ordered after the update.
                    done = [tf.identity(w.value) for w in weights]
                # The next unit waits for this unit's gradients (or update):
                # otherwise the graph executor may run forward passes ahead
                # and keep several units' activations alive at once.
                with tf.control_dependencies(done):
                    h, previous = tf.identity(h), tf.identity(previous)
                if self.jit_compile:
                    # XLA ignores the control dependencies.
                    h, previous = computed_after(done, h, previous)
            total += value
            unit_losses.append((prediction, alignment))
        head_weights = self.head_weights
        with tf.GradientTape() as tape:
            with self._weights_computed_after(done, head_weights, tape) as sources:
                head_loss, (y_pred, head_value) = self.head_forward(
                    h, y, sample_weight, training=True
                )
            scaled = self.optimizer.scale_loss(head_loss)
        update(tape.gradient(scaled, sources), head_weights)
        update.finish()
        self._update_svp_metrics(x, total + head_value, head_value, unit_losses)
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
