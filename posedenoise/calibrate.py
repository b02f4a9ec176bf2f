"""Measure a real pose estimator's noise in the simulation's units: python -m posedenoise.calibrate PAIRED

Reads a paired cache (the estimator's output next to ground truth, posedenoise.data.paired), prints a Markdown
table and writes noise.json, whose "shift", "sigma" and "drift" laws `train --noise` draws from.

Definitions (all in pixels of the 56 grid; SPEC section 4 is the law being fitted):
- counted: keypoints visible in the ground truth. missed: counted, confidence <= --min-confidence.
  detected: counted and not missed. Shift per axis: rint(est - gt), the integer offset the simulation
  adds to integer coordinates.
- swap: a detected left/right keypoint (POSE25 names) whose estimate is nearer its counterpart's gt than its
  own by more than max(3 px, half the two gts' distance): counterparts closer than that cannot be told apart,
  and jitter comparable to the twins' distance is partly taken for swaps (cutting the tail of the k fit).
- outlier: a detected keypoint, not a swap, with |shift| > max(10 px, 6 * robust sd) on an axis, where
  robust sd = 1.4826 * MAD of all detected shifts. inliers: detected, neither swap nor outlier.
- k: maximum likelihood over inliers of shift = round(N(0, (3k)^2)), clipped to the grid: an estimate on a
  border pixel (0 or 55) only says the shift went at least that far, so it counts with its tail probability.
  Goodness of fit: total-variation distance between the observed histogram and the one the fitted law
  predicts for the same gts (clipping included, restricted to the outlier bound), next to the distance
  that sampling alone gives a perfect fit, and a chi-square test (bins expecting < 5 pooled). Both assume
  independent shifts: drifting offsets (a high autocorrelation) make the fit look worse than it is.
- shares: missed of counted; swaps and outliers of detected.
- "shift" in noise.json: the pooled x and y histogram of every detected keypoint (outliers and swaps
  included: the simulation should see what the estimator does; misses excluded: they are not shifts).
- blur: per detected map, sigma of the renderer's Gaussian (posedenoise.reference.gaussian_profiles: the
  same family, so the same sigma as sigma_in) centred at the map's argmax, amplitude free, fitted by least
  squares on sigma in [0.5, 6] (grid of 0.25, then 0.05, then a parabola). Histogram bins of 0.25 over
  [0.5, 6] (a fit at an end of the range counts in the end bin); "sigma" in noise.json: the
  share of maps whose sigma is nearest each choice.
- lag-1 autocorrelation: over pairs of consecutive frames of one video where both shifts are inliers and
  not censored at the border (misses, swaps, outliers, border estimates break pairs), about the pooled mean
  (not per series: that biases short videos down). Pairs near a border are truncated: slightly low there.
  Near 0: independent per-frame jitter, as the simulation draws it without drift; near 1: slowly drifting
  offsets.
- drift: drift is told from jitter by the autocorrelation at lags h = 1..4 (DRIFT_LAGS; pairs of frames h
  apart in one video, both inliers and uncensored, as at lag 1; pooled over videos, keypoints and axes),
  fitted by least squares with acf(h) = share * rho**h, the simulation's drift law (posedenoise.noise.Drift:
  a share `share` of the shift variance persists from frame to frame with rho, the rest is independent
  jitter), share in [0, 1], rho in [0, 0.99]. No drift (null) with fewer than DRIFT_MIN_PAIRS pairs at a lag
  or acf(1) <= DRIFT_MIN_ACF1. "drift" in noise.json: {"rho", "share", "lags": acf(1..4)}, which train
  --noise draws with --drift measured (not by default: on the stand-in estimator it did not help).

Refused as nonsense (one line naming the file, exit 2, nothing written; check_estimates, check_fits), over
the detected keypoints: estimates that span under 2 px on an axis (e.g. keypoints in [0, 1]) where the
ground truth spans at least 10 px, or the reverse (wrong units); a median error (the distance |est - gt|)
over a quarter of the grid (14 px); a k at a bound of its optimiser (sd = 3k in [0.05, 168] px): estimates
censored at the border so that the likelihood grows without end, or every inlier shift 0 (the estimates a
copy of the ground truth).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from . import cli
if __name__ == "__main__":   # a command, not an import: set how OpenMP waits before torch loads OpenMP
    cli.openmp_wait_policy()

import numpy as np
from scipy import optimize, special, stats

from . import files
from .layout import POSE25

PROG = "posedenoise.calibrate"
SIZE = 56
SIGMA_CHOICES = (1.0, 1.5, 2.0, 2.5, 3.0)
SIGMA_GRID = np.round(np.arange(0.5, 6.0 + 1e-9, 0.05), 2)    # fine grid; every 5th point is the coarse one
SIGMA_EDGES = np.round(np.arange(0.5, 6.0 + 1e-9, 0.25), 2)
OUTLIER_MIN_PX, OUTLIER_SDS, SWAP_MIN_PX = 10.0, 6.0, 3.0
# Nonsense (check_estimates, check_fits): an axis spanning < TINY_SPAN_PX against >= WIDE_SPAN_PX; a median error over a
# quarter of the grid; a fitted sd within a relative BOUND_TOL of a bound of fit_k's search, (0.05, 3 * size).
TINY_SPAN_PX, WIDE_SPAN_PX, MAX_MEDIAN_ERROR_PX, BOUND_TOL = 2.0, 10.0, SIZE / 4, 1e-3
# Drift (fit_drift): the lags fitted, the pairs each needs (the autocorrelation's sampling sd is about
# 1 / sqrt(pairs): ~0.045 at 500), the lag-1 autocorrelation below which there is none, the largest rho fitted.
DRIFT_LAGS, DRIFT_MIN_PAIRS, DRIFT_MIN_ACF1, DRIFT_MAX_RHO = (1, 2, 3, 4), 500, 0.05, 0.99


def lr_pairs(layout=POSE25):
    """(i, j): index arrays of every left keypoint and its right counterpart, both ways round."""
    left = [n for n in layout if n.startswith("left_") and "right_" + n[5:] in layout]
    i = [layout.index(n) for n in left]
    j = [layout.index("right_" + n[5:]) for n in left]
    return np.array(i + j, dtype=np.int64), np.array(j + i, dtype=np.int64)


def classify(cache, min_confidence=0.0, size=SIZE):
    """Per keypoint masks (F, K) and integer shifts (F, K, 2); see the module's definitions."""
    counted = np.asarray(cache.visible, bool)
    detected = counted & (np.asarray(cache.confidence) > min_confidence)
    # est clipped to the grid, as the renderer clips it (prepare --paired does; a cache from before did not)
    gt, est = np.asarray(cache.gt, np.float64), np.clip(np.asarray(cache.est, np.float64), 0, size - 1)
    shift = np.rint(est - gt).astype(np.int64)           # gt is sub-pixel (paired.py); the error is est - gt
    # Border pixels are where the simulation's clip lands: -1 (at 0, shift <= observed), +1 (at 55, >=).
    censored = np.where(np.rint(est) == 0, -1, np.where(np.rint(est) == size - 1, 1, 0)).astype(np.int8)
    i, j = lr_pairs()
    d_own = np.linalg.norm(est[:, i] - gt[:, i], axis=-1)
    d_other = np.linalg.norm(est[:, i] - gt[:, j], axis=-1)
    margin = np.maximum(SWAP_MIN_PX, 0.5 * np.linalg.norm(gt[:, i] - gt[:, j], axis=-1))
    swap = np.zeros_like(counted)
    swap[:, i] = detected[:, i] & counted[:, j] & (d_other + margin < d_own)
    s = shift[detected].ravel()
    mad = np.median(np.abs(s - np.median(s))) if s.size else 0.0
    bound = max(OUTLIER_MIN_PX, OUTLIER_SDS * 1.4826 * mad)
    outlier = detected & ~swap & (np.abs(shift) > bound).any(-1)
    return dict(counted=counted, detected=detected, swap=swap, outlier=outlier,
                inlier=detected & ~swap & ~outlier, shift=shift, censored=censored, bound=bound,
                gt_int=np.clip(np.rint(gt), 0, size - 1).astype(np.int64))


