"""Check every kernel on every backend this machine has against independent oracles.

    python -m posedenoise.selfcheck [--json out.json] [--quick]

Run it once on a new GPU, or after upgrading torch or triton. For each backend and device (C++ and the
PyTorch reference on the CPU; Triton and the reference on CUDA when there is a GPU; Triton on CPU tensors
too under TRITON_INTERPRET=1) it checks:
  render   maps against scipy.ndimage.gaussian_filter (float64), relative error within float32 rounding,
           and bit for bit against the reference;
  noise    noisy keypoints, sigma_in and the (input, target) maps bit for bit against the reference, float16
           and bfloat16 outputs equal to the float32 maps rounded to nearest even; also for a law whose
           shifts drift across frames (posedenoise.noise.Drift);
  argmax   against numpy.argmax (first maximum; a NaN map's first NaN), ties included;
  pck      hit and keypoint counts against a numpy loop, for the torso, box and fixed norms, including a
           distance exactly on the threshold that a fused multiply-add would misjudge.
Prints one row per check with its largest error and a verdict; exits 0 when every check passes, else 1.
--quick draws the noise for one (seed, epoch, k) instead of four (one of them with drift) (a dry run's budget: under
TRITON_INTERPRET=1 the interpreter takes seconds per launch); benchmarks/gpu_check.py runs the full check on a GPU.
"""
from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np
import scipy.ndimage as ndi
import torch

from . import files, ops
from .layout import POSE25, torso_indices
from .noise import Drift, simulated

SIGMAS = (1.0, 1.5, 2.0, 2.5, 3.0)
RENDER_RTOL = 2.0**-21   # four float32 roundings (two factors, their product, the amplitude) of the exact map
# Corners, borders, next to them, and the interior: 'nearest' mode piles mass on the border pixels.
POINTS = [(0, 0), (55, 0), (0, 55), (55, 55), (0, 27), (55, 30), (20, 0), (33, 55), (1, 1), (54, 2), (27, 28),
          (12, 40)]


def _targets():
    """(backend, device) pairs that can run here."""
    avail = ops.available_backends()["available"]
    out = [(b, "cpu") for b in ("cpp", "torch") if avail[b]]
    if avail["triton"] and not torch.cuda.is_available():
        out.append(("triton", "cpu"))     # only under TRITON_INTERPRET=1
    if torch.cuda.is_available():
        out += [("triton", "cuda")] if avail["triton"] else []
        out.append(("torch", "cuda"))
    return out


# (seed, epoch, k, drift); --quick: the first. The last: shifts that drift (noise.Drift(rho, share)).
NOISE_CASES = ((2**32 - 1, 16, 1.0, None), (0, 0, 1.0, None), (1, 1, 2.0, None), (3, 7, 1.0, (0.9, 0.8)))


def check_render(backend, dev, quick=False):
    pts = torch.tensor(POINTS, device=dev)
    vis = torch.ones(len(POINTS), dtype=torch.bool, device=dev)
    worst, exact = 0.0, True
    for s in SIGMAS:
        out = ops.render_heatmaps(pts, vis, s, backend=backend).cpu()
        ref = ops.render_heatmaps(pts.cpu(), vis.cpu(), s, backend="torch")
        exact &= torch.equal(out, ref)
        for (x, y), m in zip(POINTS, out.double().numpy()):
            delta = np.zeros((56, 56))
            delta[y, x] = 255.0
            sp = ndi.gaussian_filter(delta, s, mode="nearest", truncate=4.0)
            exact &= bool(((m > 0) == (sp > 0)).all())   # the same support
            worst = max(worst, float(np.abs(m - sp).max() / sp.max()))
    return worst, worst <= RENDER_RTOL and exact, "rel. error vs scipy; support and bits = reference"


def _interpreted(backend, dev):
    """Triton on CPU tensors runs in its interpreter, ~1000x slower: smaller inputs there."""
    return backend == "triton" and dev == "cpu"


def check_noise(backend, dev, quick=False):
    g = torch.Generator().manual_seed(0)
    B, K = (2, 4) if _interpreted(backend, dev) else (8, 25)
    coords = torch.randint(0, 56, (B, 5, K, 2), generator=g)
    visible = torch.rand(B, 5, K, generator=g) > 0.2
    wid = torch.tensor([0, 2**40 + 1] + list(range(7, 7 + B - 2)))
    worst, ok = 0, True
    for seed, epoch, k, drift in NOISE_CASES[:1] if quick else NOISE_CASES:
        law = dict(k=k, sigma_choices=SIGMAS) if drift is None else \
            dict(noise=simulated(k, SIGMAS, drift=Drift(*drift)))
        kw = dict(seed=seed, epoch=epoch, return_noise=True, **law)
        ref = ops.noisy_pair(coords, visible, wid, backend="torch", **kw)
        out = [t.cpu() for t in ops.noisy_pair(coords.to(dev), visible.to(dev), wid.to(dev), backend=backend, **kw)]
        worst = max(worst, int((out[2] != ref[2]).sum()) + int((out[3] != ref[3]).sum()),
                    int((out[0] != ref[0]).sum()) + int((out[1] != ref[1]).sum()))
        for dtype in (torch.float16, torch.bfloat16):
            half = ops.noisy_pair(coords.to(dev), visible.to(dev), wid.to(dev), backend=backend, dtype=dtype,
                                  **kw)
            ok &= torch.equal(half[0].cpu(), ref[0].to(dtype)) and torch.equal(half[1].cpu(), ref[1].to(dtype))
    return worst, ok and worst == 0, "values differing from the reference (noise, sigma_in, maps)"


