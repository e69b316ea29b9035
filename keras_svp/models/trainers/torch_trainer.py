import keras
import torch
from keras.src.trainers.data_adapters.data_adapter_utils import unpack_x_y_sample_weight

from keras_svp.models.trainers.base import SVPTrainerBase
from keras_svp.models.trainers.unit_updates import UnitUpdates


class TorchSVPTrainer(SVPTrainerBase):
    """SVP steps on PyTorch: `backward()` per unit on a detached input.

    Each unit is updated right after its own backward pass and its
    gradients are dropped (`UnitUpdates`), so that a step holds one unit's
    gradients and optimizer temporaries, not all of them.
    """

    def train_step(self, data):
        self._raise_for_invalid_batch(data)
        if self.mode != "svp":
            return super().train_step(data)
        x, y, sample_weight = unpack_x_y_sample_weight(data)
        # Every unit reads the labels: on the device once, not once per unit.
        y, sample_weight = keras.tree.map_structure(
            keras.ops.convert_to_tensor, (y, sample_weight), none_is_leaf=False
        )
        self.zero_grad()
        update = UnitUpdates(self.optimizer, self.trainable_variables)
        h, previous, total, unit_losses = x, None, 0.0, []
        for index, segment in enumerate(self._svp_units()):
            loss, (h, previous, prediction, alignment, value) = self.unit_forward(
                index, h, y, sample_weight, previous, training=True
            )
            weights = segment.trainable_weights
            if weights:
                # Frees this unit's graph (its saved activations) right away.
                self.optimizer.scale_loss(loss).backward()
                self._update(update, weights)
            total = total + value.detach()
            unit_losses.append((prediction.detach(), alignment.detach()))
        head_loss, (y_pred, head_value) = self.head_forward(
            h, y, sample_weight, training=True
        )
        self.optimizer.scale_loss(head_loss).backward()
        self._update(update, self.head_weights)
        with torch.no_grad():
            update.finish()
        head_value = head_value.detach()
        self._update_svp_metrics(x, total + head_value, head_value, unit_losses)
        return self.compute_metrics(x, y, y_pred.detach(), sample_weight=sample_weight)

    @staticmethod
    def _update(update, weights):
        with torch.no_grad():
            if update([w.value.grad for w in weights], weights):
                # Eager execution frees what is no longer referenced.
                for w in weights:
                    w.value.grad = None

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
