"""The benchmark harness runs end to end (--quick) on the current backend."""

import gc
import importlib.metadata
import json
import pathlib
import re
import subprocess
import tempfile

import keras
import pytest

from keras_svp.benchmarks import report
from keras_svp.benchmarks.__main__ import main
from keras_svp.benchmarks.__main__ import parse_args
from keras_svp.benchmarks.__main__ import profile_text
from keras_svp.benchmarks.__main__ import run_worker

GPU_SCRIPT = (
    pathlib.Path(__file__).resolve().parents[1] / "scripts" / "gpu-benchmark.sh"
)


def test_quick_benchmark_writes_json_markdown_and_plot(tmp_path):
    backend = keras.backend.backend()
    out = tmp_path / "bench"
    code = main(
        [
            "--quick",
            "--backend",
            backend,
            "--ablation-backends",
            backend,
            "--out",
            str(out),
        ]
    )
    assert code == 0
    rows = json.loads((out / "results.json").read_text())
    assert {row["benchmark"] for row in rows} == {
        "memory",
        "rss",
        "architectures",
        "speed",
        "accuracy",
        "ablation",
    }
    assert {row["backend"] for row in rows} == {backend}
    memory = [row for row in rows if row["benchmark"] == "memory"]
    assert {(row["depth"], row["mode"]) for row in memory} == {
        (2, "bp"),
        (2, "svp"),
        (4, "bp"),
        (4, "svp"),
    }
    assert all(row["step_mib"] > 0 for row in memory)
    # The quick profile spawns the slow fresh-process check at one depth.
    rss = [row for row in rows if row["benchmark"] == "rss"]
    assert {(row["depth"], row["mode"]) for row in rss} == {(4, "bp"), (4, "svp")}
    # ... and times the step at the deepest depth only.
    speed = [row for row in rows if row["benchmark"] == "speed"]
    assert {row["depth"] for row in speed} == {4}
    architectures = [row for row in rows if row["benchmark"] == "architectures"]
    assert {(row["builder"], row["mode"]) for row in architectures} == {
        (builder, mode)
        for builder in ("mlp", "vgg11", "vgg", "vit")
        for mode in ("bp", "svp")
    }
    # TensorFlow's CPU allocator does not count the tiny models' buffers.
    assert all(row["step_mib"] >= 0 for row in architectures)
    assert all(row["trainable_params"] > 0 for row in architectures)
    # SVPBlock units: SVP's step memory stays (nearly) flat from 2 to 3
    # blocks while backprop's grows. On JAX it grows a little: XLA:CPU keeps
    # some weight-derived buffers of every unit (docs/benchmarks/README.md).
    vit = {
        (row["depth"], row["mode"]): row["step_mib"]
        for row in architectures
        if row["builder"] == "vit"
    }
    assert set(vit) == {(2, "bp"), (2, "svp"), (3, "bp"), (3, "svp")}
    assert vit[3, "bp"] > 1.3 * vit[2, "bp"]
    assert vit[3, "svp"] < vit[3, "bp"]
    assert vit[3, "svp"] - vit[2, "svp"] < 0.25 * (vit[3, "bp"] - vit[2, "bp"])
    if backend == "torch":
        assert vit[3, "svp"] == vit[2, "svp"]
        # The small CNN's first unit holds more than its last convolution
        # and the head together, so moving that convolution into the head
        # leaves SVP's step memory as it was.
        small_cnn = {
            (row.get("head_convolutions", 0), row["mode"]): row["step_mib"]
            for row in architectures
            if row["builder"] == "vgg"
        }
        assert small_cnn[1, "svp"] == small_cnn[0, "svp"] < small_cnn[0, "bp"]
    accuracy = [row for row in rows if row["benchmark"] == "accuracy"]
    assert {(row["architecture"], row["mode"]) for row in accuracy} == {
        ("mlp", "svp"),
        ("mlp", "bp"),
    }
    ablation = [row for row in rows if row["benchmark"] == "ablation"]
    assert [row["variant"] for row in ablation] == ["default", "projection_dim=32"]
    text = (out / "results.md").read_text()
    for heading in (
        "memory vs depth",
        "memory by architecture",
        "step time",
        "Test accuracy",
        "Ablation",
    ):
        assert heading in text
    assert "| ViT SVP+ dim 32, depth 3 | " in text
    assert (out / "memory_vs_depth.png").stat().st_size > 0


