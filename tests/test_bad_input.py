"""Every command with every bad input we know of, and on hostile file systems: the README's promise.

Each row runs one command (in-process through its main(argv), which is what `python -m` runs; a subprocess
only where the process matters) in a fresh folder holding a trained run, a cache, a grid and bad files, and
asserts: exit code 2, exactly one line on stderr, naming the flag or file, no traceback, and not one file or
folder created, changed or removed anywhere in that folder. A new bad input is one more row.
"""
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

from posedenoise import cli, denoise, estimator_sim, evaluate, experiments, prepare, train

COMMANDS = {"train": train, "evaluate": evaluate, "prepare": prepare, "denoise": denoise, "experiments": experiments,
            "estimator_sim": estimator_sim}
TINY = ["--epochs", "1", "--num-windows", "40", "--batch-size", "4", "--quiet"]   # the flags `run` was trained with
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="the probe is a CUDA device that is not there")
# A backend that cannot run on this machine's default device.
UNRUNNABLE = "cpp" if torch.cuda.is_available() else "triton"


# --- the world every row runs in ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny finished run (1 epoch of synthetic data) and a small cache, made once."""
    root = tmp_path_factory.mktemp("trained")
    with contextlib.redirect_stdout(io.StringIO()):
        train.main(["--out", str(root / "run"), "--model", "conv3d", *TINY])
        prepare.main(["--synthetic", "6", "--no-progress", "--out", str(root / "cache.npz")])
    return root


@pytest.fixture
def world(trained, tmp_path, monkeypatch):
    """The folder a row runs in (its working directory): the run, a copy of it whose data is gone, a cache,
    a grid of one finished cell, and the files and folders the bad inputs point at."""
    w = tmp_path / "world"
    w.mkdir()
    shutil.copytree(trained / "run", w / "run")
    shutil.copy(trained / "cache.npz", w / "cache.npz")
    shutil.copytree(trained / "run", w / "moved")          # its checkpoint: trained on gone.npz, since moved
    state = torch.load(w / "moved" / "checkpoints" / "best.pt", weights_only=False)
    state["config"]["data"] = str(w / "gone.npz")
    torch.save(state, w / "moved" / "checkpoints" / "best.pt")
    cell = w / "grid" / "conv3d" / "1.1"                    # a grid cell as train writes it
    cell.mkdir(parents=True)
    for name in ("metrics.jsonl", "test.json"):
        shutil.copy(trained / "run" / name, cell / name)
    (w / "afile").write_text("a regular file\n")
    (w / "adir").mkdir()
    (w / "ro").mkdir()
    (w / "bad.pt").write_bytes(b"not a checkpoint")
    (w / "bad.json").write_text('{"layout": "coco17", "videos": {"a": [[[1, 2')
    np.savez(w / "lay.npz", layout=np.array("body99"), a=np.zeros((6, 17, 3)))
    seq = np.random.default_rng(0).uniform(0, 300, (30, 17, 3)).astype(np.float32)
    seq[..., 2], seq[3, 5, 0] = 1, np.nan                   # a generic-format video with a NaN coordinate
    np.savez(w / "nan.npz", layout=np.array("coco17"), clip=seq)
    (w / "nan.json").write_text(json.dumps({"layout": "coco17", "videos": {"clip": seq.tolist()}}))
    kp = np.random.default_rng(0).integers(0, 56, (6, 25, 2)).astype(np.float32)
    np.save(w / "kp.npy", kp)
    kp[2, 3, 0] = np.nan
    np.save(w / "nan_kp.npy", kp)
    np.save(w / "bad.npy", np.zeros((3, 17, 2)))
    monkeypatch.chdir(w)
    return w


