"""Writes the example notebooks (run it after editing a cell here).

    python examples/notebooks/make_notebooks.py

Every notebook starts with an install cell that works on Colab and Kaggle
and a settings cell; `KERAS_SVP_NOTEBOOK_QUICK=1` shrinks the settings so
that the test suite can execute the notebooks in seconds.
"""

import os
import subprocess
import sys

import nbformat
from nbformat.v4 import new_code_cell
from nbformat.v4 import new_markdown_cell
from nbformat.v4 import new_notebook

HERE = os.path.dirname(os.path.abspath(__file__))

INSTALL = """\
# Install keras-svp where it is missing (Colab, Kaggle); a no-op elsewhere.
import importlib.util
import os
import subprocess
import sys

if importlib.util.find_spec("keras_svp") is None:
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "keras-svp"])
# Pick the backend before Keras is imported: "jax", "tensorflow" or "torch".
os.environ.setdefault("KERAS_BACKEND", "jax")"""


def settings(full, quick):
    lines = [
        "# Settings. KERAS_SVP_NOTEBOOK_QUICK=1 (the test suite) shrinks them.",
        'QUICK = os.environ.get("KERAS_SVP_NOTEBOOK_QUICK") == "1"',
    ]
    for name in full:
        lines.append(f"{name} = {quick[name]!r} if QUICK else {full[name]!r}")
    return "\n".join(lines)


def write(name, cells):
    notebook = new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {
        "display_name": "Python 3",
        "language": "python",
        "name": "python3",
    }
    nbformat.write(notebook, os.path.join(HERE, name))


def quickstart():
    write(
        "quickstart.ipynb",
        [
            new_markdown_cell(
                "# keras-svp quickstart\n\n"
                "Train the paper's MLP with Stochastic Variational Propagation: "
                "every hidden layer is an SVP unit that learns from its own local "
                "loss (a fixed random projection used as a classifier, plus an "
                "alignment loss), with no gradient flowing between units. Then "
                "look at what each unit learned."
            ),
            new_code_cell(INSTALL),
            new_code_cell(
                settings(
                    {
                        "DATASET": "fashion_mnist",
                        "EPOCHS": 5,
                        "WIDTH": 1024,
                        "LIMIT": None,
                    },
                    {"DATASET": "digits", "EPOCHS": 1, "WIDTH": 32, "LIMIT": 300},
                )
            ),
            new_code_cell(
                "import keras\n"
                "import numpy as np\n\n"
                "import keras_svp\n"
                "from keras_svp import applications, datasets, diagnostics\n\n"
                "keras.utils.set_random_seed(0)\n"
                "(x_train, y_train), (x_test, y_test) = datasets.load(DATASET)\n"
                "x_train, y_train = x_train[:LIMIT], y_train[:LIMIT]\n"
                "x_test, y_test = x_test[:LIMIT], y_test[:LIMIT]\n"
                "print(keras.backend.backend(), x_train.shape, x_test.shape)"
            ),
            new_markdown_cell(
                "`applications.mlp` builds `Flatten -> SVPDense(WIDTH) x 3 -> "
                "Dense(10)`. The compiled loss trains the output head; each unit "
                'trains from its local loss. `mode="bp"` would train the same '
                "network end to end."
            ),
            new_code_cell(
                "model = applications.mlp(num_classes=10, width=WIDTH, "
                "input_shape=x_train.shape[1:])\n"
                "model.compile(\n"
                "    keras.optimizers.Adam(1e-3),\n"
                "    keras.losses.SparseCategoricalCrossentropy(from_logits=True),\n"
                '    metrics=["accuracy"],\n'
                ")\n"
                "history = model.fit(x_train, y_train, epochs=EPOCHS, batch_size=128, "
                "verbose=2)\n"
                "scores = model.evaluate(\n"
                "    x_test, y_test, verbose=0, return_dict=True\n"
                ")\n"
                "print(f\"test accuracy {scores['accuracy']:.4f}\")\n"
                "sorted(history.history)"
            ),
            new_markdown_cell(
                "## Per-unit diagnostics\n\n"
                "Each unit's projection is a classifier of its own: its local "
                "accuracy shows how much each depth has learned."
            ),
            new_code_cell(
                "report = diagnostics.unit_report(\n"
                "    model, x_test, y_test, batch_size=128\n"
                ")\n"
                "for row in report:\n"
                "    print(row)\n"
                "diagnostics.plot_unit_report(report);"
            ),
            new_code_cell(
                "diagnostics.plot_unit_embedding(model, x_test, y_test, unit=-1);"
            ),
        ],
    )


