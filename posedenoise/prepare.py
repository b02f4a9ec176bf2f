"""Build a keypoint cache from raw annotations: python -m posedenoise.prepare [sources] --out PATH

Reads the sources (with a progress bar), maps them into the 25-keypoint layout, preprocesses every frame
into 56 x 56 heatmap pixels (SPEC section 2) and writes one cache file atomically (an uncompressed .npz
that training memory-maps). Prints a summary: videos and frames per source, windows per split (T = 5, frame
step 1, split by video, --seed), and the share of visible keypoints per keypoint. Bad input gives one line
on stderr naming the file and the problem, exit code 2, and no cache file.
"""
from __future__ import annotations

import argparse
import os
import time
import warnings
from collections import Counter

import numpy as np

from . import cli
from .data import DataError, Dataset, build_cache, save_cache
from .data.paired import BOX_SMOOTH
from .layout import POSE25

PROG = "posedenoise.prepare"


def parser() -> argparse.ArgumentParser:
    ap = cli.OneLineParser(prog=PROG, description=__doc__.split("\n\n")[0],
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--penn-action", metavar="DIR",
                    help="Penn Action folder holding labels/NNNN.mat (or the labels folder itself)")
    ap.add_argument("--brace", metavar="DIR",
                    help="BRACE folder holding dataset/<year>/<video_id>/*.json, optionally manual_keypoints/ "
                         "and annotations/ (for the official split)")
    ap.add_argument("--brace-annotations", metavar="DIR",
                    help="BRACE annotations folder (sequences*.csv) for the official split; default: DIR/annotations "
                         "of --brace (the metadata in ../shared/data/brace/annotations works)")
    ap.add_argument("--generic", metavar="FILE", nargs="+", default=[],
                    help="keypoint files in the generic format (.npz or .json, see posedenoise.data.generic)")
    ap.add_argument("--synthetic", type=int, metavar="N", default=0,
                    help="add N generated videos of synthetic motion (posedenoise.data.synthetic)")
    ap.add_argument("--paired", metavar="PATH",
                    help="paired data instead: a folder of a pose estimator's output with ground truth, one .npz "
                         "per video (format: posedenoise/data/paired.py), or a COCO-format keypoint results .json "
                         "with --gt; writes a paired cache for calibrate and finetuning (train --init RUN --data CACHE)")
    ap.add_argument("--gt", metavar="JSON", help="with --paired RESULTS.json: the COCO-format ground truth (its "
                    "'images' give the frames, in video_id / frame_id order; each video_id is a video)")
    ap.add_argument("--frame", choices=("image", "crop", "stretch"), default=None,
                    help="with --paired: 'image' (default; the estimator's full-frame image pixels): crop each frame "
                         "by the pretraining rule from the estimator's own keypoints; 'crop': already a square "
                         "person crop, scaled as a whole; 'stretch': a person crop scaled per axis (two scales). "
                         "Default: the folder's manifest.json 'frame', else image")
    ap.add_argument("--box-smooth", type=int, default=BOX_SMOOTH, metavar="N",
                    help="with --paired --frame image: average each crop box with N frames each side (0: each "
                         "frame its own box, which jitters with the estimate; frames without one take the nearest "
                         "frames')")
    ap.add_argument("--seed", type=int, default=0, help="seed of the synthetic videos and of the summary's split")
    ap.add_argument("--no-progress", action="store_true", help="no progress bars")
    ap.add_argument("--out", required=True, metavar="PATH", help="cache file to write (.npz is appended if absent)")
    return ap


def read_sources(args) -> list:
    """Every RawVideo the flags name, in flag order."""
    progress = not args.no_progress
    videos = []
    if args.penn_action:
        from .data.penn_action import read_folder
        videos += read_folder(args.penn_action, progress=progress)
    if args.brace:
        from .data import brace
        videos += brace.read_folder(args.brace, progress=progress, annotations=args.brace_annotations)
    for path in args.generic:
        from .data.generic import read_file
        videos += read_file(path)
    if args.synthetic:
        from .data.synthetic import generate_videos
        try:
            videos += generate_videos(args.synthetic, seed=args.seed)
        except ValueError as e:
            raise DataError(f"--synthetic: {e}") from None
    return videos


