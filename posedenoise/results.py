"""The results page (docs/results.md): every run of a grid, and any further runs, next to the identity and the
classical filters of the same data, split and noise, with the budget each model was trained to and the
command that trained it. Written by `python -m posedenoise.experiments report DIR --results PATH`; nothing in
it is typed by hand.
"""
from __future__ import annotations

import shlex
from typing import Dict, List, Optional, Tuple

from .evaluation import ALPHAS, filter_label

# A train flag is shown in a run's command when its value differs from train's default; these never are
# (where the run was written, how it was shown, and on which device: none changes a metric on the CPU).
_NOT_SHOWN = ("out", "resume", "quiet", "device", "backend", "data")

NOT_COMPARABLE = """\
The study's own numbers are not reproduced here: they are not in this workplace (neither `SPEC.md` nor the
shared data carry them), and a table copied from memory would not be a result. They would not be comparable
anyway: the study measured the identity and the heatmap models on every frame but DeciWatch on the frames it
did not skip; its Penn Action noise was one constant offset per video, where this project draws a fresh
shift per keypoint and frame; and it used 307 of the 2326 Penn Action videos, where these runs use all of
them (split by video)."""


def run_rows(runs: List[dict]) -> Dict[tuple, List[dict]]:
    """Finished runs (load_run with a test.json and a config.json) grouped by (k, setup, windows per split):
    runs on fewer windows (--num-windows, a smaller budget) are tested on another test split, so they get
    their own table with their own identity and filters."""
    out: Dict[tuple, List[dict]] = {}
    for run in runs:
        if run.get("test") and run.get("config"):
            config = run["config"]
            windows = tuple(config["data_summary"]["windows"].get(s) for s in ("train", "val", "test"))
            out.setdefault((float(config["k"]), int(config["setup"]), windows), []).append(run)
    return out


def budget(run: dict) -> Tuple[int, int, Optional[float]]:
    """(epochs trained, optimisation steps, wall seconds per step including each epoch's validation pass)."""
    config, rows = run["config"], run["metrics"]
    per_epoch = config["data_summary"]["windows"]["train"] // config["batch_size"]
    steps = per_epoch * len(rows)
    seconds = sum(r.get("seconds") or 0 for r in rows)
    return len(rows), steps, (seconds / steps if steps else None)


def command(config: dict) -> str:
    """The train command of a run: the flags whose values differ from train's defaults."""
    from .train import flag_defaults
    defaults = flag_defaults()
    args = ["python", "-m", "posedenoise.train", "--data", config["data_summary"].get("data", config.get("data"))]
    defaults["lr"] = 1e-4 if config.get("init") else 1e-3          # train's default, resolved
    defaults["model"] = "(always shown)"
    for name, default in defaults.items():
        value = config.get(name, default)
        if name in _NOT_SHOWN or value == default or (name == "epochs" and value is None):
            continue
        flag = "--" + name.replace("_", "-")
        for v in (value if isinstance(value, list) else [value]):
            args += [flag, f"{v:g}" if isinstance(v, float) else str(v)]
    return " ".join(shlex.quote(str(a)) for a in args)


def label(run: dict) -> str:
    config = run["config"]
    return config["model"] + (f" ({', '.join(config['model_arg'])})" if config.get("model_arg") else "")


def _pck(values: Optional[dict]) -> str:
    return " / ".join("—" if not values or values.get(f"{a:g}") is None else f"{values[f'{a:g}']:.3f}"
                      for a in ALPHAS)


def _signed(v: Optional[float]) -> str:
    return "—" if v is None else f"{v:+.3f}"


def cell_table(runs: List[dict]) -> List[str]:
    """One (k, setup): identity, every classical filter (options chosen on val), then every model run."""
    head = [f"| method | test PCK@{' / '.join(f'{a:g}' for a in ALPHAS)} | minus best filter, PCK@0.2 | "
            "budget | s/step |", "|---|---|---|---|---|"]
    ref = next((r["test"] for r in runs if r["test"].get("filters")), runs[0]["test"])
    rows = [f"| identity (the noisy input) | {_pck(ref['identity_pck'])} | "
            f"{_signed(_minus(ref['identity_pck'], ref.get('best_filter_pck')))} | none | — |"]
    best = ref.get("best_filter")
    for name, f in (ref.get("filters") or {}).items():
        shown = filter_label(name, f["options"]) + (" **(best on val)**" if name == best else "")
        rows.append(f"| {shown} | {_pck(f['pck'])} | {_signed(_minus(f['pck'], ref.get('best_filter_pck')))} | "
                    "no training; options tuned on val | — |")
    for run in sorted(runs, key=lambda r: label(r)):
        t = run["test"]
        epochs, steps, per_step = budget(run)
        margin = (t.get("margin_over_best_filter") or {}).get("0.2")
        trained = f"{steps:,} steps ({epochs} epoch{'s' * (epochs != 1)}, best {t['best_epoch']})" if steps \
            else "no training"
        rows.append(f"| **{label(run)}** | {_pck(t['pck'])} | {_signed(margin)} | {trained} | "
                    f"{'—' if per_step is None else f'{per_step:.3f}'} |")
    return head + rows


