"""The accuracy and ablation benchmarks, on digits with tiny budgets."""

import math

import keras
import numpy as np
import pytest

import keras_svp
from keras_svp.benchmarks import accuracy

TINY = {"dataset": "digits", "train_limit": 64, "batch_size": 64, "epochs": 1}

ROW_KEYS = {
    "benchmark",
    "backend",
    "architecture",
    "dataset",
    "mode",
    "seed",
    "epochs",
    "test_accuracy",
    "train_seconds",
    "input_alignment",
}


def check_row(row):
    assert ROW_KEYS <= set(row)
    assert row["backend"] == keras.backend.backend()
    assert 0.0 <= row["test_accuracy"] <= 1.0
    assert row["train_seconds"] > 0


@pytest.mark.parametrize("architecture", accuracy.ARCHITECTURES)
def test_accuracy_runs_rows(architecture):
    rows = accuracy.accuracy_runs(
        architecture, seeds=(0,), projection_dropout=0.0, **TINY
    )
    assert [(r["mode"], r["seed"]) for r in rows] == [("svp", 0), ("bp", 0)]
    for row in rows:
        check_row(row)
        assert row["benchmark"] == "accuracy"
        assert row["architecture"] == architecture
        assert row["dataset"] == "digits"
        assert row["epochs"] == 1
        assert row["train_size"] == 64
        assert row["projection_dropout"] == 0.0
        assert row["input_alignment"] is False


def test_accuracy_runs_progress_and_seeds():
    messages = []
    rows = accuracy.accuracy_runs(
        "mlp", modes=("svp",), seeds=(3, 4), progress=messages.append, **TINY
    )
    assert [r["seed"] for r in rows] == [3, 4]
    assert len(messages) == 2 and all("svp" in m for m in messages)


def test_learning_rate_schedule_of_a_run():
    rate = accuracy.learning_rate_over(1e-3, "cosine", 10)
    assert float(rate(0)) == pytest.approx(1e-3)
    assert float(rate(5)) == pytest.approx(5e-4)
    assert float(rate(10)) == pytest.approx(0.0, abs=1e-12)
    assert accuracy.learning_rate_over(1e-3, "constant", 10) == 1e-3
    with pytest.raises(ValueError, match="schedule must be one of"):
        accuracy.learning_rate_over(1e-3, "linear", 10)
    (row,) = accuracy.accuracy_runs(
        "mlp", modes=("svp",), seeds=(0,), schedule="constant", **TINY
    )
    assert row["schedule"] == "constant"


def test_svp_mlp_learns_digits():
    (row,) = accuracy.accuracy_runs(
        "mlp", modes=("svp",), seeds=(0,), epochs=3, dataset="digits"
    )
    assert row["test_accuracy"] > 0.5


def test_summarize_accuracy_mean_and_std():
    def row(mode, seed, value, **options):
        return {
            "benchmark": "accuracy",
            "architecture": "mlp",
            "mode": mode,
            "seed": seed,
            "test_accuracy": value,
            "train_seconds": 2.0 * seed,
            **options,
        }

    rows = [
        row("svp", 0, 0.80),
        row("bp", 0, 0.90),
        row("svp", 1, 0.84),
        row("svp", 2, 0.88),
        row("svp", 0, 0.50, projection_dropout=0.0),
    ]
    summary = accuracy.summarize_accuracy(rows)
    assert len(summary) == 3
    svp, bp, no_dropout = summary
    assert svp["mode"] == "svp" and "projection_dropout" not in svp
    assert svp["n"] == 3 and svp["seeds"] == [0, 1, 2]
    assert math.isclose(svp["test_accuracy_mean"], 0.84)
    assert math.isclose(svp["test_accuracy_std"], 0.04)  # sample std
    assert math.isclose(svp["train_seconds_mean"], 2.0)
    assert bp["n"] == 1 and bp["test_accuracy_std"] == 0.0
    assert math.isclose(bp["test_accuracy_mean"], 0.90)
    assert no_dropout["projection_dropout"] == 0.0 and no_dropout["n"] == 1
    table = accuracy.format_summary(summary)
    assert "84.00 ± 4.00" in table and "| mlp svp |" in table


