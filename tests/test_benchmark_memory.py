"""The memory benchmark: per-backend step accounting and the peak-RSS child."""

import json
import sys

import keras
import pytest

from keras_svp.benchmarks import memory
from keras_svp.benchmarks.memory import peak_rss
from keras_svp.benchmarks.memory import step_memory
from keras_svp.benchmarks.memory import xla_temp_bytes
from keras_svp.benchmarks.models import build_mlp
from keras_svp.benchmarks.models import synthetic_batch

BACKEND = keras.backend.backend()

# (batch_size, width) where backprop's step at depth 4 clearly needs more than
# SVP's by the backend's accounting. JAX and TensorFlow count gradients and
# optimizer temporaries too (4 MiB per 1024x1024 kernel), so activations must
# be large enough to show; TensorFlow on CPU counts nothing under 256 KiB.
SIZES = {"jax": (256, 1024), "torch": (256, 256), "tensorflow": (256, 1024)}
BATCH, WIDTH = SIZES[BACKEND]
DEPTH = 4


def measure(depth, mode, jit_compile=None):
    x, y = synthetic_batch(BATCH, WIDTH)
    model = build_mlp(depth, WIDTH, mode)
    if jit_compile is not None:
        model.jit_compile = jit_compile
    result = step_memory(model, x, y)
    keras.backend.clear_session()
    return result


@pytest.fixture(scope="module")
def depth_4():
    # TensorFlow: graph mode, what `fit` runs on a CPU. The TF trainer orders
    # the units (each waits for the previous unit's gradients), so SVP's
    # peak stays one unit's there.
    jit_compile = None
    return {mode: measure(DEPTH, mode, jit_compile) for mode in ("bp", "svp")}


def test_step_memory_reports_the_backend_accounting(depth_4):
    for mode, result in depth_4.items():
        assert result["backend"] == BACKEND
        assert isinstance(result["method"], str) and result["method"]
        assert result["step_mib"] > 0, mode
    if BACKEND == "jax":
        for result in depth_4.values():
            assert result["temp_mib"] == result["step_mib"]
            assert result["argument_mib"] > 0
            assert result["jit_compile"] is True
    elif BACKEND == "torch":
        import torch

        for result in depth_4.values():
            assert result["saved_peak_mib"] == result["step_mib"]
            assert result["saved_total_mib"] >= result["saved_peak_mib"]
            # The CUDA allocator's figure exists on a GPU only, and counts
            # at least the saved activations.
            if torch.cuda.is_available():
                assert result["device_step_mib"] >= result["step_mib"]
            else:
                assert result["device_step_mib"] is None
    else:
        for result in depth_4.values():
            assert 0 < result["step_mib_min"] <= result["step_mib"]
            assert result["repeats"] == 3
            assert result["held_mib"] > 0
            assert result["jit_compile"] is False
            assert "not XLA" in result["method"]


def test_backprop_step_needs_more_memory_than_svp(depth_4):
    assert depth_4["bp"]["step_mib"] > depth_4["svp"]["step_mib"]


@pytest.mark.skipif(BACKEND != "tensorflow", reason="TF graph mode")
def test_tensorflow_graph_mode_step_grows_with_backprop_depth():
    shallow, deep = measure(1, "bp", False), measure(DEPTH, "bp", False)
    assert shallow["jit_compile"] is False
    assert "not XLA" in shallow["method"]
    assert deep["step_mib_min"] > shallow["step_mib"] > 0


@pytest.mark.skipif(BACKEND != "torch", reason="autograd's saved tensors")
def test_torch_svp_frees_every_unit_before_the_next(depth_4):
    bp, svp = depth_4["bp"], depth_4["svp"]
    # One backward pass per unit and one for the head, against one.
    assert svp["backward_passes"] == DEPTH + 1
    assert bp["backward_passes"] == 1
    assert svp["saved_after_mib"] == bp["saved_after_mib"] == 0
    # So SVP's peak is one unit's whatever the depth; backprop's grows.
    shallow = {mode: measure(2, mode) for mode in ("bp", "svp")}
    assert shallow["svp"]["step_mib"] == svp["step_mib"]
    assert bp["step_mib"] > 1.5 * shallow["bp"]["step_mib"]


XLA_TEMP_BY_DEPTH = """
import json, sys
import keras
from keras_svp.benchmarks.memory import step_memory
from keras_svp.benchmarks.models import build_application, build_mlp
from keras_svp.benchmarks.models import synthetic_batch, synthetic_images
if sys.argv[1] == "mlp":
    x, y = synthetic_batch(256, 1024)
    depths = (2, 8)
    build = lambda depth: build_mlp(depth, 1024, "svp", jit_compile=True)
else:  # transformer blocks as SVPBlock units
    x, y = synthetic_images(32, (16, 16, 3))
    depths = (2, 10)
    build = lambda depth: build_application(
        "vit", "svp", input_shape=(16, 16, 3), dim=64, num_heads=2, depth=depth,
        jit_compile=True,
    )
temps = []
for depth in depths:
    temps.append(step_memory(build(depth), x, y)["step_mib"])
    keras.backend.clear_session()
print(json.dumps(temps))
"""