def _shift_probs(s, cens, sd):
    """P(observation) under round(N(0, sd^2)): P(round = s), or the tail beyond s where censored.
    Uses the lower tail (symmetry) so that far shifts keep their precision."""
    a = np.abs(s)
    exact = special.ndtr((0.5 - a) / sd) - special.ndtr((-0.5 - a) / sd)
    tail = special.ndtr((0.5 + np.where(cens < 0, s, -s)) / sd)       # P(round <= s) or P(round >= s)
    return np.where(cens == 0, exact, tail)


def predicted_histogram(g, sd, bound, size=SIZE):
    """Expected counts over shifts -(size-1)..size-1 of observations at gt coordinates g (ints), shift law
    round(N(0, sd^2)) clipped to the grid (tails pile on the border), restricted to |shift| <= bound."""
    v = np.arange(-(size - 1), size)
    lo, hi = -np.arange(size)[:, None], size - 1 - np.arange(size)[:, None]     # per gt value
    cdf = special.ndtr((v + 0.5) / sd)[None, :]
    prev = special.ndtr((v - 0.5) / sd)[None, :]
    pmf = np.where(v == lo, cdf, np.where(v == hi, 1 - prev, np.where((v > lo) & (v < hi), cdf - prev, 0.0)))
    pmf = pmf * (np.abs(v) <= bound)
    pmf /= pmf.sum(1, keepdims=True)
    return np.bincount(g, minlength=size) @ pmf


