"""Training end to end on tiny synthetic data: the run directory, resume after SIGKILL, the schedule,
evaluate, denoise, a run used from anywhere, and DDP with two gloo processes. (Bad flags and files, for
every command: tests/test_bad_input.py.)"""
import json
import os
import shutil
import socket
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
    cfg = train_mod.TrainConfig(model="conv3d", epochs=20, out=str(tmp_path / "s"), num_windows=20, batch_size=4,
                                patience=2, early_stop=4, quiet=True)
    report = train_mod.train(cfg)
    rows = read_jsonl(tmp_path / "s" / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert [r["lr_reduced"] for r in rows] == [False, False, False, False, True, False]
    assert rows[5]["lr"] == pytest.approx(1e-4) and rows[4]["lr"] == pytest.approx(1e-3)
    assert report["best_epoch"] == 2


def test_a_models_recipe_sets_its_defaults_and_flags_override_them():
    """pose-mlp (the default model) trains by its RECIPE; the study's models keep the study's defaults."""
    default = train_mod.TrainConfig()
    assert (default.model, default.batch_size, default.schedule, default.epochs, default.num_windows) == \
        ("pose-mlp", 256, "cosine", 20, None)                   # the demo: every synthetic window
    study = train_mod.TrainConfig(model="conv3d")
    assert (study.batch_size, study.schedule, study.epochs, study.num_windows) == \
        (16, "plateau", train_mod.DEMO_EPOCHS, train_mod.DEMO_WINDOWS)
    penn = train_mod.TrainConfig(data="penn.npz", batch_size=64, schedule="plateau")
    assert (penn.batch_size, penn.schedule, penn.epochs) == (64, "plateau", 30)
    assert train_mod.TrainConfig(data="penn.npz", model="deciwatch").epochs == train_mod.STUDY_EPOCHS


def test_cosine_schedule_decays_per_step_to_zero_over_the_run(tmp_path):
    """lr at the end of epoch e (what metrics.jsonl records) = lr0 (1 + cos(pi s / S)) / 2 after s of the run's S
    steps; the last epoch ends at 0."""
    import math
    cfg = tiny_config(tmp_path, epochs=3, schedule="cosine", model="pose-mlp")
    train_mod.train(cfg)
    rows = read_jsonl(tmp_path / "r" / "metrics.jsonl")
    steps = 24 // 4                                                # 60% of 40 windows, batch 4
    for e, row in enumerate(rows, 1):
        assert row["lr"] == pytest.approx(1e-3 * (1 + math.cos(math.pi * e / 3)) / 2, abs=1e-12), e
        assert not row["lr_reduced"]
    assert rows[-1]["lr"] == pytest.approx(0.0, abs=1e-12) and len(rows) * steps == 18


def test_evaluate_and_denoise_on_the_tiny_checkpoint(tiny_run, tmp_path):
    out, _ = tiny_run
    r = run("posedenoise.evaluate", str(out), "--out", str(tmp_path / "e.json"))
    assert r.returncode == 0, r.stderr
    e = json.loads((tmp_path / "e.json").read_text())
    test = json.loads((out / "test.json").read_text())
    assert e["pck"] == test["pck"]   # same split, same fixed noise
    best = min(read_jsonl(out / "metrics.jsonl"), key=lambda row: row["val_loss"])["epoch"]   # 1-based
    assert e["best_epoch"] == test["best_epoch"] == best and f"best epoch {best}," in r.stdout
    kp = np.random.default_rng(0).integers(0, 56, (3, 25, 2)).astype(np.float32)   # shorter than a window
    np.save(tmp_path / "kp.npy", kp)
    r = run("posedenoise.denoise", str(out), str(tmp_path / "kp.npy"), str(tmp_path / "d.npz"), "--frame", "grid")
    assert r.returncode == 0, r.stderr
    d = np.load(tmp_path / "d.npz")
    assert d["heatmaps"].shape == (3, 25, 56, 56) and d["keypoints"].shape == (3, 25, 2)


def test_evaluate_writes_its_report_beside_a_loose_checkpoint(tiny_run, tmp_path, capsys):
    """Not two folders up (the run directory of checkpoints/best.pt): a loose .pt has no run around it."""
    from posedenoise import evaluate
    (tmp_path / "models").mkdir()
    shutil.copy(tiny_run[0] / "checkpoints" / "best.pt", tmp_path / "models" / "loose.pt")
    evaluate.main([str(tmp_path / "models" / "loose.pt")])
    assert (tmp_path / "models" / "evaluate-test.json").exists() and not (tmp_path / "evaluate-test.json").exists()
    assert f"wrote {tmp_path / 'models' / 'evaluate-test.json'}" in capsys.readouterr().out


def test_a_run_is_usable_from_anywhere_and_after_its_data_moved(tmp_path, monkeypatch, capsys):
    """train records --data as an absolute path: evaluate works from another directory. Once the data has
    moved, evaluate says so and --data gives the new place, with the run's own windows (the same test PCK);
    --resume takes it too, and records it."""
    from posedenoise import evaluate
    from posedenoise.data import save_cache, synthetic_cache
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    save_cache(synthetic_cache(30, seed=1), str(tmp_path / "a" / "c.npz"))
    monkeypatch.chdir(tmp_path / "a")
    train_mod.main(["--data", "c.npz", "--out", "run", *TINY, "--epochs", "1"])
    config = json.loads((tmp_path / "a" / "run" / "config.json").read_text())
    assert config["data"] == str(tmp_path / "a" / "c.npz")
    test = json.loads((tmp_path / "a" / "run" / "test.json").read_text())
    monkeypatch.chdir(tmp_path / "b")
    evaluate.main(["../a/run", "--out", "e.json"])
    assert json.loads((tmp_path / "b" / "e.json").read_text())["pck"] == test["pck"]
    capsys.readouterr()

    os.rename(tmp_path / "a" / "c.npz", tmp_path / "b" / "moved.npz")
    with pytest.raises(SystemExit) as e:
        evaluate.main(["../a/run", "--out", "e2.json"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "c.npz" in err and "--data" in err and err.count("\n") == 1, err
    evaluate.main(["../a/run", "--data", "moved.npz", "--out", "e3.json"])
    err = capsys.readouterr().err
    assert "c.npz is gone" in err and "moved.npz" in err, err
    assert json.loads((tmp_path / "b" / "e3.json").read_text())["pck"] == test["pck"]   # the run's windows

    train_mod.main(["--data", "moved.npz", "--out", "../a/run", "--resume", *TINY, "--epochs", "2"])
    assert "c.npz is gone; resuming with" in capsys.readouterr().err
    config = json.loads((tmp_path / "a" / "run" / "config.json").read_text())
    assert config["data"] == str(tmp_path / "b" / "moved.npz")
    assert [r["epoch"] for r in read_jsonl(tmp_path / "a" / "run" / "metrics.jsonl")] == [1, 2]


def test_denoise_averages_overlapping_windows_exactly():
    from posedenoise.models import build
    from posedenoise.sequences import run_sequence
    m = build("identity")
    seq = torch.rand(12, 25, 8, 8)
    out, kp = run_sequence(m, seq)
    assert torch.allclose(out, seq) and torch.equal(kp, ops.heatmap_argmax(seq))
    out, _ = run_sequence(m, seq[:2])                 # padded with edge frames, then cut back
    assert torch.allclose(out, seq[:2])


@pytest.mark.slow
def test_ddp_two_gloo_processes_match_one_process(tmp_path):
    args = ["--epochs", "2", "--num-windows", "40", "--batch-size", "4", "--quiet", "--device", "cpu"]
    one = run("posedenoise.train", "--out", str(tmp_path / "one"), *args)
    assert one.returncode == 0, one.stderr
    env = dict(os.environ, OMP_NUM_THREADS="1", MASTER_ADDR="127.0.0.1")
    with socket.socket() as s:  # a free port (a fixed one can still be held by an earlier run's TIME_WAIT)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={port}",
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


def tiny_config(tmp_path, **kw):
    return train_mod.TrainConfig(**{"epochs": 1, "out": str(tmp_path / "r"), "num_windows": 40, "batch_size": 4,
                                    "quiet": True} | kw)


def test_validation_without_countable_keypoints_prints_na_and_resumes(tmp_path, capsys):
    """No hip is ever visible: the torso length (shoulder to hip) is undefined in every frame, so no keypoint
    of any split can be counted for PCK. Training must still finish, print n/a, and resume."""
    from posedenoise.data import save_cache, synthetic_cache
    from posedenoise.layout import POSE25
    cache = synthetic_cache(num_videos=12)
    cache.visible[:, [POSE25.index("left_hip"), POSE25.index("right_hip")]] = False
    save_cache(cache, str(tmp_path / "nohips.npz"))
    cfg = tiny_config(tmp_path, data=str(tmp_path / "nohips.npz"))
    report = train_mod.train(cfg)
    out = capsys.readouterr().out
    row = read_jsonl(tmp_path / "r" / "metrics.jsonl")[0]
    assert row["val_pck"] == {"0.05": None, "0.1": None, "0.2": None}
    assert "val PCK@0.2 n/a (identity n/a)" in out and report["keypoints_counted"] == 0
    train_mod.train(tiny_config(tmp_path, data=cfg.data, epochs=2, resume=True))
    assert [r["epoch"] for r in read_jsonl(tmp_path / "r" / "metrics.jsonl")] == [1, 2]
    assert "epoch 2: " in capsys.readouterr().out


def test_progress_lines_off_a_terminal_read_the_loss_only_when_shown(tmp_path, capsys, monkeypatch):
    """stderr is not a terminal here (captured): one progress line per tenth of the epoch, with rate and ETA.
    Reading the loss from the device is a sync; it may happen only for those lines, never once per step.
    (Adam reads its step counters, which live on the host, inside opt.step: those are not counted.)"""
    reads, in_loop, in_adam = [], [False], [False]
    real_item, real_mse, real_eval = torch.Tensor.item, train_mod.masked_mse, train_mod.evaluate
    real_step = torch.optim.Adam.step

    def item(t):
        if in_loop[0] and not in_adam[0]:
            reads.append(t.dtype)
        return real_item(t)

    def step(self, *a, **kw):
        in_adam[0] = True
        try:
            return real_step(self, *a, **kw)
        finally:
            in_adam[0] = False

    def mse(*a, **kw):           # a training step has started
        in_loop[0] = True
        return real_mse(*a, **kw)

    def evaluate(*a, **kw):      # the training loop of the epoch is over
        in_loop[0] = False
        return real_eval(*a, **kw)

    monkeypatch.setattr(torch.Tensor, "item", item)
    monkeypatch.setattr(torch.optim.Adam, "step", step)
    monkeypatch.setattr(train_mod, "masked_mse", mse)
    monkeypatch.setattr(train_mod, "evaluate", evaluate)
    # 120 train windows: 30 batches; DeciWatch for speed (its steps are the shortest)
    train_mod.train(tiny_config(tmp_path, model="deciwatch", quiet=False, num_windows=200))
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("epoch 1/1: batch ")]
    assert [int(line.split("batch ")[1].split("/")[0]) for line in lines] == [3, 6, 9, 12, 15, 18, 21, 24, 27, 30]
    assert all("batch/s" in line for line in lines) and "ETA" in lines[0] and "ETA" not in lines[-1]
    row = read_jsonl(tmp_path / "r" / "metrics.jsonl")[0]
    assert f"loss {row['train_loss']:.4f}" in lines[-1]
    assert len(reads) == len(lines), "the training loop read a value from the device outside progress lines"
    reads.clear()
    train_mod.train(tiny_config(tmp_path, model="deciwatch", out=str(tmp_path / "q"), quiet=True))
    assert reads == [] and "batch/s" not in capsys.readouterr().err


def test_temporary_files_of_killed_writes_are_swept_on_the_next_run(tmp_path):
    """A process killed inside an atomic write leaves its temporary file; the next run of that directory
    removes it, and nothing else."""
    out = tmp_path / "r"
    ckpts = out / "checkpoints"
    for target in (out / "metrics.jsonl", ckpts / "last.pt"):
        code = ("import os, sys; from posedenoise import files\n"
                "with files.atomic_path(sys.argv[1]) as tmp:\n"
                "    open(tmp, 'w').write('partial'); os._exit(9)\n")
        assert subprocess.run([sys.executable, "-c", code, str(target)]).returncode == 9
    orphans = sorted(p.name for p in out.glob(".*.tmp")) + sorted(p.name for p in ckpts.glob(".*.tmp"))
    assert len(orphans) == 2 and orphans[0].startswith(".metrics.jsonl.") and orphans[1].startswith(".last.pt.")
    for mine in (out / "notes.tmp", out / ".notes.tmp", ckpts / "keep.tmp"):   # not the project's naming
        mine.write_text("mine")
    train_mod.train(tiny_config(tmp_path))
    assert sorted(p.name for p in out.rglob("*.tmp")) == [".notes.tmp", "keep.tmp", "notes.tmp"]


@pytest.mark.parametrize("module,user", [("train", {}), ("evaluate", {}), ("denoise", {}), ("experiments", {}),
                                         ("train", {"OMP_WAIT_POLICY": "PASSIVE"}), ("train", {"GOMP_SPINCOUNT": "7"})])
def test_commands_choose_how_openmp_threads_wait_before_torch_loads_openmp(module, user):
    """libgomp reads OMP_WAIT_POLICY and GOMP_SPINCOUNT once, when torch is imported: each command must have
    set them by then (a short spin unless the user chose a policy or a spin count, which wins)."""
    probe = ("import builtins, os, runpy, sys\n"
             "real = builtins.__import__\n"
             "def spy(name, *a, **kw):\n"
             "    if name == 'torch' and 'torch' not in sys.modules:\n"
             "        print('at torch import:', os.environ.get('OMP_WAIT_POLICY'), os.environ.get('GOMP_SPINCOUNT'))\n"
             "    return real(name, *a, **kw)\n"
             "builtins.__import__ = spy\n"
             "sys.argv = ['x', '--help']\n"
             "try:\n"
             f"    runpy.run_module('posedenoise.{module}', run_name='__main__', alter_sys=True)\n"
             "except SystemExit:\n"
             "    pass\n")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")} | user
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    seen = [line for line in r.stdout.splitlines() if line.startswith("at torch import:")]
    expect = {"OMP_WAIT_POLICY": None, "GOMP_SPINCOUNT": "1000"} if not user else \
        {"OMP_WAIT_POLICY": user.get("OMP_WAIT_POLICY"), "GOMP_SPINCOUNT": user.get("GOMP_SPINCOUNT")}
    assert seen == [f"at torch import: {expect['OMP_WAIT_POLICY']} {expect['GOMP_SPINCOUNT']}"], (r.stdout[-500:],
                                                                                                 r.stderr[-500:])


def test_test_json_and_the_printed_table_carry_the_classical_filters(tiny_run):
    """Every filter, tuned on val; the best is the highest mean validation PCK; the margin is the model's test
    PCK minus the best filter's, per threshold."""
    from posedenoise.models.filters import FILTERS
    out, stdout = tiny_run
    test = json.loads((out / "test.json").read_text())
    assert set(test["filters"]) == set(FILTERS)
    for name, f in test["filters"].items():
        assert f["options"] in (FILTERS[name].grid() or [{}]), name   # a setting of its grid
    mean_val = {n: np.mean(list(f["val_pck"].values())) for n, f in test["filters"].items()}
    assert mean_val[test["best_filter"]] == max(mean_val.values())
    assert test["best_filter_pck"] == test["filters"][test["best_filter"]]["pck"]
    for a, v in test["pck"].items():
        assert test["margin_over_best_filter"][a] == pytest.approx(v - test["best_filter_pck"][a], abs=2e-6)
    assert f"best classical filter: {test['best_filter']}" in stdout and "pose-mlp minus the best filter" in stdout


def test_model_arg_is_recorded_and_every_command_rebuilds_the_model_with_it(tmp_path, monkeypatch):
    from posedenoise import evaluate
    out = tmp_path / "r"
    train_mod.main(["--model", "deciwatch", "--model-arg", "interval=1", "--model-arg", "layers=2", "--epochs", "1",
                    "--out", str(out), *TINY])
    assert json.loads((out / "config.json").read_text())["model_arg"] == ["interval=1", "layers=2"]
    state = torch.load(out / "checkpoints" / "best.pt", weights_only=False)
    assert state["config"]["model_arg"] == ["interval=1", "layers=2"]
    assert json.loads((out / "test.json").read_text())["model_options"] == {"interval": 1, "layers": 2}
    seen = []
    real = evaluate.evaluate
    monkeypatch.setattr(evaluate, "evaluate", lambda net, *a, **kw: seen.append(net) or real(net, *a, **kw))
    evaluate.main([str(out), "--out", str(tmp_path / "e.json")])
    assert seen[0].interval == 1 and len(seen[0].encoder.layers) == 2
    report = json.loads((tmp_path / "e.json").read_text())
    assert report["pck"] == json.loads((out / "test.json").read_text())["pck"]
    assert report["best_filter_pck"] == json.loads((out / "test.json").read_text())["best_filter_pck"]   # same split


def test_a_filter_as_the_model_holds_the_options_given_and_tunes_the_rest(tmp_path):
    from posedenoise.models.filters import FILTERS
    out = tmp_path / "f"
    train_mod.main(["--model", "one-euro", "--model-arg", "beta=0.1", "--out", str(out), *TINY])
    test = json.loads((out / "test.json").read_text())
    grid = FILTERS["one-euro"].GRID
    assert test["model_options"]["beta"] == 0.1 and test["model_options"]["min_cutoff"] in grid["min_cutoff"]
    assert test["filters"]["one-euro"]["options"] in FILTERS["one-euro"].grid()   # the baseline: the full grid
    assert not (out / "checkpoints" / "best.pt").exists()                         # nothing was trained


def test_a_measured_noise_law_is_trained_on_recorded_and_evaluated(tmp_path):
    """A law that shifts every keypoint by exactly +5 px on both axes (7.1 px away, beyond every PCK
    threshold, ~3 px here) instead of k's: the identity baseline then finds almost nothing; evaluate, reading
    the law from the checkpoint, draws the same."""
    from posedenoise import evaluate
    (tmp_path / "noise.json").write_text(json.dumps({"format": "posedenoise-noise/1",
                                                     "shift": {"values": [5], "probs": [1.0]},
                                                     "sigma": {"values": [2.0], "probs": [1.0]}}))
    out = tmp_path / "r"
    train_mod.main(["--noise", str(tmp_path / "noise.json"), "--out", str(out), "--epochs", "1", *TINY])
    config = json.loads((out / "config.json").read_text())
    assert config["noise"] == str(tmp_path / "noise.json") and config["noise_law"]["shift"]["values"] == [5]
    test = json.loads((out / "test.json").read_text())
    assert test["identity_pck"]["0.2"] < 0.05 and test["noise"] == str(tmp_path / "noise.json")
    os.remove(tmp_path / "noise.json")                     # the run carries its law
    evaluate.main([str(out), "--out", str(tmp_path / "e.json")])
    assert json.loads((tmp_path / "e.json").read_text())["identity_pck"] == test["identity_pck"]


def test_demo_pictures_are_pngs_of_the_run(tmp_path):
    """What the demo writes after training: curves.png and window.png, real PNGs of the run's own files."""
    from posedenoise import train as train_cmd
    out = tmp_path / "run"
    train_cmd.main(["--data", "synthetic", "--num-windows", "120", "--batch-size", "16", "--epochs", "2", "--out", str(out),
                    "--quiet"])
    paths = train_cmd.demo_pictures(str(out))
    assert [os.path.basename(p) for p in paths] == ["curves.png", "window.png"]
    for p in paths:
        with open(p, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n", p
        assert os.path.getsize(p) > 10_000, p        # drawn, not an empty canvas
