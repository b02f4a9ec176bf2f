"""The study's grid and its report.

    python -m posedenoise.experiments run --data DATA --out DIR [--only 1.2,2.3] [--models conv3d,...]
                                          [--cell-index N] [any posedenoise.train flag, e.g. --epochs 5]
    python -m posedenoise.experiments report DIR [--results PAGE.md [--also RUN_OR_FOLDER] [--study PATH]
                                                 [--ceiling CEILING.json] [--curves TITLE=RUN[,RUN...]]]

The grid is 4 models x k {1, 2} x setups {1, 2, 3} = 24 runs, each named "k.setup" (e.g. "2.3") and kept in
DIR/<model>/<k.setup>/ as a normal run directory. `run` skips finished cells (they have test.json) and
resumes interrupted ones, so rerunning it continues the grid; --cell-index picks one cell (0-23, in the
order of `list`) for cluster job arrays. `report` writes figure1.png/.pdf and tables.md/.csv/.tex, and
works on a partial grid (missing cells are shown as such and listed). --results also writes the results page
(posedenoise/results.py): every run beside the identity and the filters, the study's published numbers, the
heatmap models' averaging ceiling and learning curves (PNGs beside the page).
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import reprlib
import shlex
import sys
from typing import Dict, List, Optional, Tuple

from . import cli
if __name__ == "__main__":   # a command, not an import: set how OpenMP waits before torch loads OpenMP
    cli.openmp_wait_policy()

from . import files
from .evaluation import ALPHAS, filter_label

GRID_MODELS = ("conv3d", "deciwatch", "biconvlstm-sum", "biconvlstm-concat")
KS = (1, 2)
SETUP_IDS = (1, 2, 3)
GROUPS = ("nose", "ear", "shoulder", "elbow", "wrist", "hip", "knee", "ankle")
PROG = "posedenoise.experiments"


def cells() -> List[Tuple[str, int, int]]:
    """(model, k, setup) in grid order: index = model * 6 + (k - 1) * 3 + (setup - 1)."""
    return [(m, k, s) for m in GRID_MODELS for k in KS for s in SETUP_IDS]


def cell_dir(root: str, model: str, k: int, setup: int) -> str:
    return os.path.join(root, model, f"{k}.{setup}")


def select(only: Optional[str], models: Optional[str], index: Optional[int]) -> List[Tuple[str, int, int]]:
    grid = cells()
    if index is not None:
        if not 0 <= index < len(grid):
            raise cli.InputError(f"--cell-index: expected 0 to {len(grid) - 1}, got {index}")
        return [grid[index]]
    if models:
        wanted = models.split(",")
        bad = [m for m in wanted if m not in GRID_MODELS]
        if bad:
            raise cli.InputError(f"--models: unknown {bad}; expected names from {list(GRID_MODELS)}")
        grid = [c for c in grid if c[0] in wanted]
    if only:
        names = only.split(",")
        bad = [n for n in names if n not in {f"{k}.{s}" for k in KS for s in SETUP_IDS}]
        if bad:
            raise cli.InputError(f"--only: unknown runs {bad}; expected names like 1.2 or 2.3 (k.setup)")
        grid = [c for c in grid if f"{c[1]}.{c[2]}" in names]
    return grid


def run(argv: List[str]) -> None:
    from .train import TrainConfig, train
    # allow_abbrev=False: "--model" must not be read as an abbreviation of "--models" (it is a train flag).
    ap = cli.OneLineParser(prog=f"{PROG} run", description="run the grid's unfinished cells; other flags go to "
                           "posedenoise.train", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                           allow_abbrev=False)
    ap.add_argument("--data", default="synthetic", help="as posedenoise.train --data")
    ap.add_argument("--out", required=True, help="grid directory")
    ap.add_argument("--only", help="comma-separated run names k.setup, e.g. 1.2,2.3")
    ap.add_argument("--models", help=f"comma-separated models from {','.join(GRID_MODELS)}")
    ap.add_argument("--cell-index", type=int, help="run exactly this cell (0-23), for job arrays")
    args, rest = ap.parse_known_args(argv)
    for flag in ("--model", "--setup", "--k", "--out", "--resume"):
        if any(r == flag or r.startswith(flag + "=") for r in rest):
            raise cli.InputError(f"{flag} is set per cell by the grid; leave it out")
    cli.check_output(args.out, "--out", kind="dir")
    chosen = select(args.only, args.models, args.cell_index)

    def config(model, k, setup, resume):
        return cli.parse(TrainConfig, rest + ["--data", args.data, "--model", model, "--k", str(k), "--setup",
                                              str(setup), "--out", cell_dir(args.out, model, k, setup)]
                         + (["--resume"] if resume else []), f"{PROG} run", "")

    for model in dict.fromkeys(c[0] for c in chosen):   # the train flags (--model-arg: per model), checked
        config(model, *chosen[0][1:], resume=False)      # before any cell trains or is found finished
    for i, (model, k, setup) in enumerate(chosen):
        out = cell_dir(args.out, model, k, setup)
        if os.path.exists(os.path.join(out, "test.json")):
            print(f"[{i + 1}/{len(chosen)}] {model} {k}.{setup}: finished, skipped")
            continue
        resume = os.path.exists(os.path.join(out, "checkpoints", "last.pt"))
        print(f"[{i + 1}/{len(chosen)}] {model} {k}.{setup}: {'resuming' if resume else 'training'} in {out}",
              flush=True)
        train(config(model, k, setup, resume))


# ---------------------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------------------


def load_grid(root: str) -> Dict[Tuple[str, int, int], dict]:
    """(model, k, setup) -> load_run of the cell, for cells with any output."""
    found = {}
    for model, k, setup in cells():
        run = load_run(cell_dir(root, model, k, setup))
        if run is not None:
            found[(model, k, setup)] = run
    return found


def load_run(d: str) -> Optional[dict]:
    """A run directory -> {"metrics": [epoch rows], "test": test.json or None, "config": config.json or None},
    None if it has neither metrics.jsonl nor test.json. Every row and test.json is checked for the fields the
    report reads: InputError names the file and field."""
    path = {name: os.path.join(d, name) for name in ("metrics.jsonl", "test.json", "config.json")}
    if not os.path.exists(path["metrics.jsonl"]) and not os.path.exists(path["test.json"]):
        return None
    rows = _read_json(path["metrics.jsonl"], lines=True) if os.path.exists(path["metrics.jsonl"]) else []
    for n, row in enumerate(rows, 1):
        _checked(row, f"{path['metrics.jsonl']}:{n}", METRICS_ROW)
    test = _checked(_read_json(path["test.json"]), path["test.json"], TEST_JSON) \
        if os.path.exists(path["test.json"]) else None
    config = _checked(_read_json(path["config.json"]), path["config.json"], CONFIG_JSON) \
        if os.path.exists(path["config.json"]) else None
    return {"metrics": rows, "test": test, "config": config, "dir": os.path.realpath(d)}


def _runs_under(d: str) -> List[dict]:
    """load_run of `d` if it is a finished run, else of every finished run under it (sorted by path)."""
    found = []
    for folder, dirs, names in os.walk(d) if os.path.isdir(d) else []:
        dirs.sort()
        if {"config.json", "test.json"} <= set(names):
            found.append(load_run(folder))
            dirs.clear()                        # a run's own folders (checkpoints/) hold no runs
    return found


def finished_runs(d: str) -> List[dict]:
    """_runs_under(d); InputError (naming --also) if there is none."""
    found = _runs_under(d)
    if not found:
        raise cli.InputError(f"--also {d}: expected a finished run directory (config.json, metrics.jsonl, "
                             "test.json) or a folder holding some")
    return found


def _read_json(path: str, lines: bool = False):
    """A JSON file, or with `lines` the list of a JSON-lines file's rows; InputError names the file (and line)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError as e:
        raise cli.InputError(f"{path}: not a text file ({e})") from None
    if not lines:
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise cli.InputError(f"{path}: not valid JSON ({e})") from None
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            raise cli.InputError(f"{path}:{n}: not a JSON line") from None
    return rows


