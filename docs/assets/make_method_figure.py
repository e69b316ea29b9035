"""Draws docs/assets/method.png, the picture of SVP on the docs' home page.

Usage: python docs/assets/make_method_figure.py [output.png]
"""

import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

UNIT = "#3f51b5"
PROJECTION = "#9fa8da"
LOSS = "#e8eaf6"
HEAD = "#607d8b"
CUT = "#c62828"


def box(ax, x, y, w, h, text, face, color="white", size=11):
    ax.add_patch(
        FancyBboxPatch(
            (x - w / 2, y - h / 2),
            w,
            h,
            boxstyle="round,pad=0.02,rounding_size=0.08",
            facecolor=face,
            edgecolor="#263238",
            linewidth=1.0,
        )
    )
    ax.text(x, y, text, ha="center", va="center", color=color, fontsize=size)


def arrow(ax, start, end, color="#263238", style="-|>", dashed=False):
    ax.add_patch(
        FancyArrowPatch(
            start,
            end,
            arrowstyle=style,
            mutation_scale=14,
            color=color,
            linewidth=1.3,
            linestyle="--" if dashed else "-",
        )
    )


def cut(ax, x, y):
    """The stop-gradient between two units: a red double bar."""
    for dx in (-0.06, 0.06):
        ax.plot([x + dx - 0.05, x + dx + 0.05], [y - 0.2, y + 0.2], color=CUT, lw=2.2)


def loss_text(i):
    # The first unit has no alignment term by default (input_alignment=False).
    if i == 1:
        return "$L_1 = CE(y, z_1)$"
    return f"$L_{i} = CE(y, z_{i})$\n$+\\ \\alpha\\, A(z_{i}, z_{{{i - 1}}})$"


def draw(path):
    fig, ax = plt.subplots(figsize=(11, 4.6))
    ax.set_xlim(0, 11)
    ax.set_ylim(0, 4.6)
    ax.axis("off")

    y_unit, y_proj, y_loss = 3.6, 2.25, 0.85
    xs = [2.4, 4.9, 7.4]
    box(ax, 0.6, y_unit, 0.8, 0.7, "x", "#eceff1", color="#263238", size=13)
    arrow(ax, (1.0, y_unit), (xs[0] - 0.8, y_unit))
    for i, x in enumerate(xs, start=1):
        box(ax, x, y_unit, 1.6, 0.8, f"unit {i}\n$h_{i} = f_{i}(h_{{{i - 1}}})$", UNIT)
        box(
            ax,
            x,
            y_proj,
            1.6,
            0.7,
            f"fixed random $R_{i}$\n$z_{i} = h_{i} \\tilde R_{i}$",
            PROJECTION,
            color="#1a237e",
            size=10,
        )
        box(
            ax,
            x,
            y_loss,
            1.9,
            0.8,
            loss_text(i),
            LOSS,
            color="#1a237e",
            size=10,
        )
        arrow(ax, (x, y_unit - 0.4), (x, y_proj + 0.35))
        arrow(ax, (x, y_proj - 0.35), (x, y_loss + 0.4))
        # The local gradient: from the unit's own loss back to its weights.
        arrow(
            ax,
            (x - 0.85, y_loss + 0.2),
            (x - 0.85, y_unit - 0.1),
            color="#2e7d32",
            dashed=True,
        )
        if i < len(xs):
            nxt = xs[i]
            arrow(ax, (x + 0.8, y_unit), (nxt - 0.8, y_unit))
            cut(ax, (x + nxt) / 2, y_unit)
            # Alignment compares this unit's projection with the previous one.
            arrow(
                ax,
                (x + 0.8, y_proj),
                (nxt - 0.95, y_loss + 0.25),
                color="#5c6bc0",
                style="-|>",
            )
    head_x = 9.8
    arrow(ax, (xs[-1] + 0.8, y_unit), (head_x - 0.7, y_unit))
    cut(ax, (xs[-1] + head_x) / 2 + 0.05, y_unit)
    box(ax, head_x, y_unit, 1.4, 0.8, "head\n(compiled loss)", HEAD)

    ax.plot([], [], color=CUT, lw=2.2, label="stop-gradient between units")
    ax.plot([], [], color="#2e7d32", ls="--", label="gradient of the unit's own loss")
    ax.plot([], [], color="#5c6bc0", label="previous projection, for alignment")
    ax.legend(loc="upper right", bbox_to_anchor=(1.0, 0.62), fontsize=9, frameon=False)
    ax.set_title(
        "SVP: every unit learns from its own local loss; no gradient crosses units",
        fontsize=12,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    draw(sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "method.png"))
