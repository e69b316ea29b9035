"""Benchmark results as JSON, Markdown tables and PNG plots."""

import json
import math
import os
import statistics
from collections import defaultdict

BACKENDS = ("tensorflow", "jax", "torch")


def save_json(rows, path):
    with open(path, "w") as f:
        json.dump(rows, f, indent=1, default=float)


def load_json(paths):
    rows = []
    for path in paths:
        with open(path) as f:
            rows.extend(json.load(f))
    return rows


def _backends(rows):
    present = {row["backend"] for row in rows}
    return [b for b in BACKENDS if b in present]


def _fmt(value, digits=1):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def _table(header, lines):
    out = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    out += ["| " + " | ".join(str(c) for c in line) + " |" for line in lines]
    return "\n".join(out)


def _index(rows, benchmark, *keys):
    index = {}
    for row in rows:
        if row["benchmark"] == benchmark:
            index[tuple(row[k] for k in keys)] = row
    return index


def _bp_svp_table(rows, benchmark, field, unit, svp_over_bp, key="depth"):
    """A row per `key` value; per backend BP, SVP and their ratio.

    The ratio is SVP/BP or BP/SVP. Numeric keys (depths) are sorted, others
    keep the order of their first row.
    """
    index = _index(rows, benchmark, "backend", key, "mode")
    backends = _backends([r for r in rows if r["benchmark"] == benchmark])
    depths = list(dict.fromkeys(k[1] for k in index))
    if all(isinstance(depth, (int, float)) for depth in depths):
        depths.sort()
    ratio_name = "SVP/BP" if svp_over_bp else "BP/SVP"
    header = [key]
    for b in backends:
        header += [f"{b} BP {unit}", f"{b} SVP {unit}", f"{b} {ratio_name}"]
    lines = []
    for depth in depths:
        line = [depth]
        for b in backends:
            bp = index.get((b, depth, "bp"), {}).get(field)
            svp = index.get((b, depth, "svp"), {}).get(field)
            ratio = None
            if bp and svp:
                ratio = svp / bp if svp_over_bp else bp / svp
            line += [_fmt(bp), _fmt(svp), _fmt(ratio, 2)]
        lines.append(line)
    return header, lines, index, depths


def _accounting(rows, benchmark):
    """The lines naming what each backend's memory figure counts."""
    methods = {}
    for row in rows:
        if row["benchmark"] == benchmark:
            methods.setdefault(row["backend"], row["method"])
    backends = _backends([r for r in rows if r["benchmark"] == benchmark])
    return "Accounting:\n" + "\n".join(f"- {b}: {methods[b]}" for b in backends)


def memory_table(rows):
    header, lines, _, _ = _bp_svp_table(
        rows, "memory", "step_mib", "MiB", svp_over_bp=False
    )
    rss = rss_table(rows)
    return (
        _table(header, lines)
        + "\n\n"
        + _accounting(rows, "memory")
        + device_step_table(rows)
        + ("\n\n" + rss if rss else "")
    )


def device_step_table(rows):
    """The CUDA allocator's peak over one step, where a backend reports it.

    PyTorch's on a GPU (`device_step_mib`): unlike its autograd accounting,
    it counts gradients and optimizer temporaries too. Empty elsewhere.
    """
    measured = [
        row
        for row in rows
        if row["benchmark"] == "memory" and row.get("device_step_mib") is not None
    ]
    if not measured:
        return ""
    header, lines, _, _ = _bp_svp_table(
        measured, "memory", "device_step_mib", "MiB", svp_over_bp=False
    )
    return (
        "\n\nThe device allocator's peak over one step (MiB; PyTorch on a "
        "GPU: `torch.cuda.max_memory_allocated()` after a reset, less what "
        "was allocated before the step), which also counts gradients and "
        "optimizer temporaries:\n\n" + _table(header, lines)
    )


def architectures_table(rows):
    """BP and SVP step memory per application network, side by side."""
    header, lines, index, labels = _bp_svp_table(
        rows, "architectures", "step_mib", "MiB", svp_over_bp=False, key="architecture"
    )
    params = {key[1]: row.get("trainable_params") for key, row in index.items()}
    header.insert(1, "trainable params (M)")
    for line, label in zip(lines, labels):
        count = params.get(label)
        line.insert(1, _fmt(count / 1e6 if count else None, 2))
    batch = sorted({r["batch_size"] for r in index.values()})
    shape = next(iter(index.values())).get("image_shape")
    where = f"One training step on {', '.join(map(str, batch))} synthetic images"
    if shape:
        where += f" of {'x'.join(map(str, shape))}"
    accounting = _accounting(rows, "architectures")
    return f"{where}.\n\n{_table(header, lines)}\n\n{accounting}"