def fit_k(s, cens, g, bound, size=SIZE):
    """Maximum-likelihood k of shift = round(N(0, (3k)^2)) from integer shifts s, censoring cens (-1/0/+1)
    and the gt coordinates g on that axis; with its log-likelihood and goodness of fit."""
    if s.size == 0:
        return dict(k=None, n=0)
    nll = lambda sd: -np.log(np.maximum(_shift_probs(s, cens, sd), 1e-300)).sum()
    lo, hi = 0.05, 3.0 * size
    sd = float(optimize.minimize_scalar(nll, bounds=(lo, hi), method="bounded", options=dict(xatol=1e-5)).x)
    # At a bound the likelihood still rises beyond it: no estimate (check_plausible refuses it). Every shift 0
    # is the lower one (the likelihood rises as sd -> 0, so flat there that the search stops short of it).
    at_bound = "upper" if sd >= hi * (1 - BOUND_TOL) else "lower" if sd <= lo * (1 + BOUND_TOL) or not s.any() \
        else None
    observed = np.bincount(s + size - 1, minlength=2 * size - 1)
    expected = predicted_histogram(g, sd, bound, size)
    tv = 0.5 * np.abs(observed - expected).sum() / s.size
    # The TV a perfect fit shows from sampling alone (independent shifts): draws of the fitted law's histogram.
    draws = np.random.default_rng(0).multinomial(s.size, expected / expected.sum(), size=20)
    tv_sampling = float(np.mean(0.5 * np.abs(draws - expected).sum(1) / s.size))
    big = expected >= 5                              # chi-square: bins expecting < 5 pooled into one
    obs_b = np.append(observed[big], observed[~big].sum())
    exp_b = np.append(expected[big], expected[~big].sum())
    keep = exp_b > 0
    chi2 = float(((obs_b[keep] - exp_b[keep]) ** 2 / exp_b[keep]).sum())
    dof = max(int(keep.sum()) - 2, 1)                # one fitted parameter
    return dict(k=sd / 3.0, sd=sd, loglik=float(-nll(sd)), n=int(s.size), censored=int((cens != 0).sum()),
                tv_distance=float(tv), tv_sampling=tv_sampling, chi2=chi2, chi2_dof=dof,
                chi2_p=float(stats.chi2.sf(chi2, dof)), at_bound=at_bound)


def shift_fits(c, size=SIZE):
    """k per axis and pooled, over inliers."""
    m = c["inlier"]
    axes = {a: (c["shift"][m][:, n], c["censored"][m][:, n], c["gt_int"][m][:, n]) for n, a in enumerate("xy")}
    axes["pooled"] = tuple(np.concatenate([axes["x"][i], axes["y"][i]]) for i in range(3))
    return {a: fit_k(*v, c["bound"], size) for a, v in axes.items()}


