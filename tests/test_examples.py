"""The example scripts run end to end with --quick on the suite's backend."""

import argparse
import glob
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_svp import SVPConv2D
from keras_svp import SVPDense
from keras_svp import datasets

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")
sys.path.insert(0, EXAMPLES)

import example_utils  # noqa: E402
import mlp  # noqa: E402
import vgg  # noqa: E402
import vit_svp_plus  # noqa: E402


def _check_report(report, example, dataset, mode, train_size, epochs=1):
    assert report["example"] == example
    assert report["backend"] == keras.backend.backend()
    assert (report["dataset"], report["mode"]) == (dataset, mode)
    assert report["epochs"] == epochs
    assert report["train_size"] == train_size
    assert 0.0 <= report["test_accuracy"] <= 1.0
    assert report["fit_s"] > 0 and report["peak_rss_mib"] > 50
    assert report["parameters"] > 0


def test_mlp_example_command_line(tmp_path):
    # The real command line, in a fresh process, on this backend, on a slice
    # of the real Fashion-MNIST files where Debian's package has them.
    dataset = (
        "fashion_mnist"
        if os.path.isdir(datasets.DEBIAN_FASHION_MNIST_DIR)
        else "digits"
    )
    out = tmp_path / "mlp.json"
    env = dict(os.environ, PYTHONPATH=ROOT)
    result = subprocess.run(
        [
            sys.executable,
            "mlp.py",
            "--quick",
            "--dataset",
            dataset,
            "--probes",
            "--json",
            out,
        ],
        cwd=EXAMPLES,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "test accuracy" in result.stdout and "peak RSS" in result.stdout
    report = json.loads(out.read_text())
    _check_report(report, "mlp.py", dataset, "svp", 512)
    assert report["augmented"] is False
    probes = report["probe_accuracy"]
    assert list(probes) == ["svp_dense", "svp_dense_1", "svp_dense_2"]
    assert all(0.0 <= accuracy <= 1.0 for accuracy in probes.values())
    assert "linear probes' test accuracy by unit" in result.stdout


@pytest.mark.parametrize(
    "module, argv, dataset, mode, epochs",
    [
        (vgg, ["--dataset", "digits", "--mode", "bp"], "digits", "bp", 1),
        (vit_svp_plus, ["--dataset", "digits"], "digits", "svp", 10),
    ],
    ids=["vgg-bp", "vit-svp"],
)
def test_examples_quick(module, argv, dataset, mode, epochs, capsys):
    report = module.main(["--quick", *argv])
    _check_report(report, f"{module.__name__}.py", dataset, mode, 512, epochs)
    assert "test accuracy" in capsys.readouterr().out
    if module is vit_svp_plus:
        # The bar: SVP+ beats chance (0.1) clearly on a real task.
        assert report["test_accuracy"] > 0.4


@pytest.mark.parametrize(
    "config, head_convolutions, filters, name",
    [
        ("small", 0, [32, 64, 128], "cnn"),
        ("small", 1, [32, 64], "cnn"),
        ("vgg11", 0, [8, 16, 32, 32, 64, 64, 64, 64], "vgg11"),
    ],
)
def test_vgg_example_builds_the_config_it_is_given(
    config, head_convolutions, filters, name
):
    # "small" is the accuracy benchmark's CNN, so the example's --probes can
    # diagnose the benchmark's model.
    args = argparse.Namespace(
        config=config,
        quick=False,
        width_multiplier=0.125,
        mode="svp",
        seed=0,
        units="convolution",
        head_convolutions=head_convolutions,
        random_head=False,
    )
    if config == "small":
        args.width_multiplier = 1.0
    model = vgg.build_model(args, (28, 28, 1), 10)
    assert model.name == name
    units = [layer for layer in model.layers if isinstance(layer, SVPConv2D)]
    assert [unit.filters for unit in units] == filters


@pytest.mark.parametrize("head_layers, units", [(0, 3), (1, 2)])
def test_mlp_example_builds_the_head_it_is_given(head_layers, units):
    args = argparse.Namespace(
        depth=3,
        width=16,
        quick=False,
        mode="svp",
        seed=0,
        head_layers=head_layers,
        random_head=False,
    )
    model = mlp.build_model(args, (8, 8, 1), 10)
    assert sum(isinstance(layer, SVPDense) for layer in model.layers) == units
    assert isinstance(model.get_layer("head"), keras.Sequential) == bool(head_layers)


@pytest.mark.parametrize("argv, expected", [([], "auto"), (["--random-head"], False)])
def test_random_head_flag_keeps_the_heads_initializer(argv, expected):
    args = example_utils.parser("test", "digits", 1, 1e-3).parse_args(argv)
    assert example_utils.head_start(args) == expected
    for name, value in dict(config="small", width_multiplier=1.0).items():
        setattr(args, name, value)
    args.units, args.head_convolutions = "convolution", 0
    model = vgg.build_model(args, (28, 28, 1), 10)
    assert model.head_from_projection == expected


def test_command_line_values_win_over_the_quick_settings():
    report = vit_svp_plus.main(["--quick", "--dataset", "digits", "--epochs", "1"])
    assert report["epochs"] == 1
    assert report["args"]["batch_size"] == 32  # from the quick settings


def test_augmentation_flips_and_shifts_cifar_batches():
    class Args:
        dataset, augment, batch_size, seed = "cifar10", "auto", 8, 0

    rng = np.random.default_rng(0)
    x = rng.random((8, 32, 32, 3)).astype("float32")
    y = np.arange(8)
    train, test, augmented = example_utils.pipelines(Args, ((x, y), (x, y)))
    assert augmented
    x_aug, y_aug = next(iter(train))
    x_aug, y_aug = np.asarray(x_aug), np.asarray(y_aug)
    assert x_aug.shape == x.shape and x_aug.dtype == np.float32
    changed = [not np.allclose(x_aug[i], x[label]) for i, label in enumerate(y_aug)]
    assert sum(changed) >= 6  # nearly every image is flipped or shifted
    x_test, _ = next(iter(test))
    np.testing.assert_array_equal(np.asarray(x_test), x)  # the test set is not
    Args.augment = "off"
    assert example_utils.pipelines(Args, ((x, y), (x, y)))[2] is False


def test_results_table(tmp_path):
    report = {
        "example": "mlp.py",
        "backend": "jax",
        "dataset": "digits",
        "mode": "svp",
        "epochs": 2,
        "test_accuracy": 0.91234,
        "first_epoch_s": 3.04,
        "later_epoch_s": None,
        "peak_rss_mib": 1000.4,
        "machine": "x86_64 2 CPUs",
    }
    (tmp_path / "a.json").write_text(json.dumps(report))
    table = example_utils.results_table([tmp_path / "a.json"]).splitlines()
    assert len(table) == 3
    assert table[2] == (
        "| mlp.py | jax | digits | svp | 2 | 0.9123 | 3.0 | - | 1000 | x86_64 2 CPUs |"
    )
    report.update(
        example="vgg.py",
        args={"units": "stage", "seed": 1, "width_multiplier": 0.25},
    )
    (tmp_path / "a.json").write_text(json.dumps(report))
    table = example_utils.results_table([tmp_path / "a.json"]).splitlines()
    assert table[2].startswith(
        "| vgg.py --width-multiplier 0.25 --units stage --seed 1 | jax |"
    )
    # Only the reports with probes go into the probes' table.
    assert example_utils.probes_table([tmp_path / "a.json"]) == ""
    report.update(example="mlp.py", args={}, probe_accuracy={"a": 0.81234, "b": 0.9})
    (tmp_path / "b.json").write_text(json.dumps(report))
    table = example_utils.probes_table([tmp_path / "a.json", tmp_path / "b.json"])
    assert table.splitlines() == [
        "| script | backend | data set | mode | epochs | test acc "
        "| probe after unit 1 | probe after unit 2 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        "| mlp.py | jax | digits | svp | 2 | 0.9123 | 0.8123 | 0.9000 |",
    ]
    # Options that change the model are named, as in the results table.
    report.update(args={"seed": 1})
    (tmp_path / "b.json").write_text(json.dumps(report))
    table = example_utils.probes_table([tmp_path / "b.json"]).splitlines()
    assert table[2].startswith("| mlp.py --seed 1 | jax |")
    # A model with fewer units leaves the last probe columns empty.
    report.update(example="vgg.py", args={"config": "small"}, probe_accuracy={"c": 0.5})
    (tmp_path / "c.json").write_text(json.dumps(report))
    table = example_utils.probes_table([tmp_path / "b.json", tmp_path / "c.json"])
    assert table.splitlines()[3] == (
        "| vgg.py --config small | jax | digits | svp | 2 | 0.9123 | 0.5000 | |"
    )


def test_documented_runs_match_their_json():
    # Every row the committed reports give is in docs/examples.md, as
    # `python examples/example_utils.py docs/examples/*.json` prints it.
    paths = sorted(glob.glob(os.path.join(ROOT, "docs", "examples", "*.json")))
    assert paths
    with open(os.path.join(ROOT, "docs", "examples.md")) as f:
        page = f.read()
    tables = (
        example_utils.results_table(paths) + "\n" + example_utils.probes_table(paths)
    )
    missing = [row for row in tables.splitlines() if row not in page]
    assert not missing, "docs/examples.md lacks these rows:\n" + "\n".join(missing)