def rss_table(rows):
    index = _index(rows, "rss", "backend", "depth", "mode")
    if not index:
        return ""
    backends = _backends([r for r in rows if r["benchmark"] == "rss"])
    depths = sorted({key[1] for key in index})
    header = ["depth"] + [f"{b} {m}" for b in backends for m in ("BP", "SVP")]

    def table(cell):
        lines = [
            [depth]
            + [
                cell(index.get((b, depth, m), {}))
                for b in backends
                for m in ("bp", "svp")
            ]
            for depth in depths
        ]
        return _table(header, lines)

    text = (
        "Cross-check: resident memory (MiB) a fresh process adds while training, "
        "as *warm / all*: over the steps after the first (no tracing or "
        "compilation), and over all steps (compilation included). It counts "
        "everything the process touches, including allocator caches (TensorFlow "
        "keeps its memory, so its warm figures stay small).\n\n"
        + table(
            lambda row: (
                f"{_fmt(row.get('warm_step_mib'), 0)} / "
                f"{_fmt(row.get('rss_step_mib'), 0)}"
            )
        )
    )
    if any(row.get("device_peak_mib") is not None for row in index.values()):
        text += (
            "\n\nThe same fresh processes' peak accelerator memory (MiB), by the "
            "backend's device statistics: weights, optimizer state and the "
            "steps.\n\n" + table(lambda row: _fmt(row.get("device_peak_mib"), 0))
        )
    return text


def speed_table(rows):
    header, lines, index, depths = _bp_svp_table(
        rows, "speed", "step_ms", "ms", svp_over_bp=True
    )
    if any(key[2] == "reference" for key in index):
        header += ["jax hand-written SVP ms", "jax Keras/hand-written"]
        for line, depth in zip(lines, depths):
            ref = index.get(("jax", depth, "reference"), {}).get("step_ms")
            svp = index.get(("jax", depth, "svp"), {}).get("step_ms")
            line += [_fmt(ref), _fmt(svp / ref if ref and svp else None, 2)]
    traffic = memory_traffic_table(rows)
    text = _table(header, lines) + ("\n\n" + traffic if traffic else "")
    loops = {row.get("loop") for row in rows if row["benchmark"] == "speed"}
    if "fit" in loops:
        # Keras' steps only: the hand-written step is timed as it always is.
        text = "Keras' steps timed inside `fit` (per step).\n\n" + text
    return text


def memory_traffic_table(rows):
    """What the timed steps took fresh from the operating system, per depth."""
    index = _index(rows, "speed", "backend", "depth", "mode")
    if not any(row.get("faulted_mib") is not None for row in index.values()):
        return ""
    backends = _backends([r for r in rows if r["benchmark"] == "speed"])
    depths = sorted({key[1] for key in index})
    reported = any(row.get("host_reclaimed_mib") is not None for row in index.values())
    header = ["depth"]
    for b in backends:
        header += [f"{b} BP faulted", f"{b} SVP faulted"]
        header += [f"{b} handed to host"] if reported else []
    lines = []
    for depth in depths:
        line = [depth]
        for b in backends:
            bp = index.get((b, depth, "bp"), {})
            line += [_fmt(bp.get("faulted_mib"), 0)]
            line += [_fmt(index.get((b, depth, "svp"), {}).get("faulted_mib"), 0)]
            line += [_fmt(bp.get("host_reclaimed_mib"), 0)] if reported else []
        lines.append(line)
    text = (
        "Memory traffic of the timed steps (MiB): what one step faulted in "
        "(minor page faults, median: memory its allocator took fresh from the "
        "kernel rather than reused)"
    )
    if reported:
        text += (
            ", and what the kernel of this virtual machine handed back to its "
            "host per round of steps (one BP and one SVP step; free page "
            "reporting), which the next step must fault in from the host, "
            "at a far higher cost"
        )
    return text + ".\n\n" + _table(header, lines)


def _mean_std(values, signed=False):
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * mean:{'+' if signed else ''}.2f} ± {100 * std:.2f}"


def accuracy_table(rows, benchmark="accuracy", key="architecture"):
    groups = defaultdict(list)
    # Runs at several learning rates are told apart by it in the label.
    rates = {row.get("learning_rate") for row in rows if row["benchmark"] == benchmark}
    for row in rows:
        if row["benchmark"] == benchmark:
            detail = row["mode"] if key == "architecture" else row[key]
            label = _accuracy_label(row, rates, detail)
            groups[(label, row["backend"])].append(row["test_accuracy"])
    if not groups:
        return ""
    backends = _backends([r for r in rows if r["benchmark"] == benchmark])
    labels = list(dict.fromkeys(label for label, _ in groups))
    header = [key if key != "architecture" else "model"] + [
        f"{b} test accuracy % (n)" for b in backends
    ]
    lines = []
    for label in labels:
        line = [label]
        for b in backends:
            values = groups.get((label, b))
            line.append(f"{_mean_std(values)} ({len(values)})" if values else "–")
        lines.append(line)
    return _table(header, lines)