def _number(v) -> bool:
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))   # null: nothing counted


def _per_alpha(v) -> bool:
    return isinstance(v, dict) and all(f"{a:g}" in v and _number(v[f"{a:g}"]) for a in ALPHAS)


def _integer(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


PER_ALPHA = "an object {" + ", ".join(f'"{a:g}": number' for a in ALPHAS) + "}"
# What the report reads (the rest of a row or of test.json is ignored): field -> (check, what is expected).
# Fields in MAY_BE_ABSENT were added later: runs written before have none.
METRICS_ROW = {"epoch": (_integer, "an integer"), "train_loss": (_number, "a number"),
               "val_loss": (_number, "a number"), "val_pck": (_per_alpha, PER_ALPHA),
               "val_identity_pck": (lambda v: v is None or _per_alpha(v), PER_ALPHA)}
TEST_JSON = {"best_epoch": (lambda v: v is None or _integer(v), "an integer"), "pck": (_per_alpha, PER_ALPHA),
             "identity_pck": (_per_alpha, PER_ALPHA), "mean_threshold_px": (_per_alpha, PER_ALPHA),
             "per_group_pck": (lambda v: isinstance(v, dict) and all(_number(x) for x in v.values()),
                               "an object {group: number}"),
             "filters": (lambda v: isinstance(v, dict) and all(
                 isinstance(f, dict) and isinstance(f.get("options"), dict) and _per_alpha(f.get("pck"))
                 and _per_alpha(f.get("val_pck")) for f in v.values()),
                 'an object {filter: {"options": {...}, "val_pck": {...}, "pck": {...}}}'),
             "best_filter": (lambda v: v is None or isinstance(v, str), "a filter's name"),
             "best_filter_pck": (lambda v: v is None or _per_alpha(v), PER_ALPHA),
             "margin_over_best_filter": (_per_alpha, PER_ALPHA)}
CONFIG_JSON = {"model": (lambda v: isinstance(v, str), "a model name"), "k": (_number, "a number"),
               "setup": (_integer, "an integer"), "batch_size": (_integer, "an integer"),
               "data_summary": (lambda v: isinstance(v, dict) and isinstance(v.get("windows"), dict)
                                and _integer(v["windows"].get("train")), 'an object with "windows": {"train": n}')}
MAY_BE_ABSENT = {"val_identity_pck", "filters", "best_filter", "best_filter_pck", "margin_over_best_filter"}
# The JSON of benchmarks/heatmap_ceiling.py --json (the results page's --ceiling), and each entry of its results.
CEILING = "benchmarks/heatmap_ceiling.py --json"
_SIGMA_OK = lambda v: v == "box" or (_number(v) and v is not None and v >= 0)  # noqa: E731
CEILING_JSON = {"command": (lambda v: isinstance(v, dict) and isinstance(v.get("data"), str), 'an object with "data"'),
                "windows": (_integer, "an integer"), "test_windows": (_integer, "an integer"),
                "setup": (_integer, "an integer"),
                "results": (lambda v: isinstance(v, list) and len(v) > 0, "a non-empty list, one entry per k")}
CEILING_RESULT = {
    "k": (lambda v: _number(v) and v is not None, "a number"),
    **{name: (_per_alpha, PER_ALPHA) for name in ("identity", "mean_filter", "mean_all_frames")},
    **{name: (lambda v: isinstance(v, list) and len(v) > 0 and all(
        isinstance(g, dict) and _SIGMA_OK(g.get("s")) and _per_alpha(g.get("pck")) for g in v),
        'a non-empty list of {"s": sigma or "box", "pck": {...}}')
        for name in ("average_blur", "normalised_average_blur")},
    "kernels": (lambda v: isinstance(v, list) and len(v) > 0 and all(
        isinstance(g, dict) and _integer(g.get("kernel")) and _integer(g.get("temporal_reach"))
        and _SIGMA_OK(g.get("best_s")) and _per_alpha(g.get("pck")) for g in v),
        'a non-empty list of {"kernel", "temporal_reach", "best_s", "pck"}')}


def check_ceiling(doc, path: str) -> dict:
    """The ceiling script's JSON with every field the results page reads; InputError names the file and field."""
    _checked(doc, path, CEILING_JSON, writer=CEILING)
    for i, entry in enumerate(doc["results"]):
        _checked(entry, f"{path}: results[{i}]", CEILING_RESULT, writer=CEILING)
    return doc


def _checked(doc, where: str, fields: dict, writer: str = "posedenoise.train"):
    """doc, if it is a JSON object with every field the report reads, of the expected type (as `writer` writes)."""
    if not isinstance(doc, dict):
        raise cli.InputError(f"{where}: expected a JSON object, as {writer} writes, got a {type(doc).__name__}")
    for name, (ok, expected) in fields.items():
        if name not in doc:
            if name in MAY_BE_ABSENT:
                continue
            raise cli.InputError(f"{where}: missing field {name!r} ({expected}, as {writer} writes)")
        if not ok(doc[name]):
            raise cli.InputError(f"{where}: field {name!r} is {reprlib.repr(doc[name])}; expected {expected}")
    return doc


def _fmt(v, digits=3, sign=False):
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:{'+' if sign else ''}.{digits}f}"