def test_rss_and_speed_depths_are_subsets_of_the_depths():
    quick = parse_args(["--quick"])
    assert quick.depths == [2, 4]
    assert quick.rss_depths == quick.speed_depths == [4]
    # 'deepest' follows the depths given.
    shallow = parse_args(["--quick", "--depths", "2,3"])
    assert shallow.rss_depths == shallow.speed_depths == [3]
    full = parse_args([])
    assert full.rss_depths == full.speed_depths == [2, 4, 8, 16, 32]
    chosen = parse_args(["--speed-depths", "8,16", "--rss-depths", "all"])
    assert chosen.speed_depths == [8, 16]
    assert chosen.rss_depths == [2, 4, 8, 16, 32]


def test_tf_xla_compiles_tensorflow_steps_only(tmp_path):
    backend = keras.backend.backend()
    args = parse_args(
        [
            "--quick",
            "--only",
            "speed",
            "--depths",
            "2",
            "--tf-xla",
            "--out",
            str(tmp_path),
        ]
    )
    rows = run_worker(args)
    assert gc.get_freeze_count() == 0  # the worker unfreezes what it froze
    assert {row["mode"] for row in rows} >= {"bp", "svp"}
    # JAX always compiles with XLA; PyTorch keeps Keras' default (eager).
    expected = {"tensorflow": True, "jax": True, "torch": False}[backend]
    for row in rows:
        if row["mode"] != "reference":
            assert row["jit_compile"] is expected


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="XLA is TensorFlow's option"
)
def test_tf_xla_memory_is_xlas_buffer_assignment(tmp_path):
    # The worker gets an XLA dump directory and reads the compiled step's
    # temporary buffer from it; at depth 16 SVP's is well under half BP's.
    out = tmp_path / "bench"
    dumps = pathlib.Path(tempfile.gettempdir())
    before = set(dumps.glob("keras-svp-xla-*"))
    argv = ["--backend", "tensorflow", "--only", "memory", "--tf-xla"]
    argv += ["--depths", "16", "--width", "512", "--batch-size", "1024"]
    code = main(argv + ["--rss-depths", "0", "--out", str(out)])
    assert code == 0
    rows = json.loads((out / "results.json").read_text())
    memory = {row["mode"]: row for row in rows if row["benchmark"] == "memory"}
    for row in memory.values():
        assert row["jit_compile"] is True
        assert row["method"].startswith("XLA buffer assignment")
        assert row["step_mib"] == row["xla_temp_mib"] > 0
    assert memory["bp"]["step_mib"] > 1.5 * memory["svp"]["step_mib"]
    assert set(dumps.glob("keras-svp-xla-*")) <= before  # the dump is gone


def test_rss_table_adds_the_device_peak_where_a_gpu_gave_one():
    def row(mode, device_peak):
        return {
            "benchmark": "rss",
            "backend": "jax",
            "depth": 4,
            "mode": mode,
            "rss_step_mib": 100.0,
            "warm_step_mib": 10.0,
            "device_peak_mib": device_peak,
        }

    on_cpu = report.rss_table([row("bp", None), row("svp", None)])
    assert "| 4 | 10 / 100 | 10 / 100 |" in on_cpu
    assert "accelerator" not in on_cpu
    on_gpu = report.rss_table([row("bp", 812.4), row("svp", 230.6)])
    assert "peak accelerator memory" in on_gpu
    assert "| 4 | 812 | 231 |" in on_gpu


