import torch
from keras.src.trainers.data_adapters.data_adapter_utils import unpack_x_y_sample_weight

from keras_svp.models.trainers.base import SVPTrainerBase


class TorchSVPTrainer(SVPTrainerBase):
    """SVP steps on PyTorch: `backward()` per unit on a detached input."""

    def train_step(self, data):
        self._raise_for_invalid_batch(data)
        if self.mode != "svp":
            return super().train_step(data)
        x, y, sample_weight = unpack_x_y_sample_weight(data)
        self.zero_grad()
        gradients, variables, unit_losses = [], [], []
        h, previous, total = x, None, 0.0
        for index, segment in enumerate(self._svp_units()):
            loss, (h, previous, prediction, alignment, value) = self.unit_forward(
                index, h, y, sample_weight, previous, training=True
            )
            weights = segment.trainable_weights
            if weights:
                # Frees this unit's graph (its saved activations) right away.
                self.optimizer.scale_loss(loss).backward()
                gradients += [w.value.grad for w in weights]
                variables += weights
            total = total + value.detach()
            unit_losses.append((prediction.detach(), alignment.detach()))
        head_loss, (y_pred, head_value) = self.head_forward(
            h, y, sample_weight, training=True
        )
        head_weights = self.head_weights
        self.optimizer.scale_loss(head_loss).backward()
        gradients += [w.value.grad for w in head_weights]
        variables += head_weights
        with torch.no_grad():
            self.optimizer.apply(gradients, variables)
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