def _minus(a: Optional[dict], b: Optional[dict]) -> Optional[float]:
    if not a or not b or a.get("0.2") is None or b.get("0.2") is None:
        return None
    return a["0.2"] - b["0.2"]


def summary(grouped: Dict[tuple, List[dict]]) -> List[str]:
    """One row per (k, setup): test PCK@0.2 of the identity, the best filter and every model, each model with
    its margin over the best filter of its own test split (a model trained on fewer windows is tested on
    fewer: marked *, with its own table below)."""
    runs = [r for rs in grouped.values() for r in rs]
    # A model trained to several budgets (epochs) gets a column per budget.
    budgets = {}
    for r in runs:
        budgets.setdefault(label(r), set()).add(len(r["metrics"]))

    def column(r):
        n = len(r["metrics"])
        return label(r) + (f", {n} epoch{'s' * (n != 1)}" if len(budgets[label(r)]) > 1 else "")

    labels = sorted({column(r) for r in runs})
    cells = sorted({key[:2] for key in grouped})
    full = {ks: max((key for key in grouped if key[:2] == ks), key=lambda key: [n or 0 for n in key[2]])
            for ks in cells}
    lines = ["## Summary: test PCK@0.2 (margin over the best classical filter)", "",
             "| k.setup | identity | best classical filter | " + " | ".join(labels) + " |",
             "|---" * (3 + len(labels)) + "|"]
    for ks in cells:
        ref = next((r["test"] for r in grouped[full[ks]] if r["test"].get("filters")), grouped[full[ks]][0]["test"])
        best = ref.get("best_filter")
        row = [f"{ks[0]:g}.{ks[1]}", _pck1(ref["identity_pck"]),
               f"{_pck1(ref.get('best_filter_pck'))} ({best})" if best else "—"]
        for name in labels:
            found = [(key, r) for key in grouped if key[:2] == ks for r in grouped[key] if column(r) == name]
            if not found:
                row.append("—")
                continue
            key, r = found[0]
            margin = (r["test"].get("margin_over_best_filter") or {}).get("0.2")
            row.append(f"{_pck1(r['test']['pck'])} ({_signed(margin)}){'' if key == full[ks] else '*'}")
        lines.append("| " + " | ".join(row) + " |")
    return lines + ["", "\\* trained and tested on a subset of the windows (a smaller budget): see its own table."]


def _pck1(values: Optional[dict]) -> str:
    return "—" if not values or values.get("0.2") is None else f"{values['0.2']:.3f}"


def page(runs: List[dict], report_command: str) -> str:
    """The Markdown page for `runs` (load_run of each run directory)."""
    grouped = run_rows(runs)
    if not grouped:
        return "# Results\n\nNo finished run (with test.json and config.json) to report.\n"
    any_config = next(iter(grouped.values()))[0]["config"]
    about = any_config["data_summary"]
    out = ["# Results", "",
           f"Generated by `{report_command}` from the run directories below; rerun the commands to reproduce it.",
           "",
           f"Data: `{about.get('data')}` ({about.get('source', '?')}: {about.get('videos', '?')} videos, "
           f"{about.get('frames', '?')} frames). Test PCK@0.05 / 0.1 / 0.2 (thresholds: that fraction of the "
           "torso length), under the split's fixed noise. Every classical filter's options were chosen on the "
           "validation split, never on test; 'minus best filter' is the PCK@0.2 margin over the filter that "
           "validation chose (positive: it wins). 'budget' is what each model was trained to on this machine's "
           "CPU; 's/step' is wall time per optimisation step, the epoch's validation pass included.", ""]
    out += summary(grouped) + [""]
    # Per (k, setup), the runs on the most windows first; a table on fewer windows says how many it tests on.
    order = sorted(grouped, key=lambda key: (key[0], key[1], [-(n or 0) for n in key[2]]))
    for i, (k, setup, windows) in enumerate(order):
        fewer = i > 0 and order[i - 1][:2] == (k, setup)
        out += [f"## k = {k:g}, setup {setup}" + (f", {windows[2]} test windows" if fewer else ""), "",
                "Windows train / val / test: " + " / ".join(str(n) for n in windows) + ".", ""]
        out += cell_table(grouped[(k, setup, windows)]) + [""]
    out += ["## Commands", "", "The data, then each model row (run directories as recorded; `experiments run` "
            "runs the same train command per cell):", "", "```bash"]
    flags = {"penn_action": "--penn-action PENN_ACTION_FOLDER", "brace": "--brace BRACE_FOLDER"}
    sources = [flags[s] for s in str(about.get("source", "")).split("+") if s in flags]
    if sources:
        out.append(f"python -m posedenoise.prepare {' '.join(sources)} --out {shlex.quote(str(about.get('data')))}")
    for key in sorted(grouped):
        for run in sorted(grouped[key], key=label):
            out.append(command(run["config"]) + f" --out {shlex.quote(run['config'].get('out', '?'))}")
    out += [report_command, "```", "", "## The study's numbers", "", NOT_COMPARABLE, ""]
    return "\n".join(out)