@cli.command(PROG)
def main(argv=None):
    ap = parser()
    args = ap.parse_args(argv)
    keypoint_sources = args.penn_action or args.brace or args.generic or args.synthetic
    if args.paired and keypoint_sources:
        ap.error("--paired: a paired cache holds one estimator's output; give it without --penn-action, --brace, "
                 "--generic or --synthetic")
    if args.paired:
        return prepare_paired(args)
    if not keypoint_sources:
        ap.error("nothing to read: give --penn-action, --brace, --generic and/or --synthetic (or --paired)")
    if args.synthetic < 0:
        ap.error(f"--synthetic: expected a number of videos >= 0, got {args.synthetic}")
    cli.check_seed(args.seed)
    t0 = time.time()
    out = cli.npz_output(args.out, "--out")
    cache = build_cache(read_sources(args))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = Dataset(cache, seed=args.seed, name=out).summary()
    save_cache(cache, out)
    for w in caught:
        print(f"{PROG}: warning: {w.message}")
    share = np.asarray(cache.visible).mean(0)                                              # (25,)
    per_source = Counter(cache.sources)
    frames = Counter()
    for s, n in zip(cache.sources, cache.video_lengths.tolist()):
        frames[s] += n
    w = summary["windows"]
    print(f"wrote {out} in {time.time() - t0:.1f}s: {summary['videos']} videos, {summary['frames']} frames")
    for s in sorted(per_source):
        print(f"  {s:12s} {per_source[s]:7d} videos {frames[s]:9d} frames")
    print(f"windows (T=5, step 1, split by video, seed {args.seed}): train {w['train']}, val {w['val']}, "
          f"test {w['test']}, total {sum(w.values())}")
    print("visible share per keypoint:")
    for name, s in zip(POSE25, share):
        print(f"  {name:18s} {s:6.3f}")


def image_error(paired) -> np.ndarray:
    """The estimator's error in its image pixels, over the visible ground truth it found."""
    found = np.asarray(paired.visible) & (np.asarray(paired.confidence) > 0)
    d = (np.asarray(paired.est, np.float64) - np.asarray(paired.gt, np.float64)) * np.asarray(paired.to_image)[:, None, :2]
    return np.linalg.norm(d, axis=-1)[found]


def prepare_paired(args) -> None:
    from .data.paired import PairedDataset, build_paired, read_folder, save_paired
    cli.check_seed(args.seed)
    t0 = time.time()
    out = cli.npz_output(args.out, "--out")
    if args.box_smooth < 0:
        raise cli.InputError(f"--box-smooth: expected an integer >= 0, got {args.box_smooth}")
    if args.gt and os.path.isdir(args.paired):
        raise cli.InputError(f"--gt: {args.paired} is a folder of .npz videos, which hold their ground truth")
    skipped = []
    if os.path.isdir(args.paired) or not args.gt:
        videos = read_folder(args.paired, args.frame, args.box_smooth, skipped)
    else:
        from .data.paired import read_coco_videos
        videos = read_coco_videos(args.paired, args.gt, frame=args.frame or "image", smooth=args.box_smooth,
                                  skipped=skipped)
    paired = build_paired(videos)
    summary = PairedDataset(paired, seed=args.seed, name=out).summary()
    save_paired(paired, out)
    w, seen = summary["windows"], np.asarray(paired.visible)
    found = (np.asarray(paired.confidence) > 0)[seen]
    error = np.linalg.norm(np.asarray(paired.est) - np.asarray(paired.gt), axis=-1)[seen & (np.asarray(paired.confidence) > 0)]
    print(f"wrote {out} in {time.time() - t0:.1f}s: {summary['videos']} videos, {summary['frames']} frames of "
          f"{'heatmaps' if paired.heatmaps is not None else 'keypoints'} (amplitude {paired.amplitude:.3g} -> 255)")
    print(f"windows (T=5, step 1, split by video, seed {args.seed}): train {w['train']}, val {w['val']}, "
          f"test {w['test']}")
    print(f"visible ground-truth keypoints: {int(seen.sum())}; the estimator found {found.mean():.1%} of them, "
          f"median error {np.median(error) if error.size else float('nan'):.2f} px (56 grid)"
          + (f", {np.median(image_error(paired)):.2f} px in the estimator's image" if paired.to_image is not None
             else "") + f"; python -m posedenoise.calibrate {out} measures more")
    if skipped:
        print(f"{len(skipped)} videos left out: the estimator output no frame with 2 keypoints in them "
              f"({', '.join(skipped[:5])}{', ...' if len(skipped) > 5 else ''})")
    outside = 0 if paired.gt_outside is None else int(paired.gt_outside.sum())
    if outside:
        print(f"{outside} visible ground-truth keypoints lay outside their frame's crop: not scored or trained on")
    clipped, present = int(paired.clipped.sum()), int((np.asarray(paired.confidence) > 0).sum())
    if clipped:   # after the summary, so that it is the last thing a terminal shows
        most = int(np.argmax(paired.clipped))
        videos = int((paired.clipped > 0).sum())
        cli.warn(PROG, f"{args.paired}: {clipped} of {present} present estimator keypoints ({clipped / present:.2%}) "
                       f"lay outside their crop and were clipped to the border of the 56 x 56 grid, in {videos} "
                       f"of {paired.num_videos} videos (most: {paired.names[most]}, {int(paired.clipped[most])}); "
                       "recorded per video as 'clipped' in the cache")


if __name__ == "__main__":
    main()
