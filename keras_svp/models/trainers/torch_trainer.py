import keras
import torch
from keras.src.trainers.data_adapters.data_adapter_utils import unpack_x_y_sample_weight

from keras_svp.models.trainers.base import SVPTrainerBase


def couples_variables(optimizer):
    """Whether `optimizer`'s update of one variable depends on the others.

    Loss scaling skips the whole step on one non-finite gradient, a global
    norm clip divides by the norm over every gradient, and the moving
    average and gradient accumulation act on all variables in each
    `apply`. Such an optimizer needs every unit's gradients in one `apply`.
    """
    return (
        isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
        or bool(optimizer.global_clipnorm)
        or bool(optimizer.use_ema)
        or bool(optimizer.gradient_accumulation_steps)
    )


class TorchSVPTrainer(SVPTrainerBase):
    """SVP steps on PyTorch: `backward()` per unit on a detached input.

    With an optimizer whose update is per variable (Adam, SGD, AdamW with or
    without `clipnorm`/`clipvalue`, ...), each unit is updated right after
    its own backward pass and its gradients are dropped, so that a step
    never holds more than one unit's gradients and optimizer temporaries
    (PyTorch runs eagerly: what is not referenced is freed). The result is
    the same as one update of all units at the end of the step.
    """

    def train_step(self, data):
        self._raise_for_invalid_batch(data)
        if self.mode != "svp":
            return super().train_step(data)
        x, y, sample_weight = unpack_x_y_sample_weight(data)
        self.zero_grad()
        update = _UnitUpdates(self.optimizer, self.trainable_variables)
        h, previous, total, unit_losses = x, None, 0.0, []
        for index, segment in enumerate(self._svp_units()):
            loss, (h, previous, prediction, alignment, value) = self.unit_forward(
                index, h, y, sample_weight, previous, training=True
            )
            weights = segment.trainable_weights
            if weights:
                # Frees this unit's graph (its saved activations) right away.
                self.optimizer.scale_loss(loss).backward()
                update(weights)
            total = total + value.detach()
            unit_losses.append((prediction.detach(), alignment.detach()))
        head_loss, (y_pred, head_value) = self.head_forward(
            h, y, sample_weight, training=True
        )
        self.optimizer.scale_loss(head_loss).backward()
        update(self.head_weights)
        update.finish()
        head_value = head_value.detach()
        self._update_svp_metrics(x, total + head_value, head_value, unit_losses)
        return self.compute_metrics(x, y, y_pred.detach(), sample_weight=sample_weight)

    def test_step(self, data):
        self._raise_for_invalid_batch(data)
        if self.mode != "svp":
            return super().test_step(data)
        x, y, sample_weight = unpack_x_y_sample_weight(data)
        total, head_loss, unit_losses, y_pred = self.svp_forward(
            x, y, sample_weight, training=False
        )
        self._update_svp_metrics(x, total, head_loss, unit_losses)
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)


class _UnitUpdates:
    """Applies each unit's gradients as they come, as one optimizer step.

    Every `apply` counts an iteration, so the count is taken back before
    each but the first: learning-rate schedules and bias corrections see
    the same step number in every unit, and the step counts once.
    An optimizer that couples variables gets one `apply` in `finish`.
    """

    def __init__(self, optimizer, trainable_variables):
        if not optimizer.built:
            # Built on a first unit's weights alone, it would not know the rest.
            optimizer.build(trainable_variables)
        self.optimizer = optimizer
        self.each_unit = not couples_variables(optimizer)
        self.applied = False
        self.gradients, self.variables = [], []

    def __call__(self, weights):
        gradients = [w.value.grad for w in weights]
        if not self.each_unit:
            self.gradients += gradients
            self.variables += weights
            return
        with torch.no_grad():
            if self.applied:
                # Back to this step's count, which `apply` advances again.
                self.optimizer.iterations.assign_sub(1)
            self.optimizer.apply(gradients, weights)
        self.applied = True
        for w in weights:
            w.value.grad = None

    def finish(self):
        if self.variables:
            with torch.no_grad():
                self.optimizer.apply(self.gradients, self.variables)