def histogram(values):
    """{"values": min..max, "probs"} of integer values."""
    if values.size == 0:
        return {"values": [], "probs": []}
    lo = int(values.min())
    counts = np.bincount(values - lo)
    return {"values": list(range(lo, lo + counts.size)), "probs": (counts / counts.sum()).tolist()}


def lag1_autocorrelation(shift, ok, starts, lengths):
    """Lag-1 autocorrelation of shifts (F, K, 2) over consecutive frames of one video where both are ok
    ((F, K) or per axis (F, K, 2)): {"x", "y", "pooled", "per_keypoint" (pooled axes), "pairs" (per axis)};
    None where there are no pairs."""
    return autocorrelation(shift, ok, starts, lengths, lag=1)


def autocorrelation(shift, ok, starts, lengths, lag=1):
    """lag1_autocorrelation's statistics at `lag`: over pairs of frames `lag` apart in one video."""
    F, h = shift.shape[0], lag
    vid = np.full(F, -1)
    lengths = np.asarray(lengths, np.int64)
    first = np.asarray(starts, np.int64) - (np.cumsum(lengths) - lengths)     # frame index - running position
    frames = np.repeat(first, lengths) + np.arange(lengths.sum())
    vid[frames] = np.repeat(np.arange(lengths.size), lengths)
    ok = np.broadcast_to(ok[..., None] if ok.ndim == 2 else ok, shift.shape)
    pair = ((vid[:-h] == vid[h:]) & (vid[:-h] >= 0))[:, None, None] & ok[:-h] & ok[h:]   # (F-h, K, 2)
    w = pair.astype(np.float64)
    a, b = shift[:-h].astype(np.float64), shift[h:].astype(np.float64)

    def corr(axis):
        n = w.sum()
        mean = ((a + b) * w).sum() / (2 * n) if n else 0.0    # one mean: per-series means bias short videos
        da, db = (a - mean) * w, (b - mean) * w
        num, den = (da * db).sum(axis), np.sqrt((da * da).sum(axis) * (db * db).sum(axis))
        with np.errstate(invalid="ignore", divide="ignore"):
            r = num / den
        return r
    r_axis = corr((0, 1))
    r_kp = corr((0, 2))
    val = lambda r: None if not np.isfinite(r) else float(r)
    return {"x": val(r_axis[0]), "y": val(r_axis[1]), "pooled": val(corr(None)),
            "per_keypoint": {n: val(r) for n, r in zip(POSE25, r_kp)}, "pairs": int(pair.sum())}


def fit_drift(acf, pairs, lags=DRIFT_LAGS):
    """The drift law's (rho, share) from pooled autocorrelations acf[i] at lags[i] (with `pairs` pairs each):
    least squares of acf(h) = share * rho**h, share in [0, 1], rho in [0, DRIFT_MAX_RHO]. For a fixed rho the
    best share is the clipped linear fit (the loss is a parabola in share); rho: the best of a grid of 0.001,
    refined by a bounded search around it. None (no drift) with fewer than DRIFT_MIN_PAIRS pairs at a lag, a
    lag without an autocorrelation, or acf(1) <= DRIFT_MIN_ACF1. -> {"rho", "share", "rms": the fit's
    residual}."""
    if any(a is None or n < DRIFT_MIN_PAIRS for a, n in zip(acf, pairs)) or acf[0] <= DRIFT_MIN_ACF1:
        return None
    h, a = np.asarray(lags, np.float64), np.asarray(acf, np.float64)

    def share(rho):
        w = rho ** h
        return float(np.clip(a @ w / (w @ w), 0.0, 1.0)) if w @ w > 0 else 0.0

    def loss(rho):
        return float(((a - share(rho) * rho ** h) ** 2).sum())

    grid = np.linspace(0.0, DRIFT_MAX_RHO, int(round(DRIFT_MAX_RHO * 1000)) + 1)
    rho = float(grid[np.argmin([loss(r) for r in grid])])
    near = optimize.minimize_scalar(loss, bounds=(max(rho - 1e-3, 0.0), min(rho + 1e-3, DRIFT_MAX_RHO)),
                                    method="bounded", options=dict(xatol=1e-7))
    rho = float(near.x) if loss(near.x) < loss(rho) else rho
    return {"rho": rho, "share": share(rho), "rms": float(np.sqrt(loss(rho) / h.size))}


