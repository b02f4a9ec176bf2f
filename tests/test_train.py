"""Training end to end on tiny synthetic data: the run directory, resume after SIGKILL, the schedule,
evaluate, denoise, bad flags, and DDP with two gloo processes."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from posedenoise import ops
from posedenoise import train as train_mod

TINY = ["--num-windows", "40", "--batch-size", "4", "--quiet"]


def run(*args, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=timeout,
                          env=env or dict(os.environ, OMP_NUM_THREADS="1"))


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tiny"
    r = run("posedenoise.train", "--epochs", "3", "--out", str(out), *TINY)
    assert r.returncode == 0, r.stderr
    return out, r.stdout


def test_run_directory_holds_every_file(tiny_run):
    out, stdout = tiny_run
    for f in ("config.json", "metrics.jsonl", "checkpoints/last.pt", "checkpoints/best.pt", "test.json"):
        assert (out / f).exists(), f
    rows = read_jsonl(out / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert set(rows[0]) >= {"epoch", "train_loss", "val_loss", "val_pck", "lr", "lr_reduced", "seconds"}
    assert set(rows[0]["val_pck"]) == {"0.05", "0.1", "0.2"}
    test = json.loads((out / "test.json").read_text())
    assert set(test) >= {"model", "setup", "k", "best_epoch", "pck", "identity_pck", "per_keypoint_pck",
                         "mean_threshold_px"}
    assert test["best_epoch"] == min(rows, key=lambda r: r["val_loss"])["epoch"]
    assert len(test["per_keypoint_pck"]) == 25 and test["per_keypoint_pck"]["left_pinky"] is None
    assert all(0 <= v <= 1 for v in test["pck"].values())
    assert "identity (noisy input)" in stdout and "mean threshold (px)" in stdout
    state = torch.load(out / "checkpoints" / "last.pt", weights_only=False)
    assert {"model", "optimizer", "scheduler", "epochs_since_best", "rng", "config"} <= set(state)


def test_resume_after_sigkill_reaches_the_same_metrics(tiny_run, tmp_path):
    ref, _ = tiny_run
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "posedenoise.train", "--epochs", "3", "--out", str(out), *TINY]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         env=dict(os.environ, OMP_NUM_THREADS="1"))
    deadline = time.time() + 240
    while not (out / "checkpoints" / "last.pt").exists() and p.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.kill(p.pid, signal.SIGKILL)       # somewhere in epoch 2 (or later): a checkpoint exists
    p.wait()
    r = run("posedenoise.train", "--epochs", "3", "--out", str(out), "--resume", *TINY)
    assert r.returncode == 0, r.stderr
    a, b = read_jsonl(ref / "metrics.jsonl"), read_jsonl(out / "metrics.jsonl")
    for row in a + b:
        row.pop("seconds")
    assert a == b, "resumed metrics differ from the uninterrupted run"
    assert json.loads((ref / "test.json").read_text()) == json.loads((out / "test.json").read_text())


def test_an_existing_run_is_not_overwritten_and_resume_needs_a_run(tiny_run, tmp_path):
    out, _ = tiny_run
    r = run("posedenoise.train", "--out", str(out), *TINY)
    assert r.returncode == 2 and "already holds a run" in r.stderr
    r = run("posedenoise.train", "--out", str(tmp_path / "none"), "--resume", *TINY)
    assert r.returncode == 2 and "no checkpoint" in r.stderr


@pytest.mark.parametrize("args,match", [
    (["--bogus"], "unrecognized arguments"),
    (["--setup", "4"], "invalid choice"),
    (["--k", "-1"], "--k"),
    (["--epochs", "x"], "expected int"),
    (["--model", "unet"], "invalid choice"),
    (["--data", "/no/such/file"], "no/such/file"),
])
def test_bad_flags_give_one_line_and_exit_2(args, match, tmp_path):
    r = run("posedenoise.train", "--out", str(tmp_path / "r"), *args)
    assert r.returncode == 2, r.stderr
    assert match in r.stderr and r.stderr.strip().count("\n") == 0, r.stderr


def test_schedule_reduces_lr_and_stops_early_on_a_controlled_curve(tmp_path, monkeypatch):
    """Validation losses scripted: new lows at epochs 1-2, then flat. patience 2: lr x 0.1 after epoch 5
    (three epochs without a new low); early stop 4: training ends after epoch 6."""
    losses = iter([1.0, 0.5] + [0.7] * 20)
    real = train_mod.evaluate
    dummy = ops.pck(torch.zeros(1, 25, 2), torch.zeros(1, 25, 2), torch.ones(1, 25, dtype=torch.bool), norm=1.0)

    def scripted(net, kind, data, split, dev, **kw):
        if split == "test":
            return real(net, kind, data, split, dev, **kw)
        return {"loss": next(losses), "pck": dummy, "identity": dummy}

    monkeypatch.setattr(train_mod, "evaluate", scripted)
    cfg = train_mod.TrainConfig(epochs=20, out=str(tmp_path / "s"), num_windows=20, batch_size=4, patience=2,
                                early_stop=4, quiet=True)
    report = train_mod.train(cfg)
    rows = read_jsonl(tmp_path / "s" / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert [r["lr_reduced"] for r in rows] == [False, False, False, False, True, False]
    assert rows[5]["lr"] == pytest.approx(1e-4) and rows[4]["lr"] == pytest.approx(1e-3)
    assert report["best_epoch"] == 2


def test_evaluate_and_denoise_on_the_tiny_checkpoint(tiny_run, tmp_path):
    out, _ = tiny_run
    r = run("posedenoise.evaluate", str(out), "--out", str(tmp_path / "e.json"))
    assert r.returncode == 0, r.stderr
    e = json.loads((tmp_path / "e.json").read_text())
    assert e["pck"] == json.loads((out / "test.json").read_text())["pck"]   # same split, same fixed noise
    kp = np.random.default_rng(0).integers(0, 56, (3, 25, 2)).astype(np.float32)   # shorter than a window
    np.save(tmp_path / "kp.npy", kp)
    r = run("posedenoise.denoise", str(out), str(tmp_path / "kp.npy"), str(tmp_path / "d.npz"))
    assert r.returncode == 0, r.stderr
    d = np.load(tmp_path / "d.npz")
    assert d["heatmaps"].shape == (3, 25, 56, 56) and d["keypoints"].shape == (3, 25, 2)
    r = run("posedenoise.denoise", str(out), str(tmp_path / "kp.npy") + "x", str(tmp_path / "d2.npz"))
    assert r.returncode == 2 and "no such file" in r.stderr
    np.save(tmp_path / "bad.npy", np.zeros((3, 17, 2)))
    r = run("posedenoise.denoise", str(out), str(tmp_path / "bad.npy"), str(tmp_path / "d3.npz"))
    assert r.returncode == 2 and "bad.npy" in r.stderr and "(F, 25" in r.stderr
    r = run("posedenoise.evaluate", str(tmp_path / "kp.npy"))
    assert r.returncode == 2 and "checkpoint" in r.stderr


def test_denoise_averages_overlapping_windows_exactly():
    from posedenoise.denoise import denoise_sequence
    from posedenoise.models import build
    m = build("identity")
    seq = torch.rand(12, 25, 8, 8)
    out, kp = denoise_sequence(m, seq)
    assert torch.allclose(out, seq) and torch.equal(kp, ops.heatmap_argmax(seq))
    out, _ = denoise_sequence(m, seq[:2])                 # padded with edge frames, then cut back
    assert torch.allclose(out, seq[:2])


@pytest.mark.slow
def test_ddp_two_gloo_processes_match_one_process(tmp_path):
    args = ["--epochs", "2", "--num-windows", "40", "--batch-size", "4", "--quiet", "--device", "cpu"]
    one = run("posedenoise.train", "--out", str(tmp_path / "one"), *args)
    assert one.returncode == 0, one.stderr
    env = dict(os.environ, OMP_NUM_THREADS="1", MASTER_ADDR="127.0.0.1")
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29517",
                          "-m", "posedenoise.train", "--out", str(tmp_path / "two"), *args],
                         capture_output=True, text=True, timeout=600, env=env)
    assert two.returncode == 0, two.stderr[-3000:]
    a, b = read_jsonl(tmp_path / "one" / "metrics.jsonl"), read_jsonl(tmp_path / "two" / "metrics.jsonl")
    for x, y in zip(a, b):
        assert x["val_loss"] == pytest.approx(y["val_loss"], rel=1e-4)
        assert x["train_loss"] == pytest.approx(y["train_loss"], rel=1e-4)
        assert x["val_pck"] == y["val_pck"]


@pytest.mark.parametrize("backend", [b for b in ("cpp", "torch") if ops.available_backends()["available"][b]])
def test_model_batch_skips_targets_only_for_coordinate_models(backend):
    """Coordinate models get the same noisy inputs as heatmap models, bit for bit, and no targets."""
    from posedenoise.evaluation import model_batch
    g = torch.Generator().manual_seed(3)
    coords = torch.randint(0, 56, (3, 5, 25, 2), generator=g)
    visible = torch.rand(3, 5, 25, generator=g) > 0.2
    wid = torch.tensor([4, 9, 2**33])
    kw = dict(k=2, sigma_choices=(1.0, 2.5, 3.0), seed=7, epoch=5, backend=backend)
    x_pair, y_pair = ops.noisy_pair(coords, visible, wid, **kw)
    x_heat, y_heat = model_batch(coords, visible, wid, "heatmaps", **kw)
    x_coord, y_coord = model_batch(coords, visible, wid, "coords", **kw)
    assert torch.equal(x_heat, x_pair) and torch.equal(y_heat, y_pair)
    assert torch.equal(x_coord, x_pair) and y_coord is None
