"""The step-time benchmark: what it counts besides time, and the allocator
settings its workers run under."""

import ctypes
import json
import os
import subprocess
import sys

import pytest

from keras_svp.benchmarks import memory
from keras_svp.benchmarks import report
from keras_svp.benchmarks import speed
from keras_svp.benchmarks.__main__ import main
from keras_svp.benchmarks.__main__ import parse_args
from keras_svp.benchmarks.__main__ import profile_text

resource = pytest.importorskip("resource", reason="page faults are counted on POSIX")

MIB = 2**20


class FreshMemoryModel:
    """A stand-in model whose step writes to `mib` MiB it takes from malloc.

    C's malloc, not NumPy's, which asks for huge pages (one fault per 2 MiB).
    """

    def __init__(self, mib):
        self.mib = mib
        self.libc = ctypes.CDLL(None)
        self.libc.malloc.restype = ctypes.c_void_p
        self.libc.free.argtypes = [ctypes.c_void_p]

    def train_on_batch(self, x, y):
        if self.mib:
            block = self.libc.malloc(self.mib * MIB)
            ctypes.memset(block, 1, self.mib * MIB)
            self.libc.free(block)


def test_step_times_count_the_memory_each_step_takes_from_the_kernel():
    models = {"fresh": FreshMemoryModel(64), "none": FreshMemoryModel(0)}
    results = speed.step_times(models, None, None, warmup=1, repeats=3)
    assert results["fresh"]["faulted_mib"] == pytest.approx(64, abs=4)
    assert results["none"]["faulted_mib"] < 4
    for result in results.values():
        assert result["step_ms"] >= result["step_ms_min"] > 0
        # The same figure of the whole round for both models, or none.
        assert result["host_reclaimed_mib"] == results["fresh"]["host_reclaimed_mib"]


def test_fit_loop_times_the_steps_fit_runs():
    from keras_svp.benchmarks import models as benchmark_models

    model = benchmark_models.build_mlp(2, 16, "svp")
    x, y = benchmark_models.synthetic_batch(8, 16)
    fit, calls = model.fit, []

    def counting_fit(inputs, labels, **kwargs):
        calls.append((len(inputs), kwargs["batch_size"], kwargs["epochs"]))
        return fit(inputs, labels, **kwargs)

    model.fit = counting_fit
    result = speed.step_times({"svp": model}, x, y, 1, 2, loop="fit")["svp"]
    # One warm-up and two timed pairs of fit calls, of FIT_STEPS batches and
    # of twice as many.
    steps = speed.FIT_STEPS
    assert calls == [(8 * steps, 8, 1), (16 * steps, 8, 1)] * 3
    assert result["loop"] == "fit" and result["repeats"] == 2
    assert result["step_ms"] >= result["step_ms_min"]
    assert model.optimizer.iterations.numpy() == 3 * 3 * steps
    with pytest.raises(ValueError, match="loop must be one of"):
        speed.step_times({"svp": model}, x, y, loop="predict")


def test_speed_loop_is_an_option_and_is_reported():
    assert parse_args([]).speed_loop == "train_on_batch"
    args = parse_args(["--only", "speed", "--speed-loop", "fit"])
    assert args.speed_loop == "fit"
    assert "steps timed inside fit" in profile_text(args)
    with pytest.raises(SystemExit):
        parse_args(["--speed-loop", "predict"])
    rows = [
        {"benchmark": "speed", "backend": "jax", "depth": 2, "mode": mode}
        | {"step_ms": 1.0, "loop": "fit"}
        for mode in ("bp", "svp")
    ]
    assert report.speed_table(rows).startswith("Keras' steps timed inside `fit`")
    for row in rows:
        row["loop"] = "train_on_batch"
    assert "inside `fit`" not in report.speed_table(rows)


def test_retained_memory_is_reused_not_faulted_in_again():
    # The allocator settings the workers get: a freed 64 MiB block serves
    # the next step, which then faults nothing in; glibc's defaults map a
    # block that large anew each time.
    code = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from test_benchmark_speed import FreshMemoryModel\n"
        "from keras_svp.benchmarks import speed\n"
        "models = {'m': FreshMemoryModel(64)}\n"
        "print(speed.step_times(models, None, None, 1, 3)['m']['faulted_mib'])\n"
    )

    def faulted(**env):
        out = subprocess.run(
            [sys.executable, "-c", code, os.path.dirname(__file__)],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            check=True,
        )
        return float(out.stdout.split()[-1])

    assert faulted(GLIBC_TUNABLES=speed.RETAIN_FREED_MEMORY) < 4
    assert faulted() == pytest.approx(64, abs=4)


