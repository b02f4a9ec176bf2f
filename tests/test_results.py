"""The results page (posedenoise/results.py through `experiments report --results`): the study's published
numbers, relative paths, imperfect-crop tables apart, learning curves, the averaging ceiling, the verdicts,
and bad input. Every run directory here is written by the test; expected values come from its inputs."""
import json
import os
import pathlib

import pytest

from posedenoise import experiments as ex
from posedenoise import results
from posedenoise.errors import InputError

ALPHAS = ("0.05", "0.1", "0.2")
REAL_STUDY = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "STUDY_RESULTS.md"
# filter name -> (options, val PCK (all alphas), test PCK triple); the best on val is "mean"
FILTERS = {"mean": ({}, 0.85, (0.15, 0.45, 0.86)), "savgol": ({"polyorder": 2}, 0.6, (0.1, 0.3, 0.6))}


def make_run(d, model="conv3d", k=1, setup=1, pck=(0.3, 0.6, 0.9), identity=(0.1, 0.3, 0.5), filters=FILTERS,
             epochs=2, seconds=(30.0, 30.0), model_arg=(), batch_size=16, windows=(160, 50, 40),
             data="/data/penn.npz", **config):
    """A finished run directory as train writes it (the fields the report reads)."""
    d = pathlib.Path(d)
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({
        "model": model, "k": float(k), "setup": setup, "batch_size": batch_size, "epochs": epochs, "seed": 0,
        "data": data, "out": str(d), "model_arg": list(model_arg), "num_windows": None, **config,
        "data_summary": {"data": data, "source": "penn_action", "videos": 10, "frames": 900,
                         "windows": dict(zip(("train", "val", "test"), windows))}}))
    seconds = list(seconds) + [seconds[-1]] * (epochs - len(seconds))
    with open(d / "metrics.jsonl", "w") as f:
        for e in range(epochs):
            f.write(json.dumps({"epoch": e + 1, "train_loss": 4.0 / (e + 1), "val_loss": 5.0 / (e + 1),
                                "val_pck": {"0.05": 0.1, "0.1": 0.3, "0.2": 0.6 + e / 10},
                                "val_identity_pck": dict(zip(ALPHAS, identity)), "lr": 1e-3, "lr_reduced": False,
                                "best": True, "seconds": seconds[e]}) + "\n")
    best = max(filters, key=lambda n: filters[n][1])
    (d / "test.json").write_text(json.dumps({
        "model": model, "setup": setup, "k": k, "best_epoch": epochs, "pck": dict(zip(ALPHAS, pck)),
        "identity_pck": dict(zip(ALPHAS, identity)), "per_group_pck": {"nose": 0.5},
        "mean_threshold_px": {"0.05": 0.8, "0.1": 1.6, "0.2": 3.2},
        "filters": {n: {"options": o, "val_loss": 1.0, "val_pck": dict.fromkeys(ALPHAS, v), "test_loss": 1.0,
                        "pck": dict(zip(ALPHAS, t))} for n, (o, v, t) in filters.items()},
        "best_filter": best, "best_filter_pck": dict(zip(ALPHAS, filters[best][2])),
        "margin_over_best_filter": {a: round(p - b, 6) for a, p, b in zip(ALPHAS, pck, filters[best][2])}}))
    return d


def section(text, heading):
    """The text under `heading` up to the next heading of the same or a higher level."""
    level = heading.split(" ", 1)[0]
    body = text.split(heading + "\n", 1)[1]
    out = []
    for line in body.splitlines():
        if line.startswith("#") and len(line.split(" ", 1)[0]) <= len(level):
            break
        out.append(line)
    return "\n".join(out)


def table_rows(text):
    """Markdown table rows of `text` (header first, the separator dropped) as lists of cells."""
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in text.splitlines()
            if line.startswith("|")]
    return [r for r in rows if not all(set(c) <= set("-:") for c in r)]


def report(tmp_path, *flags):
    """Run `experiments report GRID --results docs/results.md ...` in tmp_path/work (made if needed)."""
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    os.chdir(work)
    ex.main(["report", str(tmp_path / "grid"), "--results", str(work / "docs" / "results.md"), *flags])
    return (work / "docs" / "results.md").read_text()