@pytest.fixture
def unwritable():
    """make(path): path and everything under it can no longer be written by this process. chmod does not
    stop root (tests may run as root, e.g. in a container): there, the immutable attribute (chattr +i) does,
    where the file system and the capabilities allow it; otherwise the row is skipped, saying why."""
    made = []

    def make(path):
        if os.geteuid() != 0:
            for p in [path, *sorted(path.rglob("*"))]:
                p.chmod(0o555 if p.is_dir() else 0o444)
        else:
            r = subprocess.run(["chattr", "-R", "+i", str(path)], capture_output=True, text=True) \
                if shutil.which("chattr") else None
            if r is None or r.returncode != 0:
                subprocess.run(["chattr", "-R", "-i", str(path)], capture_output=True)
                pytest.skip("running as root, and chattr +i is not available here "
                            f"({r.stderr.strip() if r else 'no chattr'}): no way to make a folder unwritable")
        made.append(path)

    yield make
    for path in made:            # undo, or nobody can delete the temporary folder
        if os.geteuid() != 0:
            for p in [path, *path.rglob("*")]:
                p.chmod(0o755 if p.is_dir() else 0o644)
        else:
            subprocess.run(["chattr", "-R", "-i", str(path)], check=True)


def snapshot(root):
    """Every file and folder under root: path -> (size, mtime) of a file, None for a folder."""
    out = {}
    for folder, dirs, files in os.walk(root):
        for d in dirs:
            out[os.path.relpath(os.path.join(folder, d), root)] = None
        for f in files:
            st = os.stat(os.path.join(folder, f))
            out[os.path.relpath(os.path.join(folder, f), root)] = (st.st_size, st.st_mtime_ns)
    return out


def run_in_process(command, argv):
    """(exit code, stderr) of COMMANDS[command].main(argv). Warnings are written to stderr as Python writes
    them (pytest would otherwise collect them); any exception but SystemExit fails the test with its traceback."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings(record=True) as ws:
        warnings.resetwarnings()
        for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
            warnings.simplefilter("ignore", category)      # Python's own default filters
        try:
            COMMANDS[command].main(argv)
            code = 0
        except SystemExit as e:
            code = e.code
    text = err.getvalue() + "".join(f"{w.filename}:{w.lineno}: {w.category.__name__}: {w.message}\n" for w in ws)
    return code, text


def run_subprocess(command, argv):
    r = subprocess.run([sys.executable, "-m", f"posedenoise.{command}", *argv], capture_output=True, text=True,
                       env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=300)
    return r.returncode, r.stderr


# --- the corpus ---------------------------------------------------------------------------------------
# (id, command, argv, what the line must name, setup[, marks]). setup(world, unwritable, env) prepares the row:
# makes a folder unwritable, breaks a file, changes environment variables (env: name -> value, None to
# unset); returns True to run the row in a subprocess (where the process matters).

def readonly(*paths):
    def setup(w, make, env):
        for p in paths:
            make(w / p)
    return setup


def setenv(**kw):
    def setup(w, make, env):
        env.update(kw)
    return setup


def subprocess_without_triton_interpreter(w, make, env):
    env["TRITON_INTERPRET"] = None      # tests/conftest.py sets it: Triton would then run on the CPU
    return True


def rewrite(path, edit):
    """setup: path's JSON (a list of rows for .jsonl) passed through edit(doc) -> new doc (or text)."""
    def setup(w, make, env):
        p = w / path
        text = p.read_text()
        doc = [json.loads(line) for line in text.splitlines()] if p.suffix == ".jsonl" else json.loads(text)
        new = edit(doc)
        if not isinstance(new, str):
            new = "".join(json.dumps(r) + "\n" for r in new) if p.suffix == ".jsonl" else json.dumps(new)
        p.write_text(new)
    return setup


def without(key, row=None):
    def edit(doc):
        target = doc[row] if row is not None else doc
        del target[key]
        return doc
    return edit


def checkpoint(name, edit):
    """setup: the run's best.pt, passed through edit(state), saved as `name`."""
    def setup(w, make, env):
        state = torch.load(w / "run" / "checkpoints" / "best.pt", weights_only=False)
        edit(state)
        torch.save(state, w / name)
    return setup


def paired_file(**fields):
    """setup: pbad/v.npz, a paired-data video with `fields` (numpy arrays; None drops a field) over a valid one."""
    def setup(w, make, env):
        good = {"gt": np.ones((6, 25, 3)), "heatmaps": np.zeros((6, 25, 8, 8))}
        (w / "pbad").mkdir()
        np.savez(w / "pbad" / "v.npz", **{k: v for k, v in {**good, **fields}.items() if v is not None})
    return setup


def write(path, text):
    def setup(w, make, env):
        (w / path).write_text(text)
    return setup


