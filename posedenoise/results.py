"""The results page (docs/results.md): every run of a grid, and any further runs, next to the identity and the
classical filters of the same data, split and noise, with the budget each model was trained to and the
command that trained it. Written by `python -m posedenoise.experiments report DIR --results PATH`; nothing in
it is typed by hand.

Beside the runs, the page can show (each from a file read at report time, never from numbers in this code):
- the study's published Tables 1 and 2 (`--study`, ../shared/STUDY_RESULTS.md by default), side by side with
  this project's figures, with why they are not directly comparable;
- the heatmap models' averaging ceiling (`--ceiling`, the JSON of benchmarks/heatmap_ceiling.py);
- learning curves of chosen runs (`--curves TITLE=RUN,...`), drawn into PNGs beside the page.

Runs trained on an imperfect crop (config crop_scale < 1 or crop_shift > 0) are another task (the identity
and the filters see other inputs), so they get tables of their own, never mixed with the exact-crop runs.
Every path on the page is relative to the directory the report command ran in.
"""
from __future__ import annotations

import math
import os
import re
import shlex
from decimal import Decimal, InvalidOperation
from typing import Dict, List, Optional, Sequence, Tuple

from . import curves
from .curves import best_filter_val_pck, curve_points  # noqa: F401 (the page's API)
from .errors import InputError
from .evaluation import ALPHAS, filter_label

# A train flag is shown in a run's command when its value differs from train's default; these never are
# (where the run was written, how it was shown, and on which device: none changes a metric on the CPU).
_NOT_SHOWN = ("out", "resume", "quiet", "device", "backend", "data")
# Flags whose values are paths (recorded absolute): shown relative to where the report runs.
_PATH_FLAGS = ("data", "init", "noise")
# Config keys that tell two runs of one model apart where their labels do not (summary columns, curves).
_SAME_LABEL_KEYS = ("batch_size", "lr", "seed", "split", "patience", "early_stop", "schedule", "noise", "init")
_CURVE_KEYS = ("k", "setup", "num_windows") + _SAME_LABEL_KEYS
_FLAG_NAMES = {"batch_size": "batch", "num_windows": "windows", "early_stop": "early-stop"}

STUDY_FILE = "STUDY_RESULTS.md"
STUDY_MODELS_NOTE = "the study's own architectures at its default options"

NOT_COMPARABLE = """\
Read side by side, the figures would not be comparable directly. The study's released code draws the Penn
Action noise once per video (one offset per keypoint for the whole video, one sigma_in per video), where this
project follows the study's text and draws a new shift per keypoint and frame, new every epoch: under a
per-video offset no temporal averaging can remove the noise, under per-frame noise a 5-frame mean removes much
of it. The study's shift standard deviation is about 2.95k pixels (3k here); it keeps 307 of Penn Action's
2,326 videos (all of them here, split by video); its heatmaps have amplitude 1 (255 here); its crop box margin
is 5% and not made square (10% and square here); its heatmap PCK keeps frames whose torso joints are missing
(about +0.05 on the identity); and it trains on BRACE and Penn Action together (345,120 windows), where BRACE
is not available here. The study's models are the reference for the ordering (conv3d best at PCK@0.2,
DeciWatch best at PCK@0.05 for k = 1, everything worse at k = 2), not for the absolute values."""


def default_study_path() -> str:
    """STUDY_RESULTS.md in the `shared` folder beside this repository checkout (<repo>/../shared/)."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.path.normpath(os.path.join(repo, "..", "shared", STUDY_FILE))


def rel(path: Optional[str], start: Optional[str] = None) -> Optional[str]:
    """An absolute path as seen from `start` (default: the working directory); anything else as it is
    ('synthetic', a relative path, None)."""
    if not path or not os.path.isabs(path):
        return path
    return os.path.relpath(path, start or os.getcwd())


# ---------------------------------------------------------------------------------------------------------
# Runs: grouping, labels, budgets, commands
# ---------------------------------------------------------------------------------------------------------


def crop_of(config: dict) -> Optional[Tuple[float, int]]:
    """(scale, shift) of a run trained on an imperfect crop (crop_scale < 1 or crop_shift > 0); None for the
    exact crop (also a run from before the option, which has neither key)."""
    scale, shift = float(config.get("crop_scale", 1.0) or 1.0), int(config.get("crop_shift", 0) or 0)
    return (scale, shift) if scale < 1 or shift > 0 else None


def crop_text(crop: Tuple[float, int]) -> str:
    """"scale U(0.75, 1), shift ±6 px": the box's scale drawn from U(scale, 1), its shift from [-shift, shift]."""
    scale, shift = crop
    parts = ([f"scale U({scale:g}, 1)"] if scale < 1 else []) + ([f"shift ±{shift} px"] if shift > 0 else [])
    return ", ".join(parts)