def _cell_test(grid, k: int, s: int) -> Optional[dict]:
    """test.json of any finished model of cell k.s: the identity, the filters and the thresholds depend on the
    data, split and noise only, which the cell's models share."""
    return next((grid[(m, k, s)]["test"] for m in GRID_MODELS if (grid.get((m, k, s)) or {}).get("test")), None)


def pck_table(grid, k: int) -> Tuple[List[str], List[List[object]]]:
    """Tables 1/2: rows models + identity + best classical filter + threshold; columns setup x alpha. Values
    are floats or None (runs from before the filters have no filter row values)."""
    header = ["model"] + [f"setup {s} PCK@{a:g}" for s in SETUP_IDS for a in ALPHAS]
    rows = []
    for model in GRID_MODELS:
        row = [model]
        for s in SETUP_IDS:
            t = (grid.get((model, k, s)) or {}).get("test")
            row += [t["pck"][f"{a:g}"] if t else None for a in ALPHAS]
        rows.append(row)
    ident, filt, thr, names = ["identity (noisy input)"], [], ["mean threshold (px)"], []
    for s in SETUP_IDS:
        t = _cell_test(grid, k, s) or {}
        best = t.get("best_filter_pck") or {}
        ident += [t["identity_pck"][f"{a:g}"] if t else None for a in ALPHAS]
        filt += [best.get(f"{a:g}") for a in ALPHAS]
        thr += [t["mean_threshold_px"][f"{a:g}"] if t else None for a in ALPHAS]
        if t.get("best_filter"):
            names.append(filter_label(t["best_filter"], t["filters"][t["best_filter"]]["options"]))
    filt.insert(0, f"best classical filter ({', '.join(dict.fromkeys(names)) or 'not in these runs'})")
    return header, rows + [ident, filt, thr]


