"""The example notebooks execute top to bottom on tiny settings.

They run once per suite run, in its JAX pass (a notebook's kernel is a
fresh process, so the cost is mostly start-up); the backend comparison
notebook then trains on the kernel's backend only.
"""

import os

import keras
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = os.path.join(ROOT, "examples", "notebooks")
NAMES = ["quickstart.ipynb", "backend_comparison.ipynb", "vit_svp_plus.ipynb"]


@pytest.mark.skipif(
    keras.backend.backend() != "jax",
    reason="the notebooks execute once per suite run, in the JAX pass",
)
@pytest.mark.parametrize("name", NAMES)
def test_notebook_executes(name, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("KERAS_SVP_NOTEBOOK_QUICK", "1")
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    # The kernel imports this checkout's keras_svp, and so skips the install.
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", ROOT + (os.pathsep + path if path else ""))
    notebook = nbformat.read(os.path.join(NOTEBOOKS, name), as_version=4)
    assert "pip" in notebook.cells[1].source  # the install cell comes first
    client = nbclient.NotebookClient(
        notebook,
        timeout=240,
        kernel_name="python3",
        resources={"metadata": {"path": NOTEBOOKS}},
    )
    client.execute()
    outputs = [out for cell in notebook.cells for out in cell.get("outputs", [])]
    assert not [out for out in outputs if out.get("output_type") == "error"]
    text = "".join(
        out.get("text", "") + str(out.get("data", {}).get("text/plain", ""))
        for out in outputs
    )
    assert "failed" not in text
    # Figures were drawn where the notebook plots.
    assert any("image/png" in out.get("data", {}) for out in outputs)