def crop_title(crop: Tuple[float, int]) -> str:
    return f"imperfect crop: {crop_text(crop)}"


def run_rows(runs: List[dict]) -> Dict[tuple, List[dict]]:
    """Finished runs (load_run with a test.json and a config.json) grouped by (k, setup, windows per split,
    crop): runs on fewer windows (--num-windows, a smaller budget) are tested on another test split, and runs
    on an imperfect crop on other inputs, so each gets its own table with its own identity and filters."""
    out: Dict[tuple, List[dict]] = {}
    for run in runs:
        if run.get("test") and run.get("config"):
            config = run["config"]
            windows = tuple(config["data_summary"]["windows"].get(s) for s in ("train", "val", "test"))
            out.setdefault((float(config["k"]), int(config["setup"]), windows, crop_of(config)), []).append(run)
    return out


def budget(run: dict) -> Tuple[int, int, Optional[float]]:
    """(epochs trained, optimisation steps, wall seconds per step including each epoch's validation pass)."""
    config, rows = run["config"], run["metrics"]
    per_epoch = config["data_summary"]["windows"]["train"] // config["batch_size"]
    steps = per_epoch * len(rows)
    seconds = sum(r.get("seconds") or 0 for r in rows)
    return len(rows), steps, (seconds / steps if steps else None)


def resolved_defaults(config: dict) -> dict:
    """train's flag defaults as they resolve for this run's model: the lr (1e-4 when finetuning), and the
    batch size and schedule of the model's RECIPE (else the study's). --epochs is always shown (the budget)."""
    from . import train
    from .models import MODELS
    defaults = train.flag_defaults()
    recipe = getattr(MODELS.get(config.get("model")), "RECIPE", None) or {}
    defaults["lr"] = 1e-4 if config.get("init") else 1e-3
    if defaults.get("batch_size") is None:
        defaults["batch_size"] = recipe.get("batch_size", getattr(train, "STUDY_BATCH", 16))
    if "schedule" in defaults and defaults["schedule"] is None:
        defaults["schedule"] = recipe.get("schedule", "plateau")
    return defaults


def command(config: dict, out: Optional[str] = None) -> str:
    """The train command of a run: the flags whose values differ from train's defaults; paths relative to the
    working directory, the run directory `out` (default: the recorded --out)."""
    defaults = resolved_defaults(config)
    data = config["data_summary"].get("data", config.get("data"))
    args = ["python", "-m", "posedenoise.train", "--data", rel(data)]
    defaults["model"] = "(always shown)"
    for name, default in defaults.items():
        value = config.get(name, default)
        if name in _NOT_SHOWN or value == default or (name == "epochs" and value is None):
            continue
        flag = "--" + name.replace("_", "-")
        for v in (value if isinstance(value, list) else [value]):
            v = rel(v) if name in _PATH_FLAGS and isinstance(v, str) else v
            args += [flag, f"{v:g}" if isinstance(v, float) else str(v)]
    args += ["--out", out or config.get("out", "?")]
    return " ".join(shlex.quote(str(a)) for a in args)


def label(run: dict) -> str:
    """The model with its options: --model-arg values and an imperfect crop, e.g. "conv3d (kernel=9)",
    "pose-mlp (crop scale U(0.75, 1), shift ±6 px)"."""
    config = run["config"]
    options = list(config.get("model_arg") or [])
    crop = crop_of(config)
    if crop:
        options.append(f"crop {crop_text(crop)}")
    return config["model"] + (f" ({', '.join(options)})" if options else "")


def learned(run: dict) -> bool:
    """A trained model: not the identity and not a classical filter used as the --model."""
    from .models.filters import FILTERS
    return run["config"]["model"] not in FILTERS and run["config"]["model"] != "identity"


def _value_text(name: str, v) -> str:
    if isinstance(v, str) and os.path.isabs(v):
        v = rel(v)
    shown = f"{v:g}" if isinstance(v, float) else str(v)
    return f"{_FLAG_NAMES.get(name, name.replace('_', '-'))} {shown}"


def _differences(runs: Sequence[dict], keys: Sequence[str]) -> Dict[str, List[str]]:
    """run dir -> 'name value' for each key in `keys` whose config value differs among `runs`."""
    defaults = [resolved_defaults(r["config"]) for r in runs]
    values = {key: [r["config"].get(key, d.get(key)) for r, d in zip(runs, defaults)] for key in keys}
    varying = [key for key in keys if len({repr(v) for v in values[key]}) > 1]
    return {r["dir"]: [_value_text(key, values[key][i]) for key in varying] for i, r in enumerate(runs)}