def margin_table(grid, k: int) -> Tuple[List[str], List[List[object]]]:
    """Tables 5/6: each model's test PCK minus the best classical filter's (chosen on validation)."""
    header = ["model"] + [f"setup {s} PCK@{a:g}" for s in SETUP_IDS for a in ALPHAS]
    rows = []
    for model in GRID_MODELS:
        row = [model]
        for s in SETUP_IDS:
            margin = ((grid.get((model, k, s)) or {}).get("test") or {}).get("margin_over_best_filter") or {}
            row += [margin.get(f"{a:g}") for a in ALPHAS]
        rows.append(row)
    return header, rows


def group_table(grid, k: int) -> Tuple[List[str], List[List[object]]]:
    """Tables 3/4: test PCK@0.2 per keypoint group for each run, with its best epoch."""
    header = ["model", "run"] + list(GROUPS) + ["best epoch"]
    rows = []
    for model in GRID_MODELS:
        for s in SETUP_IDS:
            t = (grid.get((model, k, s)) or {}).get("test")
            rows.append([model, f"{k}.{s}"] + [t["per_group_pck"].get(g) if t else None for g in GROUPS]
                        + [t["best_epoch"] if t else None])
    return header, rows


def _best_per_column(rows, first_value_col, model_rows):
    """Index of the best (highest) model row per value column, among the model rows only."""
    best = {}
    for c in range(first_value_col, len(rows[0])):
        vals = [(r[c], i) for i, r in enumerate(rows[:model_rows])
                if isinstance(r[c], (int, float)) and not math.isnan(r[c])]
        if vals:
            best[c] = max(vals)[1]
    return best


