"""keras_svp.diagnostics: per-unit values against direct computations."""

import keras
import matplotlib
import numpy as np
import pytest
from keras import ops

from keras_svp import SVPDense
from keras_svp import SVPSequential
from keras_svp import diagnostics
from keras_svp import losses

matplotlib.use("Agg")

CE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _model(input_alignment=False, **unit_options):
    model = SVPSequential(
        [
            SVPDense(32, **unit_options),
            SVPDense(32, projection_dim=12, **unit_options),
            keras.layers.Dense(10),
        ],
        input_alignment=input_alignment,
        seed=5,
    )
    model.build((None, 64))
    return model


def _data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 64)).astype("float32"), np.arange(n) % 10


def test_unit_projections_match_the_units():
    model = _model()
    x, _ = _data()
    projections = diagnostics.unit_projections(model, x, batch_size=16)
    first, second = model.layers[:2]
    assert list(projections) == [first.name, second.name]
    assert projections[first.name].shape == (40, 10)
    assert projections[second.name].shape == (40, 12)
    h1 = first(x, training=False)
    h2 = second(h1, training=False)
    for unit, h in ((first, h1), (second, h2)):
        expected = ops.convert_to_numpy(unit.project(h, training=False))
        np.testing.assert_allclose(projections[unit.name], expected, atol=1e-5)


def test_unit_features_are_what_each_projection_reads():
    model = _model()
    x, _ = _data()
    features = diagnostics.unit_features(model, x, batch_size=16)
    first, second = model.layers[:2]
    assert list(features) == [first.name, second.name]
    h1 = first(x, training=False)
    h2 = second(h1, training=False)
    for unit, h in ((first, h1), (second, h2)):
        np.testing.assert_allclose(
            features[unit.name], ops.convert_to_numpy(h), atol=1e-5
        )
        # The projection of those features is the unit's z.
        np.testing.assert_allclose(
            features[unit.name] @ ops.convert_to_numpy(unit.projection.kernel),
            ops.convert_to_numpy(unit.project(h, training=False)),
            atol=1e-4,
        )


def test_linear_probes_read_out_what_training_put_there(digits):
    (x_train, y_train), (x_test, y_test) = digits
    model = _model(projection_dropout=0.0)
    weights = [w.copy() for w in model.get_weights()]
    probes = diagnostics.linear_probes(
        model, (x_train, y_train), (x_test, y_test), epochs=20, batch_size=64
    )
    # The model is left as it was.
    for before, after in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(before, after)
    assert [row["name"] for row in probes] == [u.name for u in model.layers[:2]]
    assert [row["features"] for row in probes] == [32, 32]
    # Even random ReLU features of the digits are linearly separable well
    # above chance (0.1); after training more so.
    assert all(row["probe_accuracy"] > 0.5 for row in probes)
    model.compile(keras.optimizers.Adam(3e-3), CE)
    model.fit(x_train, y_train, epochs=5, batch_size=64, verbose=0)
    trained = diagnostics.linear_probes(
        model, (x_train, y_train), (x_test, y_test), epochs=20, batch_size=64
    )
    for old, new in zip(probes, trained):
        assert new["probe_accuracy"] > old["probe_accuracy"]
    with pytest.raises(ValueError, match="train inputs and labels differ"):
        diagnostics.linear_probes(
            model, (x_train, y_train[:-1]), (x_test, y_test), epochs=1
        )


@pytest.mark.parametrize("input_alignment", [False, True])
def test_unit_report_values(input_alignment):
    model = _model(input_alignment=input_alignment)
    x, y = _data()
    report = diagnostics.unit_report(model, x, y, batch_size=len(x))
    projections = diagnostics.unit_projections(model, x)
    z = list(projections.values())
    assert [row["name"] for row in report] == list(projections)
    for row, z_unit in zip(report, z):
        accuracy = np.mean(np.argmax(z_unit, axis=1) == y)
        assert row["local_accuracy"] == pytest.approx(accuracy)
        loss = float(losses.local_prediction_loss(y, z_unit))
        assert row["prediction_loss"] == pytest.approx(loss, rel=1e-5)
    expected = float(losses.alignment_loss(z[1], z[0]))
    assert report[1]["alignment_loss"] == pytest.approx(expected, rel=1e-5)
    if input_alignment:
        reference = model.input_projection(x, training=False)
        expected = float(losses.alignment_loss(z[0], reference))
        assert report[0]["alignment_loss"] == pytest.approx(expected, rel=1e-5)
        assert report[0]["alignment_loss"] > 0
    else:
        assert report[0]["alignment_loss"] == 0.0