@pytest.fixture
def grid(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_run(tmp_path / "grid" / "conv3d" / "1.1", data=str(tmp_path / "data" / "penn.npz"))
    return tmp_path


# --- the study's numbers ------------------------------------------------------------------------------------

STUDY_NUMBERS = {  # (model, k, setup) -> percent at 0.05, 0.1, 0.2, as printed
    ("conv3d", 1, 1): ("5.44", "30.1", "94.4"), ("conv3d", 1, 2): ("33.7", "60.7", "97.0"),
    ("deciwatch", 1, 1): ("54.1", "68.7", "84.0"), ("deciwatch", 1, 2): ("", "68.7", "84.0"),
    ("conv3d", 2, 1): ("0.80", "13.7", "89.2"), ("conv3d", 2, 2): ("2.00", "18.6", "89.7"),
    ("deciwatch", 2, 1): ("8.18", "28.7", "65.1"), ("deciwatch", 2, 2): ("8.81", "27.1", "63.6"),
}


def study_markdown(numbers=STUDY_NUMBERS):
    lines = ["# The study's results", "", "Some text.", ""]
    for k in (1, 2):
        lines += [f"## Table {k}: test PCK, k = {k} (percent)", "",
                  f"| model | 0.05: {k}.1 | {k}.2 | 0.1: {k}.1 | {k}.2 | 0.2: {k}.1 | {k}.2 |",
                  "|---|---|---|---|---|---|---|"]
        for model in ("conv3d", "deciwatch"):
            cells = [numbers[(model, k, s)][a] for a in range(3) for s in (1, 2)]
            lines.append(f"| {model} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def test_the_study_parser_reads_every_cell_of_tables_1_and_2(tmp_path):
    path = tmp_path / "study.md"
    path.write_text(study_markdown())
    got = results.parse_study(str(path))
    assert set(got) == set(STUDY_NUMBERS)
    for key, printed in STUDY_NUMBERS.items():
        assert got[key] == {a: (p or None) for a, p in zip(ALPHAS, printed)}, key


@pytest.mark.skipif(not REAL_STUDY.is_file(), reason=f"the study's results are not at {REAL_STUDY}")
def test_the_real_study_file_parses():
    got = results.parse_study(str(REAL_STUDY))
    assert float(got[("conv3d", 1, 1)]["0.2"]) == 94.4
    assert float(got[("deciwatch", 1, 1)]["0.05"]) == 54.1
    assert float(got[("biconvlstm-concat", 2, 3)]["0.2"]) == 69.1
    assert len(got) == 4 * 6 and all(len(v) == 3 for v in got.values())


@pytest.mark.parametrize("broken,named", [
    (lambda t: t.replace("## Table 2", "## Tables two"), "Table 2"),
    (lambda t: t.replace("| 94.4 |", "| high |"), "'high'"),
    (lambda t: t.replace("0.05: 1.1", "first"), "'first'"),
    (lambda t: t.replace("| 30.1 |", "|"), "cells"),
])
def test_a_malformed_study_file_is_named(tmp_path, broken, named):
    path = tmp_path / "study.md"
    path.write_text(broken(study_markdown()))
    with pytest.raises(InputError, match=str(path)) as e:
        results.parse_study(str(path))
    assert named in str(e.value)


def test_the_page_sets_the_study_beside_this_projects_figures_as_fractions(grid):
    study = grid / "study.md"
    study.write_text(study_markdown())
    make_run(grid / "more" / "dw", model="deciwatch", pck=(0.05, 0.17, 0.5), data=str(grid / "data" / "penn.npz"))
    text = report(grid, "--study", str(study), "--also", str(grid / "more"))
    part = section(text, "## The study's numbers")
    assert "../study.md" in part and "not directly comparable" in part and "307 of Penn Action" in part
    rows = table_rows(section(part, "### Table 1: test PCK, k = 1"))
    head, by = rows[0], {(r[0], r[1].split(",")[0]): r for r in rows[1:]}
    conv = by[("1.1", "conv3d")]
    assert conv[head.index("PCK@0.2 study")] == "0.944" and conv[head.index("PCK@0.2 here")] == "0.900"
    assert conv[head.index("PCK@0.05 study")] == "0.0544" and conv[head.index("PCK@0.05 here")] == "0.300"
    assert by[("1.2", "deciwatch")][head.index("PCK@0.05 study")] == "—"          # an empty cell of the study
    assert by[("1.1", "deciwatch")][head.index("PCK@0.1 here")] == "0.170"
    assert by[("1.2", "conv3d")][head.index("PCK@0.2 here")] == "—"                # no such run here
    assert by[("1.1", "identity (the noisy input)")][head.index("PCK@0.2 here")] == "0.500"
    rows2 = table_rows(section(part, "### Table 2: test PCK, k = 2"))
    assert {r[0] for r in rows2[1:]} == {"2.1", "2.2"}
    assert rows2[1][rows2[0].index("PCK@0.05 study")] == "0.0080"                  # 0.80 percent, its digits


def test_an_absent_study_file_is_said_and_a_named_missing_one_is_refused(grid, monkeypatch, capsys):
    monkeypatch.setattr(results, "default_study_path", lambda: str(grid / "nowhere" / "STUDY_RESULTS.md"))
    text = report(grid)
    assert "`../nowhere/STUDY_RESULTS.md` is absent" in section(text, "## The study's numbers")
    with pytest.raises(SystemExit) as e:
        report(grid, "--study", str(grid / "missing.md"))
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and "missing.md" in err


# --- relative paths -----------------------------------------------------------------------------------------

def test_every_path_on_the_page_is_relative_to_where_the_report_ran(grid):
    make_run(grid / "extra" / "dw", model="deciwatch", model_arg=["interval=1"], data=str(grid / "data" / "penn.npz"),
             init=str(grid / "pre" / "checkpoints" / "best.pt"), lr=1e-4)
    ceiling = grid / "res" / "ceiling.json"
    write_ceiling(ceiling, script=str(grid / "bench" / "heatmap_ceiling.py"), data=str(grid / "data" / "penn.npz"))
    text = report(grid, "--also", str(grid / "extra"), "--ceiling", str(ceiling),
                  "--curves", f"two runs={grid / 'grid' / 'conv3d' / '1.1'},{grid / 'extra' / 'dw'}")
    assert str(grid) not in text
    assert "Data: `../data/penn.npz`" in text
    assert "--out ../data/penn.npz" in text                                          # the prepare command
    assert "--data ../data/penn.npz --model conv3d" in text and "--out ../grid/conv3d/1.1" in text
    assert "--init ../pre/checkpoints/best.pt" in text and "--out ../extra/dw" in text
    assert ("python -m posedenoise.experiments report ../grid --results docs/results.md --also ../extra "
            "--ceiling ../res/ceiling.json --curves 'two runs=../grid/conv3d/1.1,../extra/dw'") in text
    assert "python ../bench/heatmap_ceiling.py --data ../data/penn.npz" in text and "--json ../res/ceiling.json" in text
    assert "](curves-two-runs.png)" in text and "`../extra/dw`" in text


# --- imperfect crop -----------------------------------------------------------------------------------------

CROP_FILTERS = {"mean": ({}, 0.8, (0.12, 0.40, 0.816)), "median": ({"filter_window": 5}, 0.5, (0.05, 0.2, 0.6))}


def test_imperfect_crop_runs_get_their_own_tables_never_the_exact_summary(grid):
    data = str(grid / "data" / "penn.npz")
    make_run(grid / "crop" / "mlp", model="pose-mlp", pck=(0.2, 0.6, 0.895), identity=(0.02, 0.1, 0.377),
             filters=CROP_FILTERS, crop_scale=0.75, crop_shift=6, data=data)
    make_run(grid / "crop" / "conv", model="conv3d", pck=(0.01, 0.1, 0.5), identity=(0.02, 0.1, 0.377),
             filters=CROP_FILTERS, crop_scale=0.75, crop_shift=6, data=data)
    make_run(grid / "crop" / "shift", model="pose-mlp", pck=(0.2, 0.6, 0.9), identity=(0.02, 0.1, 0.4),
             filters=CROP_FILTERS, crop_shift=3, data=data)
    make_run(grid / "exact" / "mlp", model="pose-mlp", pck=(0.25, 0.63, 0.941), data=data)
    make_run(grid / "old" / "mlp", model="deciwatch", pck=(0.05, 0.2, 0.6), data=data, crop_scale=1.0,
             crop_shift=0)                                                          # the keys, at the exact crop
    text = report(grid, "--also", str(grid / "crop"), "--also", str(grid / "exact"), "--also", str(grid / "old"))
    exact = table_rows(section(text, "## Summary: test PCK@0.2 (margin over the best classical filter)"))
    assert exact[0] == ["k.setup", "identity", "best classical filter", "conv3d", "deciwatch", "pose-mlp"]
    assert exact[1] == ["1.1", "0.500", "0.860 (mean)", "0.900 (+0.040)", "0.600 (-0.260)", "0.941 (+0.081)"]
    title = "imperfect crop: scale U(0.75, 1), shift ±6 px"
    crop = table_rows(section(text, f"## Summary ({title}): test PCK@0.2 (margin over the best classical filter)"))
    assert crop[0] == ["k.setup", "identity", "best classical filter", f"conv3d (crop scale U(0.75, 1), shift ±6 px)",
                       f"pose-mlp (crop scale U(0.75, 1), shift ±6 px)"]
    assert crop[1] == ["1.1", "0.377", "0.816 (mean)", "0.500 (-0.316)", "0.895 (+0.079)"]
    cell = table_rows(section(text, f"## k = 1, setup 1, {title}"))
    names = [r[0] for r in cell[1:]]
    assert names[0] == "identity (the noisy input)" and cell[1][1] == "0.020 / 0.100 / 0.377"
    assert "median (filter_window=5)" in names and "savgol (polyorder=2)" not in names
    assert "**conv3d**" not in names                                                # the exact run is not here
    assert "## Imperfect crop: shift ±3 px" in text and "## Imperfect crop: scale U(0.75, 1), shift ±6 px" in text
    exact_cell = table_rows(section(text, "## k = 1, setup 1"))
    assert not any("crop" in r[0] for r in exact_cell)


def test_labels_show_model_options_and_the_crop():
    def run(**config):
        return {"config": {"model": "pose-mlp", "model_arg": [], **config}}
    assert results.label(run()) == "pose-mlp"
    assert results.label(run(model_arg=["hidden=512", "layers=2"])) == "pose-mlp (hidden=512, layers=2)"
    assert results.label(run(crop_scale=0.5)) == "pose-mlp (crop scale U(0.5, 1))"
    assert results.label(run(model_arg=["hidden=512"], crop_scale=0.75, crop_shift=6)) == \
        "pose-mlp (hidden=512, crop scale U(0.75, 1), shift ±6 px)"
    assert results.label(run(crop_scale=1.0, crop_shift=0)) == "pose-mlp"


# --- verdicts -----------------------------------------------------------------------------------------------

def test_the_summary_names_the_models_that_beat_the_filter_at_every_threshold(grid):
    data = str(grid / "data" / "penn.npz")
    make_run(grid / "more" / "mlp", model="pose-mlp", pck=(0.26, 0.63, 0.95), data=data)     # wins at all three
    make_run(grid / "more" / "dw", model="deciwatch", pck=(0.10, 0.30, 0.88), data=data)     # wins at 0.2 only
    make_run(grid / "more" / "mean", model="mean", pck=(0.15, 0.45, 0.86), data=data)        # a filter: not learned
    make_run(grid / "more" / "k2", model="deciwatch", k=2, pck=(0.01, 0.1, 0.4), data=data)
    text = report(grid, "--also", str(grid / "more"))
    said = {line.split(":", 1)[0][2:]: line for line in section(text, "## Summary: test PCK@0.2 (margin over the best "
                                                                "classical filter)").splitlines()
            if line.startswith("- ")}
    # the filter's test PCK is (0.15, 0.45, 0.86): margins computed here from the inputs
    want = {"pose-mlp": (0.26 - 0.15, 0.63 - 0.45, 0.95 - 0.86), "conv3d": (0.30 - 0.15, 0.60 - 0.45, 0.90 - 0.86)}
    line = said["1.1"]
    for name, m in want.items():
        assert f"**{name}** by {m[2]:+.3f} at PCK@0.2" in line
        assert " / ".join(f"{v:+.3f}" for v in m) in line
    assert line.index("**pose-mlp**") < line.index("**conv3d**")                       # the larger margin first
    assert "deciwatch" not in line and "**mean**" not in line
    assert said["2.1"] == f"- 2.1: none; the closest at PCK@0.2 is deciwatch ({0.4 - 0.86:+.3f})."


# --- learning curves ----------------------------------------------------------------------------------------

def test_curves_are_drawn_into_a_png_beside_the_page_and_linked(grid):
    data = str(grid / "data" / "penn.npz")
    a = make_run(grid / "runs" / "mlp256", model="pose-mlp", batch_size=32, epochs=3, seconds=(30, 30, 60),
                 data=data, model_arg=["hidden=64"])
    b = make_run(grid / "runs" / "mlp16", model="pose-mlp", batch_size=16, epochs=2, data=data, model_arg=["hidden=64"])
    text = report(grid, "--curves", f"MLP: batch 32 vs 16={a},{b}")
    png = grid / "work" / "docs" / "curves-mlp-batch-32-vs-16.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    part = section(text, "### MLP: batch 32 vs 16")
    assert "![MLP: batch 32 vs 16](curves-mlp-batch-32-vs-16.png)" in part
    run_a, run_b = ex.load_run(str(a)), ex.load_run(str(b))
    assert results.curve_labels([run_a, run_b]) == ["pose-mlp (hidden=64), batch 32", "pose-mlp (hidden=64), batch 16"]
    p = results.curve_points(run_a)
    assert p["minutes"] == [0.5, 1.0, 2.0]                                    # 30 s, 30 s, 60 s
    assert p["steps"] == [160 // 32, 2 * (160 // 32), 3 * (160 // 32)]
    assert p["val_pck"] == pytest.approx([0.6, 0.7, 0.8]) and results.best_filter_val_pck(run_a) == 0.85


def test_curves_of_a_missing_run_are_refused_before_anything_is_written(grid, capsys):
    with pytest.raises(SystemExit) as e:
        report(grid, "--curves", f"x={grid / 'nope'}")
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and "nope" in err
    assert not (grid / "work" / "docs").exists() and not (grid / "grid" / "tables.md").exists()


# --- the averaging ceiling ----------------------------------------------------------------------------------

def pck3(v):
    return {"0.05": v / 8, "0.1": v / 2, "0.2": v}


def write_ceiling(path, script="/x/benchmarks/heatmap_ceiling.py", data="/x/penn.npz", kernels=None):
    kernels = kernels or {5: 0.61, 7: 0.72, 9: 0.80, 11: 0.87, 13: 0.88}
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"command": {"script": script, "data": data, "windows": 300, "ks": "1,2", "setup": 1, "seed": 0,
                       "json": str(path), "markdown": None},
           "windows": 300, "test_windows": 31642, "setup": 1, "seconds": 12.0, "threads": 1,
           "results": [{"k": k, "identity": pck3(0.45 / k), "mean_filter": pck3(0.86 / k),
                        "mean_all_frames": pck3(0.85 / k),
                        "average_blur": [{"s": s, "pck": pck3((0.5 + s / 40) / k)} for s in (0, 1, 2, 4, 8)],
                        "normalised_average_blur": [{"s": s, "pck": pck3(0.7 / k)} for s in (0, 2)],
                        "kernels": [{"kernel": n, "temporal_reach": (n - 1) // 2, "best_s": "box",
                                     "pck": pck3(v / k), "grid": []} for n, v in kernels.items()]}
                       for k in (1, 2)]}
    path.write_text(json.dumps(doc))
    return doc


def test_the_ceiling_section_shows_every_method_and_which_kernel_reaches_the_filter(grid):
    ceiling = grid / "ceiling.json"
    write_ceiling(ceiling)
    text = report(grid, "--ceiling", str(ceiling))
    part = section(text, "## The heatmap models' averaging ceiling")
    rows = {r[0]: r[1:] for r in table_rows(part)}
    three = lambda v: f"{v / 8:.3f} / {v / 2:.3f} / {v:.3f}"  # noqa: E731
    assert rows["identity (each frame's noisy argmax)"] == [three(0.45), three(0.45 / 2)]
    assert rows["mean filter** (argmax coordinates averaged over the frames where the keypoint is present)"
                .join(["**", ""])] == [three(0.86), three(0.86 / 2)]
    assert rows["5 maps averaged, blur s = 8"][0] == three(0.5 + 8 / 40)
    assert rows["conv3d kernel 11: best 'same' averaging (frames t ± 4, Gaussian or box within 11 x 11)"][1] == \
        f"{0.87 / 16:.3f} / {0.87 / 4:.3f} / {0.87 / 2:.3f} (s = box)"
    # k = 1: the filter's 0.86 is first reached by kernel 11 (0.87); at k = 2 the filter is 0.43: kernel 7 (0.36)
    # does not, kernel 9 (0.40) does not, kernel 11 (0.435) does
    assert "the smallest kernel whose averaging reaches the filter at PCK@0.2: 11" in part
    assert "OMP_NUM_THREADS=1 python" in part and "--windows 300" in part
    assert "OMP_NUM_THREADS=1 python" in section(text, "## Commands")


@pytest.mark.parametrize("content,named", [
    (None, "no such file"),
    ("{", "not valid JSON"),
    (json.dumps({"command": {"data": "x"}, "windows": 3, "test_windows": 9, "setup": 1, "results": [{"k": 1}]}),
     "results[0]: missing field 'identity'"),
])
def test_a_bad_ceiling_file_is_one_line_exit_2_and_nothing_written(grid, capsys, content, named):
    path = grid / "c.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SystemExit) as e:
        report(grid, "--ceiling", str(path))
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and str(path) in err and named in err, err
    assert not (grid / "work" / "docs").exists() and not (grid / "grid" / "tables.md").exists()


def test_a_malformed_study_file_is_one_line_exit_2_and_nothing_written(grid, capsys):
    study = grid / "study.md"
    study.write_text(study_markdown().replace("| 94.4 |", "| 9x |"))
    with pytest.raises(SystemExit) as e:
        report(grid, "--study", str(study))
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and str(study) in err and "'9x'" in err, err
    assert not (grid / "work" / "docs").exists() and not (grid / "grid" / "tables.md").exists()


def test_page_flags_without_results_are_refused(grid, capsys):
    with pytest.raises(SystemExit) as e:
        ex.main(["report", str(grid / "grid"), "--ceiling", "c.json"])
    assert e.value.code == 2 and "--results" in capsys.readouterr().err


def test_a_single_run_or_a_folder_of_runs_gets_its_page_without_a_grid(tmp_path, monkeypatch):
    """report RUN writes RUN/results.md (no grid, no figure); a folder of runs shows each of them."""
    monkeypatch.chdir(tmp_path)
    run = make_run(tmp_path / "runs" / "pose-mlp-1.1", model="pose-mlp", pck=(0.25, 0.64, 0.95))
    make_run(tmp_path / "runs" / "pose-mlp-2.1", model="pose-mlp", k=2, pck=(0.15, 0.44, 0.83))
    ex.main(["report", str(run)])
    page = (run / "results.md").read_text()
    assert "0.250 / 0.640 / 0.950" in page and not (run / "figure1.png").exists()
    ex.main(["report", "runs", "--results", "page.md"])
    page = (tmp_path / "page.md").read_text()
    assert "0.250 / 0.640 / 0.950" in page and "0.150 / 0.440 / 0.830" in page
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as e:
        ex.main(["report", "empty"])
    assert e.value.code == 2