@pytest.mark.skipif(BACKEND == "torch", reason="XLA's buffer assignment")
@pytest.mark.parametrize("network", ["mlp", "vit"])
def test_xla_svp_step_holds_one_unit_whatever_the_depth(network, tmp_path):
    # XLA schedules by data dependencies alone. Without the trainers' tie
    # from each unit's gradients to the next unit's input it ran forward
    # passes ahead, and the step grew with depth (JAX, the MLP at these
    # sizes: 10.6 MiB at depth 2, 18.6 at depth 8). Without the tie of the
    # next unit's weights too, it computed what depends on the weights
    # alone (normalization scales broadcast to the activations' shape) for
    # every unit at the start of the step (the ViT: 4.0 MiB at depth 2, 4.8
    # at depth 10 on JAX, 3.1 and 3.6 on TensorFlow with XLA).
    import os
    import subprocess

    env = dict(os.environ)
    if BACKEND == "tensorflow":  # the figure comes from XLA's dump
        env["XLA_FLAGS"] = f"--xla_dump_to={tmp_path}"
    out = subprocess.run(
        [sys.executable, "-c", XLA_TEMP_BY_DEPTH, network],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    shallow, deep = json.loads(out.strip().splitlines()[-1])
    assert 0 < deep < 1.1 * shallow


@pytest.mark.skipif(BACKEND != "tensorflow", reason="XLA is TensorFlow's option")
def test_tensorflow_xla_step_memory_without_a_dump_is_the_allocators():
    # Without XLA_FLAGS=--xla_dump_to there is no buffer assignment to read:
    # the figure is the allocator's peak over the XLA-compiled step.
    x, y = synthetic_batch(BATCH, WIDTH)
    result = step_memory(build_mlp(2, WIDTH, "svp", jit_compile=True), x, y)
    keras.backend.clear_session()
    assert result["jit_compile"] is True
    assert "XLA-compiled" in result["method"]
    assert result["xla_temp_mib"] is None
    assert result["step_mib"] == result["allocator_step_mib"] > 0


def test_xla_temp_bytes_reads_the_preallocated_temp_buffer(tmp_path):
    path = tmp_path / "module_0001.cpu_after_optimizations-buffer-assignment.txt"
    path.write_text(
        "BufferAssignment:\n"
        "allocation 0: size 2097152, parameter 0, shape |f32[1024,512]|:\n"
        "allocation 7: size 35899280, preallocated-temp:\n"
        " value: <1 fusion @0> (size=4,offset=0): f32[]\n"
    )
    assert xla_temp_bytes(str(path)) == 35899280
    path.write_text("BufferAssignment:\nallocation 0: size 4, constant:\n")
    assert xla_temp_bytes(str(path)) is None


def test_peak_rss_runs_a_fresh_process():
    # The child compiles the step as asked (on TensorFlow: through XLA).
    jit_compile = True if BACKEND == "tensorflow" else "auto"
    result = peak_rss(
        depth=1, width=32, batch_size=32, mode="svp", steps=2, jit_compile=jit_compile
    )
    assert result["backend"] == BACKEND
    assert result["jit_compile"] is (BACKEND != "torch")
    assert result["steps"] == 2
    assert result["rss_before_mib"] > 0
    assert result["rss_peak_mib"] >= result["rss_before_mib"]
    assert result["rss_step_mib"] == pytest.approx(
        result["rss_peak_mib"] - result["rss_before_mib"]
    )
    if sys.platform.startswith("linux"):
        assert result["warm_peak_mib"] >= result["warm_before_mib"] > 0
        assert result["warm_step_mib"] >= 0
    # The child's accelerator peak: a figure on a GPU, None without one.
    if memory.device_peak_mib() is None:
        assert result["device_peak_mib"] is None
    else:
        assert result["device_peak_mib"] > 0


def test_device_peak_reads_the_backends_device_statistics(monkeypatch):
    # No accelerator here: each backend's statistics are stood in for.
    if BACKEND == "jax":
        import jax

        class Device:
            platform = "gpu"

            def memory_stats(self):
                return {"peak_bytes_in_use": 3 * 2**20, "bytes_in_use": 2**20}

        monkeypatch.setattr(jax, "local_devices", lambda: [Device()])
    elif BACKEND == "torch":
        import torch

        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda: 3 * 2**20)
    else:
        import tensorflow as tf

        monkeypatch.setattr(tf.config, "list_logical_devices", lambda kind: ["GPU:0"])
        monkeypatch.setattr(
            tf.config.experimental,
            "get_memory_info",
            lambda device: {"peak": 3 * 2**20, "current": 2**20},
        )
    assert memory.device_peak_mib() == 3.0


