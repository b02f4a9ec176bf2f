"""The grid report from a fabricated grid directory, and the grid's cell selection and resumption."""
import csv
import io
import json
import os

import pytest

from posedenoise import experiments as ex
from posedenoise.cli import InputError


def fake_run(root, model, k, setup, pck, identity, groups, best_epoch=3, epochs=4, finished=True, filters=None,
             d=None, model_arg=()):
    """A run directory as train writes it. filters: {name: (options, val PCK@0.2, test PCK triple)}; the best
    is the highest val PCK@0.2 (every alpha gets the same val value here)."""
    d = d or ex.cell_dir(str(root), model, k, setup)
    os.makedirs(d)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump({"model": model, "k": float(k), "setup": setup, "batch_size": 16, "epochs": epochs, "seed": 0,
                   "data": "/data/penn.npz", "out": d, "model_arg": list(model_arg), "num_windows": None,
                   "data_summary": {"data": "/data/penn.npz", "source": "penn_action", "videos": 10, "frames": 900,
                                    "windows": {"train": 160, "val": 50, "test": 40}}}, f)
    with open(os.path.join(d, "metrics.jsonl"), "w") as f:
        for e in range(epochs):
            f.write(json.dumps({"epoch": e + 1, "train_loss": 10.0 / (e + 1), "val_loss": 12.0 / (e + 1),
                                "val_pck": {"0.05": 0.1, "0.1": 0.3, "0.2": 0.5 + e / 100},
                                "val_identity_pck": {"0.05": 0.05, "0.1": 0.2, "0.2": 0.4},
                                "lr": 1e-3, "lr_reduced": e == 2, "best": True, "seconds": 1.0}) + "\n")
    if finished:
        with open(os.path.join(d, "test.json"), "w") as f:
            json.dump({"model": model, "setup": setup, "k": k, "best_epoch": best_epoch,
                       "pck": dict(zip(("0.05", "0.1", "0.2"), pck)),
                       "identity_pck": dict(zip(("0.05", "0.1", "0.2"), identity)),
                       "per_group_pck": dict(zip(ex.GROUPS, groups)),
                       "mean_threshold_px": {"0.05": 0.8, "0.1": 1.6, "0.2": 3.2}, **_filter_fields(pck, filters)}, f)


def _filter_fields(pck, filters):
    if not filters:
        return {}
    alphas = ("0.05", "0.1", "0.2")
    best = max(filters, key=lambda n: filters[n][1])
    return {"filters": {n: {"options": o, "val_loss": 1.0, "val_pck": dict.fromkeys(alphas, v), "test_loss": 1.0,
                            "pck": dict(zip(alphas, t))} for n, (o, v, t) in filters.items()},
            "best_filter": best, "best_filter_pck": dict(zip(alphas, filters[best][2])),
            "margin_over_best_filter": {a: round(p - b, 6) for a, p, b in zip(alphas, pck, filters[best][2])}}


def md_table(text, title):
    """Rows of the Markdown table under `### title`, as lists of cell strings (header first)."""
    lines = text.split(f"### {title}", 1)[1].splitlines()[2:]
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return [rows[0]] + rows[2:]