def _np_argmax(maps):
    flat = maps.reshape(-1, maps.shape[-2] * maps.shape[-1])
    idx = np.array([int(np.argmax(m)) for m in flat])       # numpy: the first maximum, or the first NaN
    xy = np.stack([idx % maps.shape[-1], idx // maps.shape[-1]], -1).astype(np.float32)
    return xy.reshape(maps.shape[:-2] + (2,))


def check_argmax(backend, dev, quick=False):
    g = np.random.default_rng(1)
    maps = np.round(g.random((40, 56, 56)) * 4).astype(np.float32)   # few distinct values: many ties
    maps[3] = 0.0                                                     # all equal: (0, 0)
    maps[5, 20, 5] = maps[5, 10, 10] = np.nan                         # NaN: the first one
    out = ops.heatmap_argmax(torch.from_numpy(maps).to(dev), backend=backend, check_nan=False).cpu().numpy()
    wrong = int((out != _np_argmax(maps)).any(-1).sum())
    return wrong, wrong == 0, "maps whose (x, y) differs from numpy.argmax"


def _np_pck(pred, gt, vis, alphas, norm):
    """The SPEC's definition, frame by frame, with the distance rounded as dx * dx + dy * dy in float64."""
    (ls, lh), (rs, rh) = torso_indices(POSE25)
    hits = np.zeros((gt.shape[1], len(alphas)), np.int64)
    for f in range(gt.shape[0]):
        g, v = gt[f].astype(np.float64), vis[f]
        if norm == "torso":
            if not (v[ls] and v[lh] and v[rs] and v[rh]):
                continue
            L = (math.sqrt((g[ls] - g[lh]) @ (g[ls] - g[lh])) + math.sqrt((g[rs] - g[rh]) @ (g[rs] - g[rh]))) / 2
        elif norm == "bbox":
            if not v.any():
                continue
            L = float((g[v].max(0) - g[v].min(0)).max())
        else:
            L = norm
        if L <= 0:
            continue
        for k in np.flatnonzero(v):
            dx, dy = np.float64(pred[f, k, 0]) - g[k, 0], np.float64(pred[f, k, 1]) - g[k, 1]
            hits[k] += [dx * dx + dy * dy <= (a * L) * (a * L) for a in alphas]
    return hits


def check_pck(backend, dev, quick=False):
    g = np.random.default_rng(2)
    N = 4 if _interpreted(backend, dev) else 12
    maps = g.random((N, 25, 56, 56)).astype(np.float32)
    gt = (g.random((N, 25, 2)) * 55).astype(np.float32)
    vis = g.random((N, 25)) > 0.2
    vis[2] = False
    # a distance exactly on the threshold, misjudged by a fused multiply-add (tests/test_pck.py)
    maps[0, 0] = 0.0
    maps[0, 0, 11, 6] = 1.0
    gt[0, 0] = (0.19468899, 2.624271)
    vis[0, 0] = True
    pred = _np_argmax(maps)
    wrong = 0
    for norm, alphas in (("torso", (0.05, 0.1, 0.2)), ("bbox", (0.2,)), (10.190901510826777, (0.1, 1.0))):
        r = ops.pck_from_heatmaps(torch.from_numpy(maps).to(dev), torch.from_numpy(gt).to(dev),
                                  torch.from_numpy(vis).to(dev), alphas=alphas, norm=norm, backend=backend).cpu()
        wrong += int(np.abs(r.hits.numpy() - _np_pck(pred, gt, vis, alphas, norm)).sum())
    return wrong, wrong == 0, "hit counts differing from a numpy loop (3 norms)"


CHECKS = {"render": check_render, "noise": check_noise, "argmax": check_argmax, "pck": check_pck}


def run(quick: bool = False) -> list:
    rows = []
    for backend, dev in _targets():
        for name, check in CHECKS.items():
            t0 = time.perf_counter()
            try:
                err, ok, what = check(backend, dev, quick=quick)
            except Exception as e:  # a check that crashes is a failed check, reported with the others
                err, ok, what = float("nan"), False, f"{type(e).__name__}: {e}"
            rows.append({"backend": backend, "device": dev, "check": name, "max_error": err, "ok": bool(ok),
                         "measures": what, "seconds": round(time.perf_counter() - t0, 2)})
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m posedenoise.selfcheck", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 2)[2])
    ap.add_argument("--json", help="also write the rows to this file")
    ap.add_argument("--quick", action="store_true", help="the noise check draws one (seed, epoch, k), not four")
    args = ap.parse_args(argv)
    info = {k: v for k, v in ops.available_backends().items() if k != "default"}
    print(f"torch {torch.__version__}; CUDA: {torch.cuda.get_device_name() if torch.cuda.is_available() else 'none'}")
    for b, why in info["reasons"].items():
        print(f"  {b:7s} {'yes' if info['available'][b] else 'no ':3s}  {why}")
    rows = run(quick=args.quick)
    print("\n| backend | device | check | max error | verdict | what is measured |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['backend']} | {r['device']} | {r['check']} | {r['max_error']:.3g} | "
              f"{'PASS' if r['ok'] else 'FAIL'} | {r['measures']} |")
    failed = [r for r in rows if not r["ok"]]
    print(f"\n{len(rows) - len(failed)} of {len(rows)} checks passed" + (": every backend here computes what the "
          "reference defines." if not failed else "; FAILED: " + ", ".join(f"{r['backend']}/{r['device']}/"
                                                                           f"{r['check']}" for r in failed)))
    if args.json:
        files.write_json(args.json, {"rows": rows, "backends": info, "torch": torch.__version__, "quick": args.quick})
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