def test_device_peak_is_none_on_a_cpu():
    if BACKEND == "jax":
        import jax

        on_cpu = jax.local_devices()[0].platform == "cpu"
    elif BACKEND == "torch":
        import torch

        on_cpu = not torch.cuda.is_available()
    else:
        import tensorflow as tf

        on_cpu = not tf.config.list_logical_devices("GPU")
    if not on_cpu:
        pytest.skip("this machine has an accelerator")
    assert memory.device_peak_mib() is None


def test_rss_child_leaves_the_device_free_and_drops_the_xla_dump(monkeypatch):
    # Children run beside the worker (and each other): on a GPU they must
    # not claim the whole device, and they must not dump XLA programs.
    started = {}
    printed = {
        "rss_peak_mib": 300.0,
        "rss_before_mib": 200.0,
        "warm_peak_mib": None,
        "warm_before_mib": None,
    }

    class Popen:
        returncode = 0

        def __init__(self, command, env, **kwargs):
            started.update(command=command, env=env)

        def communicate(self, timeout=None):
            return json.dumps(printed) + "\n", ""

    monkeypatch.setattr(memory.subprocess, "Popen", Popen)
    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/dump --xla_cpu_foo=1")
    monkeypatch.delenv("XLA_PYTHON_CLIENT_PREALLOCATE", raising=False)
    monkeypatch.delenv("TF_FORCE_GPU_ALLOW_GROWTH", raising=False)
    result = memory.peak_rss(4, 16, 8, "bp", steps=2, jit_compile=True)
    assert result["rss_step_mib"] == 100.0
    env = started["env"]
    assert env["KERAS_BACKEND"] == BACKEND
    assert env["XLA_FLAGS"] == "--xla_cpu_foo=1"
    assert env["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    assert env["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
    assert env["MALLOC_MMAP_THRESHOLD_"] == "131072"
    assert "--depth=4" in started["command"]
    assert "--jit-compile=true" in started["command"]


def test_peak_rss_of_a_child_is_its_own_not_its_parents():
    # Linux carries a parent's peak RSS into ru_maxrss across exec; the
    # child must report its own peak (VmHWM), however large its parent.
    import subprocess

    import numpy as np

    held = np.ones((2048, 1024, 1024), dtype="uint8")  # 2 GiB, touched
    code = "from keras_svp.benchmarks import memory; print(memory._max_rss_mib())"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert float(out.strip().splitlines()[-1]) < 1536
    del held


@pytest.mark.parametrize("profiled", [False, True])
def test_exit_process_ends_at_once_unless_profiled(profiled):
    # A benchmark child ends without the interpreter's shutdown, except under
    # a profiler, which writes its results at a normal exit.
    import subprocess

    code = (
        "import sys; from keras_svp.benchmarks import memory\n"
        + ("sys.setprofile(lambda *args: None)\n" if profiled else "")
        + "memory.exit_process(3)\n"
        + "sys.setprofile(None); print('returned')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    if profiled:
        assert result.returncode == 0 and "returned" in result.stdout
    else:
        assert result.returncode == 3 and "returned" not in result.stdout


def test_benchmark_seed_reproduces_the_weights():
    from keras_svp.benchmarks import models

    weights = []
    for _ in range(2):
        models.set_random_seed(7)
        weights.append(keras.random.uniform((3,)))
        model = build_mlp(2, 8, "svp", seed=7)
        model(synthetic_batch(4, 8)[0])
        weights.append(model.get_weights()[0])
        keras.backend.clear_session()
    assert keras.ops.convert_to_numpy(weights[0]).tolist() == (
        keras.ops.convert_to_numpy(weights[2]).tolist()
    )
    assert (weights[1] == weights[3]).all()


def test_benchmark_processes_leave_tensorflow_alone_off_its_backend():
    # Keras' set_random_seed imports TensorFlow to seed it (3 s a process).
    import subprocess

    if BACKEND == "tensorflow":
        import tensorflow as tf

        from keras_svp.benchmarks import models

        draws = []
        for _ in range(2):
            models.set_random_seed(5)
            draws.append(tf.random.uniform((3,)).numpy().tolist())
        assert draws[0] == draws[1]  # tf.random is still seeded on its backend
        return
    code = (
        "import json, sys\n"
        "from keras.src.utils import module_utils\n"
        "from keras_svp.benchmarks.models import build_mlp\n"
        "build_mlp(2, 8, 'svp', seed=1)\n"
        "print(json.dumps(['tensorflow' in sys.modules,"
        " module_utils.tensorflow._available]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    imported, available = json.loads(out.strip().splitlines()[-1])
    assert not imported
    assert available is None  # Keras still finds TensorFlow if it is wanted
