"""What the application builders share."""

import inspect

import keras

from keras_svp.layers.unit import normalization_layer
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


def plain_layers(unit_class, make_layer, options, body_args):
    """A unit's body as plain layers: layer -> normalization -> activation.

    Such layers sit where an SVP unit of `unit_class` would (in a stage of
    convolutions, or in the output head) and train with what follows them
    instead of by a local loss.

    Args:
        unit_class: the SVP unit whose body they copy, e.g. `SVPDense`.
        make_layer: called with the resolved body options, returns the
            weighted layer (a `Dense` or `Conv2D`).
        options: the units' options; `body_args` missing from it take
            `unit_class`'s defaults, so the plain layers match the units.
        body_args: the names of the options that shape the body; they must
            include `"normalization"` and `"activation"`.

    Returns:
        A list of Keras layers.
    """
    defaults = inspect.signature(unit_class).parameters
    body = {key: options.get(key, defaults[key].default) for key in body_args}
    layers = [make_layer(body)]
    norm = normalization_layer(body["normalization"], None, None)
    if norm is not None:
        layers.append(norm)
    layers.append(keras.layers.Activation(body["activation"]))
    return layers