COMPARE = '''\
# One fresh process per backend: Keras picks its backend once per process.
import json
import tempfile
import textwrap

SCRIPT = textwrap.dedent(
    """
    import json, resource, sys, time
    import keras
    from keras_svp import applications, datasets
    dataset, epochs, width, limit, mode = json.loads(sys.argv[1])
    keras.utils.set_random_seed(0)
    (x, y), (xt, yt) = datasets.load(dataset)
    x, y, xt, yt = x[:limit], y[:limit], xt[:limit], yt[:limit]
    model = applications.mlp(width=width, mode=mode, input_shape=x.shape[1:])
    model.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    start = time.perf_counter()
    model.fit(x, y, epochs=epochs, batch_size=128, verbose=0)
    fit_s = time.perf_counter() - start
    accuracy = model.evaluate(xt, yt, verbose=0, return_dict=True)["accuracy"]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"backend": keras.backend.backend(), "mode": mode,
                      "accuracy": accuracy, "fit_s": fit_s, "peak_rss_mib": peak}))
    """
)
path = os.path.join(tempfile.mkdtemp(), "train.py")
with open(path, "w") as f:
    f.write(SCRIPT)

rows = []
for backend in BACKENDS:
    for mode in ("svp", "bp"):
        env = dict(os.environ, KERAS_BACKEND=backend)
        args = json.dumps([DATASET, EPOCHS, WIDTH, LIMIT, mode])
        out = subprocess.run(
            [sys.executable, path, args], env=env, capture_output=True, text=True
        )
        if out.returncode:
            print(f"{backend} {mode} failed:", out.stderr[-2000:])
            continue
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(rows[-1])'''


def backend_comparison():
    write(
        "backend_comparison.ipynb",
        [
            new_markdown_cell(
                "# The same SVP model on TensorFlow, JAX and PyTorch\n\n"
                "keras-svp runs on all three Keras backends. This notebook "
                "trains the paper's MLP with SVP and with backpropagation on each "
                "installed backend, in a fresh process each, and compares test "
                "accuracy, training time and peak memory (peak resident memory "
                "of the process, which includes the framework itself)."
            ),
            new_code_cell(INSTALL),
            new_code_cell(
                settings(
                    {
                        "DATASET": "fashion_mnist",
                        "EPOCHS": 3,
                        "WIDTH": 1024,
                        "LIMIT": None,
                        "BACKENDS": None,
                    },
                    {
                        "DATASET": "digits",
                        "EPOCHS": 1,
                        "WIDTH": 32,
                        "LIMIT": 300,
                        "BACKENDS": [os.environ.get("KERAS_BACKEND", "jax")],
                    },
                )
                + "\n# All installed backends unless BACKENDS names some.\n"
                "if BACKENDS is None:\n"
                '    BACKENDS = [b for b in ("tensorflow", "jax", "torch")\n'
                "                if importlib.util.find_spec(b) is not None]\n"
                "BACKENDS"
            ),
            new_code_cell(COMPARE),
            new_code_cell(
                "import matplotlib.pyplot as plt\n\n"
                "fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))\n"
                "labels = [f\"{r['backend']}\\n{r['mode']}\" for r in rows]\n"
                'for ax, key in zip(axes, ("accuracy", "fit_s", "peak_rss_mib")):\n'
                "    ax.bar(labels, [r[key] for r in rows])\n"
                "    ax.set_title(key)\n"
                "fig.tight_layout()"
            ),
        ],
    )


