"""A stand-in for a real pose estimator: writes paired data (posedenoise.data.paired's folder format) from a
keypoint source, with known, documented errors. python -m posedenoise.estimator_sim --data DATA --out DIR

It exists to try the day-two path (prepare --paired, calibrate, finetune, inspect) without an estimator,
and to test calibrate against errors made by a different process than the training simulation:

- drift: per video and keypoint, an AR(1) offset per axis, o_t = rho o_{t-1} + e_t, stationary sd `drift`
  (heatmap px of the 56 grid): slowly moving errors, as an estimator's are;
- jitter: independent per frame, sd `jitter`;
- blur: each map a Gaussian of its own width, sigma uniform in [sigma_low, sigma_high] (56-grid px), peak
  uniform in [0.5, 1] (an estimator's maps are not 255-scaled);
- misses: a visible keypoint is missed (no map, confidence 0) with probability `miss`;
- swaps: with probability `swap` per frame, the left and right keypoints of the body trade places.
Maps are written at the estimator's own resolution, 48 x 48 pixels (so reading them exercises the resize
to 56 x 56), with the ground truth in the same frame (manifest.json says "frame": "crop").

--image instead writes what mmpose or OpenPose give: keypoints (x, y, confidence) in full-frame image pixels
of the source (Penn Action's frames, or the synthetic videos' 640 x 480 ones), in the source's own layout
(penn13 for Penn Action, pose25 for the synthetic videos), no maps; every error parameter is then in image
pixels, jitter is Student-t with --jitter-df degrees of freedom (0: normal; t is heavy-tailed, as an
estimator's jitter is), a miss has confidence 0 and position (0, 0), and the confidence of a detection is
uniform in [0.5, 1]. prepare --paired crops each frame by the pretraining rule from these keypoints.
"""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from typing import Optional

import numpy as np

from . import cli
from .layout import POSE25

PROG = "posedenoise.estimator_sim"
FRAME = 48          # the estimator's heatmap size (pixels)
GRID = 56


@dataclass(frozen=True)
class Errors:
    rho: float = 0.9
    drift: float = 2.0
    jitter: float = 1.0
    sigma_low: float = 1.0
    sigma_high: float = 3.0
    miss: float = 0.05
    swap: float = 0.01
    jitter_df: float = 0.0     # Student-t degrees of freedom of the jitter (0: normal); t's sd is jitter


def _swap_pairs():
    names = list(POSE25)
    return [(i, names.index("right_" + n[5:])) for i, n in enumerate(names) if n.startswith("left_")]


def simulate(coords: np.ndarray, visible: np.ndarray, errors: Errors, rng: np.random.Generator):
    """One video's ground truth (T, 25, 2) grid px -> (estimated position (T, 25, 2) grid px, sigma (T, 25)
    grid px, peak (T, 25); 0 where missed)."""
    T, K = visible.shape
    e = rng.normal(0, errors.drift * np.sqrt(1 - errors.rho ** 2), (T, K, 2))
    drift = np.empty_like(e)
    drift[0] = rng.normal(0, errors.drift, (K, 2))                         # start in the stationary law
    for t in range(1, T):                                                  # a recursion over time only
        drift[t] = errors.rho * drift[t - 1] + e[t]
    if errors.jitter_df > 2:      # unit-variance t: heavy tails, the same sd
        noise = rng.standard_t(errors.jitter_df, (T, K, 2)) * np.sqrt((errors.jitter_df - 2) / errors.jitter_df)
    else:
        noise = rng.normal(0, 1, (T, K, 2))
    est = coords + drift + errors.jitter * noise
    swapped = rng.random(T) < errors.swap
    for left, right in _swap_pairs():
        est[swapped, left], est[swapped, right] = est[swapped, right].copy(), est[swapped, left].copy()
    sigma = rng.uniform(errors.sigma_low, errors.sigma_high, (T, K))
    peak = rng.uniform(0.5, 1.0, (T, K)) * (visible & (rng.random((T, K)) >= errors.miss))
    return est, sigma, peak


