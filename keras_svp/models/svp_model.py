"""SVPModel and SVPSequential: Keras models trained unit by unit."""

import contextlib

import keras
from keras import ops
from keras.src.losses.loss import scale_loss_for_distribution
from keras.src.losses.loss import unscale_loss_for_distribution

from keras_svp.layers.unit import SVPUnit
from keras_svp.layers.unit import call_layer
from keras_svp.models import validation
from keras_svp.models.chain import split_units
from keras_svp.models.head_start import HeadStart
from keras_svp.models.trainers import SVPTrainer
from keras_svp.models.unit_loss_tracker import UnitLossTracker
from keras_svp.projections import RandomProjection
from keras_svp.projections import draw_seed

MODES = ("svp", "bp")
HEAD_STARTS = ("auto", True, False)
_SEED_STATE_PREFIX = "seed_generator_state_"


def _output_units(layer):
    """The width of a `Dense`-like head, also inside a nested `Sequential`."""
    units = getattr(layer, "units", None)
    if isinstance(units, int):
        return units
    for inner in reversed(getattr(layer, "layers", None) or []):
        units = _output_units(inner)
        if units is not None:
            return units
    return None


def _extra_losses(layers):
    """The layers' own losses (regularizers), in float32."""
    total = ops.zeros((), "float32")
    for layer in layers:
        for extra in layer.losses:
            total = total + ops.cast(extra, "float32")
    return total


