"""The sdist and wheel build, pass `twine check`, and the wheel works alone.

The wheel goes into a fresh virtual environment (no system site-packages,
not the repository on sys.path) with keras and the three backends, and
`keras_svp` is imported and trained for one step on each backend there.
"""

import os
import pathlib
import shutil
import subprocess
import sys

import keras
import pytest

import keras_svp

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONSTRAINTS = ROOT / "scripts" / "constraints.txt"

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "jax",
    reason="packaging does not depend on the Keras backend; checked once, in "
    "the jax run (the check itself imports every backend)",
)

BACKEND_PACKAGES = ["tensorflow-cpu", "jax", "torch"]

SMOKE = """
import keras, numpy as np, keras_svp
model = keras_svp.SVPSequential([keras_svp.SVPDense(8), keras.layers.Dense(3)])
model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
history = model.fit(
    np.random.rand(8, 4).astype("float32"), np.arange(8) % 3, epochs=1, verbose=0
)
print(keras.backend.backend(), keras_svp.__version__, keras_svp.__file__)
print(sorted(history.history))
"""


def run(command, **kwargs):
    result = subprocess.run(
        [str(c) for c in command], capture_output=True, text=True, **kwargs
    )
    assert result.returncode == 0, (
        f"{' '.join(map(str, command))} failed:\n{result.stdout}\n{result.stderr}"
    )
    return result.stdout


def clean_env(**extra):
    """The environment without anything that would put the repo on sys.path."""
    dropped = ("PYTHONPATH", "VIRTUAL_ENV")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    return {**env, **extra}


def test_wheel_installs_into_a_clean_venv_and_runs_on_each_backend(tmp_path):
    dist = tmp_path / "dist"
    # sdist first, then the wheel built from the unpacked sdist, so a file
    # missing from the sdist breaks the wheel too.
    run([sys.executable, "-m", "build", "--outdir", dist, ROOT], timeout=300)
    wheels = sorted(dist.glob("*.whl"))
    sdists = sorted(dist.glob("*.tar.gz"))
    version = keras_svp.__version__
    assert [w.name for w in wheels] == [f"keras_svp-{version}-py3-none-any.whl"]
    assert [s.name for s in sdists] == [f"keras_svp-{version}.tar.gz"]
    run([sys.executable, "-m", "twine", "check", "--strict", *wheels, *sdists])

    venv = tmp_path / "venv"
    try:
        run([sys.executable, "-m", "venv", venv])
        python = venv / "bin" / "python"
        pip = [python, "-m", "pip", "install", "-q"]
        env = clean_env()
        run([*pip, "--no-deps", wheels[0]], env=env, timeout=300)
        run(
            [*pip, "-c", CONSTRAINTS, "keras", "numpy", *BACKEND_PACKAGES],
            env=env,
            timeout=900,
        )
        assert (venv / "bin" / "keras-svp").is_file()
        for backend in ("tensorflow", "jax", "torch"):
            out = run(
                [python, "-c", SMOKE],
                env=clean_env(KERAS_BACKEND=backend, OMP_WAIT_POLICY="PASSIVE"),
                cwd=tmp_path,  # not the repository: the installed copy must serve
                timeout=300,
            )
            backend_line = out.splitlines()[-2].split()
            assert backend_line[:2] == [backend, version], out
            assert str(venv) in backend_line[2], out
            assert "svp_dense_prediction_loss" in out.splitlines()[-1], out
    finally:
        # About 3 GB of backends: do not leave them to pytest's tmp retention.
        shutil.rmtree(venv, ignore_errors=True)