def test_memory_table_adds_the_device_step_peak_where_a_gpu_gave_one():
    def row(backend, mode, step, device_step):
        return {
            "benchmark": "memory",
            "backend": backend,
            "depth": 8,
            "mode": mode,
            "step_mib": step,
            "method": "m",
            "device_step_mib": device_step,
        }

    on_cpu = report.memory_table([row("torch", "bp", 200.0, None)])
    assert "allocator's peak over one step" not in on_cpu
    rows = [
        row("jax", "bp", 224.0, None),
        row("jax", "svp", 80.0, None),
        row("torch", "bp", 200.1, 513.1),
        row("torch", "svp", 24.2, 72.1),
    ]
    on_gpu = report.memory_table(rows)
    assert "allocator's peak over one step" in on_gpu
    # Only the backends that measured it get columns.
    assert "| depth | torch BP MiB | torch SVP MiB | torch BP/SVP |" in on_gpu
    assert "| 8 | 513.1 | 72.1 | 7.12 |" in on_gpu


def test_architectures_table_keeps_the_run_order_and_divides_bp_by_svp():
    def row(backend, label, mode, mib):
        return {
            "benchmark": "architectures",
            "backend": backend,
            "architecture": label,
            "mode": mode,
            "step_mib": mib,
            "batch_size": 64,
            "image_shape": [32, 32, 3],
            "trainable_params": 2_500_000,
            "method": f"{backend} accounting",
        }

    rows = [
        row(backend, label, mode, mib)
        for backend in ("torch", "jax")
        for label, bp, svp in (("VGG", 30.0, 20.0), ("MLP", 8.0, 4.0))
        for mode, mib in (("bp", bp), ("svp", svp))
    ]
    text = report.markdown(rows)
    assert "## Peak training-step memory by architecture" in text
    assert "One training step on 64 synthetic images of 32x32x3." in text
    assert (
        "| architecture | trainable params (M) | jax BP MiB | jax SVP MiB "
        "| jax BP/SVP | torch BP MiB | torch SVP MiB | torch BP/SVP |"
    ) in text
    assert "| VGG | 2.50 | 30.0 | 20.0 | 1.50 | 30.0 | 20.0 | 1.50 |" in text
    assert text.index("| VGG |") < text.index("| MLP | 2.50 | 8.0 | 4.0 | 2.00 |")
    assert "- jax: jax accounting" in text
    assert "vs depth" not in text


def test_gpu_script_carries_the_keras_the_suite_runs():
    # The device has no Keras: the script carries wheels of the versions
    # this environment tests, Keras and the two dependencies the device
    # lacks.
    pins = re.findall(r'"([\w-]+)==([\w.]+)"', GPU_SCRIPT.read_text())
    assert {name for name, _ in pins} == {"keras", "namex", "optree"}
    constraints = (GPU_SCRIPT.parent / "constraints.txt").read_text().splitlines()
    for name, version in pins:
        assert f"{name}=={version}" in constraints, name
        assert importlib.metadata.version(name) == version, name