def test_memory_traffic_table_sits_under_the_speed_table():
    rows = [
        {
            "benchmark": "speed",
            "backend": "jax",
            "depth": 32,
            "mode": mode,
            "step_ms": ms,
            "faulted_mib": faulted,
            "host_reclaimed_mib": 900.0,
        }
        for mode, ms, faulted in (("bp", 9600.0, 1555.0), ("svp", 2500.0, 64.0))
    ]
    text = report.speed_table(rows)
    assert "| 32 | 9600.0 | 2500.0 | 0.26 |" in text
    assert "| depth | jax BP faulted | jax SVP faulted | jax handed to host |" in text
    assert "| 32 | 1555 | 64 | 900 |" in text
    for row in rows:
        row["host_reclaimed_mib"] = None
    text = report.speed_table(rows)
    assert "handed to host" not in text and "| 32 | 1555 | 64 |" in text
    # Rows of a run before the counts existed render as before.
    for row in rows:
        del row["faulted_mib"], row["host_reclaimed_mib"]
    assert "faulted" not in report.speed_table(rows)


def _worker_envs(monkeypatch, tmp_path, argv, backend="jax"):
    """The environments `main` starts its backend workers with."""
    envs = []

    def fake_run(command, env):
        envs.append(env)
        backend = env["KERAS_BACKEND"]
        (tmp_path / f"{backend}.json").write_text(json.dumps([]))
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(subprocess, "run", fake_run)
    assert main(argv + ["--backend", backend, "--out", str(tmp_path)]) == 0
    return envs


def test_tensorflow_workers_get_onednn_unless_told_otherwise(monkeypatch, tmp_path):
    # TensorFlow keeps CPU memory statistics only with oneDNN's allocator,
    # which it does not turn on by itself on every CPU (AMD's).
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    (env,) = _worker_envs(monkeypatch, tmp_path, ["--only", "speed"], "tensorflow")
    assert env["TF_ENABLE_ONEDNN_OPTS"] == "1"
    (env,) = _worker_envs(monkeypatch, tmp_path, ["--only", "speed"])
    assert "TF_ENABLE_ONEDNN_OPTS" not in env  # JAX's worker is left alone
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    (env,) = _worker_envs(monkeypatch, tmp_path, ["--only", "speed"], "tensorflow")
    assert env["TF_ENABLE_ONEDNN_OPTS"] == "0"


def test_workers_keep_freed_memory_unless_told_otherwise(monkeypatch, tmp_path):
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    (env,) = _worker_envs(monkeypatch, tmp_path, ["--only", "speed"])
    assert env["GLIBC_TUNABLES"] == speed.RETAIN_FREED_MEMORY
    context = json.loads((tmp_path / "context.json").read_text())
    assert "--allocator retain" in context["profile"]
    (env,) = _worker_envs(
        monkeypatch, tmp_path, ["--only", "speed", "--allocator", "system"]
    )
    assert "GLIBC_TUNABLES" not in env
    assert "allocator" not in profile_text(parse_args(["--allocator", "system"]))
    # A setting of the user's own is theirs, and the command records it.
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.arena_max=2")
    (env,) = _worker_envs(monkeypatch, tmp_path, ["--only", "speed"])
    assert env["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=2"
    context = json.loads((tmp_path / "context.json").read_text())
    assert "GLIBC_TUNABLES=glibc.malloc.arena_max=2 " in context["command"]
    assert "allocator" not in context["profile"]


def test_rss_children_return_freed_memory_to_the_kernel(monkeypatch):
    # The cross-check's warm RSS must show what the steps hold, not what a
    # retaining allocator caches: its children drop the workers' setting.
    envs = []

    class FakeChild:
        def __init__(self, command, env, **kwargs):
            envs.append(env)

        def communicate(self, timeout=None):
            fields = ("rss_peak_mib", "rss_before_mib", "warm_peak_mib")
            return json.dumps({**dict.fromkeys(fields, 1.0), "warm_before_mib": 0}), ""

        returncode = 0

    monkeypatch.setattr(memory.subprocess, "Popen", FakeChild)
    monkeypatch.setenv("GLIBC_TUNABLES", speed.RETAIN_FREED_MEMORY)
    memory.peak_rss(2, 8, 4, "svp", steps=1)
    assert "GLIBC_TUNABLES" not in envs[0]
    assert envs[0]["MALLOC_MMAP_THRESHOLD_"] == "131072"
