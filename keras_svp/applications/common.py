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
        make_layer: makes the weighted layer (e.g. a partial `Dense` or
            `Conv2D`); it gets the body options as keyword arguments, all
            but `"normalization"` and `"activation"`.
        options: the units' options; `body_args` missing from it take
            `unit_class`'s defaults, so the plain layers match the units.
        body_args: the names of the options that shape the body: the
            unit's `"normalization"` and `"activation"`, and the weighted
            layer's arguments of the same name as the unit's.

    Returns:
        A list of Keras layers.
    """
    defaults = inspect.signature(unit_class).parameters
    body = {key: options.get(key, defaults[key].default) for key in body_args}
    normalization, activation = body.pop("normalization"), body.pop("activation")
    layers = [make_layer(**body)]
    norm = normalization_layer(normalization, None, None)
    if norm is not None:
        layers.append(norm)
    layers.append(keras.layers.Activation(activation))
    return layers