def test_unit_report_is_a_batch_weighted_mean():
    model = _model()
    x, y = _data(n=30)
    report = diagnostics.unit_report(model, x, y, batch_size=20)
    parts = [
        diagnostics.unit_report(model, x[:20], y[:20], batch_size=20),
        diagnostics.unit_report(model, x[20:], y[20:], batch_size=20),
    ]
    for key in ("local_accuracy", "prediction_loss", "alignment_loss"):
        expected = (20 * parts[0][1][key] + 10 * parts[1][1][key]) / 30
        assert report[1][key] == pytest.approx(expected, rel=1e-5)


def test_training_raises_local_accuracy(digits):
    (x_train, y_train), (x_test, y_test) = digits
    model = _model(projection_dropout=0.0)
    before = diagnostics.unit_report(model, x_test, y_test)
    model.compile(keras.optimizers.Adam(3e-3), CE)
    model.fit(x_train, y_train, epochs=3, batch_size=64, verbose=0)
    after = diagnostics.unit_report(model, x_test, y_test)
    for old, new in zip(before, after):
        # A 10-dimensional random projection of 32 units is a weak
        # classifier (chance: 0.1), but training makes it one.
        assert old["local_accuracy"] < 0.3
        assert new["local_accuracy"] > max(0.4, old["local_accuracy"] + 0.25)
        assert new["prediction_loss"] < old["prediction_loss"]


def test_pca_2d_against_a_known_embedding():
    rng = np.random.default_rng(0)
    # Variance 9 along (1, 1, 0)/sqrt(2), 1 along z, nothing else.
    t, s = rng.standard_normal(500), rng.standard_normal(500)
    t, s = 3 * (t - t.mean()), s - s.mean()
    s -= (s @ t) / (t @ t) * t  # exactly uncorrelated: the axes are exact
    z = np.stack([t / np.sqrt(2), t / np.sqrt(2), s], axis=1) + 5.0
    coordinates, explained = diagnostics.pca_2d(z)
    assert coordinates.shape == (500, 2)
    np.testing.assert_allclose(
        np.abs(coordinates[:, 0]), np.abs(t - t.mean()), atol=1e-3
    )
    np.testing.assert_allclose(
        np.abs(coordinates[:, 1]), np.abs(s - s.mean()), atol=1e-3
    )
    assert explained.sum() == pytest.approx(1.0)
    assert explained[0] == pytest.approx(np.var(t) / (np.var(t) + np.var(s)), rel=1e-6)
    # Constant and one-dimensional inputs.
    _, explained = diagnostics.pca_2d(np.ones((4, 3)))
    np.testing.assert_array_equal(explained, [0.0, 0.0])
    coordinates, explained = diagnostics.pca_2d(np.arange(4.0).reshape(4, 1))
    assert coordinates.shape == (4, 2) and explained.tolist() == [1.0, 0.0]
    with pytest.raises(ValueError, match="N >= 2"):
        diagnostics.pca_2d(np.ones((1, 3)))


def test_plots():
    model = _model()
    x, y = _data()
    ax = diagnostics.plot_unit_embedding(model, x, y, unit=0)
    offsets = ax.collections[0].get_offsets()
    assert offsets.shape == (40, 2)
    assert model.layers[0].name in ax.get_title()
    ax = diagnostics.plot_unit_embedding(model, x, y, unit=model.layers[1].name)
    with pytest.raises(ValueError, match="No SVP unit named"):
        diagnostics.plot_unit_embedding(model, x, y, unit="nope")
    report = diagnostics.unit_report(model, x, y)
    ax = diagnostics.plot_unit_report(report)
    np.testing.assert_allclose(
        ax.lines[0].get_ydata(), [row["local_accuracy"] for row in report]
    )
    matplotlib.pyplot.close("all")


def test_unbuilt_model_and_bad_labels():
    model = SVPSequential([SVPDense(8), keras.layers.Dense(3)])
    with pytest.raises(ValueError, match="built SVP model"):
        diagnostics.unit_projections(model, np.zeros((2, 4)))
    model = _model()
    with pytest.raises(ValueError, match="differ in length"):
        diagnostics.unit_report(model, np.zeros((3, 64)), np.zeros(2))