def corrupt(path):
    def setup(w, make, env):
        (w / path).write_bytes(b"\x00garbage")
    return setup


CELL = "grid/conv3d/1.1"
ROWS = [
    # train
    ("train --bogus", "train", ["--bogus"], ["--bogus"], None),
    ("train --setup 4", "train", ["--setup", "4"], ["--setup"], None),
    ("train --k -1", "train", ["--k", "-1"], ["--k"], None),
    ("train --epochs x", "train", ["--epochs", "x"], ["--epochs"], None),
    ("train --model unet", "train", ["--model", "unet"], ["--model"], None),
    ("train --data missing", "train", ["--data", "no/such/file", *TINY], ["no/such/file"], None),
    ("train --lr inf", "train", ["--lr", "inf", *TINY], ["--lr"], None),
    ("train --seed -1", "train", ["--seed", "-1", *TINY], ["--seed"], None),
    ("train --out a file", "train", ["--out", "afile", *TINY], ["--out", "afile"], None),
    ("train --out under a file", "train", ["--out", "afile/r", *TINY], ["--out", "afile"], None),
    ("train --out read-only", "train", ["--out", "ro/r", *TINY], ["--out", "ro"], readonly("ro")),
    ("train --out default, read-only cwd", "train", TINY, ["--out", "runs"], readonly(".")),
    (f"train --backend {UNRUNNABLE}", "train", ["--backend", UNRUNNABLE, "--out", "r", *TINY], ["--backend"],
     subprocess_without_triton_interpreter),
    ("train POSEDENOISE_BACKEND=bogus", "train", ["--out", "r", *TINY], ["POSEDENOISE_BACKEND", "bogus"],
     setenv(POSEDENOISE_BACKEND="bogus")),
    ("train --out holding a run", "train", ["--out", "run", *TINY], ["run", "--resume"], None),
    ("train --resume without a run", "train", ["--out", "fresh", "--resume", *TINY], ["--resume"], None),
    ("train --resume --model other", "train", ["--out", "run", "--resume", "--model", "deciwatch", *TINY],
     ["--resume", "--model deciwatch"], None),
    ("train --resume --setup --k --seed other", "train",
     ["--out", "run", "--resume", "--model", "conv3d", "--setup", "2", "--k", "2", "--seed", "3", *TINY],
     ["--setup 1 --k 1 --seed 0, not --setup 2 --k 2 --seed 3"], None),
    ("train --resume --data other", "train", ["--out", "run", "--resume", "--data", "cache.npz", *TINY],
     ["--data", "cache.npz"], None),
    ("train --resume read-only run", "train", ["--out", "run", "--resume", *TINY], ["--out", "run"],
     readonly("run")),
    ("train --resume corrupt last.pt", "train", ["--out", "run", "--resume", *TINY], ["last.pt"],
     corrupt("run/checkpoints/last.pt")),
    ("train --data generic .npz with NaN", "train", ["--data", "nan.npz", "--out", "r", *TINY],
     ["--data", "nan.npz", "prepare"], None),
    ("train --data generic .json with NaN", "train", ["--data", "nan.json", "--out", "r", *TINY],
     ["--data", "nan.json"], None),
    ("train --data empty folder", "train", ["--data", "adir", "--out", "r", *TINY], ["adir"], None),
    ("train split < batch", "train", ["--out", "r", "--epochs", "1", "--num-windows", "5", "--quiet"],
     ["--batch-size 256", "only 3 windows"], None),   # pose-mlp's recipe batch
    ("train huge batch", "train", ["--out", "r", *TINY, "--batch-size", "100000"],
     ["--batch-size 100000", "only 24 windows"], None),
    ("train --model-arg unknown", "train", ["--model", "deciwatch", "--model-arg", "foo=1", "--out", "r", *TINY],
     ["--model-arg foo=1", "interval"], None),
    ("train --model-arg not a number", "train", ["--model", "conv3d", "--model-arg", "kernel=x", "--out", "r", *TINY],
     ["--model-arg kernel=x", "int"], None),
    ("train --model-arg the model refuses", "train",
     ["--model", "deciwatch", "--model-arg", "interval=3", "--out", "r", *TINY], ["--model-arg interval=3", "divide"],
     None),
    ("train --model-arg for a model without options", "train",
     ["--model", "mean", "--model-arg", "sigma=1", "--out", "r", *TINY], ["--model-arg sigma=1", "no options"], None),
    ("train --resume --model-arg other", "train", ["--out", "run", "--resume", "--model", "conv3d", "--model-arg", "kernel=3",
                                                  *TINY],
     ["--model-arg kernel=3", "--model-arg (none)"], None),
    ("train --device cuda", "train", ["--device", "cuda", "--out", "r", *TINY], ["--device cuda"], None, NO_CUDA),
    ("train --noise missing", "train", ["--noise", "nothere.json", "--out", "r", *TINY], ["nothere.json"], None),
    ("train --noise not a noise law", "train", ["--noise", "bad.json", "--out", "r", *TINY], ["--noise", "bad.json"],
     None),
    ("train --noise probabilities off", "train", ["--noise", "n.json", "--out", "r", *TINY],
     ["--noise", "n.json", "'shift.probs'"], write("n.json", '{"format": "posedenoise-noise/1", "shift": '
                                                  '{"values": [0, 1], "probs": [0.5, 0.6]}, "sigma": null}')),
    ("train --resume --noise other", "train", ["--out", "run", "--resume", "--noise", "n.json", *TINY],
     ["--noise", "n.json", "--noise (default)"], write("n.json", '{"format": "posedenoise-noise/1", "shift": '
                                                     '{"values": [0], "probs": [1]}, "sigma": null}')),
    ("train --init not a checkpoint", "train", ["--init", "bad.pt", "--out", "r", *TINY], ["bad.pt"], None),
    ("train --init with another --model", "train", ["--init", "run", "--model", "deciwatch", "--out", "r", *TINY],
     ["--model deciwatch", "conv3d", "leave --model out"], None),
    ("train --init with other --model-arg", "train", ["--init", "run", "--model-arg", "kernel=3", "--out", "r", *TINY],
     ["--model-arg kernel=3", "leave it out"], None),
    # evaluate
    ("train --batch-size 0", "train", ["--out", "r", "--epochs", "1", "--batch-size", "0", "--quiet"],
     ["--batch-size", "positive"], None),
    ("evaluate --batch-size 0", "evaluate", ["run", "--batch-size", "0", "--out", "e.json"], ["--batch-size"], None),
    ("evaluate --batch-size -1", "evaluate", ["run", "--batch-size", "-1", "--out", "e.json"], ["--batch-size"], None),
    ("evaluate --out a directory", "evaluate", ["run", "--out", "adir"], ["--out", "adir"], None),
    ("evaluate --out through a missing folder", "evaluate", ["run", "--out", "nowhere/../e.json"],
     ["--out", "nowhere/.."], None),
    ("evaluate --out under a file", "evaluate", ["run", "--out", "afile/e.json"], ["--out", "afile"], None),
    ("evaluate read-only run", "evaluate", ["run"], ["evaluate-test.json", "--out"], readonly("run")),
    ("evaluate not a run", "evaluate", ["kp.npy"], ["kp.npy"], None),
    ("evaluate a folder without checkpoints", "evaluate", ["adir"], ["adir"], None),
    ("evaluate a corrupt checkpoint", "evaluate", ["bad.pt"], ["bad.pt"], None),
    ("evaluate a checkpoint lacking config", "evaluate", ["hand.pt", "--out", "e.json"], ["hand.pt", "'split'"],
     checkpoint("hand.pt", lambda s: s.update(config={"model": "conv3d", "setup": 1}))),
    ("evaluate a checkpoint of an unknown model", "evaluate", ["unet.pt", "--out", "e.json"], ["unet.pt", "'unet'"],
     checkpoint("unet.pt", lambda s: s["config"].update(model="unet"))),
    ("evaluate weights of another model", "evaluate", ["other.pt", "--out", "e.json"], ["other.pt", "do not fit"],
     checkpoint("other.pt", lambda s: s["config"].update(model="deciwatch"))),
    ("evaluate --data missing", "evaluate", ["run", "--data", "no/such", "--out", "e.json"], ["--data", "no/such"],
     None),
    ("evaluate, the run's data moved", "evaluate", ["moved", "--out", "e.json"], ["gone.npz", "--data"], None),
    ("evaluate --split bogus", "evaluate", ["run", "--split", "bogus"], ["--split"], None),
    ("evaluate POSEDENOISE_BACKEND=bogus", "evaluate", ["run", "--out", "e.json"], ["POSEDENOISE_BACKEND"],
     setenv(POSEDENOISE_BACKEND="bogus")),
    ("evaluate --device cuda", "evaluate", ["run", "--device", "cuda"], ["--device cuda"], None, NO_CUDA),
    # prepare (output c.npz)
    ("prepare --seed -1 with --synthetic", "prepare", ["--synthetic", "2", "--seed", "-1", "--out", "c"],
     ["--seed"], None),
    ("prepare --seed -1 with --generic", "prepare", ["--generic", "nan.npz", "--seed", "-1", "--out", "c"],
     ["--seed"], None),
    ("prepare --out a directory", "prepare", ["--synthetic", "2", "--no-progress", "--out", "adir"],
     ["--out", "adir"], None),
    ("prepare --out under a file", "prepare", ["--synthetic", "2", "--no-progress", "--out", "afile/c.npz"],
     ["--out", "c.npz: cannot write"], None),
    ("prepare --out read-only", "prepare", ["--synthetic", "2", "--no-progress", "--out", "ro/c"], ["--out", "ro"],
     readonly("ro")),
    ("prepare --generic truncated json", "prepare", ["--generic", "bad.json", "--out", "c"],
     ["bad.json: not a readable JSON"], None),
    ("prepare --generic unknown layout", "prepare", ["--generic", "lay.npz", "--out", "c"],
     ["lay.npz", "'body99'"], None),
    ("prepare --penn-action empty folder", "prepare", ["--penn-action", "adir", "--out", "c"],
     ["adir", "no .mat label files"], None),
    ("prepare --penn-action missing", "prepare", ["--penn-action", "missing", "--out", "c"],
     ["missing: no such folder"], None),
    ("prepare --brace missing", "prepare", ["--brace", "nowhere", "--no-progress", "--out", "c"],
     ["nowhere: no such folder"], None),
    ("prepare nothing to read", "prepare", ["--out", "c"], ["nothing to read"], None),
    ("prepare --synthetic -1", "prepare", ["--synthetic", "-1", "--out", "c"], ["--synthetic"], None),
    ("prepare --paired missing", "prepare", ["--paired", "nowhere", "--out", "c"], ["nowhere: no such folder"], None),
    ("prepare --paired with --synthetic", "prepare", ["--paired", "adir", "--synthetic", "2", "--out", "c"],
     ["--paired"], None),
    ("prepare --paired no videos", "prepare", ["--paired", "adir", "--out", "c"], ["adir", "no .npz"], None),
    ("prepare --paired without gt", "prepare", ["--paired", "pbad", "--out", "c"], ["v.npz", "'gt'"],
     paired_file(gt=None)),
    ("prepare --paired heatmaps and keypoints", "prepare", ["--paired", "pbad", "--out", "c"],
     ["v.npz", "'heatmaps'", "'keypoints'"], paired_file(keypoints=np.ones((6, 25, 3)))),
    ("prepare --paired NaN heatmaps", "prepare", ["--paired", "pbad", "--out", "c"], ["v.npz", "'heatmaps'", "NaN"],
     paired_file(heatmaps=np.full((6, 25, 8, 8), np.nan))),
    ("prepare --paired heatmaps of other frames", "prepare", ["--paired", "pbad", "--out", "c"],
     ["v.npz", "'heatmaps'", "(6, 25, H, W)"], paired_file(heatmaps=np.zeros((5, 25, 8, 8)))),
    ("prepare --paired unknown layout", "prepare", ["--paired", "pbad", "--out", "c"], ["v.npz", "'layout'"],
     paired_file(layout=np.array("body99"))),
    ("prepare --paired K not the layout's", "prepare", ["--paired", "pbad", "--out", "c"], ["v.npz", "coco17"],
     paired_file(layout=np.array("coco17"))),
    ("prepare --paired keypoints without frame_size", "prepare", ["--paired", "pbad", "--frame", "crop", "--out", "c"],
     ["v.npz", "'frame_size'"], paired_file(heatmaps=None, keypoints=np.ones((6, 25, 3)))),
    # the simulated estimator
    ("estimator_sim --videos 0", "estimator_sim", ["--out", "e", "--videos", "0"], ["--videos"], None),
    ("estimator_sim --rho 1.5", "estimator_sim", ["--out", "e", "--rho", "1.5"], ["--rho 1.5"], None),
    ("estimator_sim --out a file", "estimator_sim", ["--out", "afile"], ["--out", "afile"], None),
    # denoise
    ("denoise OUTPUT a directory", "denoise", ["run", "kp.npy", "adir"], ["OUTPUT", "adir"], None),
    ("denoise OUTPUT under a file", "denoise", ["run", "kp.npy", "afile/d.npz"], ["OUTPUT", "afile"], None),
    ("denoise OUTPUT read-only", "denoise", ["run", "kp.npy", "ro/d.npz"], ["OUTPUT", "ro"], readonly("ro")),
    ("denoise --batch-size 0", "denoise", ["run", "kp.npy", "d.npz", "--batch-size", "0"], ["--batch-size"], None),
    ("denoise --batch-size -1", "denoise", ["run", "kp.npy", "d.npz", "--batch-size", "-1"], ["--batch-size"], None),
    ("denoise --sigma 0", "denoise", ["run", "kp.npy", "d.npz", "--sigma", "0"], ["--sigma"], None),
    ("denoise --sigma nan", "denoise", ["run", "kp.npy", "d.npz", "--sigma", "nan"], ["--sigma"], None),
    ("denoise --min-confidence nan", "denoise", ["run", "kp.npy", "d.npz", "--min-confidence", "nan"],
     ["--min-confidence"], None),
    ("denoise missing INPUT", "denoise", ["run", "nothere.npy", "d.npz"], ["nothere.npy"], None),
    ("denoise INPUT of the wrong shape", "denoise", ["run", "bad.npy", "d.npz", "--frame", "grid"], ["bad.npy", "(F, 25"],
     None),
    ("denoise image pixels, every keypoint at one point", "denoise", ["run", "bad.npy", "d.npz"],
     ["bad.npy", "no frame has 2 present"], None),
    ("denoise INPUT with NaN", "denoise", ["run", "nan_kp.npy", "d.npz"], ["nan_kp.npy", "NaN"], None),
    ("denoise a corrupt checkpoint", "denoise", ["bad.pt", "kp.npy", "d.npz"], ["bad.pt"], None),
    ("denoise weights of another model", "denoise", ["other.pt", "kp.npy", "d.npz"], ["other.pt", "do not fit"],
     checkpoint("other.pt", lambda s: s["config"].update(model="deciwatch"))),
    ("denoise a checkpoint of an unknown setup", "denoise", ["s9.pt", "kp.npy", "d.npz"], ["s9.pt", "setup 9"],
     checkpoint("s9.pt", lambda s: s["config"].update(setup=9))),
    ("denoise --key missing", "denoise", ["run", "nan.npz", "d.npz", "--key", "zz"], ["nan.npz", "'zz'"], None),
    ("denoise POSEDENOISE_BACKEND=bogus", "denoise", ["run", "kp.npy", "d.npz"], ["POSEDENOISE_BACKEND"],
     setenv(POSEDENOISE_BACKEND="bogus")),
    ("denoise --device cuda", "denoise", ["run", "kp.npy", "d.npz", "--device", "cuda"], ["--device cuda"],
     None, NO_CUDA),
    # experiments run
    ("experiments run --out a file", "experiments", ["run", "--out", "afile", *TINY], ["--out", "afile"], None),
    ("experiments run --out read-only", "experiments", ["run", "--out", "ro/g", *TINY], ["--out", "ro"],
     readonly("ro")),
    ("experiments run --model", "experiments", ["run", "--out", "g", "--model", "conv3d"], ["--model"], None),
    ("experiments run --cell-index 24", "experiments", ["run", "--out", "g", "--cell-index", "24"],
     ["--cell-index"], None),
    ("experiments run --only 3.1", "experiments", ["run", "--out", "g", "--only", "3.1"], ["--only"], None),
    ("experiments run --models unet", "experiments", ["run", "--out", "g", "--models", "unet"], ["--models"], None),
    ("experiments run --bogus, cells finished", "experiments",
     ["run", "--out", "grid", "--only", "1.1", "--models", "conv3d", "--bogus"], ["--bogus"], None),
    ("experiments run --lr 0", "experiments", ["run", "--out", "g", "--lr", "0"], ["--lr"], None),
    ("experiments unknown command", "experiments", ["bogus"], ["bogus"], None),
    # experiments report
    ("report a file", "experiments", ["report", "afile"], ["afile"], None),
    ("report no runs", "experiments", ["report", "adir"], ["adir"], None),
    ("report read-only grid", "experiments", ["report", "grid"], ["grid"], readonly("grid")),
    ("report metrics row lacks val_loss", "experiments", ["report", "grid"], ["metrics.jsonl:1", "'val_loss'"],
     rewrite(f"{CELL}/metrics.jsonl", without("val_loss", row=0))),
    ("report metrics row lacks epoch", "experiments", ["report", "grid"], ["metrics.jsonl:1", "'epoch'"],
     rewrite(f"{CELL}/metrics.jsonl", without("epoch", row=0))),
    ("report metrics row not an object", "experiments", ["report", "grid"], ["metrics.jsonl:1", "object"],
     rewrite(f"{CELL}/metrics.jsonl", lambda rows: "[1, 2]\n")),
    ("report metrics line not JSON", "experiments", ["report", "grid"], ["metrics.jsonl:1"],
     rewrite(f"{CELL}/metrics.jsonl", lambda rows: "{nope\n")),
    ("report val_pck wrong type", "experiments", ["report", "grid"], ["metrics.jsonl:1", "'val_pck'"],
     rewrite(f"{CELL}/metrics.jsonl", lambda rows: [dict(rows[0], val_pck=[0.1])])),
    ("report test.json lacks pck", "experiments", ["report", "grid"], ["test.json", "'pck'"],
     rewrite(f"{CELL}/test.json", without("pck"))),
    ("report test.json lacks a threshold", "experiments", ["report", "grid"], ["test.json", "'identity_pck'"],
     rewrite(f"{CELL}/test.json", lambda t: dict(t, identity_pck={"0.05": 0.1}))),
    ("report test.json a list", "experiments", ["report", "grid"], ["test.json", "list"],
     rewrite(f"{CELL}/test.json", lambda t: [t])),
    ("report test.json string value", "experiments", ["report", "grid"], ["test.json", "'per_group_pck'"],
     rewrite(f"{CELL}/test.json", lambda t: dict(t, per_group_pck={"nose": "high"}))),
    ("report test.json not JSON", "experiments", ["report", "grid"], ["test.json"],
     rewrite(f"{CELL}/test.json", lambda t: "{")),
    ("report --results under a file", "experiments", ["report", "grid", "--results", "afile/r.md"],
     ["--results", "afile"], None),
    ("report --results read-only", "experiments", ["report", "grid", "--results", "ro/r.md"], ["--results", "ro"],
     readonly("ro")),
    ("report --also not a run", "experiments", ["report", "grid", "--also", "adir"], ["--also adir"], None),
    ("report test.json filters malformed", "experiments", ["report", "grid"], ["test.json", "'filters'"],
     rewrite(f"{CELL}/test.json", lambda t: dict(t, filters={"mean": {"options": {}}}))),
    ("report test.json binary", "experiments", ["report", "grid"], ["test.json"], corrupt(f"{CELL}/test.json")),
    # denoise reads an .npz by name, and never a paired file's ground truth
    ("denoise .npz without heatmaps or keypoints", "denoise", ["run", "nan.npz", "d.npz", "--frame", "grid"],
     ["nan.npz", "'heatmaps'", "'keypoints'", "'clip'"], None),
    ("denoise image pixels, .npz without keypoints", "denoise", ["run", "nan.npz", "d.npz"],
     ["nan.npz", "'keypoints'", "clip"], None),
    ("denoise a paired file, maps not 56 x 56", "denoise", ["run", "pbad/v.npz", "d.npz", "--frame", "grid"],
     ["v.npz", "paired data", "'gt'", "8 x 8"], paired_file()),
    ("denoise a paired file's keypoints in their frame", "denoise", ["run", "pbad/v.npz", "d.npz", "--frame", "grid"],
     ["v.npz", "paired data", "frame_size"],
     paired_file(heatmaps=None, keypoints=np.ones((6, 25, 3)), frame_size=np.array([64, 48]))),
    ("denoise --key gt of a paired file", "denoise", ["run", "pbad/v.npz", "d.npz", "--key", "gt", "--frame", "grid"],
     ["v.npz", "paired data", "--key gt"], paired_file(heatmaps=np.zeros((6, 25, 56, 56)))),
    ("denoise --key gt in image pixels", "denoise", ["run", "pbad/v.npz", "d.npz", "--key", "gt"],
     ["v.npz", "--key gt"], paired_file()),
    ("denoise image pixels, heatmaps only", "denoise", ["run", "pbad/v.npz", "d.npz"], ["v.npz", "'keypoints'"],
     paired_file()),
    ("denoise --box-smooth -1", "denoise", ["run", "pbad/v.npz", "d.npz", "--box-smooth", "-1"], ["--box-smooth"],
     paired_file()),
    ("prepare --paired --box-smooth -2", "prepare", ["--paired", "pbad", "--box-smooth", "-2", "--out", "c"],
     ["--box-smooth"], paired_file()),
    ("prepare --paired --gt with a folder", "prepare", ["--paired", "pbad", "--gt", "g.json", "--out", "c"],
     ["--gt", "pbad"], paired_file()),
    ("prepare --paired heatmaps in image pixels", "prepare", ["--paired", "pbad", "--out", "c"],
     ["v.npz", "--frame"], paired_file()),
]


