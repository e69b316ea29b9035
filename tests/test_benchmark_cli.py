"""The benchmark harness runs end to end (--quick) on the current backend."""

import json

import keras

from keras_svp.benchmarks.__main__ import main


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
    text = (out / "results.md").read_text()
    for heading in ("memory vs depth", "step time", "Test accuracy", "Ablation"):
        assert heading in text
    assert (out / "memory_vs_depth.png").stat().st_size > 0