def column_names(runs: Sequence[dict]) -> Dict[str, str]:
    """run dir -> the run's name in a summary: its label; with its budget where the same label was trained to
    several (", 5 epochs"); with the config values that differ where runs of one label differ otherwise (e.g.
    ", batch 256")."""
    by_label: Dict[str, List[dict]] = {}
    for r in runs:
        by_label.setdefault(label(r), []).append(r)
    names = {}
    for name, group in by_label.items():
        several = len({len(r["metrics"]) for r in group}) > 1
        extra = _differences(group, _SAME_LABEL_KEYS)
        for r in group:
            n = len(r["metrics"])
            names[r["dir"]] = ", ".join([name] + ([f"{n} epoch{'s' * (n != 1)}"] if several else [])
                                        + extra[r["dir"]])
    return names


def _pck(values: Optional[dict]) -> str:
    return " / ".join("—" if not values or values.get(f"{a:g}") is None else f"{values[f'{a:g}']:.3f}"
                      for a in ALPHAS)


def _signed(v: Optional[float]) -> str:
    return "—" if v is None else f"{v:+.3f}"


def _reference(runs: List[dict]) -> dict:
    """test.json of the runs of one table holding the filters (they share the data, split and noise)."""
    return next((r["test"] for r in runs if r["test"].get("filters")), runs[0]["test"])


def cell_table(runs: List[dict], names: Optional[Dict[str, str]] = None) -> List[str]:
    """One (k, setup, windows, crop): identity, every classical filter (options chosen on val), then every
    model run (named as in the summary: `names`, run dir -> name; default its label)."""
    names = names or {r["dir"]: label(r) for r in runs}
    head = [f"| method | test PCK@{' / '.join(f'{a:g}' for a in ALPHAS)} | minus best filter, PCK@0.2 | "
            "budget | s/step |", "|---|---|---|---|---|"]
    ref = _reference(runs)
    rows = [f"| identity (the noisy input) | {_pck(ref['identity_pck'])} | "
            f"{_signed(_minus(ref['identity_pck'], ref.get('best_filter_pck')))} | none | — |"]
    best = ref.get("best_filter")
    for name, f in (ref.get("filters") or {}).items():
        shown = filter_label(name, f["options"]) + (" **(best on val)**" if name == best else "")
        rows.append(f"| {shown} | {_pck(f['pck'])} | {_signed(_minus(f['pck'], ref.get('best_filter_pck')))} | "
                    "no training; options tuned on val | — |")
    for run in sorted(runs, key=lambda r: (names[r["dir"]], len(r["metrics"]), r["dir"])):
        t = run["test"]
        epochs, steps, per_step = budget(run)
        margin = (t.get("margin_over_best_filter") or {}).get("0.2")
        trained = f"{steps:,} steps ({epochs} epoch{'s' * (epochs != 1)}, best {t['best_epoch']})" if steps \
            else "no training"
        rows.append(f"| **{names[run['dir']]}** | {_pck(t['pck'])} | {_signed(margin)} | {trained} | "
                    f"{'—' if per_step is None else f'{per_step:.3f}'} |")
    return head + rows


def _minus(a: Optional[dict], b: Optional[dict]) -> Optional[float]:
    if not a or not b or a.get("0.2") is None or b.get("0.2") is None:
        return None
    return a["0.2"] - b["0.2"]


def _full_keys(grouped: Dict[tuple, List[dict]]) -> Dict[tuple, tuple]:
    """(k, setup) -> the key of its table on the most windows."""
    cells = sorted({key[:2] for key in grouped})
    return {ks: max((key for key in grouped if key[:2] == ks), key=lambda key: [n or 0 for n in key[2]])
            for ks in cells}


