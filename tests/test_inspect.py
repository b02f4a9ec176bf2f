"""posedenoise.inspect on tiny trained runs (conv3d: heatmaps; deciwatch: coordinates): the PNGs it writes,
that --worst picks the windows a plain numpy computation calls worst, the trajectory plot on a real
posedenoise.denoise output, and its one-line errors."""
import re

import numpy as np
import pytest
import torch
from PIL import Image

from posedenoise import denoise, inspect, ops, prepare, train
from posedenoise.data import open_data, synthetic_cache
from posedenoise.evaluate import load_checkpoint, model_from_state
from posedenoise.evaluation import SETUPS
from posedenoise.layout import POSE25, SKELETON25

TEST_WINDOWS = 8   # --num-windows 40: 24 / 8 / 8


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for model in ("conv3d", "deciwatch"):
        out[model] = root / model
        train.main(["--out", str(out[model]), "--model", model, "--epochs", "1", "--num-windows", "40",
                    "--batch-size", "4", "--quiet"])
    return out


def run(capsys, *args, command=None):
    """inspect.main (or `command`'s main) in-process -> (exit code, stdout, stderr)."""
    try:
        (command or inspect).main([str(a) for a in args])
        code = 0
    except SystemExit as e:
        code = e.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def png(path):
    """(width, height, RGB array) of a file that must be a PNG."""
    with Image.open(path) as im:
        assert im.format == "PNG"
        return im.size[0], im.size[1], np.asarray(im.convert("RGB"))