def maps(est: np.ndarray, sigma: np.ndarray, peak: np.ndarray) -> np.ndarray:
    """Gaussian maps (T, 25, FRAME, FRAME) float16 at the estimator's resolution (positions, widths in grid px)."""
    s = FRAME / GRID
    centre = (est + 0.5) * s - 0.5                                         # grid px -> estimator px
    grid = np.arange(FRAME, dtype=np.float32)
    w = (sigma * s)[..., None]
    gx = np.exp(-(grid - centre[..., 0:1]) ** 2 / (2 * w ** 2))            # (T, K, FRAME): separable
    gy = np.exp(-(grid - centre[..., 1:2]) ** 2 / (2 * w ** 2))
    return (peak[..., None, None] * gy[..., :, None] * gx[..., None, :]).astype(np.float16)


def write_folder(data, out: str, videos: int, errors: Errors, seed: int):
    """The first `videos` videos of a Dataset's cache -> one .npz each in `out`. -> (videos, frames) written."""
    from . import files
    rng = np.random.default_rng(seed)
    cache = data.cache
    os.makedirs(out, exist_ok=True)
    frames = 0
    count = min(videos, cache.num_videos)
    files.write_json(os.path.join(out, "manifest.json"), {"layout": "pose25", "frame": "crop"})   # person crops
    for v in range(count):
        a, n = int(cache.video_starts[v]), int(cache.video_lengths[v])
        coords = np.asarray(cache.coords[a:a + n], np.float64)
        visible = np.asarray(cache.visible[a:a + n])
        est, sigma, peak = simulate(coords, visible, errors, rng)
        gt = np.concatenate([(coords + 0.5) * FRAME / GRID - 0.5, visible[..., None]], axis=-1)
        with files.atomic_path(os.path.join(out, f"{cache.names[v]}.npz")) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, gt=gt.astype(np.float32), heatmaps=maps(est, sigma, peak), layout=np.array("pose25"))
        frames += n
    return count, frames


def write_image_folder(videos, out: str, count: int, errors: Errors, seed: int, layout: str = "pose25",
                       coco: bool = False):
    """RawVideos (image pixels, POSE25) -> one .npz per video of the estimator's keypoints and the ground truth
    in `layout`, image pixels; with `coco`, each video's estimator output also as COCO-format keypoint
    results, out/coco/<video>.json (coco17; image_id = frame index; score = the mean confidence of the
    detected keypoints; a frame without any is left out, as an estimator that found nobody writes nothing).
    -> (videos, frames) written."""
    from . import files
    from .layout import source_to_target
    target = source_to_target(layout)
    src, dst = np.array(list(target)), np.array(list(target.values()))
    rng = np.random.default_rng(seed)
    os.makedirs(out, exist_ok=True)
    files.write_json(os.path.join(out, "manifest.json"), {"layout": layout, "frame": "image"})
    frames = 0
    for video in videos[:count]:
        xy, visible = np.asarray(video.xy, np.float64), np.asarray(video.visible)
        est, _, peak = simulate(xy, visible, errors, rng)
        conf = np.where(peak > 0, rng.uniform(0.5, 1.0, peak.shape), 0.0)
        kp = np.concatenate([np.where(conf[..., None] > 0, est, 0.0), conf[..., None]], axis=-1)
        gt = np.concatenate([np.nan_to_num(xy), visible[..., None]], axis=-1)
        with files.atomic_path(os.path.join(out, f"{video.name}.npz")) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, gt=_in_layout(gt, src, dst), keypoints=_in_layout(kp, src, dst), layout=np.array(layout))
        if coco:
            write_coco_results(os.path.join(out, "coco", f"{video.name}.json"), kp)
        frames += len(xy)
    return min(count, len(videos)), frames


def write_coco_results(path: str, kp: np.ndarray) -> None:
    """POSE25 keypoints (T, 25, 3) -> a COCO-format keypoint results file, as mmpose or Detectron2 write it."""
    from . import files
    from .layout import source_to_target
    target = source_to_target("coco17")
    src, dst = np.array(list(target)), np.array(list(target.values()))
    coco = _in_layout(kp, src, dst, 17)                                        # (T, 17, 3): no eyes
    found = coco[..., 2] > 0
    dets = [{"image_id": t, "category_id": 1, "keypoints": [round(float(v), 2) for v in coco[t].reshape(-1)],
             "score": round(float(coco[t, found[t], 2].mean()), 4)} for t in range(len(coco)) if found[t].any()]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    files.write_json(path, dets)


