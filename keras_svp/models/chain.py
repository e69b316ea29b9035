"""Splitting a chain of layers into SVP units and an output head."""

import dataclasses

from keras_svp.layers.unit import SVPUnit


@dataclasses.dataclass
class UnitSegment:
    """The layers one local loss trains: plain layers, then an SVP unit."""

    layers: list
    svp: SVPUnit

    @property
    def trainable_weights(self):
        return [w for layer in self.layers for w in layer.trainable_weights]


def has_trainable_weights(layer):
    return bool(layer.trainable_weights)


def split_units(layers):
    """Groups `layers` into `UnitSegment`s and the head's layers.

    Each segment ends in an `SVPUnit` and holds the plain layers before it
    (their weights, if any, are trained by that unit's loss). The layers
    after the last unit form the head: weightless layers and exactly one
    trainable layer, the output head, trained by the compiled loss. That
    layer may be a `keras.Sequential` of several layers (a deeper head);
    requiring it to be one layer keeps a hidden layer that was meant to be
    an SVP unit from being trained by the head's loss unnoticed.

    Call on built layers: whether a layer has weights is known only then.
    """
    segments, pending = [], []
    for layer in layers:
        pending.append(layer)
        if isinstance(layer, SVPUnit):
            segments.append(UnitSegment(pending, layer))
            pending = []
    if not segments:
        raise ValueError(
            "An SVP model needs at least one SVP unit (SVPDense, SVPConv2D or "
            "SVPBlock) before its output head, but none of its layers "
            f"{[layer.name for layer in layers]} is one. Replace hidden "
            "layers with SVP units, or use mode='bp' with a plain keras.Model."
        )
    trainable = [layer for layer in pending if has_trainable_weights(layer)]
    if not trainable:
        raise ValueError(
            "An SVP model needs an output head after its last SVP unit "
            f"'{segments[-1].svp.name}', e.g. keras.layers.Dense(num_classes), "
            "trained by the compiled loss. No trainable layer follows it."
        )
    if len(trainable) > 1:
        raise ValueError(
            "Only one trainable layer, the output head, may follow the last "
            f"SVP unit '{segments[-1].svp.name}', but "
            f"{[layer.name for layer in trainable]} do. Make the extra layers "
            "SVP units (SVPDense, or SVPBlock to wrap them), put them "
            "before an SVP unit so that its local loss trains them, or wrap "
            "the head's layers in one keras.Sequential to train them "
            "together as the output head."
        )
    return segments, pending, trainable[0]