@pytest.fixture
def grid(tmp_path):
    fake_run(tmp_path, "conv3d", 1, 1, (0.30, 0.60, 0.90), (0.1, 0.3, 0.5), [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
    fake_run(tmp_path, "deciwatch", 1, 1, (0.20, 0.70, 0.80), (0.1, 0.3, 0.5), [0.1] * 8, best_epoch=7)
    fake_run(tmp_path, "conv3d", 2, 3, (0.11, 0.22, 0.33), (0.01, 0.02, 0.03), [0.5] * 8)
    fake_run(tmp_path, "biconvlstm-sum", 1, 2, (0.0,) * 3, (0.0,) * 3, [0.0] * 8, finished=False)
    return tmp_path


def test_report_puts_each_number_in_its_cell(grid, capsys):
    ex.main(["report", str(grid)])
    md = (grid / "tables.md").read_text()
    t1 = md_table(md, "Table 1")
    header, rows = t1[0], {r[0]: r for r in t1[1:]}
    col = lambda s, a: header.index(f"setup {s} PCK@{a}")  # noqa: E731
    assert rows["conv3d"][col(1, "0.05")] == "**0.300**"        # best of its column
    assert rows["deciwatch"][col(1, "0.05")] == "0.200"
    assert rows["deciwatch"][col(1, "0.1")] == "**0.700**"
    assert rows["conv3d"][col(1, "0.2")] == "**0.900**"
    assert rows["conv3d"][col(2, "0.2")] == "—"                 # unfinished run
    assert rows["identity (noisy input)"][col(1, "0.2")] == "0.500"
    assert rows["mean threshold (px)"][col(1, "0.2")] == "3.20"
    t2 = md_table(md, "Table 2")
    rows2 = {r[0]: r for r in t2[1:]}
    assert rows2["conv3d"][t2[0].index("setup 3 PCK@0.1")] == "**0.220**"
    assert rows2["deciwatch"][t2[0].index("setup 3 PCK@0.1")] == "—"
    t3 = md_table(md, "Table 3")
    r3 = {(r[0], r[1]): r for r in t3[1:]}
    assert r3[("conv3d", "1.1")][t3[0].index("wrist")] == "**0.500**"
    assert r3[("conv3d", "1.1")][t3[0].index("ankle")] == "**0.200**"
    assert r3[("deciwatch", "1.1")][t3[0].index("best epoch")] == "7"
    assert "Missing cells (21 of 24)" in md and "biconvlstm-sum 1.2" in md
    rows_csv = list(csv.reader(io.StringIO((grid / "tables.csv").read_text())))
    conv = next(r for r in rows_csv if r and r[0] == "conv3d")
    assert float(conv[1]) == 0.30 and float(conv[3]) == 0.90
    assert "\\textbf{0.300}" in (grid / "tables.tex").read_text()
    assert (grid / "figure1.png").stat().st_size > 10_000 and (grid / "figure1.pdf").exists()


def test_figure_has_one_row_per_architecture_and_three_columns(grid):
    n = ex.figure(ex.load_grid(str(grid)), str(grid / "f.png"), str(grid / "f.pdf"))
    assert n == len(ex.GRID_MODELS) * 3


def test_cell_index_order_and_selection():
    grid = ex.cells()
    assert len(grid) == 24 and grid[0] == ("conv3d", 1, 1) and grid[23] == ("biconvlstm-concat", 2, 3)
    assert ex.select(None, None, 10) == [("deciwatch", 2, 2)]
    assert ex.select("1.2,2.3", "conv3d", None) == [("conv3d", 1, 2), ("conv3d", 2, 3)]
    with pytest.raises(InputError, match="--cell-index"):
        ex.select(None, None, 24)
    with pytest.raises(InputError, match="--only"):
        ex.select("3.1", None, None)


def test_run_skips_finished_cells_and_resumes_started_ones(grid, monkeypatch, capsys):
    import posedenoise.train as train_mod
    calls = []
    monkeypatch.setattr(train_mod, "train", lambda cfg: calls.append((cfg.model, cfg.k, cfg.setup, cfg.resume,
                                                                      cfg.epochs)))
    os.makedirs(os.path.join(ex.cell_dir(str(grid), "biconvlstm-sum", 1, 2), "checkpoints"))
    open(os.path.join(ex.cell_dir(str(grid), "biconvlstm-sum", 1, 2), "checkpoints", "last.pt"), "w").close()
    ex.main(["run", "--out", str(grid), "--only", "1.1,1.2", "--epochs", "3"])
    out = capsys.readouterr().out
    assert "conv3d 1.1: finished, skipped" in out and "deciwatch 1.1: finished, skipped" in out
    assert ("conv3d", 1.0, 2, False, 3) in calls
    assert ("biconvlstm-sum", 1.0, 2, True, 3) in calls
    assert not any(c[:3] in (("conv3d", 1.0, 1), ("deciwatch", 1.0, 1)) for c in calls)
    assert len(calls) == 6  # 4 models x {1.1, 1.2} minus the two finished


@pytest.mark.parametrize("epochs", [1, 10])
def test_figure_shows_every_point_on_whole_epochs_and_the_legend_covers_no_panel(tmp_path, epochs):
    """A run of one epoch is a single point per curve: it must still be visible (a marker). Epoch ticks are
    whole numbers. The legend sits outside every panel, so it cannot hide the dashed identity line."""
    for model, k, s in [("conv3d", 1, 1), ("conv3d", 2, 3), ("deciwatch", 1, 2)]:
        fake_run(tmp_path, model, k, s, (0.3, 0.6, 0.9), (0.1, 0.3, 0.5), [0.5] * 8, epochs=epochs)
    fig = ex.draw_figure(ex.load_grid(str(tmp_path)))
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    data_lines = [line for ax in fig.axes for line in ax.get_lines() if len(line.get_xdata())]
    assert len(data_lines) >= 3 * 3 + 3                  # 3 runs x 3 panels + 3 identity lines
    for line in data_lines:
        assert line.get_marker() not in (None, "None", "", " ", "none"), line
    for ax in fig.axes:
        lo, hi = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
        assert all(float(t).is_integer() for t in ticks), (ax.get_title(), ticks)
        if ax.get_lines():                                # a panel with runs shows its epochs
            assert ticks, ax.get_title()
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    assert legends
    for legend in legends:
        box = legend.get_window_extent(renderer)
        for ax in fig.axes:
            assert not box.overlaps(ax.get_window_extent(renderer)), ax.get_title()
    import matplotlib.pyplot as plt
    plt.close(fig)


FILTERS = {"mean": ({}, 0.85, (0.15, 0.45, 0.86)), "savgol": ({"polyorder": 2}, 0.6, (0.1, 0.3, 0.6))}


@pytest.fixture
def filtered_grid(tmp_path):
    """A grid whose runs report the classical filters (as train writes them since the filters exist)."""
    fake_run(tmp_path, "conv3d", 1, 1, (0.30, 0.60, 0.90), (0.1, 0.3, 0.5), [0.5] * 8, filters=FILTERS)
    fake_run(tmp_path, "deciwatch", 1, 1, (0.05, 0.17, 0.50), (0.1, 0.3, 0.5), [0.5] * 8, filters=FILTERS, epochs=1)
    fake_run(tmp_path, "deciwatch", 1, 1, (0.06, 0.18, 0.52), (0.1, 0.3, 0.5), [0.5] * 8, filters=FILTERS,
             d=str(tmp_path / "variant"), model_arg=["interval=1"], epochs=1)
    return tmp_path


def test_tables_show_the_best_classical_filter_and_each_models_margin_over_it(filtered_grid):
    ex.main(["report", str(filtered_grid)])
    md = (filtered_grid / "tables.md").read_text()
    t1 = md_table(md, "Table 1")
    rows = {r[0]: r for r in t1[1:]}
    col = t1[0].index("setup 1 PCK@0.2")
    assert rows["best classical filter (mean)"][col] == "0.860"          # the filter validation chose
    assert rows["conv3d"][col] == "**0.900**"                            # a filter is never marked best
    t5 = md_table(md, "Table 5")
    rows5 = {r[0]: r for r in t5[1:]}
    assert rows5["conv3d"][col] == "**+0.040**" and rows5["deciwatch"][col] == "-0.360"
    assert rows5["conv3d"][t5[0].index("setup 1 PCK@0.05")] == "**+0.150**"
    assert rows5["biconvlstm-sum"][col] == "—"


def test_figure_draws_the_best_filters_validation_level(filtered_grid):
    fig = ex.draw_figure(ex.load_grid(str(filtered_grid)))
    pck_panel = fig.axes[2]                                              # conv3d, validation PCK@0.2
    levels = [line.get_ydata()[0] for line in pck_panel.get_lines() if line.get_linestyle() == "-."]
    assert levels == [0.85]
    assert "best classical filter (tuned on val)" in [t.get_text() for t in fig.legends[0].get_texts()]
    import matplotlib.pyplot as plt
    plt.close(fig)


def test_results_page_lists_every_run_with_the_filters_budget_and_command(filtered_grid, capsys):
    page = filtered_grid / "docs" / "results.md"
    fake_run(filtered_grid, "deciwatch", 1, 1, (0.07, 0.2, 0.6), (0.1, 0.3, 0.5), [0.5] * 8, filters=FILTERS,
             d=str(filtered_grid / "longer"), epochs=3)          # the same model to another budget
    # --also takes a run or a folder of runs; a run named twice (here the grid's own) is shown once
    ex.main(["report", str(filtered_grid), "--results", str(page), "--also", str(filtered_grid)])
    text = page.read_text()
    assert text.count("| **conv3d** |") == 1 and text.count("| **deciwatch (interval=1)** |") == 1
    table = text.split("## k = 1, setup 1", 1)[1]
    row = {line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")]
           for line in table.splitlines() if line.startswith("| ")}
    assert row["mean **(best on val)**"][1] == "0.150 / 0.450 / 0.860" and row["mean **(best on val)**"][2] == "+0.000"
    assert row["savgol (polyorder=2)"][2] == "-0.260"
    assert row["identity (the noisy input)"][2] == "-0.360"
    assert row["**deciwatch (interval=1)**"][1] == "0.060 / 0.180 / 0.520" and row["**deciwatch (interval=1)**"][2] == "-0.340"
    assert row["**conv3d**"][3].startswith("40 steps (4 epochs")               # 160 // 16 steps x 4 epochs
    assert row["**conv3d**"][4] == "0.100"                                      # 4 s over 40 steps
    summary = text.split("## Summary", 1)[1].split("\n## ", 1)[0]
    head = next(line for line in summary.splitlines() if line.startswith("| k.setup"))
    first = next(line for line in summary.splitlines() if line.startswith("| 1.1 |"))
    cols = dict(zip([c.strip() for c in head.strip("|").split("|")], [c.strip() for c in first.strip("|").split("|")]))
    assert cols["best classical filter"] == "0.860 (mean)" and cols["identity"] == "0.500"
    assert cols["deciwatch (interval=1)"] == "0.520 (-0.340)" and cols["conv3d"] == "0.900 (+0.040)"
    assert cols["deciwatch, 1 epoch"] == "0.500 (-0.360)" and cols["deciwatch, 3 epochs"] == "0.600 (-0.260)"
    assert "--model deciwatch --epochs 1 --model-arg interval=1" in text
    assert "python -m posedenoise.experiments report" in text and "would not be comparable" in text
    assert f"wrote {page}" in capsys.readouterr().out