def _in_layout(a: np.ndarray, src: np.ndarray, dst: np.ndarray, K: Optional[int] = None) -> np.ndarray:
    """(T, 25, 3) POSE25 -> (T, K, 3) in the layout whose keypoint src[i] is POSE25's dst[i] (others: 0)."""
    out = np.zeros((a.shape[0], K or len(src), a.shape[2]), np.float32)
    out[:, src] = a[:, dst]
    return out


def raw_videos(data: str, count: int, held_out: Optional[str] = None):
    """(at most `count` RawVideos in image pixels, their layout): 'synthetic', or a Penn Action folder; with
    `held_out` (a keypoint cache), only the videos of its test split (by video, seed 0: what train holds out
    by default), so that a model pretrained on that cache never saw them."""
    if data == "synthetic":
        from .data.synthetic import generate_videos
        videos, layout = generate_videos(count if held_out is None else 10 * count, seed=0), "pose25"
    else:
        from .data.penn_action import read_folder
        videos, layout = read_folder(data), "penn13"
    if held_out is not None:
        from .data import open_data
        d = open_data(held_out, step=1, seed=0)
        test = {d.cache.names[v] for v in np.flatnonzero(d.video_part == 2)}
        videos = [v for v in videos if v.name in test]
    return videos[:count], layout


@cli.command(PROG)
def main(argv=None):
    ap = cli.OneLineParser(prog=PROG, description=__doc__.split("\n\n")[0],
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--data", default="synthetic", help="keypoint source: 'synthetic' or a cache from prepare (with "
                    "--image: 'synthetic' or a Penn Action folder)")
    ap.add_argument("--image", action="store_true", help="write keypoints in full-frame image pixels (errors in "
                    "image pixels) instead of person-crop heatmaps")
    ap.add_argument("--held-out", metavar="CACHE", help="with --image: only the videos of CACHE's test split (by "
                    "video, seed 0), which pretraining on CACHE never sees")
    ap.add_argument("--coco", action="store_true", help="with --image: also each video's estimator output as "
                    "COCO-format keypoint results, OUT/coco/<video>.json (what denoise reads from mmpose)")
    ap.add_argument("--out", required=True, help="folder to write (one .npz per video)")
    ap.add_argument("--videos", type=int, default=40, help="how many videos (from the first)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the errors")
    for name, default in vars(Errors()).items():
        ap.add_argument(f"--{name.replace('_', '-')}", type=float, default=default,
                        help=f"error parameter {name} (see the module's docstring)")
    args = ap.parse_args(argv)
    if args.videos < 1:
        raise cli.InputError(f"--videos: expected a positive integer, got {args.videos}")
    cli.check_seed(args.seed)
    cli.check_output(args.out, "--out", kind="dir")
    from .data import open_data
    errors = Errors(**{k: getattr(args, k) for k in vars(Errors())})
    bad = [f"--{k.replace('_', '-')} {v:g}" for k, v in vars(errors).items()
           if not (0 <= v < 1 if k in ("rho", "miss", "swap") else 0.1 <= v <= 20 if k.startswith("sigma")
                   else 0 <= v <= 20)]
    if bad or errors.sigma_low > errors.sigma_high:
        raise cli.InputError(f"{' '.join(bad) or '--sigma-low above --sigma-high'}: expected rho, miss, swap in "
                             "[0, 1), drift and jitter in [0, 20], 0.1 <= sigma-low <= sigma-high <= 20")
    if args.image:
        videos, layout = raw_videos(args.data, args.videos, args.held_out)
        count, frames = write_image_folder(videos, args.out, args.videos, errors, args.seed, layout, args.coco)
    else:
        count, frames = write_folder(open_data(args.data, step=1), args.out, args.videos, errors, args.seed)
    print(f"wrote {count} videos, {frames} frames of a simulated estimator ({errors}) to {args.out}")


if __name__ == "__main__":
    main()