@keras.saving.register_keras_serializable(package="keras_svp")
class SVPModel(SVPTrainer):
    """A Keras model whose chain of SVP units trains from local losses.

    With `mode="svp"`, `fit` trains every SVP unit from its own local loss
    (prediction loss on its fixed projection plus `alignment_weight` times
    the alignment loss with the previous unit), with gradients stopped
    between units and one gradient computation per unit. The output head,
    the last trainable layer, is trained by the compiled loss on the
    detached output of the last unit. With `mode="bp"` the very same model
    trains end to end on the compiled loss, for comparisons.

    The training step walks the model's *layer chain*: `self.layers` in the
    order they were assigned. A subclass whose `call` applies its layers in
    another order, or not as a chain, must override `layer_chain`. Plain
    layers without weights may sit anywhere; a plain layer with trainable
    weights is trained by the local loss of the next SVP unit; after the last
    SVP unit only the head may have trainable weights.

    `fit` logs `loss` (the sum of every unit's local loss and the head's
    loss), `head_loss`, the compiled metrics on the head's output, and for
    every SVP unit `<name>_prediction_loss` and `<name>_alignment_loss`.
    `evaluate` reports the same quantities without projection dropout.

    Args:
        num_classes: number of classes; `None` takes the head's `units`.
        mode: `"svp"` (local training) or `"bp"` (backpropagation).
        input_alignment: if True, the first unit aligns with a fixed random
            projection of its input; if False (default) the first unit has
            no alignment term.
        seed: seed of the input projection; `None` draws one.
        head_from_projection: in SVP mode, whether a `Dense(num_classes)`
            head that reads the last unit's activation as its projection
            does (flattened, or its class or mean token) starts with the
            last unit's projection matrix as its kernel, that is as the
            classifier the unit's local loss trains it for. `"auto"`
            (default) does so wherever the head has that form (and was not
            built before the model), `True` raises an error that says why
            where it cannot, `False` keeps the head's own initializer. In
            BP mode the head always keeps its initializer.
        **kwargs: `keras.Model` arguments such as `name`.

    Returns:
        Called on inputs, the output of `call` (the head's output); `fit`
        returns a `keras.callbacks.History` with the logs above.

    Example:

        A subclassed model; its layers are assigned in the order `call`
        applies them:

        >>> import numpy as np
        >>> class MLP(SVPModel):
        ...     def __init__(self, **kwargs):
        ...         super().__init__(**kwargs)
        ...         self.hidden = SVPDense(32)
        ...         self.head = keras.layers.Dense(10)
        ...     def call(self, inputs, training=None):
        ...         return self.head(self.hidden(inputs, training=training))
        >>> model = MLP(num_classes=10, mode="svp")
        >>> model.compile(
        ...     "adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        ... )
        >>> x = np.random.rand(16, 8).astype("float32")
        >>> y = np.random.randint(0, 10, size=16)
        >>> history = model.fit(x, y, epochs=1, verbose=0)
        >>> "head_loss" in history.history
        True
        >>> model.predict(x, verbose=0).shape
        (16, 10)
    """

    def __init__(
        self,
        num_classes=None,
        mode="svp",
        input_alignment=False,
        seed=None,
        head_from_projection="auto",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}.")
        # `is`, not `in`: 1 == True would pass.
        if not any(head_from_projection is start for start in (True, False)) and (
            head_from_projection != "auto"
        ):
            raise ValueError(
                f"head_from_projection must be one of {HEAD_STARTS}, got "
                f"{head_from_projection!r}."
            )
        if num_classes is not None and (
            not isinstance(num_classes, int) or num_classes < 1
        ):
            raise ValueError(
                f"num_classes must be a positive integer, got {num_classes!r}."
            )
        self._mode = mode
        self.num_classes = num_classes
        self.input_alignment = bool(input_alignment)
        self.seed = draw_seed() if seed is None else int(seed)
        self.head_from_projection = head_from_projection
        self.input_projection = None
        self._units = None
        self._head_layers = None
        self._unit_trackers = None
        self._head_loss_tracker = None

    @property
    def mode(self):
        """`"svp"` or `"bp"`; fixed at construction (it shapes the metrics)."""
        return self._mode

    def _lock_state(self):
        # Like keras.Sequential: metrics trackers are added at compile time,
        # possibly after build.
        pass

    def layer_chain(self):
        """The layers the SVP training step applies, in order."""
        return [layer for layer in self.layers if layer is not self.input_projection]

    # Building and validation ----------------------------------------------

    def _resolve_num_classes(self):
        if self.num_classes is not None:
            return self.num_classes
        for layer in reversed(self.layer_chain()):
            if isinstance(layer, SVPUnit):
                break
            units = _output_units(layer)
            if units is not None:
                return units
        raise ValueError(
            "Could not infer the number of classes from the output head. "
            "Pass num_classes=... to the model."
        )

    def _prepare_units(self):
        """Gives every SVP unit its projection size before it is built."""
        num_classes = self._resolve_num_classes()
        for layer in self.layer_chain():
            if not isinstance(layer, SVPUnit):
                continue
            if layer.projection_dim is None:
                layer.projection_dim = num_classes
            elif layer.projection_dim < num_classes:
                raise ValueError(
                    f"SVP unit '{layer.name}' has projection_dim="
                    f"{layer.projection_dim}, fewer than num_classes="
                    f"{num_classes}: its local head cannot predict every "
                    "class. Use projection_dim >= num_classes, or None for "
                    "num_classes."
                )
        return num_classes

    def build(self, input_shape):
        num_classes = self._prepare_units()
        chain = self.layer_chain()
        start = self._head_start(chain)
        activation_shape = None  # the last unit's
        x = keras.KerasTensor(input_shape, dtype=self.compute_dtype)
        for layer in chain:
            if isinstance(layer, SVPUnit) and self.input_alignment:
                if self.input_projection is None:
                    self.input_projection = RandomProjection(
                        layer.projection_dim,
                        dropout=0.0,
                        seed=self.seed,
                        name="input_projection",
                    )
                    self.input_projection.build(x.shape)
            building_head = start is not None and layer is start.head
            if building_head:
                start.check(activation_shape, x.shape, num_classes)
            with (
                start.initializer()
                if building_head and start.obstacle is None
                else contextlib.nullcontext()
            ):
                x = layer(x)
            if isinstance(layer, SVPUnit):
                activation_shape = x.shape
        if x.shape[-1] != num_classes:
            raise ValueError(
                f"The model's output head '{chain[-1].name}' "
                f"outputs {x.shape[-1]} values per sample but num_classes="
                f"{num_classes}. Make the head Dense({num_classes}) or fix "
                "num_classes."
            )
        self.num_classes = num_classes
        self._units, self._head_layers, _ = split_units(chain)
        if start is not None and start.obstacle and self.head_from_projection is True:
            raise ValueError(
                "head_from_projection=True starts the output head at the last "
                f"unit's projection, but {start.obstacle}. Make the head "
                f"keras.layers.Dense({num_classes}) reading the last unit's "
                "activation as its projection does (e.g. after Flatten), or "
                "pass head_from_projection='auto' (only where it can) or False."
            )
        self._input_shape = tuple(input_shape)
        self.built = True

    def _head_start(self, chain):
        """Where the head starts at the last unit's projection, or None.

        A `Dense` head that starts at random learns from activations that
        move while it trains, and on the small CNN ended below a fresh
        linear probe of them; started at the projection, it begins as the
        classifier the unit's activations are trained for and learns what
        it can add (see the benchmarks). BP mode, `head_from_projection=
        False` and a second `build` leave the head as it is.
        """
        if (
            self.mode != "svp"
            or self.head_from_projection is False
            or self.built
            or not any(isinstance(layer, SVPUnit) for layer in chain)
        ):
            return None
        return HeadStart(chain)

    def _svp_units(self):
        if self._units is None:
            raise ValueError(
                "The model is not built yet: call it on data, or fit it, first."
            )
        return self._units

    def _input_shape_message(self, shape):
        expected = (None,) + tuple(self._input_shape[1:])
        return (
            f"Model '{self.name}' was built for inputs of shape {expected}, "
            f"but got an input of {shape}. Reshape the data, or build "
            "a new model for this shape."
        )

    def _check_input(self, x):
        """Raises for an input whose static shape does not fit the model.

        Returns `(ok, message)` checks for the sizes that are unknown until
        the step runs (a TensorFlow step traced for a relaxed shape).
        """
        expected = getattr(self, "_input_shape", None)
        if expected is None or not hasattr(x, "shape"):
            return []
        try:
            shape = tuple(x.shape)
        except ValueError:  # a TF tensor of unknown rank: checked before fit
            return []
        if len(shape) != len(expected) or any(
            e is not None and s is not None and e != s
            for e, s in zip(expected[1:], shape[1:])
        ):
            raise ValueError(self._input_shape_message(f"shape {shape}"))
        return [
            (
                ops.equal(ops.shape(x)[axis], size),
                self._input_shape_message("another shape"),
            )
            for axis, size in enumerate(expected[1:], start=1)
            if size is not None and shape[axis] is None
        ]

    # Compile and metrics ---------------------------------------------------

    def compile(self, optimizer="rmsprop", loss=None, **kwargs):
        if self.mode == "svp" and loss is None:
            raise ValueError(
                "An SVP model trains its output head with the compiled loss; "
                "pass loss=..., e.g. 'sparse_categorical_crossentropy'."
            )
        super().compile(optimizer=optimizer, loss=loss, **kwargs)
        if self.mode == "svp" and self._unit_trackers is None:
            names = [
                layer.name for layer in self.layer_chain() if isinstance(layer, SVPUnit)
            ]
            self._unit_trackers = UnitLossTracker(names)
            self._head_loss_tracker = keras.metrics.Mean(name="head_loss")

    def compile_from_config(self, config):
        # Keras skips compiling a loaded model whose class overrides
        # `compile`; this one only adds checks and trackers, so the saved
        # optimizer (and its state) and loss come back as saved.
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def fit(self, x=None, y=None, *args, **kwargs):
        validation.check_array_inputs(x)
        validation_data = kwargs.get("validation_data")
        if isinstance(validation_data, (tuple, list)):
            validation.check_array_inputs(validation_data[0])
        if not self.built:
            # Callbacks such as BackupAndRestore restore weights before the
            # first step, so the model must exist before Keras' fit starts
            # (Keras' TensorFlow trainer would build it only while tracing).
            shape = validation.input_shape_of(x)
            if shape is not None:
                self._build_before_fit(shape)
        self._check_input(x)
        self._check_labels(y, kwargs.get("validation_data"))
        return super().fit(x, y, *args, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        validation.check_array_inputs(x)
        self._check_input(x)
        self._check_labels(y)
        return super().evaluate(x, y, *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        self._check_input(x)
        return super().predict(x, *args, **kwargs)

    def _check_labels(self, y, validation_data=None):
        num_classes = self._resolve_num_classes()
        validation.check_array_labels(y, num_classes)
        if isinstance(validation_data, (tuple, list)) and len(validation_data) > 1:
            validation.check_array_labels(validation_data[1], num_classes)

    def check_batch(self, x, y):
        """Checks one batch inside the training or evaluation step.

        Shapes are checked now (while the step is traced, on compiled
        backends). Returns the checks that need the batch's values, a list
        of `(ok, message)` with `ok` a boolean scalar tensor, for the
        backend's trainer to turn into an error.
        """
        checks = []
        for array in keras.tree.flatten(x):
            checks += self._check_input(array)
        self._check_label_shape(y)
        num_classes = self._resolve_num_classes()
        return checks + validation.batch_value_checks(x, y, num_classes)

    # Keras may compute metrics and the loss on a symbolic batch before the
    # first step (to build them): check the labels' shape there too, before
    # a loss or metric rejects them in its own words.
    def compute_loss(self, x=None, y=None, y_pred=None, *args, **kwargs):
        self._check_label_shape(y)
        return super().compute_loss(x, y, y_pred, *args, **kwargs)

    def compute_metrics(self, x, y, y_pred, *args, **kwargs):
        self._check_label_shape(y)
        return super().compute_metrics(x, y, y_pred, *args, **kwargs)

    def _check_label_shape(self, y):
        if y is not None and hasattr(y, "shape"):
            validation.check_label_shape(y, self._resolve_num_classes())

    @property
    def head_weights(self):
        """Trainable weights of the head, trained by the compiled loss."""
        return [w for layer in self._head_layers for w in layer.trainable_weights]

    def _update_svp_metrics(self, x, total_loss, head_loss, unit_losses):
        """Records one batch's losses in the trackers behind the logs."""
        first_input = next(i for i in keras.tree.flatten(x) if i is not None)
        batch_size = ops.shape(first_input)[0]
        self._loss_tracker.update_state(total_loss, sample_weight=batch_size)
        self._head_loss_tracker.update_state(head_loss, sample_weight=batch_size)
        self._unit_trackers.update_state(unit_losses, sample_weight=batch_size)

    # The local computations the backend trainers differentiate -----------

    def unit_forward(self, index, x, y, sample_weight, previous, training):
        """Runs unit `index` on a detached input and computes its local loss.

        Args:
            index: position of the unit in the chain.
            x: the unit's input (gradients are stopped here).
            y: the batch's labels.
            sample_weight: the batch's sample weights, or None.
            previous: the previous unit's alignment features, or None.
            training: whether dropout and batch statistics are in training
                mode.

        Returns:
            `(loss, (h, features, prediction_loss, alignment_loss, value))`
            where `loss` is the unit's local loss to differentiate, `value`
            the same loss for the logs, `h` the unit's activation and
            `features` what the next unit aligns with. The two differ only
            under a `tf.distribute` strategy, where each replica sees part of
            the batch: its per-sample terms are divided by the number of
            replicas (the gradients are summed across them), while the
            alignment term already covers the whole batch.
        """
        segment = self._svp_units()[index]
        unit = segment.svp
        x = ops.stop_gradient(ops.convert_to_tensor(x))
        if index == 0:
            self._check_input(x)
            if self.input_projection is not None:
                previous = (
                    self.input_projection(x, training=False)
                    if unit.alignment_target == "projection"
                    else self.input_projection.features(x)
                )
        h = x
        for layer in segment.layers:
            h = call_layer(layer, h, training)
        z = unit.project(h, training=training)
        features = unit.alignment_features(h, z)
        prediction, alignment = unit.local_losses(
            y, z, *self._cross_replica_batch(features, previous), sample_weight
        )
        per_sample = prediction + _extra_losses(segment.layers)
        loss = (
            scale_loss_for_distribution(per_sample) + unit.alignment_weight * alignment
        )
        value = per_sample + unit.alignment_weight * alignment
        return loss, (h, ops.stop_gradient(features), prediction, alignment, value)

    def head_forward(self, h, y, sample_weight, training):
        """The head on the detached last activation.

        Returns `(loss, (y_pred, value))`: the loss to differentiate and the
        same for the logs (see `unit_forward`).
        """
        y_pred = ops.stop_gradient(h)
        for layer in self._head_layers:
            y_pred = call_layer(layer, y_pred, training)
        # The compiled loss is already scaled for tf.distribute, like Keras'.
        compiled = ops.cast(self._compile_loss(y, y_pred, sample_weight), "float32")
        extra = _extra_losses(self._head_layers)
        loss = compiled + scale_loss_for_distribution(extra)
        value = unscale_loss_for_distribution(compiled) + extra
        return loss, (y_pred, value)

    def svp_forward(self, x, y, sample_weight, training=False):
        """All units and the head without gradients, for evaluation.

        Returns `(total_loss, head_loss, unit_losses, y_pred)`.
        """
        h, previous, total, unit_losses = x, None, 0.0, []
        for index in range(len(self._svp_units())):
            _, (h, previous, prediction, alignment, value) = self.unit_forward(
                index, h, y, sample_weight, previous, training
            )
            total = total + value
            unit_losses.append((prediction, alignment))
        _, (y_pred, head_loss) = self.head_forward(h, y, sample_weight, training)
        return total + head_loss, head_loss, unit_losses, y_pred

    # Saving -------------------------------------------------------------

    def _seed_generators_in_layers(self):
        return [
            generator
            for layer in self._flatten_layers(include_self=True)
            for generator in layer._seed_generators
        ]

    def save_own_variables(self, store):
        # Keras saves weights but not the state of the layers' random seed
        # generators (projection dropout, Dropout layers): without it a
        # loaded or resumed model draws other masks than the saved one would.
        super().save_own_variables(store)
        for i, generator in enumerate(self._seed_generators_in_layers()):
            store[f"{_SEED_STATE_PREFIX}{i}"] = generator.state

    def load_own_variables(self, store):
        keys = list(store.keys())
        for i, generator in enumerate(self._seed_generators_in_layers()):
            key = f"{_SEED_STATE_PREFIX}{i}"
            if key in keys:  # files saved by plain Keras load too
                generator.state.assign(store[key])
        super().load_own_variables(
            {key: store[key] for key in keys if not key.startswith(_SEED_STATE_PREFIX)}
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "mode": self.mode,
                "input_alignment": self.input_alignment,
                "seed": self.seed,
                "head_from_projection": self.head_from_projection,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_svp")
class SVPSequential(SVPModel):
    """A linear stack of layers trained with SVP (or BP, for comparison).

    Args:
        layers: list of Keras layers: SVP units, plain layers, and an output
            head (e.g. `keras.layers.Dense(num_classes)`) last.
        num_classes: number of classes; `None` takes the head's `units`.
        mode: `"svp"` or `"bp"`.
        input_alignment: whether the first unit aligns with a fixed
            projection of its input.
        seed: seed of the input projection.
        head_from_projection: `"auto"`, `True` or `False`: whether the
            head starts at the last unit's projection (see `SVPModel`).
        **kwargs: `keras.Model` arguments such as `name`.

    Returns:
        Called on inputs, the head's output, e.g. logits of shape
        `(batch, num_classes)`.

    Example:

        >>> import numpy as np
        >>> model = SVPSequential(
        ...     [
        ...         keras.layers.Flatten(),
        ...         SVPDense(64),
        ...         SVPDense(64),
        ...         keras.layers.Dense(10),
        ...     ]
        ... )
        >>> model.compile(
        ...     "adam",
        ...     keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        ...     metrics=["accuracy"],
        ... )
        >>> x = np.random.rand(32, 8, 8).astype("float32")
        >>> y = np.random.randint(0, 10, size=32)
        >>> history = model.fit(x, y, epochs=1, verbose=0)
        >>> sorted(history.history)[:3]
        ['accuracy', 'head_loss', 'loss']
    """

    def __init__(
        self,
        layers=None,
        num_classes=None,
        mode="svp",
        input_alignment=False,
        seed=None,
        head_from_projection="auto",
        **kwargs,
    ):
        super().__init__(
            num_classes=num_classes,
            mode=mode,
            input_alignment=input_alignment,
            seed=seed,
            head_from_projection=head_from_projection,
            **kwargs,
        )
        layers = list(layers or [])
        for layer in layers:
            if not isinstance(layer, keras.layers.Layer):
                raise TypeError(
                    "SVPSequential takes Keras layers; got "
                    f"{layer!r} of type {type(layer).__name__}."
                )
        self._chain = layers

    def layer_chain(self):
        return list(self._chain)

    def call(self, inputs, training=None):
        x = inputs
        for layer in self._chain:
            x = call_layer(layer, x, training)
        return x

    def compute_output_shape(self, input_shape):
        shape = input_shape
        for layer in self._chain:
            shape = layer.compute_output_shape(shape)
        return shape

    def get_config(self):
        config = super().get_config()
        config["layers"] = [
            keras.saving.serialize_keras_object(layer) for layer in self._chain
        ]
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["layers"] = [
            keras.saving.deserialize_keras_object(layer) for layer in config["layers"]
        ]
        return cls(**config)