def test_gpu_script_usage():
    result = subprocess.run(["bash", str(GPU_SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 2
    assert "usage:" in result.stderr


def test_activation_reaches_both_modes_units(monkeypatch):
    from keras_svp.benchmarks import accuracy

    calls = []
    monkeypatch.setattr(
        accuracy,
        "accuracy_runs",
        lambda architecture, **kwargs: calls.append(kwargs) or [],
    )
    from keras_svp.benchmarks.__main__ import _run_benchmarks

    args = parse_args(
        ["--only", "accuracy", "--architectures", "mlp", "--activation", "gelu"]
    )
    _run_benchmarks(args)
    assert calls and calls[0]["activation"] == "gelu"
    assert profile_text(args).endswith(", gelu units")
    # Left out, the units keep their own default.
    args = parse_args(["--only", "accuracy", "--architectures", "mlp"])
    _run_benchmarks(args)
    assert "activation" not in calls[1]


def test_activation_reaches_memory_speed_and_rss_models(monkeypatch):
    from keras_svp.benchmarks import memory
    from keras_svp.benchmarks import models
    from keras_svp.benchmarks import speed

    built, rss = [], []
    build_mlp = models.build_mlp

    def spy_build(*args, **kwargs):
        built.append(kwargs.get("activation"))
        return build_mlp(*args, **kwargs)

    monkeypatch.setattr(models, "build_mlp", spy_build)
    monkeypatch.setattr(memory, "step_memory", lambda model, x, y: {"step_mib": 1.0})
    monkeypatch.setattr(
        memory, "peak_rss", lambda *a, **kw: rss.append(kw) or {"rss_step_mib": 1.0}
    )
    loops = []

    def fake_step_times(pair, x, y, repeats, loop):
        loops.append(loop)
        return {mode: {"step_ms": 1.0} for mode in pair}

    monkeypatch.setattr(speed, "step_times", fake_step_times)
    monkeypatch.setattr(keras.backend, "backend", lambda: "torch")
    from keras_svp.benchmarks.__main__ import _run_benchmarks

    flags = ["--only", "memory,speed", "--depths", "2", "--speed-depths", "2"]
    flags += ["--rss-depths", "2", "--width", "8", "--batch-size", "4"]
    args = parse_args(flags + ["--activation", "relu"])
    _run_benchmarks(args)
    # Memory and speed, each mode; and both fresh RSS processes.
    assert built == ["relu"] * 4
    assert [kw["activation"] for kw in rss] == ["relu", "relu"]
    assert ", relu units" in profile_text(args)
    built.clear()
    rss.clear()
    _run_benchmarks(parse_args(flags + ["--speed-loop", "fit"]))
    assert built == [None] * 4 and all("activation" not in kw for kw in rss)
    # The loop reaches the step-time benchmark.
    assert loops == ["train_on_batch", "fit"]


def test_rss_child_builds_the_units_with_the_activation_it_is_given():
    from keras_svp.benchmarks import memory

    result = memory.peak_rss(2, 8, 4, "svp", steps=1, activation="relu")
    assert result["rss_step_mib"] >= 0
    with pytest.raises(RuntimeError, match="activation"):
        memory.peak_rss(2, 8, 4, "svp", steps=1, activation="no_such_activation")


def test_unknown_activation_is_refused_with_the_fix(capsys):
    with pytest.raises(SystemExit):
        parse_args(["--activation", "nope"])
    assert "unknown --activation 'nope'" in capsys.readouterr().err


def test_unknown_architecture_is_refused_before_any_run(capsys):
    with pytest.raises(SystemExit):
        parse_args(["--only", "accuracy", "--architectures", "mlp,cnn2"])
    err = capsys.readouterr().err
    assert "unknown --architectures ['cnn2']" in err and "cnn-conv-head" in err
    args = parse_args(["--only", "accuracy", "--architectures", "cnn,cnn-conv-head"])
    assert args.architectures == ["cnn", "cnn-conv-head"]
    assert "accuracy: cnn,cnn-conv-head on" in profile_text(args)
    # The full profile trains the MLP and the two splits of the small CNN,
    # not the wide ones.
    assert parse_args(["--only", "accuracy"]).architectures == [
        "mlp",
        "cnn",
        "cnn-conv-head",
    ]


def test_learning_rates_train_every_mode_at_each_rate(monkeypatch):
    from keras_svp.benchmarks import accuracy
    from keras_svp.benchmarks.__main__ import _run_benchmarks

    calls = []
    monkeypatch.setattr(
        accuracy,
        "accuracy_runs",
        lambda architecture, **kwargs: calls.append((architecture, kwargs)) or [],
    )
    flags = ["--only", "accuracy", "--architectures", "mlp,cnn"]
    args = parse_args(flags + ["--learning-rates", "0.001,4e-3"])
    _run_benchmarks(args)
    assert [(a, kw["learning_rate"]) for a, kw in calls] == [
        ("mlp", 0.001),
        ("mlp", 0.004),
        ("cnn", 0.001),
        ("cnn", 0.004),
    ]
    assert "(cosine learning rate from Adam 0.001, 0.004)" in profile_text(args)
    # The default rate is Adam's 1e-3, and reports name no rate for it.
    calls.clear()
    args = parse_args(flags)
    _run_benchmarks(args)
    assert [kw["learning_rate"] for _, kw in calls] == [0.001, 0.001]
    assert "(cosine learning rate)" in profile_text(args)


def test_train_limit_reaches_accuracy_and_ablation_runs(monkeypatch):
    from keras_svp.benchmarks import accuracy
    from keras_svp.benchmarks.__main__ import _run_benchmarks

    calls = []
    for name in ("accuracy_runs", "ablation_runs"):
        monkeypatch.setattr(
            accuracy,
            name,
            lambda *args, _name=name, **kwargs: calls.append((_name, kwargs)) or [],
        )
    flags = ["--only", "accuracy,ablation", "--architectures", "mlp"]
    flags += ["--ablation-backends", "all"]
    args = parse_args(flags + ["--train-limit", "6000"])
    _run_benchmarks(args)
    assert [(name, kw["train_limit"]) for name, kw in calls] == [
        ("accuracy_runs", 6000),
        ("ablation_runs", 6000),
    ]
    text = profile_text(args)
    assert "mlp on fashion_mnist (6000 training examples)," in text
    assert "SVP mlp on fashion_mnist (6000 training examples)," in text
    # By default the full profile trains on every example and says nothing.
    calls.clear()
    args = parse_args(flags)
    _run_benchmarks(args)
    assert [kw["train_limit"] for _, kw in calls] == [None, None]
    assert "training examples" not in profile_text(args)


@pytest.mark.parametrize("value", ["0", "-5"])
def test_bad_train_limit_is_refused_with_the_fix(value, capsys):
    with pytest.raises(SystemExit):
        parse_args(["--train-limit", value])
    err = capsys.readouterr().err
    assert "--train-limit must be a positive number" in err
    assert "leave it out" in err


@pytest.mark.parametrize("value", ["0.001,fast", "0.001,0", "-1e-3"])
def test_bad_learning_rates_are_refused_with_the_fix(value, capsys):
    with pytest.raises(SystemExit):
        parse_args(["--learning-rates", value])
    assert "--learning-rates" in capsys.readouterr().err


def test_accuracy_table_names_the_rate_only_when_runs_differ_in_it():
    def row(mode, rate, value):
        return {
            "benchmark": "accuracy",
            "backend": "jax",
            "architecture": "cnn",
            "mode": mode,
            "learning_rate": rate,
            "test_accuracy": value,
        }

    rows = [row("svp", 1e-3, 0.89), row("bp", 1e-3, 0.92)]
    assert "| cnn svp | 89.00 ± 0.00 (1) |" in report.accuracy_table(rows)
    rows += [row("svp", 8e-3, 0.91), row("svp", 8e-3, 0.90)]
    table = report.accuracy_table(rows)
    assert "| cnn svp, Adam 0.001 | 89.00 ± 0.00 (1) |" in table
    assert "| cnn bp, Adam 0.001 | 92.00 ± 0.00 (1) |" in table
    assert "| cnn svp, Adam 0.008 | 90.50 ± 0.71 (2) |" in table


def _accuracy_row(mode, seed, value, epochs=5, rate=1e-3):
    return {
        "benchmark": "accuracy",
        "backend": "jax",
        "architecture": "mlp",
        "mode": mode,
        "seed": seed,
        "epochs": epochs,
        "learning_rate": rate,
        "test_accuracy": value,
        "train_accuracy": None,
        "train_seconds": 1.0,
    }


def test_paired_difference_table_pairs_the_seeds_run_in_both_modes():
    rows = [
        _accuracy_row("svp", 1, 0.905),
        _accuracy_row("bp", 0, 0.90),
        _accuracy_row("svp", 0, 0.89),
        _accuracy_row("bp", 1, 0.90),
        _accuracy_row("svp", 2, 0.95),  # no BP run of seed 2: left out
    ]
    table = report.paired_difference_table(rows)
    # Seed 0: -1.00, seed 1: +0.50; mean -0.25, sample std 1.06, standard
    # error 0.75, so t = -0.33.
    assert "| mlp | jax | -0.25 ± 1.06 | 2 | -1.00, +0.50 | -0.33 |" in table
    # One seed has no standard error.
    one_seed = report.paired_difference_table(rows[1:3])
    assert "| mlp | jax | -1.00 ± 0.00 | 1 | -1.00 | n/a |" in one_seed
    assert report.paired_difference_table(rows[-1:]) == ""
    text = report.markdown(rows[-1:])
    assert "paired by seed" not in text and "mlp svp" in text
    assert "paired by seed" in report.markdown(rows)


def _results(folder, rows):
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps(rows))
    (folder / "context.json").write_text(
        json.dumps({"command": f"python -m keras_svp.benchmarks --out {folder}"})
    )
    return str(folder)


def test_combine_reports_the_rows_of_several_runs_together(tmp_path):
    first = _results(
        tmp_path / "a",
        [_accuracy_row("svp", 0, 0.89), _accuracy_row("bp", 0, 0.90)],
    )
    second = _results(
        tmp_path / "b",
        [_accuracy_row("svp", 1, 0.91), _accuracy_row("bp", 1, 0.90)],
    )
    out = tmp_path / "both"
    assert main(["--combine", f"{first},{second}", "--out", str(out)]) == 0
    assert len(json.loads((out / "results.json").read_text())) == 4
    text = (out / "results.md").read_text()
    assert "| mlp svp | 90.00 ± 1.41 (2) |" in text
    assert "| mlp | jax | +0.00 ± 1.41 | 2 | -1.00, +1.00 |" in text
    # Every row's origin is named.
    assert f"rows of {first}: command: python -m keras_svp.benchmarks" in text
    context = json.loads((out / "context.json").read_text())
    assert context["command"].endswith(f"--combine {first},{second} --out {out}")


def test_combine_refuses_what_the_report_would_mix_up(tmp_path, capsys):
    five = _results(tmp_path / "five", [_accuracy_row("svp", 0, 0.89)])
    ten = _results(tmp_path / "ten", [_accuracy_row("svp", 1, 0.9, epochs=10)])
    out = str(tmp_path / "out")
    with pytest.raises(SystemExit, match=r"differ in \['epochs'\]"):
        main(["--combine", f"{five},{ten}", "--out", out])
    with pytest.raises(SystemExit, match="seed 0 .* appears twice"):
        main(["--combine", f"{five},{five}", "--out", out])
    with pytest.raises(SystemExit):
        parse_args(["--combine", str(tmp_path / "nothing")])
    assert "holding results.json" in capsys.readouterr().err


def test_ablation_table_names_the_architecture():
    rows = [
        {
            "benchmark": "ablation",
            "backend": "jax",
            "architecture": architecture,
            "variant": "default",
            "mode": "svp",
            "learning_rate": 1e-3,
            "test_accuracy": value,
        }
        for architecture, value in (("mlp", 0.9), ("cnn", 0.89))
    ]
    table = report.accuracy_table(rows, "ablation", "variant")
    assert "| mlp default | 90.00 ± 0.00 (1) |" in table
    assert "| cnn default | 89.00 ± 0.00 (1) |" in table


def test_ablation_architecture_is_checked(capsys):
    assert parse_args([]).ablation_architecture == "mlp"
    assert parse_args(["--ablation-architecture", "cnn"]).ablation_architecture == "cnn"
    with pytest.raises(SystemExit):
        parse_args(["--ablation-architecture", "vgg"])
    assert "--ablation-architecture" in capsys.readouterr().err


def test_cpu_model_names_the_processor(monkeypatch, tmp_path):
    from keras_svp.benchmarks import __main__ as cli

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: AMD EPYC 9B14\nflags\t: fpu\n")
    real_open = open
    monkeypatch.setattr(
        "builtins.open",
        lambda path, *a, **k: real_open(
            cpuinfo if path == "/proc/cpuinfo" else path, *a, **k
        ),
    )
    assert cli.cpu_model() == "AMD EPYC 9B14"
    cpuinfo.unlink()  # no /proc/cpuinfo: the platform's name, maybe empty
    assert cli.cpu_model() == cli.platform.processor()