@pytest.mark.parametrize("command,argv,names,setup", [pytest.param(*r[1:5], id=r[0], marks=r[5:]) for r in ROWS])
def test_bad_input_is_one_line_exit_2_and_touches_nothing(command, argv, names, setup, world, unwritable):
    env = {}
    in_subprocess = bool(setup and setup(world, unwritable, env))
    before = snapshot(world)
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            if value is None:
                mp.delenv(key, raising=False)
            else:
                mp.setenv(key, value)
        code, err = run_subprocess(command, argv) if in_subprocess else run_in_process(command, argv)
    assert "Traceback" not in err, err
    assert code == 2, err
    assert err.count("\n") == 1 and err.endswith("\n"), f"expected one line on stderr, got:\n{err}"
    assert err.startswith(f"posedenoise.{command}") and "error:" in err, err
    for part in names:
        assert part in err, f"{part!r} not named in: {err}"
    after = snapshot(world)
    assert after == before, {"new": sorted(set(after) - set(before)), "gone": sorted(set(before) - set(after)),
                             "changed": sorted(p for p in before if p in after and before[p] != after[p])}


# --- the wrapper: the user's errors become one line; bugs keep their traceback ----------------------------

def _main_raising(exc):
    @cli.command("posedenoise.probe")
    def main(argv=None):
        raise exc
    return main


