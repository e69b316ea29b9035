"""The running means of every SVP unit's two local losses, as one metric."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_svp")
class UnitLossTracker(keras.metrics.Metric):
    """Running means of each unit's prediction and alignment losses.

    One metric for all units rather than two `keras.metrics.Mean` per unit:
    its state is one `(units, 2)` sum and one count, so that a step updates
    it with one operation, resetting it assigns two variables, and the
    model carries two metric variables instead of four per unit. Keras
    resets the metrics at every `train_on_batch` and syncs every variable
    after it; with a metric per loss, those per-unit costs dominated deep
    models' steps on a GPU. The logs are the same: `result()` is a dict
    with `<unit>_prediction_loss` and `<unit>_alignment_loss` per unit.

    Args:
        unit_names: the SVP units' names, in the order of the chain.
        name: the metric's name.
        dtype: the dtype of its state and results.

    Example:

        >>> tracker = UnitLossTracker(["a", "b"])
        >>> tracker.update_state([(1.0, 0.0), (2.0, 0.5)], sample_weight=2)
        >>> tracker.update_state([(3.0, 0.0), (4.0, 1.5)], sample_weight=2)
        >>> {k: float(v) for k, v in tracker.result().items()}
        {'a_prediction_loss': 2.0, 'a_alignment_loss': 0.0, 'b_prediction_loss': 3.0, 'b_alignment_loss': 1.0}
    """  # noqa: E501

    def __init__(self, unit_names, name="unit_losses", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.unit_names = [str(unit) for unit in unit_names]
        units = len(self.unit_names)
        self.total = self.add_variable(
            shape=(units, 2), initializer="zeros", dtype=self.dtype, name="total"
        )
        self.count = self.add_variable(
            shape=(), initializer="zeros", dtype=self.dtype, name="count"
        )

    def update_state(self, unit_losses, sample_weight=None):
        """Adds one batch's losses.

        Args:
            unit_losses: one `(prediction_loss, alignment_loss)` pair of
                scalars per unit, in the order of `unit_names`.
            sample_weight: the batch's weight in the means (its size, as
                the model passes it); 1 if None.
        """
        if len(unit_losses) != len(self.unit_names):
            raise ValueError(
                f"UnitLossTracker tracks {len(self.unit_names)} units but got "
                f"losses for {len(unit_losses)}; pass one (prediction, "
                "alignment) pair per unit."
            )
        weight = ops.cast(1 if sample_weight is None else sample_weight, self.dtype)
        self.count.assign_add(weight)
        if not unit_losses:
            return
        values = ops.stack(
            [ops.cast(loss, self.dtype) for pair in unit_losses for loss in pair]
        )
        self.total.assign_add(ops.reshape(values, (-1, 2)) * weight)

    def result(self):
        if not self.unit_names:
            return {}
        # One unstack, not an indexing operation per value (eager backends
        # pay for each operation).
        means = ops.unstack(
            ops.reshape(ops.divide_no_nan(self.total, self.count), (-1,))
        )
        names = [
            f"{unit}_{loss}"
            for unit in self.unit_names
            for loss in ("prediction_loss", "alignment_loss")
        ]
        return dict(zip(names, means))

    def get_config(self):
        return {"unit_names": self.unit_names, "name": self.name, "dtype": self.dtype}