def vit_walkthrough():
    write(
        "vit_svp_plus.ipynb",
        [
            new_markdown_cell(
                "# A Vision Transformer trained block-wise (SVP+)\n\n"
                "SVP+ groups transformer blocks into units (`SVPBlock`). Inside "
                "a unit, training is ordinary backpropagation; between units, "
                "gradients stop, and each unit learns from its own local loss on "
                "its class token (or mean token). Memory then grows with the "
                "size of one unit, not of the whole network."
            ),
            new_code_cell(INSTALL),
            new_code_cell(
                settings(
                    {
                        "DATASET": "fashion_mnist",
                        "EPOCHS": 5,
                        "DIM": 64,
                        "DEPTH": 4,
                        "BLOCKS_PER_UNIT": 1,
                        "LIMIT": None,
                    },
                    {
                        "DATASET": "digits",
                        "EPOCHS": 1,
                        "DIM": 16,
                        "DEPTH": 2,
                        "BLOCKS_PER_UNIT": 1,
                        "LIMIT": 300,
                    },
                )
            ),
            new_code_cell(
                "import keras\n\n"
                "from keras_svp import applications, datasets, diagnostics\n\n"
                "keras.utils.set_random_seed(0)\n"
                "(x_train, y_train), (x_test, y_test) = datasets.load(DATASET)\n"
                "x_train, y_train = x_train[:LIMIT], y_train[:LIMIT]\n"
                "x_test, y_test = x_test[:LIMIT], y_test[:LIMIT]\n"
                "PATCH = 2 if x_train.shape[1] <= 8 else 4\n"
                "x_train.shape"
            ),
            new_markdown_cell(
                "The model: patch embedding and class token (trained by the "
                "first unit's loss), `DEPTH // BLOCKS_PER_UNIT` SVP units, then "
                "the class token and a linear head."
            ),
            new_code_cell(
                "def build(mode):\n"
                "    model = applications.vit(\n"
                "        num_classes=10, input_shape=x_train.shape[1:],\n"
                "        patch_size=PATCH,\n"
                "        dim=DIM, depth=DEPTH, num_heads=4 if DIM % 4 == 0 else 1,\n"
                '        blocks_per_unit=BLOCKS_PER_UNIT, reduction="cls", mode=mode,\n'
                "    )\n"
                "    model.compile(\n"
                "        keras.optimizers.Adam(1e-3),\n"
                "        keras.losses.SparseCategoricalCrossentropy(\n"
                "            from_logits=True\n"
                "        ),\n"
                '        metrics=["accuracy"],\n'
                "    )\n"
                "    return model\n\n"
                'model = build("svp")\n'
                "for layer in model.layers:\n"
                '    print(f"{layer.name:16} {type(layer).__name__:15} "\n'
                '          f"{layer.count_params():>8,} parameters")'
            ),
            new_code_cell(
                "results = {}\n"
                'for mode in ("svp", "bp"):\n'
                "    keras.utils.set_random_seed(0)\n"
                '    m = model if mode == "svp" else build("bp")\n'
                "    m.fit(x_train, y_train, epochs=EPOCHS, batch_size=64, verbose=0)\n"
                "    results[mode] = m.evaluate(x_test, y_test, verbose=0, "
                'return_dict=True)["accuracy"]\n'
                "results"
            ),
            new_markdown_cell(
                "## What each unit learned\n\n"
                "The local accuracy of each unit's projection head, and its "
                "losses; then a PCA of the last unit's projected class tokens."
            ),
            new_code_cell(
                "report = diagnostics.unit_report(\n"
                "    model, x_test, y_test, batch_size=64\n"
                ")\n"
                "diagnostics.plot_unit_report(report)\n"
                "report"
            ),
            new_code_cell(
                "diagnostics.plot_unit_embedding(model, x_test, y_test, unit=-1);"
            ),
        ],
    )


if __name__ == "__main__":
    quickstart()
    backend_comparison()
    vit_walkthrough()
    # The project's formatter formats notebooks too.
    for command in (["check", "--fix", "-q"], ["format"]):
        subprocess.run([sys.executable, "-m", "ruff", *command, HERE], check=False)