def summary(grouped: Dict[tuple, List[dict]], title: str = "Summary") -> List[str]:
    """One row per (k, setup): test PCK@0.2 of the identity, the best filter and every model, each model with
    its margin over the best filter of its own test split (a model trained on fewer windows is tested on
    fewer: marked *, with its own table below). `grouped` holds the runs of one crop."""
    runs = [r for rs in grouped.values() for r in rs]
    names = column_names(runs)
    columns = sorted(set(names.values()))
    full = _full_keys(grouped)
    starred = False
    lines = [f"## {title}: test PCK@0.2 (margin over the best classical filter)", "",
             "| k.setup | identity | best classical filter | " + " | ".join(columns) + " |",
             "|---" * (3 + len(columns)) + "|"]
    for ks, key_full in full.items():
        ref = _reference(grouped[key_full])
        best = ref.get("best_filter")
        row = [f"{ks[0]:g}.{ks[1]}", _pck1(ref["identity_pck"]),
               f"{_pck1(ref.get('best_filter_pck'))} ({best})" if best else "—"]
        for name in columns:
            # the run on the most windows first
            found = sorted(((key, r) for key in grouped if key[:2] == ks for r in grouped[key]
                            if names[r["dir"]] == name), key=lambda kr: (kr[0] != key_full, kr[1]["dir"]))
            if not found:
                row.append("—")
                continue
            key, r = found[0]
            margin = (r["test"].get("margin_over_best_filter") or {}).get("0.2")
            row.append(f"{_pck1(r['test']['pck'])} ({_signed(margin)}){'' if key == key_full else '*'}")
            starred |= key != key_full
        lines.append("| " + " | ".join(row) + " |")
    if starred:
        lines += ["", "\\* trained and tested on a subset of the windows (a smaller budget): see its own table."]
    return lines + [""] + verdicts(grouped, names)


def verdicts(grouped: Dict[tuple, List[dict]], names: Dict[str, str]) -> List[str]:
    """Per (k, setup): the learned models that beat the best classical filter (chosen on val, scored on the
    model's own test split) at every threshold, and by how much at PCK@0.2; else the closest one."""
    full = _full_keys(grouped)
    lines = ["Learned models that beat the best classical filter at PCK@" + ", ".join(f"{a:g}" for a in ALPHAS)
             + " alike (test; margins over the filter that validation chose, on the model's own test split):", ""]
    for ks, key_full in full.items():
        scored = []
        for key in (key for key in grouped if key[:2] == ks):
            for r in grouped[key]:
                margin = r["test"].get("margin_over_best_filter") or {}
                if learned(r) and r["test"].get("best_filter") and margin.get("0.2") is not None:
                    scored.append((r, margin, key != key_full))
        cell = f"{ks[0]:g}.{ks[1]}"
        if not scored:
            lines.append(f"- {cell}: no learned model with a filter to compare.")
            continue
        scored.sort(key=lambda s: (-s[1]["0.2"], names[s[0]["dir"]]))
        wins = [s for s in scored if all((s[1].get(f"{a:g}") or -1) > 0 for a in ALPHAS)]
        if wins:
            said = []
            for r, margin, subset in wins:
                t = r["test"]
                said.append(f"**{names[r['dir']]}**{'*' if subset else ''} by {_signed(margin['0.2'])} at PCK@0.2 "
                            f"({_pck1(t['pck'])} against {t['best_filter']}'s {_pck1(t['best_filter_pck'])}; "
                            f"PCK@{' / '.join(f'{a:g}' for a in ALPHAS)} margins "
                            f"{' / '.join(_signed(margin.get(f'{a:g}')) for a in ALPHAS)})")
            lines.append(f"- {cell}: " + "; ".join(said) + ".")
        else:
            r, margin, subset = scored[0]
            lines.append(f"- {cell}: none; the closest at PCK@0.2 is {names[r['dir']]}{'*' if subset else ''} "
                         f"({_signed(margin['0.2'])}).")
    return lines


def _pck1(values: Optional[dict]) -> str:
    return "—" if not values or values.get("0.2") is None else f"{values['0.2']:.3f}"


# ---------------------------------------------------------------------------------------------------------
# The study's published numbers
# ---------------------------------------------------------------------------------------------------------

_HEADER_CELL = re.compile(r"^(?:(\d*\.?\d+)\s*:\s*)?(\d+)\.(\d+)$")   # "0.05: 1.1" or "1.2"
_EMPTY = ("", "—", "-", "–", "n/a")


