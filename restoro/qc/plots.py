"""Metric plots along a title's timeline (matplotlib, Agg: no display needed)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from restoro.qc.collect import ShotRow

# (check, series, label, threshold line from the check's metrics or None)
PLOTS = (
    ("fidelity", "psnr", "PSNR vs source (dB)"),
    ("flicker", "flicker", "flicker (levels)"),
    ("combing", "comb", "combed blocks"),
    ("black", "luma", "mean luma"),
)


def plot_title(title: str, rows: list[ShotRow], out: Path) -> Path:
    """One PNG: a panel per metric, title frames on x, shot cuts as lines, failing shots red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(PLOTS), 1, figsize=(10, 1.6 * len(PLOTS) + 0.6), sharex=True)
    for ax, (check, name, label) in zip(axes, PLOTS, strict=True):
        for r in rows:
            ys = r.series.get(check, {}).get(name, [])
            if not ys:
                continue
            xs = list(range(r.start, r.start + len(ys)))
            colour = {"fail": "#c62828", "warn": "#ef8f00"}.get(r.status, "#1565c0")
            ax.plot(xs, ys, color=colour, linewidth=1)
            ax.axvline(r.start, color="#bbbbbb", linewidth=0.5)
        ax.set_ylabel(label, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel(f"{title}: title frame", fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=80, metadata={"Software": None})
    plt.close(fig)
    return out
