"""Learning curves of runs, drawn: the results page's figures (posedenoise.results) and the demo's
(posedenoise.train). A run is {"metrics": metrics.jsonl's rows, "test": test.json, "config": config.json}."""
from __future__ import annotations

import math
from typing import Optional, Sequence


def curve_points(run: dict) -> dict:
    """Per epoch: cumulative training minutes (wall, the epoch's validation included), optimisation steps,
    validation PCK@0.2 and train loss (None where not counted)."""
    rows = run["metrics"]
    per_epoch = run["config"]["data_summary"]["windows"]["train"] // run["config"]["batch_size"]
    minutes, total = [], 0.0
    for r in rows:
        total += r.get("seconds") or 0
        minutes.append(total / 60)
    return {"minutes": minutes, "steps": [per_epoch * r["epoch"] for r in rows],
            "val_pck": [(r.get("val_pck") or {}).get("0.2") for r in rows],
            "train_loss": [r.get("train_loss") for r in rows]}


def best_filter_val_pck(run: dict) -> Optional[float]:
    """Validation PCK@0.2 of the run's best classical filter (its test.json), else None."""
    t = run.get("test") or {}
    best = t.get("best_filter")
    return ((t.get("filters") or {}).get(best) or {}).get("val_pck", {}).get("0.2") if best else None


def draw_curves(runs: Sequence[dict], title: str, path: str, names: Sequence[str]) -> None:
    """A 2 x 2 figure into `path` (PNG, atomically): validation PCK@0.2 and train loss against training
    minutes and against optimisation steps, one colour per run (labelled by `names`), its best filter's
    validation PCK@0.2 dashed."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter

    from . import files
    fig, axes = plt.subplots(2, 2, figsize=(13, 8.5), squeeze=False)
    handles = []
    for i, (run, name) in enumerate(zip(runs, names)):
        color = plt.cm.tab10(i % 10)
        p = curve_points(run)
        level = best_filter_val_pck(run)
        for c, x in enumerate(("minutes", "steps")):
            for r, y in enumerate(("val_pck", "train_loss")):
                ys = [math.nan if v is None else v for v in p[y]]
                axes[r][c].plot(p[x], ys, color=color, lw=1.5, marker="o", ms=3)
            if level is not None:
                axes[0][c].axhline(level, color=color, ls="--", lw=1.2)
        handles.append(Line2D([], [], color=color, lw=1.5, marker="o", ms=3, label=name))
        if level is not None:
            best = run["test"]["best_filter"]
            handles.append(Line2D([], [], color=color, ls="--", lw=1.2,
                                  label=f"{best} filter (best on val), val PCK@0.2 {level:.3f}"))
    for c, (x, xlabel) in enumerate((("minutes", "training minutes (wall clock, validation passes included)"),
                                     ("steps", "optimisation steps"))):
        for r, ylabel in enumerate(("validation PCK@0.2", "train loss")):
            ax = axes[r][c]
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            ax.grid(alpha=0.3)
            ax.set_xlim(left=0)
            if r == 1:
                vals = [v for line in ax.get_lines() for v in line.get_ydata() if v == v and v > 0]
                if vals and max(vals) / min(vals) > 20:
                    ax.set_yscale("log")
                    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
                    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    fig.suptitle(title)
    ncol = 1 if max(len(h.get_label()) for h in handles) > 60 else 2
    fig.legend(handles=handles, loc="lower center", ncol=ncol, fontsize=8, frameon=False)
    rows_of_legend = math.ceil(len(handles) / ncol)
    fig.tight_layout(rect=(0, min(0.45, 0.025 * rows_of_legend + 0.01), 1, 0.97))
    with files.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
