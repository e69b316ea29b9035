"""The documentation: complete docstrings, and a site that builds strictly."""

import inspect
import os
import pathlib
import subprocess
import sys

import keras
import pytest

import keras_svp

ROOT = pathlib.Path(__file__).resolve().parents[1]
ONLY_ON_JAX = pytest.mark.skipif(
    keras.backend.backend() != "jax",
    reason="the docs site does not depend on the Keras backend; it is built "
    "once, in the jax run",
)


def public_api():
    """`(qualified name, object)` of every class and function the docs cover:
    the exports of `keras_svp`, and those of its exported subpackages."""
    found = []
    for name in keras_svp.__all__:
        value = getattr(keras_svp, name)
        if name == "__version__":
            continue
        if inspect.ismodule(value):
            found += module_api(value)
        else:
            found.append((f"keras_svp.{name}", value))
    return found


def module_api(module):
    names = getattr(module, "__all__", None) or [
        name
        for name, value in vars(module).items()
        if (inspect.isfunction(value) or inspect.isclass(value))
        and not name.startswith("_")
        and value.__module__.startswith(module.__name__)
    ]
    # Constants and exception classes document themselves in a line.
    return [
        (f"{module.__name__}.{name}", getattr(module, name))
        for name in names
        if inspect.isfunction(getattr(module, name))
        or (
            inspect.isclass(getattr(module, name))
            and not issubclass(getattr(module, name), Exception)
        )
    ]


# Named by the qualified name alone: an object's repr holds its address,
# which differs between pytest-xdist's workers.
API = public_api()


@pytest.mark.parametrize("name, obj", API, ids=[name for name, _ in API])
def test_public_docstring_has_args_returns_and_example(name, obj):
    doc = inspect.getdoc(obj) or ""
    takes_args = bool(inspect.signature(obj).parameters)
    assert not takes_args or "Args:" in doc, f"{name}: no Args section"
    assert "Returns:" in doc, f"{name}: no Returns section"
    assert "Example:" in doc and ">>> " in doc, f"{name}: no runnable example"


@ONLY_ON_JAX
def test_site_builds_strictly_and_documents_the_public_api(tmp_path):
    site = tmp_path / "site"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--config-file",
            str(ROOT / "mkdocs.yml"),
            "--site-dir",
            str(site),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
    )
    # --strict turns every warning (a broken link or anchor, a page missing
    # from the nav, a docstring griffe cannot parse) into a failure.
    assert result.returncode == 0, result.stdout + result.stderr

    # The pages README.md links to are still pages of the site.
    for page in ["method", "benchmarks", "benchmarks/cpu/results"]:
        assert (site / page / "index.html").is_file(), page
    assert (site / "benchmarks/cpu/memory_vs_depth.png").is_file()
    assert (site / "assets/method.png").is_file()

    api = "".join(p.read_text() for p in (site / "api").rglob("index.html"))
    for name, _ in public_api():
        assert f'id="{name}"' in api, f"{name} is missing from the API reference"