def parse_study(path: str) -> Dict[Tuple[str, int, int], Dict[str, Optional[str]]]:
    """Tables 1 and 2 of the study's results file (Markdown: a '## Table 1...' heading, then a table whose
    header names each column 'ALPHA: K.SETUP' or 'K.SETUP', the alpha carried over from the left).
    -> {(model, k, setup): {alpha ('0.05', ...): the printed percent, as text, or None where empty}}.
    InputError names the file (and line) where it is not so."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not a text file ({e})") from None
    out: Dict[Tuple[str, int, int], Dict[str, Optional[str]]] = {}
    for number in (1, 2):
        head = next((i for i, line in enumerate(lines)
                     if re.match(rf"^#+\s*Table\s+{number}\b", line.strip())), None)
        if head is None:
            raise InputError(f"{path}: no '## Table {number}' heading (expected the study's Tables 1 and 2)")
        start = next((i for i in range(head + 1, len(lines)) if lines[i].strip().startswith("|")
                      or lines[i].lstrip().startswith("#")), None)
        if start is None or not lines[start].strip().startswith("|"):
            raise InputError(f"{path}: Table {number} (line {head + 1}) is not followed by a Markdown table")
        table = []
        for i in range(start, len(lines)):
            if not lines[i].strip().startswith("|"):
                break
            table.append((i + 1, [c.strip() for c in lines[i].strip().strip("|").split("|")]))
        columns, alpha = [], None
        line_no, header = table[0]
        for cell in header[1:]:
            m = _HEADER_CELL.match(cell)
            if not m or (m.group(1) is None and alpha is None):
                raise InputError(f"{path}:{line_no}: Table {number}'s column {cell!r}; expected 'ALPHA: K.SETUP' "
                                 "(e.g. '0.05: 1.1') or, after one, 'K.SETUP'")
            alpha = f"{float(m.group(1)):g}" if m.group(1) else alpha
            columns.append((alpha, int(m.group(2)), int(m.group(3))))
        rows = [(n, cells) for n, cells in table[1:] if not all(re.fullmatch(r":?-+:?", c) for c in cells)]
        if not rows:
            raise InputError(f"{path}:{line_no}: Table {number} has no rows")
        for n, cells in rows:
            if len(cells) != len(columns) + 1:
                raise InputError(f"{path}:{n}: expected {len(columns) + 1} cells (as the header), got {len(cells)}")
            model = cells[0]
            for (a, k, setup), text in zip(columns, cells[1:]):
                if text in _EMPTY:
                    value = None
                else:
                    try:
                        Decimal(text)
                        float(text)
                    except (InvalidOperation, ValueError):
                        raise InputError(f"{path}:{n}: {model}, PCK@{a} of {k}.{setup}: {text!r} is not a number "
                                         "(percent)") from None
                    value = text
                out.setdefault((model, k, setup), {})[a] = value
    return out


def _percent_as_fraction(text: Optional[str]) -> str:
    """A printed percent as a fraction with the same digits: '94.4' -> '0.944', '5.44' -> '0.0544'."""
    if text is None:
        return "—"
    return format(Decimal(text).scaleb(-2), "f")


def _study_run(runs: List[dict], model: str, k: int, setup: int) -> Optional[dict]:
    """This project's run to set beside the study's figure: the model at (k, setup), exact crop; the one
    without --model-arg first, then the one on the most windows, then the longest trained."""
    found = [r for r in runs if r["config"]["model"] == model and float(r["config"]["k"]) == k
             and int(r["config"]["setup"]) == setup and crop_of(r["config"]) is None]
    if not found:
        return None
    return min(found, key=lambda r: (bool(r["config"].get("model_arg")),
                                     -(r["config"]["data_summary"]["windows"].get("test") or 0),
                                     -len(r["metrics"]), r["dir"]))


def study_section(study: Optional[dict], study_path: str, grouped: Dict[tuple, List[dict]]) -> List[str]:
    """The study's Tables 1 and 2 beside this project's figures (fractions, as everywhere on the page)."""
    out = ["## The study's numbers", ""]
    where = rel(study_path)
    if study is None:
        return out + [f"The study's published numbers are not shown: `{where}` is absent (give its place with "
                      "--study PATH).", "", NOT_COMPARABLE, ""]
    exact = {key: rs for key, rs in grouped.items() if key[3] is None}
    runs = [r for rs in exact.values() for r in rs]
    full = _full_keys(exact)
    models = list(dict.fromkeys(m for m, _, _ in study))
    out += [f"The study's published test PCK (its Tables 1 and 2, read from `{where}` when this page was made; "
            "printed there in percent, shown here as fractions with the same digits) beside this project's test "
            f"PCK of the same model, k and setup ({STUDY_MODELS_NOTE} where this project has such a run: the one "
            "without --model-arg, on the most windows, trained longest; * on a subset of the windows). The "
            "study's copy has no identity or threshold rows; this project's identity and best filter are shown "
            "for scale.", "", NOT_COMPARABLE, "",
            f"The full text of the differences: `{where}`, section \"Why the numbers are not directly "
            "comparable\".", ""]
    for k in sorted({k for _, k, _ in study}):
        out += [f"### Table {k}: test PCK, k = {k}", "",
                "| k.setup | method | " + " | ".join(f"PCK@{a:g} study | PCK@{a:g} here" for a in ALPHAS) + " |",
                "|---|---|" + "---|---|" * len(ALPHAS)]
        for setup in sorted({s for _, kk, s in study if kk == k}):
            for model in models:
                published = study.get((model, k, setup))
                if published is None:
                    continue
                run = _study_run(runs, model, k, setup)
                if run is None:
                    here, shown = {}, model
                else:
                    n = len(run["metrics"])
                    subset = full.get((float(k), setup)) is not None and \
                        run["config"]["data_summary"]["windows"].get("test") != full[(float(k), setup)][2][2]
                    here, shown = run["test"]["pck"], f"{label(run)}, {n} epoch{'s' * (n != 1)}{'*' if subset else ''}"
                cells = []
                for a in ALPHAS:
                    cells += [_percent_as_fraction(published.get(f"{a:g}")),
                              "—" if here.get(f"{a:g}") is None else f"{here[f'{a:g}']:.3f}"]
                out.append(f"| {k}.{setup} | {shown} | " + " | ".join(cells) + " |")
            key = full.get((float(k), setup))
            if key is not None:
                ref = _reference(exact[key])
                rows = [("identity (the noisy input)", ref["identity_pck"])]
                if ref.get("best_filter"):
                    rows.append((f"best classical filter ({ref['best_filter']})", ref["best_filter_pck"]))
                for name, values in rows:
                    cells = []
                    for a in ALPHAS:
                        cells += ["not published", "—" if values.get(f"{a:g}") is None else f"{values[f'{a:g}']:.3f}"]
                    out.append(f"| {k}.{setup} | {name} | " + " | ".join(cells) + " |")
        out.append("")
    return out


# ---------------------------------------------------------------------------------------------------------
# The heatmap models' averaging ceiling (benchmarks/heatmap_ceiling.py --json)
# ---------------------------------------------------------------------------------------------------------


def ceiling_command(doc: dict) -> str:
    c = doc["command"]
    args = ["python", rel(c.get("script")) or "benchmarks/heatmap_ceiling.py", "--data", rel(c["data"]),
            "--windows", str(c.get("windows", doc["windows"]))]
    if str(c.get("ks", "1,2")) != "1,2":
        args += ["--ks", str(c["ks"])]
    if int(c.get("setup", 1)) != 1:
        args += ["--setup", str(c["setup"])]
    if int(c.get("seed", 0)) != 0:
        args += ["--seed", str(c["seed"])]
    for flag in ("json", "markdown"):
        if c.get(flag):
            args += [f"--{flag}", rel(c[flag])]
    return "OMP_NUM_THREADS=1 " + " ".join(shlex.quote(str(a)) for a in args)


def _s_text(s) -> str:
    return "box" if s == "box" else f"{s:g}"


def ceiling_markdown(doc: dict, heading: Optional[str] = "## The heatmap models' averaging ceiling",
                     short: bool = False) -> str:
    """The ceiling as Markdown: what was measured, the command, one table (a column per k), and per k how the
    best averaging and each kernel size compare with the mean filter."""
    results = doc["results"]
    fmt = _pck
    header = "| method | " + " | ".join(f"k = {r['k']:g}: PCK@{' / '.join(f'{a:g}' for a in ALPHAS)}"
                                        for r in results) + " |"
    rows = [header, "|---|" + "---|" * len(results)]
    row = lambda name, cells: rows.append(f"| {name} | " + " | ".join(cells) + " |")  # noqa: E731
    row("identity (each frame's noisy argmax)", [fmt(r["identity"]) for r in results])
    row("**mean filter** (argmax coordinates averaged over the frames where the keypoint is present)",
        [fmt(r["mean_filter"]) for r in results])
    row("mean of the argmax over all 5 frames (a missing frame read as (0, 0))",
        [fmt(r["mean_all_frames"]) for r in results])
    sigmas = [g["s"] for g in results[0]["average_blur"]]
    for i, s in enumerate(sigmas):
        row(f"5 maps averaged, blur s = {_s_text(s)}", [fmt(r["average_blur"][i]["pck"]) for r in results])
    for i, g in enumerate(results[0]["kernels"]):
        row(f"conv3d kernel {g['kernel']}: best 'same' averaging (frames t ± {min(g['temporal_reach'], 4)}, "
            f"Gaussian or box within {g['kernel']} x {g['kernel']})",
            [f"{fmt(r['kernels'][i]['pck'])} (s = {_s_text(r['kernels'][i]['best_s'])})" for r in results])
    at_02 = lambda g: -1.0 if g["pck"]["0.2"] is None else g["pck"]["0.2"]  # noqa: E731   (None: nothing counted)
    best_norm = [max(r["normalised_average_blur"], key=at_02) for r in results]
    row("maps each divided by its peak, averaged, best blur (not linear: no conv3d holds it)",
        [f"{fmt(g['pck'])} (s = {_s_text(g['s'])})" for g in best_norm])
    if short:
        return "\n".join(rows)
    out = ([heading, ""] if heading else []) + [
        f"What a heatmap model can do by averaging the window's noisy maps, measured on {doc['windows']:,} of the "
        f"{doc['test_windows']:,} test windows (evenly spaced over the test split; setup {doc['setup']}, the "
        "evaluation's own fixed test noise and PCK), against the mean filter. A model in heatmap space is scored "
        "on the argmax of its output maps; conv3d is one Conv3d(K -> K, kernel n x n x n, 'same') + ReLU, so by "
        "averaging it can at best take, for frame t, a weighted mean of frames t - r .. t + r (r = (n - 1) / 2; "
        "the zero padding leaves an edge frame of kernel 5 only 3 frames) blurred within n x n pixels. The rows "
        "'conv3d kernel n' take uniform weights over those frames and the best Gaussian or box within the kernel (s "
        "chosen on these windows, so an upper bound of that family). 5 maps averaged: every frame the mean of "
        "the window's 5 maps, blurred by a Gaussian of sigma s px (to 4 s).", "",
        f"Made by `{ceiling_command(doc)}`" + (f" in {doc['seconds']:.0f} s ({doc.get('threads', '?')} thread"
                                               f"{'s' * (doc.get('threads') != 1)})." if "seconds" in doc else "."),
        ""] + rows + [""]
    for r, g in zip(results, best_norm):
        filt = r["mean_filter"]["0.2"]
        linear = [(f"the 5 maps averaged and blurred by s = {_s_text(a['s'])}", a["pck"]["0.2"])
                  for a in r["average_blur"]]
        linear += [(f"kernel {kk['kernel']} (s = {_s_text(kk['best_s'])})", kk["pck"]["0.2"]) for kk in r["kernels"]]
        linear = [(name, v) for name, v in linear if v is not None]
        if filt is None or not linear:
            out.append(f"- k = {r['k']:g}: nothing counted at PCK@0.2.")
            continue
        name, best = max(linear, key=lambda x: x[1])
        reach = [kk["kernel"] for kk in r["kernels"] if kk["pck"]["0.2"] is not None and kk["pck"]["0.2"] >= filt]
        k5 = next((kk["pck"]["0.2"] for kk in r["kernels"] if kk["kernel"] == 5 and kk["pck"]["0.2"] is not None), None)
        out.append(
            f"- k = {r['k']:g}: the mean filter scores {filt:.3f} at PCK@0.2; the best averaging of maps "
            f"({name}) {best:.3f} ({best - filt:+.3f})"
            + (f"; conv3d's own kernel 5 at best {k5:.3f} ({k5 - filt:+.3f})" if k5 is not None else "")
            + (f"; the smallest kernel whose averaging reaches the filter at PCK@0.2: {min(reach)}" if reach else
               f"; no kernel up to {max(kk['kernel'] for kk in r['kernels'])} reaches it by averaging")
            + f". Dividing each map by its peak first (not linear) gives at best {_pck1(g['pck'])}.")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------------------
# Learning curves
# ---------------------------------------------------------------------------------------------------------


def slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "curves"


def curve_labels(runs: Sequence[dict]) -> List[str]:
    """Each run's label with the config values that differ among `runs` (k, setup, batch, lr, ...); runs
    alike in all of them are told apart by their directory."""
    extra = _differences(runs, _CURVE_KEYS)
    names = [", ".join([label(r)] + extra[r["dir"]]) for r in runs]
    return [f"{n} ({os.path.basename(r['dir'])})" if names.count(n) > 1 else n for n, r in zip(names, runs)]


def draw_curves(runs: Sequence[dict], title: str, path: str) -> None:
    """posedenoise.curves.draw_curves, each run labelled by curve_labels."""
    curves.draw_curves(runs, title, path, curve_labels(runs))


def curves_section(curves: Sequence[Tuple[str, List[dict], str]], page_path: str) -> List[str]:
    """Links to the drawn figures: (title, runs, png path) each."""
    out = ["## Learning curves", "",
           "Validation PCK@0.2 (top) and train loss (bottom) after each epoch, against training minutes (wall "
           "clock on this machine, each epoch's validation pass included) and against optimisation steps; the "
           "dashed line in a run's colour is its best classical filter's validation PCK@0.2 (chosen on "
           "validation, the same noise).", ""]
    folder = os.path.dirname(os.path.abspath(page_path))
    for title, runs, png in curves:
        out += [f"### {title}", "", f"![{title}]({os.path.relpath(os.path.abspath(png), folder)})", ""]
        out += [f"- {name}: `{rel(run['dir'])}`" for name, run in zip(curve_labels(runs), runs)] + [""]
    return out


# ---------------------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------------------


def _cell_tables(grouped: Dict[tuple, List[dict]], suffix: str = "") -> List[str]:
    """Per (k, setup), the runs on the most windows first; a table on fewer windows says how many it tests on."""
    out = []
    names = column_names([r for rs in grouped.values() for r in rs])
    order = sorted(grouped, key=lambda key: (key[0], key[1], [-(n or 0) for n in key[2]]))
    for i, (k, setup, windows, _) in enumerate(order):
        fewer = i > 0 and order[i - 1][:2] == (k, setup)
        out += [f"## k = {k:g}, setup {setup}" + (f", {windows[2]} test windows" if fewer else "") + suffix, "",
                "Windows train / val / test: " + " / ".join(str(n) for n in windows) + ".", ""]
        out += cell_table(grouped[(k, setup, windows, order[i][3])], names) + [""]
    return out


def page(runs: List[dict], report_command: str, *, study: Optional[dict] = None, study_path: Optional[str] = None,
         ceiling: Optional[dict] = None, curves: Sequence[Tuple[str, List[dict], str]] = (),
         page_path: str = "results.md") -> str:
    """The Markdown page for `runs` (load_run of each run directory). study: parse_study's tables (None: the
    file at study_path is absent); ceiling: the ceiling script's JSON; curves: (title, runs, png) drawn."""
    grouped = run_rows(runs)
    if not grouped:
        return "# Results\n\nNo finished run (with test.json and config.json) to report.\n"
    exact = {key: rs for key, rs in grouped.items() if key[3] is None}
    crops = sorted({key[3] for key in grouped if key[3] is not None})
    any_config = next(iter(grouped.values()))[0]["config"]
    about = any_config["data_summary"]
    out = ["# Results", "",
           f"Generated by `{report_command}` from the run directories below; rerun the commands to reproduce it.",
           "",
           f"Data: `{rel(about.get('data'))}` ({about.get('source', '?')}: {about.get('videos', '?')} videos, "
           f"{about.get('frames', '?')} frames). Test PCK@0.05 / 0.1 / 0.2 (thresholds: that fraction of the "
           "torso length), under the split's fixed noise. Every classical filter's options were chosen on the "
           "validation split, never on test; 'minus best filter' is the PCK@0.2 margin over the filter that "
           "validation chose (positive: it wins). 'budget' is what each model was trained to on this machine's "
           "CPU; 's/step' is wall time per optimisation step, the epoch's validation pass included."
           + (" Runs on an imperfect crop are a different task (the identity and the filters see other inputs): "
              "they have their own tables below, never mixed with these." if crops else ""), ""]
    if exact:
        out += summary(exact) + [""]
        out += _cell_tables(exact)
    for crop in crops:
        mine = {key: rs for key, rs in grouped.items() if key[3] == crop}
        title = crop_title(crop)
        out += [f"## {title[0].upper() + title[1:]}", "",
                f"Runs trained and tested with the person crop misplaced as a detector's box would be: each window's "
                f"keypoints scaled about the map's centre by a factor drawn from U({crop[0]:g}, 1) and shifted by "
                f"integers drawn from [-{crop[1]}, {crop[1]}] px, before the noise, for input and target alike. "
                "The identity and the filters below are scored on those inputs: this is another task than the "
                "exact crop above, and its numbers compare only with each other.", ""]
        out += summary(mine, title=f"Summary ({title})") + [""]
        out += _cell_tables(mine, suffix=f", {title}")
    if ceiling is not None:
        out += [ceiling_markdown(ceiling), ""]
    if curves:
        out += curves_section(curves, page_path)
    out += ["## Commands", "", "The data, then each model row (run directories relative to where this page was "
            "made; `experiments run` runs the same train command per cell):", "", "```bash"]
    flags = {"penn_action": "--penn-action PENN_ACTION_FOLDER", "brace": "--brace BRACE_FOLDER"}
    sources = [flags[s] for s in str(about.get("source", "")).split("+") if s in flags]
    if sources:
        data = shlex.quote(str(rel(about.get("data"))))
        out.append(f"python -m posedenoise.prepare {' '.join(sources)} --out {data}")
    for key in sorted(grouped, key=lambda key: (key[3] is not None, key[3] or (1.0, 0), key[:3])):   # exact first
        for run in sorted(grouped[key], key=lambda r: (label(r), len(r["metrics"]), r["dir"])):
            out.append(command(run["config"], out=rel(run["dir"])))
    if ceiling is not None:
        out.append(ceiling_command(ceiling))
    out += [report_command, "```", ""]
    out += study_section(study, study_path or default_study_path(), grouped)
    return "\n".join(out)