def test_ablation_variants_cover_every_knob():
    variants = accuracy.ablation_variants()
    names = [name for name, _ in variants]
    assert names[0] == "default"
    assert len(set(names)) == len(names)
    defaults = accuracy.package_defaults()
    assert variants[0][1] == defaults
    # No variant repeats the defaults under another name.
    assert all(settings != defaults for _, settings in variants[1:])
    seen = {
        knob: {settings[knob] for _, settings in variants}
        for knob in accuracy.UNIT_KNOBS + accuracy.MODEL_KNOBS
    }
    assert {0.0, 1.0, 10.0, 100.0} <= seen["alignment_weight"]
    assert 0.0 in seen["projection_dropout"]
    assert {"jl", "fan_in"} <= seen["projection_scale"]
    assert {10, 32, 128} <= seen["projection_dim"]
    assert {True, False} <= seen["input_alignment"]
    assert {"projection", "activation"} <= seen["alignment_target"]
    assert {"auto", False} <= seen["head_from_projection"]
    # Dense units have no feature map to pool: the MLP leaves that variant out.
    assert seen["projection_pool_size"] == {None}
    cnn = dict(accuracy.ablation_variants(architecture="cnn"))
    assert cnn["projection_pool_size=2"]["projection_pool_size"] == 2
    assert set(cnn) == set(names) | {"projection_pool_size=2"}


def test_ablation_runs_every_variant():
    rows = accuracy.ablation_runs(
        epochs=1, seeds=(0,), dataset="digits", train_limit=64, batch_size=64
    )
    expected = [name for name, settings in accuracy.ablation_variants()]
    assert [r["variant"] for r in rows] == expected
    for row in rows:
        check_row(row)
        assert row["benchmark"] == "ablation"
        assert (row["architecture"], row["mode"]) == ("mlp", "svp")
    by_name = {r["variant"]: r for r in rows}
    assert by_name["projection_scale=jl"]["projection_scale"] == "jl"
    assert by_name["projection_dim=128"]["projection_dim"] == 128
    assert by_name["alignment_weight=100"]["alignment_weight"] == 100.0
    assert by_name["input_alignment=True"]["input_alignment"] is True
    assert by_name["head_from_projection=False"]["head_from_projection"] is False
    assert by_name["default"]["head_from_projection"] == "auto"
    summary = accuracy.summarize_accuracy(rows)
    assert [s["variant"] for s in summary] == expected


def test_ablation_runs_subset_and_unknown_variant():
    rows = accuracy.ablation_runs(
        epochs=1,
        seeds=(0, 1),
        variants=["alignment_weight=0"],
        dataset="digits",
        train_limit=64,
        batch_size=64,
    )
    assert [(r["variant"], r["seed"]) for r in rows] == [
        ("alignment_weight=0", 0),
        ("alignment_weight=0", 1),
    ]
    assert rows[0]["alignment_weight"] == 0.0
    with pytest.raises(ValueError, match="Unknown ablation variants"):
        accuracy.ablation_runs(1, (0,), dataset="digits", variants=["nope"])
    with pytest.raises(ValueError, match="convolutional units only"):
        accuracy.ablation_runs(
            1, (0,), dataset="digits", variants=["projection_pool_size=2"]
        )
    # A variant the defaults already are is not taken for a convolutional one.
    with pytest.raises(ValueError, match="Unknown ablation variants"):
        accuracy.ablation_runs(
            1, (0,), dataset="digits", variants=["projection_dropout=0"]
        )


def test_ablation_trains_the_architecture_it_is_given(monkeypatch):
    built = []
    build = accuracy.build_model

    def spy(architecture, mode, **options):
        model = build(architecture, mode, **options)
        units = [u for u in model.layers if isinstance(u, keras_svp.SVPUnit)]
        built.append(
            (
                architecture,
                [u.projection_dim for u in units],
                [u.projection_pool_size for u in units],
            )
        )
        return model

    load = accuracy.load_data

    def digits_16x16(*args, **kwargs):
        # The CNN's last map is 1x1 on 8x8 digits, too small to pool; at
        # 16x16 it is 2x2.
        (x, y), (x_test, y_test) = load(*args, **kwargs)
        return (np.kron(x, np.ones((1, 2, 2, 1), x.dtype)), y), (
            np.kron(x_test, np.ones((1, 2, 2, 1), x.dtype)),
            y_test,
        )

    monkeypatch.setattr(accuracy, "build_model", spy)
    monkeypatch.setattr(accuracy, "load_data", digits_16x16)
    rows = accuracy.ablation_runs(
        1,
        (0,),
        variants=["default", "projection_dim=32", "projection_pool_size=2"],
        architecture="cnn",
        **{k: v for k, v in TINY.items() if k != "epochs"},
    )
    assert [(r["architecture"], r["variant"]) for r in rows] == [
        ("cnn", "default"),
        ("cnn", "projection_dim=32"),
        ("cnn", "projection_pool_size=2"),
    ]
    for row in rows:
        check_row(row)
    # The variants differ in the CNN's units, not only in the row's label.
    assert built == [
        ("cnn", [10, 10, 10], [None] * 3),
        ("cnn", [32, 32, 32], [None] * 3),
        ("cnn", [10, 10, 10], [2] * 3),
    ]
    with pytest.raises(ValueError, match="architecture must be one of"):
        accuracy.ablation_runs(1, (0,), dataset="digits", architecture="vgg")