def _paired_t(values):
    """The mean over its standard error; "n/a" where that is undefined (one
    seed, or differences that do not vary)."""
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    if std == 0:
        return "n/a"
    return f"{statistics.fmean(values) / (std / math.sqrt(len(values))):+.2f}"


def _accuracy_label(row, rates, detail=None):
    """`"cnn"`, `"cnn svp"`, or `"cnn svp, Adam 0.008"` where rates differ."""
    label = row["architecture"] if detail is None else f"{row['architecture']} {detail}"
    if len(rates) > 1:
        label += f", Adam {row['learning_rate']:g}"
    return label


def paired_difference_table(rows):
    """SVP's test accuracy minus BP's, seed by seed, per model and backend.

    Both modes of a seed start from the same seed and see the same data, so
    the per-seed difference is less noisy than the difference of the two
    means; the table shows its mean ± std, the seeds, each difference, and
    the mean over its standard error (the paired t statistic: compare it
    with Student's t for one degree of freedom less than the seeds to ask
    whether the difference is more than noise). Only seeds run in both
    modes count. Empty when there are none.
    """
    accuracy = [row for row in rows if row["benchmark"] == "accuracy"]
    rates = {row.get("learning_rate") for row in accuracy}
    by_seed = defaultdict(dict)
    for row in accuracy:
        key = (_accuracy_label(row, rates), row["backend"], row.get("seed"))
        by_seed[key][row["mode"]] = row["test_accuracy"]
    differences = defaultdict(list)
    for (label, backend, seed), modes in by_seed.items():
        if "svp" in modes and "bp" in modes:
            differences[(label, backend)].append((seed, modes["svp"] - modes["bp"]))
    lines = []
    for (label, backend), pairs in differences.items():
        pairs.sort(key=lambda pair: (pair[0] is None, pair[0]))
        values = [value for _, value in pairs]
        lines.append(
            [
                label,
                backend,
                _mean_std(values, signed=True),
                len(values),
                ", ".join(f"{100 * value:+.2f}" for value in values),
                _paired_t(values),
            ]
        )
    if not lines:
        return ""
    header = [
        "model",
        "backend",
        "SVP - BP, points",
        "seeds",
        "per seed",
        "t = mean / standard error",
    ]
    return _table(header, lines)


def markdown(rows, title="keras-svp benchmark", context=None):
    parts = [f"# {title}"]
    if context:
        parts.append("\n".join(f"- {k}: {v}" for k, v in context.items()))
    sections = [
        ("Peak training-step memory vs depth", "memory", memory_table),
        (
            "Peak training-step memory by architecture",
            "architectures",
            architectures_table,
        ),
        ("Median training-step time vs depth", "speed", speed_table),
        ("Test accuracy, mean ± std over seeds", "accuracy", accuracy_table),
        (
            "SVP minus BP, paired by seed (mean ± std)",
            "accuracy",
            paired_difference_table,
        ),
        (
            "Ablation of SVP, one option changed at a time",
            "ablation",
            lambda r: accuracy_table(r, "ablation", "variant"),
        ),
    ]
    for heading, benchmark, render in sections:
        if any(row["benchmark"] == benchmark for row in rows):
            table = render(rows)
            if table:
                parts.append(f"## {heading}\n\n{table}")
    return "\n\n".join(parts) + "\n"


def plot_memory(rows, path):
    """Memory against depth, BP and SVP, one panel per backend (Fig. 2)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    memory = [r for r in rows if r["benchmark"] == "memory"]
    backends = _backends(memory)
    if not backends:
        return None
    fig, axes = plt.subplots(1, len(backends), figsize=(4.2 * len(backends), 3.4))
    axes = [axes] if len(backends) == 1 else list(axes)
    for ax, backend in zip(axes, backends):
        for mode, style in (("bp", "o-"), ("svp", "s-")):
            points = sorted(
                (r["depth"], r["step_mib"])
                for r in memory
                if r["backend"] == backend and r["mode"] == mode
            )
            if points:
                ax.plot(*zip(*points), style, label=mode.upper())
        ax.set_xscale("log", base=2)
        ax.set_xlabel("depth (units)")
        ax.set_ylabel("step memory (MiB)")
        ax.set_title(backend)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
