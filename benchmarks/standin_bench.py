"""A real estimator's output as users have it, end to end, on the project's stand-in estimator made hard.

    python benchmarks/standin_bench.py --out runs/standin                    # Penn Action (../shared), ~1 h CPU
    python benchmarks/standin_bench.py --out /tmp/s --quick                  # synthetic, tiny: proves the commands

The stand-in (posedenoise.estimator_sim --image, settings STANDIN below) writes full-frame keypoints in image
pixels, in Penn Action's penn13 layout, for the videos of the pretraining cache's TEST split (by video,
seed 0), so nothing it is scored on was pretrained on. Then, each a command a user runs:
  1. prepare --paired: crop each frame by the pretraining rule from the estimator's own keypoints;
  2. calibrate: the measured noise law (k, and the drift: share and rho from the lags 1-4);
  3. pretrain pose-mlp on the keypoint cache under the measured law, without drift (the default: every
     frame draws its own shift, the study's independent law) and with it (--drift measured: noise.json's);
  4. evaluate each pretrained model on the stand-in's paired cache (test videos, image pixels);
  5. finetune each on the stand-in's train videos (train --init RUN --data paired.npz);
and writes summary.md / summary.json: the estimator, every filter on its sub-pixel keypoints, the two
pretrained and the two finetuned models, detected and missed keypoints apart, in image pixels. Steps whose
output exists are not rerun (a killed run continues where it stopped).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from posedenoise import files  # noqa: E402
from posedenoise.estimator_sim import Errors  # noqa: E402

# The stand-in made hard (issue 20), in image pixels of Penn Action's frames (a person is ~150-300 px tall):
# a drifting offset (AR(1), rho 0.9, sd 6 px), Student-t jitter (3 degrees of freedom, sd 3 px), 8% misses,
# 2% left/right swaps.
STANDIN = Errors(rho=0.9, drift=6.0, jitter=3.0, jitter_df=3.0, miss=0.08, swap=0.02)
QUICK = dict(videos=12, pretrain_epochs=1, finetune_epochs=1, num_windows=600)


def run(argv, log, threads):
    """One command, its output appended to `log`; raises on failure with the log's tail."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONUNBUFFERED="1")
    t0 = time.time()
    with open(log, "a") as f:
        f.write(f"$ {' '.join(argv)}\n")
        f.flush()
        rc = subprocess.run([sys.executable, "-m", *argv], stdout=f, stderr=subprocess.STDOUT, env=env,
                            cwd=ROOT).returncode
    if rc:
        with open(log) as f:
            tail = f.read()[-3000:]
        raise SystemExit(f"standin_bench: {' '.join(argv)} failed (exit {rc}); the end of {log}:\n{tail}")
    return time.time() - t0


