"""What the application builders share."""

from keras_svp.models import SVPSequential


def svp_sequential(layers, mode, input_shape, input_alignment, seed, name):
    """An `SVPSequential` of `layers`, built when `input_shape` is given."""
    model = SVPSequential(
        layers, mode=mode, input_alignment=input_alignment, seed=seed, name=name
    )
    if input_shape is not None:
        model.build((None, *input_shape))
    return model


def check_positive_int(name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
