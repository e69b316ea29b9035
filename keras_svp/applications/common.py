"""What the application builders share."""

from keras_svp.models import SVPSequential


def svp_sequential(
    layers, mode, input_shape, input_alignment, seed, name, head_from_projection
):
    """An `SVPSequential` of `layers`, built when `input_shape` is given."""
    model = SVPSequential(
        layers,
        mode=mode,
        input_alignment=input_alignment,
        seed=seed,
        name=name,
        head_from_projection=head_from_projection,
    )
    if input_shape is not None:
        model.build((None, *input_shape))
    return model


def check_int(name, value, minimum=1):
    """Raises unless `value` is an int (not a bool) of at least `minimum`."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name} must be {what}, got {value!r}.")