def drift_report(shift, ok, starts, lengths, lags=DRIFT_LAGS):
    """The pooled autocorrelation at each lag and the drift fitted to it: ({"lags", "acf", "pairs", "fit_rms":
    the fit's residual or None, "lag1": lag1_autocorrelation's statistics, computed on the way}, noise.json's
    "drift" {"rho", "share", "lags": acf} or None)."""
    stats = [autocorrelation(shift, ok, starts, lengths, lag=h) for h in lags]
    acf, pairs = [s["pooled"] for s in stats], [s["pairs"] for s in stats]
    fit = fit_drift(acf, pairs, lags)
    drift = None if fit is None else {"rho": fit["rho"], "share": fit["share"], "lags": acf}
    return ({"lags": list(lags), "acf": acf, "pairs": pairs, "fit_rms": None if fit is None else fit["rms"],
             "lag1": stats[list(lags).index(1)] if 1 in lags else None}, drift)


def fit_sigma(maps):
    """Per map sigma (N,) of the renderer's Gaussian centred at the argmax, amplitude free, least squares;
    NaN for maps without a positive maximum. maps (N, 56, 56)."""
    from .reference import gaussian_profiles     # torch: only when there are heatmaps to fit
    maps = np.asarray(maps, np.float32)
    N, H, W = maps.shape
    table = gaussian_profiles(tuple(float(np.float32(s)) for s in SIGMA_GRID), H).numpy()   # [s, centre, x]
    flat = maps.reshape(N, -1).argmax(1)
    cx, cy = flat % W, flat // W

    def explained(idx):          # max over amplitude of the energy a template explains: <M,T>^2 / <T,T>
        gx, gy = table[idx, cx[:, None]], table[idx, cy[:, None]]          # (N, S, W), (N, S, H)
        ip = np.einsum("nys,nsy->ns", maps @ gx.transpose(0, 2, 1), gy)
        return np.where(ip > 0, ip * ip, 0.0) / ((gx * gx).sum(-1) * (gy * gy).sum(-1))
    coarse = np.arange(0, SIGMA_GRID.size, 5)[None, :].repeat(N, 0)
    best = coarse[np.arange(N), explained(coarse).argmax(1)]
    fine = np.clip(best[:, None] + np.arange(-5, 6), 0, SIGMA_GRID.size - 1)
    f = explained(fine)
    b = f.argmax(1)
    rows = np.arange(N)
    at = fine[rows, b]
    left, right = f[rows, np.maximum(b - 1, 0)], f[rows, np.minimum(b + 1, 10)]
    curv = left - 2 * f[rows, b] + right
    inner = (b > 0) & (b < 10) & (curv < 0)          # a parabola through the peak and its neighbours
    step = np.where(inner, 0.5 * (left - right) / np.where(inner, curv, -1.0), 0.0)
    sigma = SIGMA_GRID[at] + 0.05 * np.clip(step, -0.5, 0.5)
    return np.where(maps.reshape(N, -1).max(1) > 0, sigma, np.nan)