def render_tables(grid) -> Dict[str, str]:
    """-> {"md": ..., "csv": ..., "tex": ...} with Tables 1-4; the best model value of each column marked."""
    md, tex = [], []
    buf = io.StringIO()
    w = csv.writer(buf)
    margin = "test PCK minus the best classical filter's (positive: the model wins)"
    specs = [("Table 1", "test PCK, k = 1", pck_table(grid, 1), 1, len(GRID_MODELS)),
             ("Table 2", "test PCK, k = 2", pck_table(grid, 2), 1, len(GRID_MODELS)),
             ("Table 3", "test PCK@0.2 per keypoint group, k = 1", group_table(grid, 1), 2, None),
             ("Table 4", "test PCK@0.2 per keypoint group, k = 2", group_table(grid, 2), 2, None),
             ("Table 5", f"{margin}, k = 1", margin_table(grid, 1), 1, None),
             ("Table 6", f"{margin}, k = 2", margin_table(grid, 2), 1, None)]
    for title, caption, (header, rows), first, model_rows in specs:
        value_cols = len(header) - (1 if title in ("Table 3", "Table 4") else 0)
        best = _best_per_column([r[:value_cols] for r in rows], first, model_rows or len(rows))
        md += [f"### {title}: {caption}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        w.writerow([f"{title}: {caption}"])
        w.writerow(header + ["best_marked_column_rows"])
        tex += [f"% {title}: {caption}", "\\begin{tabular}{" + "l" * first + "r" * (len(header) - first) + "}",
                " & ".join(header) + " \\\\ \\hline"]
        for i, r in enumerate(rows):
            cells_md, cells_tex = [], []
            for c, v in enumerate(r):
                if c < first:
                    cells_md.append(str(v))
                    cells_tex.append(str(v))
                    continue
                digits = 0 if header[c] == "best epoch" else (2 if r[0] == "mean threshold (px)" else 3)
                s = str(v) if header[c] == "best epoch" and v is not None else \
                    _fmt(v, digits, sign=title in ("Table 5", "Table 6"))
                mark = best.get(c) == i
                cells_md.append(f"**{s}**" if mark else s)
                cells_tex.append(f"\\textbf{{{s}}}" if mark else s)
            md.append("| " + " | ".join(cells_md) + " |")
            tex.append(" & ".join(cells_tex).replace("—", "--") + " \\\\")
            w.writerow(["" if v is None else v for v in r] + [";".join(str(c) for c, j in best.items() if j == i)])
        md.append("")
        tex += ["\\end{tabular}", ""]
        w.writerow([])
    missing = [f"{m} {k}.{s}" for m, k, s in cells() if not (grid.get((m, k, s)) or {}).get("test")]
    note = (f"Missing cells ({len(missing)} of 24): " + ", ".join(missing)) if missing else "All 24 cells present."
    md.insert(0, note + "\n")
    return {"md": "\n".join(md), "csv": buf.getvalue(), "tex": "\n".join(tex)}


def draw_figure(grid):
    """Figure 1 as a matplotlib Figure: one row per architecture; train loss, val loss, val PCK@0.2 per epoch.

    Every point has a marker (a run of one epoch is one point, invisible as a bare line); epochs are whole
    numbers on the axis; one legend for the whole figure, below the panels, so it covers no curve."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(len(GRID_MODELS), 3, figsize=(15, 3.2 * len(GRID_MODELS)), squeeze=False)
    names = [f"{k}.{s}" for k in KS for s in SETUP_IDS]
    colors = {name: plt.cm.tab10(i) for i, name in enumerate(names)}
    shown, filtered = set(), False
    for r, model in enumerate(GRID_MODELS):
        for c, (key, label) in enumerate((("train_loss", "train loss"), ("val_loss", "validation loss"),
                                          ("val_pck", "validation PCK@0.2"))):
            ax = axes[r][c]
            epochs = []
            for k in KS:
                for s in SETUP_IDS:
                    rows = (grid.get((model, k, s)) or {}).get("metrics") or []
                    if not rows:
                        continue
                    name = f"{k}.{s}"
                    ep = [row["epoch"] for row in rows]
                    epochs += ep
                    # None (nothing counted) becomes NaN: a gap in the line
                    val = [_nan((row[key] or {}).get("0.2") if key == "val_pck" else row[key]) for row in rows]
                    ax.plot(ep, val, color=colors[name], lw=1.5, marker="o", ms=4)
                    red = [(e, v) for e, v, row in zip(ep, val, rows) if row.get("lr_reduced")]
                    if red:
                        ax.plot(*zip(*red), "o", color=colors[name], ms=9, mfc="none", mew=1.5)
                    if key == "val_pck":
                        ident = [_nan((row.get("val_identity_pck") or {}).get("0.2")) for row in rows]
                        ax.plot(ep, ident, "--", color=colors[name], lw=1, alpha=0.8, marker="_", ms=8)
                        level = _best_filter_val_pck(grid, model, k, s)
                        if level is not None:   # validation noise is fixed: one level for all epochs
                            ax.axhline(level, color=colors[name], ls="-.", lw=1, alpha=0.8)
                            filtered = True
                    shown.add(name)
            if epochs and key != "val_pck":
                vals = [v for line in ax.get_lines() for v in line.get_ydata() if v > 0]
                if vals and max(vals) / min(vals) > 20:
                    ax.set_yscale("log")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))   # whole epochs
            if epochs:   # half an epoch of room at each end (one epoch: its points in the middle)
                ax.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
            else:
                ax.text(0.5, 0.5, "no runs", ha="center", va="center", transform=ax.transAxes, color="gray")
                ax.set_xticks([])   # no epochs to show: 0 and 1 would read as data
                ax.set_yticks([])
            ax.set_xlabel("epoch")
            ax.set_ylabel(label)
            ax.set_title(f"{model}: {label}", fontsize=10)
            ax.grid(alpha=0.3)
    handles = [Line2D([], [], color=colors[n], lw=1.5, marker="o", ms=4, label=f"k.setup {n}") for n in names
               if n in shown]
    handles += [Line2D([], [], color="gray", ls="--", lw=1, marker="_", ms=8, label="identity (noisy input)")]
    if filtered:
        handles.append(Line2D([], [], color="gray", ls="-.", lw=1, label="best classical filter (tuned on val)"))
    handles.append(Line2D([], [], color="gray", ls="", marker="o", ms=9, mfc="none", mew=1.5, label="lr reduced"))
    rows_of_legend = 1 if len(handles) <= 9 else 2
    fig.legend(handles=handles, loc="lower center", ncol=math.ceil(len(handles) / rows_of_legend), fontsize=9,
               frameon=False)
    fig.tight_layout(rect=(0, 0.03 * rows_of_legend, 1, 1))   # leave the bottom strip to the legend
    return fig


def _best_filter_val_pck(grid, model, k, s) -> Optional[float]:
    """Validation PCK@0.2 of the best classical filter of a finished run (test.json), else None."""
    t = (grid.get((model, k, s)) or {}).get("test") or {}
    return t["filters"][t["best_filter"]]["val_pck"].get("0.2") if t.get("best_filter") else None


def _nan(v):
    return math.nan if v is None else v


def figure(grid, path_png: str, path_pdf: str) -> int:
    """Draw Figure 1 into path_png and path_pdf. Returns the number of axes."""
    fig = draw_figure(grid)
    import matplotlib.pyplot as plt
    for path in (path_png, path_pdf):
        with files.atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, format=os.path.splitext(path)[1][1:])
    n = len(fig.axes)
    plt.close(fig)
    return n


def report(argv: List[str]) -> None:
    ap = cli.OneLineParser(prog=f"{PROG} report", description="Figure 1 and Tables 1-6 of a grid directory; the "
                           "results page of a single run or a folder of runs")
    ap.add_argument("dir", help="grid directory written by `run`; or a run directory, or a folder of runs (then "
                    "only the results page is written: --results, default DIR/results.md)")
    ap.add_argument("--results", metavar="PATH", help="also write the results page (Markdown) there, e.g. "
                    "docs/results.md: every run next to the identity and the classical filters, with its budget "
                    "and command")
    ap.add_argument("--also", metavar="DIR", action="append", default=[],
                    help="further runs for the results page: a run directory (e.g. a --model-arg variant), or a "
                         "folder of them (every finished run under it); repeatable")
    ap.add_argument("--study", metavar="PATH", help="the study's published results (Markdown with its Tables 1 and "
                    "2), shown beside this project's on the results page (default: STUDY_RESULTS.md in the shared "
                    "folder beside this checkout, if it is there)")
    ap.add_argument("--ceiling", metavar="PATH", help="the JSON of benchmarks/heatmap_ceiling.py --json: the "
                    "heatmap models' averaging ceiling, as a section of the results page")
    ap.add_argument("--curves", metavar="TITLE=RUN[,RUN...]", action="append", default=[],
                    help="learning curves of these runs (validation PCK@0.2 and train loss against minutes and "
                         "steps, each run's best filter dashed), drawn into a PNG beside the results page and "
                         "linked from it; repeatable")
    args = ap.parse_args(argv)
    if not os.path.isdir(args.dir):
        raise cli.InputError(f"{args.dir}: no such directory")
    cli.check_output(args.dir, "", kind="dir")    # the report is written into the grid directory
    grid = load_grid(args.dir)
    here = [] if grid else _runs_under(args.dir)  # not a grid: a run, or a folder of runs, for the page alone
    if not grid and not here:
        raise cli.InputError(f"{args.dir}: no runs found (expected a grid <model>/<k.setup>/metrics.jsonl, a run "
                             "directory or a folder of runs)")
    if here and not args.results:
        args.results = os.path.join(args.dir, "results.md")
    page_inputs = None
    if args.results:
        cli.check_output(args.results, "--results")
        page_inputs = _page_inputs(args)           # every input of the page read and checked before any write
    else:
        for flag, given in (("--study", args.study), ("--ceiling", args.ceiling), ("--curves", args.curves)):
            if given:
                raise cli.InputError(f"{flag}: is for the results page; give --results PATH too")
    also = [run for d in args.also for run in finished_runs(d)]
    if grid:
        tables = render_tables(grid)
        for ext, text in tables.items():
            files.write_text(os.path.join(args.dir, f"tables.{ext}"), text)
        figure(grid, os.path.join(args.dir, "figure1.png"), os.path.join(args.dir, "figure1.pdf"))
        print(tables["md"])
        print(f"wrote {args.dir}/figure1.png, figure1.pdf, tables.md, tables.csv, tables.tex")
    if args.results:
        from . import results
        runs = {run["dir"]: run for run in [*grid.values(), *here, *also]}   # a run named twice is shown once
        study, study_path, ceiling, curves = page_inputs
        drawn = []
        for title, curve_runs in curves:
            png = os.path.join(os.path.dirname(os.path.abspath(args.results)), f"curves-{results.slug(title)}.png")
            results.draw_curves(curve_runs, title, png)
            drawn.append((title, curve_runs, png))
            print(f"wrote {png}")
        files.write_text(args.results, results.page(list(runs.values()), report_command(args), study=study,
                                                    study_path=study_path, ceiling=ceiling, curves=drawn,
                                                    page_path=args.results))
        print(f"wrote {args.results}")


def report_command(args) -> str:
    """The report command as run, every path relative to the working directory (as the page shows paths)."""
    from .results import rel
    r = lambda p: rel(os.path.abspath(p))  # noqa: E731
    words = ["python", "-m", PROG, "report", r(args.dir), "--results", r(args.results)]
    for d in args.also:
        words += ["--also", r(d)]
    if args.study:
        words += ["--study", r(args.study)]
    if args.ceiling:
        words += ["--ceiling", r(args.ceiling)]
    for spec in args.curves:
        title, _, paths = spec.rpartition("=")
        words += ["--curves", f"{title}=" + ",".join(r(p) for p in paths.split(","))]
    return shlex.join(words)


def _page_inputs(args):
    """(study tables or None, the study file's path, the ceiling JSON or None, [(title, runs)] of --curves),
    read and checked: InputError names the flag and file."""
    from . import results
    study_path = args.study or results.default_study_path()
    if args.study and not os.path.isfile(args.study):
        raise cli.InputError(f"--study {args.study}: no such file (expected the study's results, Markdown with its "
                             "Tables 1 and 2)")
    study = results.parse_study(study_path) if os.path.isfile(study_path) else None
    ceiling = None
    if args.ceiling:
        if not os.path.isfile(args.ceiling):
            raise cli.InputError(f"--ceiling {args.ceiling}: no such file (expected the JSON of "
                                 "benchmarks/heatmap_ceiling.py --json)")
        ceiling = check_ceiling(_read_json(args.ceiling), args.ceiling)
    curves, slugs = [], {}
    for spec in args.curves:
        title, sep, paths = spec.rpartition("=")
        if not sep or not title.strip() or not paths:
            raise cli.InputError(f"--curves {spec}: expected TITLE=RUN[,RUN...]")
        s = results.slug(title)
        if s in slugs:
            raise cli.InputError(f"--curves {spec}: its title makes the same file name (curves-{s}.png) as "
                                 f"--curves {slugs[s]}'s")
        slugs[s] = spec
        runs = []
        for d in paths.split(","):
            run = load_run(d) if os.path.isdir(d) else None
            if run is None or not run["metrics"] or not run["config"]:
                raise cli.InputError(f"--curves {title}: {d}: expected a run directory with config.json and "
                                     "metrics.jsonl")
            runs.append(run)
        curves.append((title, runs))
    return study, study_path, ceiling, curves


@cli.command(PROG)
def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"run": run, "report": report}
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return
    if argv[0] == "list":
        for i, (m, k, s) in enumerate(cells()):
            print(f"{i:2d}  {m:18s} {k}.{s}")
        return
    if argv[0] not in commands:
        raise cli.InputError(f"unknown command {argv[0]!r}; expected run, report or list")
    commands[argv[0]](argv[1:])


if __name__ == "__main__":
    main()