def numpy_window_errors(run_dir, split="test"):
    """Each window's mean distance (px) between the model's keypoints and the truth over visible keypoints,
    computed here: the split's inputs under its fixed noise (epoch 0), the model, then numpy only."""
    state, ckpt = load_checkpoint(str(run_dir))
    model = model_from_state(state, "cpu", ckpt)
    tc = state["config"]
    setup = SETUPS[tc["setup"]]
    data = open_data(tc["data"], step=setup["step"], split=tc["split"], seed=tc["seed"], num_windows=tc["num_windows"])
    ids = data.split_ids(split)
    coords, visible = data.gather(ids)
    x, _ = ops.noisy_pair(coords, visible, ids, k=tc["k"], sigma_choices=setup["sigma_choices"], seed=tc["seed"],
                          epoch=0, targets=False)
    with torch.no_grad():
        out = model(x).numpy().astype(np.float64)
    if model.output_kind == "coords":
        pred = out
    else:
        flat = out.reshape(out.shape[:3] + (-1,)).argmax(-1)             # first maximum, row-major
        pred = np.stack([flat % out.shape[-1], flat // out.shape[-1]], -1)
    err = np.sqrt(((pred - coords.numpy()) ** 2).sum(-1))
    vis = visible.numpy()
    return (err * vis).sum((1, 2)) / vis.sum((1, 2))


def drawn(stdout):
    """[(window position, model's mean error)] from the lines inspect prints for the windows it drew."""
    return [(int(m.group(1)), float(m.group(2)))
            for m in re.finditer(r"test window (\d+) .*mean error ([\d.]+) px", stdout)]


def test_skeleton_joins_keypoints_of_the_layout():
    names = {n for edge in SKELETON25 for n in edge}
    assert names <= set(POSE25) and names == set(POSE25), "a keypoint without a bone, or a bone to nowhere"
    assert len(set(map(frozenset, SKELETON25))) == len(SKELETON25)


def test_one_window_png(runs, tmp_path, capsys):
    out = tmp_path / "window.png"
    code, stdout, err = run(capsys, runs["conv3d"], "--window", 3, "--out", out)
    assert code == 0, err
    w, h, rgb = png(out)
    assert (w, h) == inspect.BLOCK_PX
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 200, "a blank or nearly blank figure"
    ((pos, shown),) = drawn(stdout)
    assert pos == 3 and shown == pytest.approx(numpy_window_errors(runs["conv3d"])[3], abs=0.01)


def test_default_output_goes_to_the_run_directory(runs, capsys):
    code, _, err = run(capsys, runs["conv3d"])
    assert code == 0, err
    assert png(runs["conv3d"] / "inspect-test-window0.png")[:2] == inspect.BLOCK_PX


@pytest.mark.parametrize("model, extra", [("conv3d", ()), ("deciwatch", ("--max-windows", 5))])
def test_worst_picks_the_windows_with_the_largest_error(runs, tmp_path, capsys, model, extra):
    n = 3 if model == "conv3d" else 2
    out = tmp_path / "worst.png"
    code, stdout, err = run(capsys, runs[model], "--worst", n, *extra, "--out", out)
    assert code == 0, err
    expected = numpy_window_errors(runs[model])[:extra[1] if extra else None]
    picks = drawn(stdout)
    assert len(picks) == n and len({p for p, _ in picks}) == n
    shown = [e for _, e in picks]
    assert shown == sorted(shown, reverse=True), "not worst first"
    for pos, e in picks:
        assert pos < len(expected) and e == pytest.approx(expected[pos], abs=0.01)
    rest = np.delete(expected, [p for p, _ in picks])
    assert min(expected[p] for p, _ in picks) >= rest.max() - 1e-4, "a worse window was left out"
    w, h, _ = png(out)
    assert (w, h) == (inspect.BLOCK_PX[0], n * inspect.BLOCK_PX[1])


def test_coordinate_model_png(runs, tmp_path, capsys):
    out = tmp_path / "dw.png"
    code, stdout, err = run(capsys, runs["deciwatch"], "--window", 0, "--out", out)
    assert code == 0, err
    w, h, rgb = png(out)
    assert (w, h) == inspect.BLOCK_PX and rgb.std() > 0
    ((pos, shown),) = drawn(stdout)
    assert pos == 0 and shown == pytest.approx(numpy_window_errors(runs["deciwatch"])[0], abs=0.01)


@pytest.fixture(scope="module")
def denoised(runs, tmp_path_factory):
    """A noisy keypoint sequence (F, 25, 3) and its posedenoise.denoise output by the conv3d run."""
    d = tmp_path_factory.mktemp("denoise")
    cache = synthetic_cache(1, (40, 40), seed=3)
    xy = cache.coords.astype(np.float32) + np.random.default_rng(0).normal(0, 2, cache.coords.shape)
    kp = np.concatenate([xy, cache.visible[..., None].astype(np.float32)], -1)
    np.save(d / "kp.npy", kp)
    denoise.main([str(runs["conv3d"]), str(d / "kp.npy"), str(d / "out.npz"), "--frame", "grid"])
    return d / "kp.npy", d / "out.npz"


def test_trajectories_of_an_image_pixel_output_need_no_input(runs, tmp_path, capsys):
    """denoise in image pixels keeps the estimator's keypoints it read ('raw'): inspect draws from the output
    alone, in the input's layout (coco17: its names, not pose25's)."""
    rng = np.random.default_rng(1)
    cache = synthetic_cache(1, (30, 30), seed=4)
    from posedenoise.layout import COCO17, POSE25
    src = [POSE25.index(n) for n in COCO17 if n in POSE25]
    coco = np.zeros((30, 17, 3), np.float32)
    keep = [i for i, n in enumerate(COCO17) if n in POSE25]
    coco[:, keep, :2] = 3.0 * cache.coords[:, src] + 100 + rng.normal(0, 2, (30, len(keep), 2))
    coco[:, keep, 2] = cache.visible[:, src]
    np.save(tmp_path / "coco.npy", coco)
    code, _, err = run(capsys, runs["conv3d"], tmp_path / "coco.npy", tmp_path / "d.npz", command=denoise)
    assert code == 0, err
    code, _, err = run(capsys, tmp_path / "d.npz", "--keypoints", "left_eye", "--out", tmp_path / "e.png")
    assert code == 0, err                       # a coco17 name pose25 lacks: drawn, as missing in every frame
    code, _, err = run(capsys, tmp_path / "d.npz", "--keypoints", "nose,left_wrist", "--out", tmp_path / "t.png")
    assert code == 0, err
    assert png(tmp_path / "t.png")[:2] == (inspect.TRAJ_WIDTH_PX, inspect.TRAJ_HEAD_PX + 2 * inspect.TRAJ_ROW_PX)
    code, _, err = run(capsys, tmp_path / "d.npz", "--keypoints", "left_heel", "--out", tmp_path / "u.png")
    assert code == 2 and "coco17" in err, err                                  # a pose25 name coco17 lacks


def test_trajectories_of_a_denoise_output(denoised, tmp_path, capsys):
    raw, den = denoised
    out = tmp_path / "traj.png"
    code, _, err = run(capsys, den, "--input", raw, "--keypoints", "nose,left_wrist", "--out", out)
    assert code == 0, err
    w, h, rgb = png(out)
    assert (w, h) == (inspect.TRAJ_WIDTH_PX, inspect.TRAJ_HEAD_PX + 2 * inspect.TRAJ_ROW_PX) and rgb.std() > 0
    code, _, err = run(capsys, den, "--input", raw)       # default: beside the .npz, three keypoints
    assert code == 0, err
    assert png(str(den)[:-4] + "-trajectories.png")[:2] == (inspect.TRAJ_WIDTH_PX,
                                                           inspect.TRAJ_HEAD_PX + 3 * inspect.TRAJ_ROW_PX)


def one_line_error(code, err, *words):
    assert code == 2
    assert err.startswith("posedenoise.inspect: error:") and err.count("\n") == 1, err
    for w in words:
        assert w in err, err


@pytest.mark.parametrize("args, words", [
    (("--window", TEST_WINDOWS), ("--window", f"[0, {TEST_WINDOWS})")),
    (("--window", -1), ("--window",)),
    (("--worst", TEST_WINDOWS + 1), ("--worst",)),
    (("--worst", 2, "--max-windows", 1), ("--worst",)),
    (("--window", 1, "--worst", 2), ("--window", "--worst")),
    (("--keypoints", "nose"), ("--keypoints",)),
    (("--out", "x.jpg"), ("--out",)),
])
def test_bad_run_flags(runs, tmp_path, capsys, args, words):
    args = [a if a != "x.jpg" else tmp_path / a for a in args]
    out = ["--out", tmp_path / "f.png"] if "--out" not in args else []
    code, _, err = run(capsys, runs["conv3d"], *args, *out)
    one_line_error(code, err, *words)
    assert not list(tmp_path.iterdir()), "an error wrote a file"


def test_bad_trajectory_input(denoised, tmp_path, capsys):
    raw, den = denoised
    out = tmp_path / "t.png"
    code, _, err = run(capsys, den, "--input", raw, "--keypoints", "nose,left_wirst", "--out", out)
    one_line_error(code, err, "--keypoints", "left_wirst")
    code, _, err = run(capsys, den, "--keypoints", "nose", "--out", out)
    one_line_error(code, err, "--input")
    np.save(tmp_path / "short.npy", np.load(raw)[:10])
    code, _, err = run(capsys, den, "--input", tmp_path / "short.npy", "--out", out)
    one_line_error(code, err, "--input", "frames")
    code, _, err = run(capsys, den, "--input", raw, "--window", 1, "--out", out)
    one_line_error(code, err, "--window")
    assert not out.exists()


# --- keypoints the data lacks are not drawn ----------------------------------------------------------------

PENN_IN_POSE25 = ["nose", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
                  "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle"]   # POSE25's order


def colour_keys(fig):
    """Per block, the keypoint names its colour key lists, in order (the key is the panel without axes)."""
    return [[t.get_text() for t in ax.texts if t.get_text() in POSE25] for ax in fig.axes if not ax.axison]


def test_keypoints_never_visible_in_a_window_are_neither_drawn_nor_listed(tmp_path):
    """Keypoint k's maps (input, prediction, target) are one hot pixel at (2k, 2k). Keypoints 0-11 are visible
    in every frame, 12 in frame 2 only, 13-24 in none: every panel lights exactly the pixels of 0-12."""
    T, K = 5, len(POSE25)
    vis = np.zeros((T, K), bool)
    vis[:, :12], vis[2, 12] = True, True
    maps = np.zeros((T, K, 56, 56), np.float32)
    diag = np.arange(K) * 2
    maps[:, np.arange(K), diag, diag] = 1.0
    xy = np.repeat(diag[None, :, None], T, 0).repeat(2, -1).astype(np.float32)
    block = dict(x=maps, y=maps, out=maps, pred=xy, in_xy=xy, gt=xy, err=np.ones((T, K)), in_err=np.ones((T, K)),
                 vis=vis, title="a window")
    fig = inspect.draw_windows(str(tmp_path / "w.png"), [block], "heatmaps", 1)
    assert colour_keys(fig) == [list(POSE25[:13])]
    images = [ax.images[0].get_array() for ax in fig.axes if ax.axison and ax.images]
    assert len(images) == 3 * T                                  # input, prediction, target per frame
    for image in images:
        lit = np.asarray(image)[diag, diag].max(-1) > 0
        assert lit.tolist() == [True] * 13 + [False] * 12


def test_worst_on_data_lacking_keypoints_lists_only_its_own(runs, tmp_path, capsys, monkeypatch):
    """Data in Penn Action's layout (13 joints; the 12 POSE25 keypoints it lacks are missing in every frame):
    each block's key lists Penn's 13, not 25."""
    rng = np.random.default_rng(0)
    videos = {f"clip{i}": np.concatenate([rng.uniform(50, 250, (30, 13, 2)), np.ones((30, 13, 1))], -1)
              for i in range(3)}
    np.savez(tmp_path / "penn_like.npz", layout=np.array("penn13"), **videos)
    prepare.main(["--generic", str(tmp_path / "penn_like.npz"), "--no-progress", "--out", str(tmp_path / "c.npz")])
    figures, draw = [], inspect.draw_windows
    monkeypatch.setattr(inspect, "draw_windows", lambda *a: figures.append(draw(*a)))
    code, _, err = run(capsys, runs["conv3d"], "--worst", 2, "--data", tmp_path / "c.npz", "--out", tmp_path / "w.png")
    assert code == 0, err
    assert colour_keys(figures[0]) == [PENN_IN_POSE25, PENN_IN_POSE25]