def standin_folder(args, folder):
    """The stand-in's output for the pretraining cache's test videos (raw labels in image pixels)."""
    from posedenoise.estimator_sim import raw_videos, write_image_folder
    if args.quick:
        videos, layout = raw_videos("synthetic", QUICK["videos"])
    else:
        videos, layout = raw_videos(args.penn_action, args.videos, held_out=args.cache)
    write_image_folder(videos, folder, len(videos), STANDIN, seed=0, layout=layout)
    return len(videos)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="folder for every step's output and summary.md / summary.json")
    ap.add_argument("--cache", default=os.path.join(ROOT, "penn.npz"),
                    help="the pretraining keypoint cache (prepare --penn-action)")
    ap.add_argument("--penn-action", default=os.path.join(ROOT, "..", "shared", "data", "penn_action"),
                    help="Penn Action folder (raw labels in image pixels) for the stand-in")
    ap.add_argument("--videos", type=int, default=10 ** 9, help="at most this many test videos for the stand-in")
    ap.add_argument("--pretrain-epochs", type=int, default=30, help="pose-mlp's recipe: 30")
    ap.add_argument("--finetune-epochs", type=int, default=20)
    ap.add_argument("--arms", default="no-drift,drift",
                    help="which pretraining arms to run (two processes can run one each; the summary is written "
                         "once both have finished)")
    ap.add_argument("--threads", type=int, default=2, help="OMP_NUM_THREADS of each command")
    ap.add_argument("--quick", action="store_true", help="synthetic data, a few videos and windows, one epoch")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    log = os.path.join(args.out, "log.txt")
    p = lambda *names: os.path.join(args.out, *names)  # noqa: E731
    seconds = {}
    if not os.path.exists(p("est", "manifest.json")):
        seconds["videos"] = standin_folder(args, p("est"))
    if not os.path.exists(p("paired.npz")):
        seconds["prepare"] = run(["posedenoise.prepare", "--paired", p("est"), "--out", p("paired.npz")], log,
                                 args.threads)
    if not os.path.exists(p("noise.json")):
        seconds["calibrate"] = run(["posedenoise.calibrate", p("paired.npz"), "--out", p("noise.json")], log,
                                   args.threads)
    pre_data = "synthetic" if args.quick else args.cache
    small = ["--num-windows", str(QUICK["num_windows"])] if args.quick else []
    pre_epochs = QUICK["pretrain_epochs"] if args.quick else args.pretrain_epochs
    fine_epochs = QUICK["finetune_epochs"] if args.quick else args.finetune_epochs
    arms = {"no-drift": [], "drift": ["--drift", "measured"]}
    for name in args.arms.split(","):
        if name not in arms:
            raise SystemExit(f"standin_bench: --arms: expected no-drift and/or drift, got {name!r}")
        drift = arms[name]
        pre, fine = p(f"pretrained-{name}"), p(f"finetuned-{name}")
        if not os.path.exists(os.path.join(pre, "test.json")):
            seconds[f"pretrain {name}"] = run(
                ["posedenoise.train", "--data", pre_data, "--noise", p("noise.json"), *drift, "--epochs",
                 str(pre_epochs), "--out", pre, "--quiet", *small], log, args.threads)
        if not os.path.exists(os.path.join(pre, "evaluate-test.json")):
            seconds[f"evaluate {name}"] = run(["posedenoise.evaluate", pre, "--data", p("paired.npz"), "--out",
                                               os.path.join(pre, "evaluate-test.json")], log, args.threads)
        if not os.path.exists(os.path.join(fine, "test.json")):
            seconds[f"finetune {name}"] = run(
                ["posedenoise.train", "--init", pre, "--data", p("paired.npz"), "--epochs", str(fine_epochs),
                 "--out", fine, "--quiet"], log, args.threads)
    files.write_json(p(f"seconds-{args.arms.replace(',', '-')}.json"), seconds)
    if all(os.path.exists(p(f"finetuned-{name}", "test.json")) for name in arms):
        summarise(args.out)


def summarise(out):
    """summary.json (every row's image-pixel statistics) and summary.md (the table)."""
    from posedenoise.sequences import image_table
    with open(os.path.join(out, "noise.json")) as f:
        law = json.load(f)
    rows = {}
    base = None
    for name in ("no-drift", "drift"):
        with open(os.path.join(out, f"pretrained-{name}", "evaluate-test.json")) as f:
            pre = json.load(f)["image_px"]
        with open(os.path.join(out, f"finetuned-{name}", "test.json")) as f:
            fine = json.load(f)["image_px"]
        if base is None:   # the estimator and the filters: the same test videos in every report
            base = fine
            rows.update({k: ("detected", k) for k in fine["detected"] if k != "pose-mlp"})
        for label, rep in ((f"pretrained pose-mlp, {name}", pre), (f"finetuned pose-mlp, {name}", fine)):
            base["detected"][label] = rep["detected"]["pose-mlp"]
            base["missed"][label] = rep["missed"]["pose-mlp"]
            base["filled"][label] = rep["filled"]["pose-mlp"]
    for part in ("detected", "missed", "filled"):
        base[part].pop("pose-mlp", None)
    filters = [k for k in base["detected"] if k.endswith("filter")]
    best = min(filters, key=lambda k: base["detected"][k]["mean"])
    seconds = {}
    for name in sorted(os.listdir(out)):
        if name.startswith("seconds-"):
            with open(os.path.join(out, name)) as f:
                seconds.update(json.load(f))
    summary = {"standin": vars(STANDIN), "noise_json_drift": law.get("drift"), "seconds": seconds,
               "best_filter_by_mean_px": best, "image_px": base}
    files.write_json(os.path.join(out, "summary.json"), summary)
    text = (f"# Stand-in estimator, image pixels\n\nSettings (benchmarks/standin_bench.py STANDIN): {vars(STANDIN)}."
            f"\ncalibrate's drift: {law.get('drift')}.\n\n" + image_table(base) + "\n")
    with files.atomic_path(os.path.join(out, "summary.md")) as tmp:
        with open(tmp, "w") as f:
            f.write(text)
    print(text)


if __name__ == "__main__":
    main()