def blur(cache, use, choices=SIGMA_CHOICES, chunk=2048):
    """Sigma of every map where use (F, K), in chunks of frames: (sigmas, histogram, probs over choices)."""
    frames = np.nonzero(use.any(1))[0]
    per = max(1, chunk // use.shape[1])                  # bounds the float32 copies and the template stacks
    parts = [fit_sigma(cache.heatmaps[f][use[f]]) for f in (frames[i:i + per] for i in range(0, frames.size, per))]
    sig = np.concatenate(parts) if parts else np.zeros(0)
    sig = sig[np.isfinite(sig)]
    counts = np.histogram(np.clip(sig, SIGMA_EDGES[0], SIGMA_EDGES[-1]), SIGMA_EDGES)[0]
    nearest = np.abs(sig[:, None] - np.asarray(choices)[None, :]).argmin(1)    # ties: the smaller choice
    probs = np.bincount(nearest, minlength=len(choices)) / max(sig.size, 1)
    return sig, {"edges": SIGMA_EDGES.tolist(), "counts": counts.tolist()}, probs


def check_estimates(cache, c, source=None, size=SIZE) -> None:
    """InputError, naming `source`, where the detected estimates (classify's) cannot be this ground truth's
    estimator output in its pixels: wrong units, or a median error over a quarter of the grid."""
    where, m = source or "paired data", c["detected"]
    if not m.any():
        return
    gt, est = np.asarray(cache.gt, np.float64)[m], np.asarray(cache.est, np.float64)[m]     # (N, 2)
    span = lambda a: a.max(0) - a.min(0)
    for n, axis in enumerate("xy"):
        e, g = span(est)[n], span(gt)[n]
        if min(e, g) < TINY_SPAN_PX and max(e, g) >= WIDE_SPAN_PX:
            tiny, wide = ("the estimated keypoints", "the ground truth's") if e < g else \
                ("the ground truth's keypoints", "the estimated ones")
            raise cli.InputError(
                f"{where}: {tiny} span {min(e, g):.2f} px in {axis} where {wide} span {max(e, g):.1f} px (of the "
                f"{size} x {size} grid): wrong units? (e.g. keypoints in [0, 1] against ground truth in pixels; "
                "both must be pixels of one frame, see posedenoise/data/paired.py)")
    error = float(np.median(np.linalg.norm(est - gt, axis=-1)))
    if error > MAX_MEDIAN_ERROR_PX * size / SIZE:
        raise cli.InputError(
            f"{where}: median error of the estimates {error:.1f} px, over a quarter of the {size} x {size} grid "
            f"({MAX_MEDIAN_ERROR_PX * size / SIZE:g} px): not estimates of this ground truth, or in another frame "
            "or units (gt and the estimator's output must be pixels of one frame)")


def check_fits(fits, source=None) -> None:
    """InputError, naming `source`, where a fitted k (shift_fits) sits at a bound of its optimiser."""
    where = source or "paired data"
    for axis in ("x", "y", "pooled"):
        f = fits[axis]
        if f.get("at_bound") == "upper":
            raise cli.InputError(
                f"{where}: k ({axis}) = {f['k']:.3g} sits at its optimiser's upper bound: the likelihood grows "
                f"without end ({f['censored']} of {f['n']} inlier shifts are censored at the grid's border), so "
                "there is no estimate; are the estimates clipped to the border of another frame?")
        if f.get("at_bound") == "lower":
            raise cli.InputError(
                f"{where}: k ({axis}) sits at its optimiser's lower bound: every one of the {f['n']} inlier shifts "
                "is 0 (estimate - ground truth rounds to 0); is the estimator's output a copy of the ground truth?")


def calibrate(cache, min_confidence=0.0, sigma_choices=SIGMA_CHOICES, source=None):
    """Every statistic of noise.json from a PairedCache; InputError for nonsense (check_estimates, check_fits)."""
    c = classify(cache, min_confidence)
    check_estimates(cache, c, source)          # nonsense is refused: the estimates, then the fit
    fits = shift_fits(c)
    check_fits(fits, source)
    n_counted, n_detected = int(c["counted"].sum()), int(c["detected"].sum())
    shares = {"missed": 1 - n_detected / n_counted if n_counted else None,
              "outliers": float(c["outlier"].sum() / n_detected) if n_detected else None,
              "swaps": float(c["swap"].sum() / n_detected) if n_detected else None}
    det = c["shift"][c["detected"]]
    # A censored shift is only a bound (and a truncated one is less correlated): it breaks pairs.
    paired = c["inlier"][..., None] & (c["censored"] == 0)
    acf, drift = drift_report(c["shift"], paired, cache.video_starts, cache.video_lengths)
    report = {"format": "posedenoise-noise/1", "shift": histogram(det.ravel()), "sigma": None, "drift": drift,
              "k": fits["pooled"]["k"], "k_fit": {**fits, "outlier_bound_px": c["bound"]}, "shares": shares,
              "shift_histogram": {"x": histogram(det[:, 0]), "y": histogram(det[:, 1])},
              "autocorrelation_lag1": acf.pop("lag1"),       # computed once, with the other lags
              "autocorrelation": acf,
              "sigma_histogram": None, "keypoints_counted": n_counted, "keypoints_detected": n_detected,
              "source": source}
    if cache.heatmaps is not None and n_detected:
        sig, hist, probs = blur(cache, c["detected"], sigma_choices)
        if not sig.size:                      # every detected map empty: nothing measured, as without heatmaps
            return report
        report["sigma"] = {"values": [float(s) for s in sigma_choices], "probs": probs.tolist()}
        report["sigma_histogram"] = hist
        report["sigma_fitted"] = {"maps": int(sig.size), "median": float(np.median(sig)) if sig.size else None}
    return report


def fmt(v, spec=".3f"):
    return "-" if v is None else format(v, spec)


def table(r) -> str:
    """The report as Markdown."""
    f, ac = r["k_fit"], r["autocorrelation_lag1"]
    row = lambda name, key, spec=".3f", note="": (f"| {name} | " + " | ".join(fmt(f[a].get(key), spec) for a in
                                                  ("x", "y", "pooled")) + f" | {note} |")
    out = [f"## Estimator noise of {r['source']} ({r['keypoints_counted']} visible keypoints)", "",
           "| quantity | x | y | pooled | meaning |", "|---|---|---|---|---|",
           row("k (shift = round(N(0, (3k)^2)))", "k", note="maximum likelihood over inliers, border clip censored"),
           row("shift sd = 3k (px)", "sd"), row("log-likelihood", "loglik", ".1f"),
           row("inliers fitted", "n", "d"), row("of them censored at the border", "censored", "d"),
           row("TV distance, fit vs observed", "tv_distance",
               note="0: the fitted law predicts the histogram exactly; compare with the next row"),
           row("TV of a perfect fit (sampling)", "tv_sampling", note="what independent draws of the fit give"),
           row("chi-square p-value", "chi2_p", ".3g", "assumes independent shifts: drift makes it small"),
           f"| lag-1 autocorrelation | {fmt(ac['x'])} | {fmt(ac['y'])} | {fmt(ac['pooled'])} | near 0: independent "
           "per-frame jitter; near 1: slowly drifting offsets (the drift fitted below) |", "", *drift_table(r), "",
           "| share | value | of |", "|---|---|---|",
           f"| missed | {fmt(r['shares']['missed'], '.2%')} | visible keypoints (confidence <= minimum) |",
           f"| swaps | {fmt(r['shares']['swaps'], '.2%')} | detected keypoints (nearer the other side's gt) |",
           f"| outliers | {fmt(r['shares']['outliers'], '.2%')} | detected keypoints "
           f"(|shift| > {f['outlier_bound_px']:.1f} px) |", "", "| shift (px) | x | y | pooled |", "|---|---|---|---|"]
    h = [r["shift_histogram"]["x"], r["shift_histogram"]["y"], r["shift"]]
    share = lambda hh, sel: sum(p for v, p in zip(hh["values"], hh["probs"]) if sel(v))
    for name, sel in [("< -8", lambda v: v < -8), *[(str(s), (lambda s: lambda v: v == s)(s)) for s in range(-8, 9)],
                      ("> 8", lambda v: v > 8)]:
        out.append(f"| {name} | " + " | ".join(f"{share(hh, sel):.2%}" for hh in h) + " |")
    if r["sigma"] is not None:
        out += ["", f"| sigma_in (nearest choice) | share of {r['sigma_fitted']['maps']} maps |", "|---|---|"]
        out += [f"| {v:g} | {p:.2%} |" for v, p in zip(r["sigma"]["values"], r["sigma"]["probs"])]
    else:
        out += ["", "no heatmaps: sigma is not measured (null in the JSON)"]
    return "\n".join(out)


def drift_table(r) -> list:
    """The autocorrelation at lags 1..4 and the drift fitted to it, as Markdown lines."""
    a, d = r["autocorrelation"], r["drift"]
    out = ["| lag h (frames) | " + " | ".join(str(h) for h in a["lags"]) + " |", "|---" * (len(a["lags"]) + 1) + "|",
           "| autocorrelation (pooled) | " + " | ".join(fmt(v) for v in a["acf"]) + " |",
           "| pairs | " + " | ".join(str(n) for n in a["pairs"]) + " |"]
    if d is None:
        why = (f"fewer than {DRIFT_MIN_PAIRS} pairs at a lag" if any(n < DRIFT_MIN_PAIRS for n in a["pairs"]) or
               None in a["acf"] else f"lag-1 autocorrelation <= {DRIFT_MIN_ACF1}")
        return out + ["", f"drift: none ({why}): the shifts are drawn independently per frame"]
    return out + ["| fit share * rho**h | " + " | ".join(fmt(d["share"] * d["rho"] ** h) for h in a["lags"]) + " |",
                  "", f"drift: rho = {d['rho']:.3f}, share = {d['share']:.3f} (least squares over the lags, rms "
                      f"{a['fit_rms']:.3f}): train --noise NOISE_JSON --drift measured draws it (posedenoise.noise.Drift)"]


DESCRIPTION = (
    "Measure a real pose estimator's noise in the simulation's units, from a paired cache (ground truth next to "
    "the estimator's output; prepare --paired makes one). Prints a Markdown table: k of the simulation's shift "
    "law round(N(0, (3k)^2)) by maximum likelihood (estimates clipped at the border count as censored; "
    "outliers and left/right swaps left out), its goodness of fit, the shares of misses, swaps and outliers, "
    "the shift histogram, the lag-1 autocorrelation of the shifts (near 0: per-frame jitter; near 1: drifting "
    "offsets), the autocorrelation at lags 1-4 with the drift fitted to it (share * rho**h) and, with heatmaps, the "
    "blur sigma fitted per map. Writes --out for train --noise: 'shift', the per-axis integer shift law of every "
    "detected keypoint (outliers and swaps included, misses not), 'sigma', the blur as probabilities over "
    "--sigma-choices (null without heatmaps), and 'drift' (rho, share; null when there is none). Every "
    "definition: pydoc posedenoise.calibrate.")


@dataclass
class CalibrateConfig:
    paired: str = field(default="", metadata={"help": "a paired cache (save_paired's file): ground truth next to "
                                                      "a real estimator's keypoints, confidences and heatmaps"})
    out: str = field(default="noise.json", metadata={"help": "where to write the noise laws (train --noise reads it)"})
    min_confidence: float = field(default=0.0, metadata={
        "help": "an estimated keypoint counts as output when its confidence is above this; others are misses"})
    sigma_choices: str = field(default="1,1.5,2,2.5,3", metadata={
        "help": "comma-separated sigma_in values to express the measured blur as probabilities over"})

    def __post_init__(self):
        try:
            self.sigmas = tuple(float(s) for s in self.sigma_choices.split(","))
        except ValueError:
            raise cli.InputError(f"--sigma-choices: expected comma-separated numbers, got "
                                 f"{self.sigma_choices!r}") from None
        if len(set(self.sigmas)) != len(self.sigmas) or not all(0.05 <= s <= SIZE for s in self.sigmas):
            raise cli.InputError(f"--sigma-choices: expected distinct values in [0.05, {SIZE}], got "
                                 f"{self.sigma_choices!r}")


@cli.command(PROG)
def main(argv=None):
    cfg = cli.parse(CalibrateConfig, argv, PROG, DESCRIPTION, positional=("paired",))
    cli.check_output(cfg.out, "--out")
    from .data.paired import load_paired     # written alongside; imported here so the module loads without it
    cache = load_paired(cfg.paired)
    counted = np.asarray(cache.visible, bool)
    if not counted.any():
        raise cli.InputError(f"{cfg.paired}: no visible ground-truth keypoint to measure against")
    if not (counted & (np.asarray(cache.confidence) > cfg.min_confidence)).any():
        raise cli.InputError(f"--min-confidence {cfg.min_confidence}: the estimator output no visible keypoint "
                             f"of {cfg.paired} with a confidence above it")
    report = calibrate(cache, cfg.min_confidence, cfg.sigmas, source=cfg.paired)
    print(table(report))
    files.write_json(cfg.out, report)
    print(f"\nwrote {cfg.out}")


if __name__ == "__main__":
    main()