@pytest.mark.parametrize("exc", [
    cli.InputError("--flag: expected x"),
    PermissionError(13, "Permission denied", "/somewhere/of/the/users/out.json"),
])
def test_command_turns_the_users_errors_into_one_line(exc, capsys):
    with pytest.raises(SystemExit) as e:
        _main_raising(exc)([])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and err.startswith("posedenoise.probe: error: "), err


@pytest.mark.parametrize("exc", [
    ValueError("a bug: not the user's input"),
    KeyError("config"),
    FileNotFoundError(2, "No such file or directory", os.path.join(os.path.dirname(cli.__file__), "missing.json")),
    OSError(22, "Invalid argument"),        # no file named: not about the user's files
])
def test_command_lets_bugs_show_their_traceback(exc):
    with pytest.raises(type(exc)):
        _main_raising(exc)([])


def test_a_bug_inside_a_command_keeps_its_traceback(world, monkeypatch):
    """A ValueError raised by the code (not by a check of the user's input) is not turned into a line."""
    def broken(*a, **kw):
        raise ValueError("shapes do not match (a bug)")
    monkeypatch.setattr(evaluate, "model_from_state", broken)
    with pytest.raises(ValueError, match="a bug"), contextlib.redirect_stdout(io.StringIO()):
        evaluate.main(["run", "--out", "e.json"])