def test_ablation_reuses_a_run_the_accuracy_benchmark_did(monkeypatch):
    budget = {k: v for k, v in TINY.items() if k != "epochs"}
    trained = accuracy.accuracy_runs("mlp", modes=("svp", "bp"), seeds=(0,), **TINY)
    # Without reuse, the default variant trains and gets the same result:
    # the accuracy benchmark's SVP MLP is the same model, seed and data.
    (fresh,) = accuracy.ablation_runs(1, (0,), variants=["default"], **budget)
    assert fresh["test_accuracy"] == trained[0]["test_accuracy"]

    calls = []
    train = accuracy.train_and_evaluate
    monkeypatch.setattr(
        accuracy,
        "train_and_evaluate",
        lambda *args, **kwargs: calls.append(1) or train(*args, **kwargs),
    )
    messages = []
    rows = accuracy.ablation_runs(
        1,
        (0, 1),
        variants=["default", "projection_dim=32"],
        progress=messages.append,
        reuse=trained,
        **budget,
    )
    # Seed 0's default is reused; seed 1 and the other variant train.
    assert [(r["variant"], r["seed"]) for r in rows] == [
        ("default", 0),
        ("projection_dim=32", 0),
        ("default", 1),
        ("projection_dim=32", 1),
    ]
    assert len(calls) == 3
    reused = rows[0]
    for key in ("test_accuracy", "train_accuracy", "train_seconds"):
        assert reused[key] == trained[0][key]
    assert {k: v for k, v in reused.items() if k != "train_seconds"} == {
        k: v for k, v in fresh.items() if k != "train_seconds"
    }
    assert "the accuracy run of the same model and seed" in messages[0]
    # Another budget is another run.
    calls.clear()
    accuracy.ablation_runs(2, (0,), variants=["default"], reuse=trained, **budget)
    assert len(calls) == 1


def test_build_model_input_alignment_and_learning_rate():
    model = accuracy.build_model("mlp", "svp", input_alignment=True, learning_rate=0.01)
    assert model.input_alignment is True
    assert math.isclose(float(model.optimizer.learning_rate), 0.01, rel_tol=1e-6)
    plain = accuracy.build_model("mlp", "svp")
    assert plain.input_alignment is False
    assert plain.head_from_projection == "auto"
    random_head = accuracy.build_model("cnn", "svp", head_from_projection=False)
    assert random_head.head_from_projection is False
    assert math.isclose(float(plain.optimizer.learning_rate), 1e-3, rel_tol=1e-6)


@pytest.mark.parametrize("mode", ["svp", "bp"])
def test_cnn_variants_have_their_filters_and_head(mode):
    def filters(architecture):
        model = accuracy.build_model(architecture, mode)
        model.build((None, 28, 28, 1))
        return [
            layer.kernel.shape[-1]
            for layer in model._flatten_layers()
            if isinstance(layer, keras.layers.Conv2D)
        ]

    assert filters("cnn") == [32, 64, 128]
    assert filters("cnn-wide") == [64, 128, 256]
    assert filters("cnn-wide-conv-head") == [64, 128, 256]
    # The last convolution of the conv-head CNNs is the output head's.
    head = accuracy.build_model("cnn-wide-conv-head", mode).get_layer("head")
    assert [layer.filters for layer in head.layers if hasattr(layer, "filters")] == [
        256
    ]


@pytest.mark.parametrize("mode", ["svp", "bp"])
def test_mlp_variants_have_their_units_and_head(mode):
    def widths(architecture):
        model = accuracy.build_model(architecture, mode)
        model.build((None, 28, 28, 1))
        units = [u.units for u in model.layers if isinstance(u, keras_svp.SVPDense)]
        head = model.get_layer("head")
        dense = head.layers if isinstance(head, keras.Sequential) else [head]
        return units, [layer.units for layer in dense if hasattr(layer, "units")]

    assert widths("mlp") == ([1024, 1024, 1024], [10])
    # The last hidden layer of the dense-head MLP is the output head's.
    assert widths("mlp-dense-head") == ([1024, 1024], [1024, 10])


def test_load_data_train_limit_is_a_fixed_subset():
    (x_a, y_a), test_a = accuracy.load_data("digits", train_limit=100)
    (x_b, y_b), test_b = accuracy.load_data("digits", train_limit=100)
    assert x_a.shape == (100, 8, 8, 1) and len(y_a) == 100
    assert (x_a == x_b).all() and (y_a == y_b).all()
    assert len(test_a[0]) == len(test_b[0]) == 360


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"architecture": "rnn"}, "architecture"),
        ({"architecture": "mlp", "epochs": 0}, "epochs"),
        ({"architecture": "mlp", "modes": ("fa",)}, "modes"),
    ],
)
def test_accuracy_runs_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        accuracy.accuracy_runs(dataset="digits", **kwargs)
