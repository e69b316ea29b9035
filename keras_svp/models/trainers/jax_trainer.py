import jax
import keras
from keras.src.trainers.data_adapters.data_adapter_utils import unpack_x_y_sample_weight

from keras_svp.models.trainers.base import SVPTrainerBase
from keras_svp.models.trainers.base import computed_after


class JAXSVPTrainer(SVPTrainerBase):
    """SVP steps on JAX: `value_and_grad` per unit inside the jitted step.

    The step is stateless: every unit runs in a `StatelessScope` that maps
    the model's variables to the values threaded through the step, and the
    unit's non-trainable updates (BatchNorm statistics, dropout seeds) are
    read back from the scope and passed on.
    """

    def _stateless_run(self, fn, trainable, non_trainable, optimizer=None):
        """Runs `fn()` against the given variable values.

        Returns `(fn's result, updated non-trainable values)`.
        """
        mapping = list(zip(self.trainable_variables, trainable))
        mapping += list(zip(self.non_trainable_variables, non_trainable))
        if optimizer is not None:
            mapping += list(zip(self.optimizer.variables, optimizer))
        with keras.StatelessScope(state_mapping=mapping, collect_losses=True) as scope:
            result = fn()
        updated = []
        for variable, value in zip(self.non_trainable_variables, non_trainable):
            new_value = scope.get_current_value(variable)
            updated.append(value if new_value is None else new_value)
        return result, updated

    def _variable_indices(self, weights):
        position = {id(v): i for i, v in enumerate(self.trainable_variables)}
        return [position[id(w)] for w in weights]

    @staticmethod
    def _computed_after(tensors, trainable, indices):
        """`trainable` with the values at `indices` tied to `tensors`.

        What a unit reads of its weights (see `computed_after`); the
        optimizer updates the untied values.
        """
        if tensors is None:
            return trainable
        values = list(trainable)
        tied = computed_after(tensors, *[values[i] for i in indices])
        for i, value in zip(indices, tied):
            values[i] = value
        return values

    def _stateless_grad(self, fn, indices, trainable, non_trainable, optimizer):
        """`value_and_grad` of `fn`'s loss w.r.t. the variables at `indices`.

        `fn()` returns `(loss, aux)`. Returns `(aux, non_trainable,
        gradients)` with gradients aligned with `indices`.
        """

        def scaled_loss(selected, non_trainable):
            values = list(trainable)
            for i, value in zip(indices, selected):
                values[i] = value

            def run():
                loss, aux = fn()
                return self.optimizer.scale_loss(loss), aux

            (scaled, aux), updated = self._stateless_run(
                run, values, non_trainable, optimizer
            )
            return scaled, (aux, updated)

        selected = [trainable[i] for i in indices]
        (_, (aux, non_trainable)), grads = jax.value_and_grad(
            scaled_loss, has_aux=True
        )(selected, non_trainable)
        return aux, non_trainable, grads

    # Batches are checked on the host, before the compiled step: an error
    # raised inside it would come after JAX has donated (deleted) the state
    # it was given, and Keras' fit keeps the state only in a local variable
    # until the epoch ends, so the model would lose its weights.
    def make_train_function(self, force=False):
        super().make_train_function(force)
        self.train_function = self._checking(self.train_function)

    def make_test_function(self, force=False):
        super().make_test_function(force)
        self.test_function = self._checking(self.test_function)

    def _checking(self, step_function):
        if getattr(step_function, "checks_batches", False):
            return step_function

        def checked(state, iterator):
            def batches():
                for data in iterator:
                    try:
                        self._raise_for_invalid_batch(data)
                    except ValueError:
                        # The model keeps the state from before this step
                        # (or group of `steps_per_execution` steps).
                        self._restore_state(state)
                        raise
                    yield data

            return step_function(state, batches())

        checked.checks_batches = True
        return checked

    def _restore_state(self, state):
        names = (
            ("trainable_variables", "non_trainable_variables")
            + (("optimizer_variables",) if len(state) == 4 else ())
            + ("metrics_variables",)
        )
        self._jax_state = dict(zip(names, state))
        self._jax_state_synced = False
        self.jax_state_sync()

    def train_step(self, state, data):
        if self.mode != "svp":
            return super().train_step(state, data)
        trainable, non_trainable, optimizer, metrics = state
        x, y, sample_weight = unpack_x_y_sample_weight(data)
        gradients = [jax.numpy.zeros_like(v) for v in trainable]
        unit_losses = []
        h, previous, total = x, None, 0.0
        grads = None
        for index, segment in enumerate(self._svp_units()):
            indices = self._variable_indices(segment.trainable_weights)

            def unit_loss(index=index, h=h, previous=previous):
                return self.unit_forward(
                    index, h, y, sample_weight, previous, training=True
                )

            aux, non_trainable, grads = self._stateless_grad(
                unit_loss,
                indices,
                self._computed_after(grads, trainable, indices),
                non_trainable,
                optimizer,
            )
            # The next unit starts after this unit's backward pass, so XLA
            # frees this unit's activations first instead of running forward
            # passes ahead and keeping several units' activations alive. The
            # barrier has the gradients finish together; the data dependency
            # orders the next unit after them (the barrier alone did not).
            aux, grads = jax.lax.optimization_barrier((aux, grads))
            h, previous, prediction, alignment, value = aux
            h, previous = computed_after(grads, h, previous)
            for i, grad in zip(indices, grads):
                gradients[i] = grad
            total = total + value
            unit_losses.append((prediction, alignment))

        head_indices = self._variable_indices(self.head_weights)

        def head_loss_fn(h=h):
            return self.head_forward(h, y, sample_weight, training=True)

        (y_pred, head_loss), non_trainable, grads = self._stateless_grad(
            head_loss_fn,
            head_indices,
            self._computed_after(grads, trainable, head_indices),
            non_trainable,
            optimizer,
        )
        for i, grad in zip(head_indices, grads):
            gradients[i] = grad
        # One optimizer step for all units, so that the iteration count,
        # learning-rate schedules and global clipping behave as in Keras.
        trainable, optimizer = self.optimizer.stateless_apply(
            optimizer, gradients, trainable
        )
        logs, metrics = self._stateless_metrics(
            metrics,
            x,
            y,
            y_pred,
            sample_weight,
            total + head_loss,
            head_loss,
            unit_losses,
        )
        return logs, (trainable, non_trainable, optimizer, metrics)

    def test_step(self, state, data):
        if self.mode != "svp":
            return super().test_step(state, data)
        trainable, non_trainable, metrics = state
        x, y, sample_weight = unpack_x_y_sample_weight(data)
        (total, head_loss, unit_losses, y_pred), non_trainable = self._stateless_run(
            lambda: self.svp_forward(x, y, sample_weight, training=False),
            trainable,
            non_trainable,
        )
        logs, metrics = self._stateless_metrics(
            metrics, x, y, y_pred, sample_weight, total, head_loss, unit_losses
        )
        return logs, (trainable, non_trainable, metrics)

    def _stateless_metrics(
        self, metrics, x, y, y_pred, sample_weight, total, head_loss, unit_losses
    ):
        mapping = list(zip(self.metrics_variables, metrics))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            self._update_svp_metrics(x, total, head_loss, unit_losses)
            logs = self.compute_metrics(x, y, y_pred, sample_weight)
        updated = []
        for variable in self.metrics_variables:
            new_value = scope.get_current_value(variable)
            updated.append(variable.value if new_value is None else new_value)
        return logs, updated
