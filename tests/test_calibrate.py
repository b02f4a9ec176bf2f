"""calibrate measures a synthetic "estimator" whose noise is known and made by a different process than the
simulation's: per video a slowly drifting offset (stationary AR(1)) plus per-frame jitter, rounded, clipped to
the grid; heatmaps drawn with plain numpy exp() Gaussians of known per-map sigma; planted misses, left/right
swaps and far outliers. The recovered numbers are compared with the ones the generator used.
"""
import contextlib
import io
import json

import numpy as np
import pytest

from posedenoise import calibrate
from posedenoise.data.paired import PairedCache
from posedenoise.layout import POSE25

K, S = 25, 56
K_TRUE, AR, DRIFT_SHARE = 1.5, 0.95, 0.7           # shift sd 3k = 4.5 px, 70% of its variance a drifting offset
P_MISS, P_SWAP, P_OUT, P_INVISIBLE = 0.05, 0.02, 0.01, 0.05
SIGMA_LEVELS, SIGMA_P = np.array([1.0, 1.5, 2.0, 2.5, 3.0]), np.array([0.35, 0.25, 0.2, 0.12, 0.08])
LEFT = [i for i, n in enumerate(POSE25) if n.startswith("left_")]
RIGHT = [POSE25.index("right_" + POSE25[i][5:]) for i in LEFT]


def world(seed=0, videos=24, length=80, k=K_TRUE, heatmaps=False, p_swap=P_SWAP, p_out=P_OUT, edge_frames=0.15):
    """(PairedCache, truth). Keypoints are drawn frame by frame: in most frames inside [10, 45], in a share
    `edge_frames` anywhere on the grid, so that their estimates are clipped at the border. A right keypoint sits
    22-25 px right of its left twin at about its height (as on a body), so that a swap is a visible error."""
    rng = np.random.default_rng(seed)
    F, P = videos * length, len(LEFT)
    edge = (rng.random(F) < edge_frames)[:, None]
    gt = np.where(edge[..., None], rng.integers(0, S, (F, K, 2)), rng.integers(10, 46, (F, K, 2))).astype(np.float64)
    gt[:, LEFT, 0] = np.where(edge, rng.integers(0, 31, (F, P)), rng.integers(10, 21, (F, P)))
    gt[:, RIGHT, 0] = gt[:, LEFT, 0] + rng.integers(22, 26, (F, P))
    gt[:, RIGHT, 1] = np.clip(gt[:, LEFT, 1] + rng.integers(-3, 4, (F, P)), 0, S - 1)
    # Shifts: stationary AR(1) offset per video, keypoint and axis, plus independent jitter; marginal N(0, (3k)^2).
    var = (3 * k) ** 2
    off = np.empty((videos, length, K, 2))
    off[:, 0] = rng.normal(0, np.sqrt(DRIFT_SHARE * var), (videos, K, 2))
    for t in range(1, length):
        off[:, t] = AR * off[:, t - 1] + rng.normal(0, np.sqrt(DRIFT_SHARE * var * (1 - AR ** 2)), (videos, K, 2))
    shift = np.rint(off.reshape(F, K, 2) + rng.normal(0, np.sqrt((1 - DRIFT_SHARE) * var), (F, K, 2)))
    est = np.clip(gt + shift, 0, S - 1)
    visible = rng.random((F, K)) >= P_INVISIBLE
    missed = visible & (rng.random((F, K)) < P_MISS)
    conf = np.where(missed, 0.0, rng.uniform(0.3, 1.0, (F, K)))
    detected = visible & ~missed
    # Swaps: the estimator locks onto the other side's joint.
    swap = np.zeros((F, K), bool)
    swap[:, LEFT + RIGHT] = detected[:, LEFT + RIGHT] & detected[:, RIGHT + LEFT] & \
        (rng.random((F, 2 * len(LEFT))) < p_swap)
    est[:, LEFT + RIGHT] = np.where(swap[:, LEFT + RIGHT, None], np.clip(
        gt[:, RIGHT + LEFT] + np.rint(rng.normal(0, 1, (F, 2 * len(LEFT), 2))), 0, S - 1), est[:, LEFT + RIGHT])
    # Outliers: 30-40 px away in y (where the grid has room), far beyond the ~27 px bound calibrate derives.
    room = (gt[..., 1] <= 25) | (gt[..., 1] >= 30)
    out = detected & ~swap & room & (rng.random((F, K)) < p_out / room.mean())
    jump = rng.integers(30, 41, (F, K)) * np.where(gt[..., 1] <= 25, 1, -1)
    est[..., 1] = np.where(out, np.clip(gt[..., 1] + jump, 0, S - 1), est[..., 1])
    est[~visible] = rng.integers(0, S, (int((~visible).sum()), 2))          # whatever: not counted
    sigma = SIGMA_LEVELS[rng.choice(5, (F, K), p=SIGMA_P)] + rng.uniform(-0.2, 0.2, (F, K))
    hm = None
    if heatmaps:   # independent of the project's renderer: sampled continuous Gaussians, amplitude = confidence
        x = np.arange(S)
        gx = np.exp(-(x - est[..., 0, None]) ** 2 / (2 * sigma[..., None] ** 2))           # (F, K, S)
        gy = np.exp(-(x - est[..., 1, None]) ** 2 / (2 * sigma[..., None] ** 2))
        hm = conf[..., None, None] * gy[..., :, None] * gx[..., None, :] + rng.normal(0, 0.003, (F, K, S, S))
        hm = hm.astype(np.float16)
    cache = PairedCache(gt=gt.astype(np.float32), visible=visible, est=est.astype(np.float32),
                        confidence=conf.astype(np.float32), heatmaps=hm,
                        video_starts=np.arange(videos, dtype=np.int64) * length,
                        video_lengths=np.full(videos, length, np.int64), names=[f"v{i}" for i in range(videos)])
    truth = dict(missed=missed.sum() / visible.sum(), swaps=swap.sum() / detected.sum(),
                 outliers=out.sum() / detected.sum(), sigma=sigma, detected=detected,
                 # rounding adds variance 1/12; the drift carries DRIFT_SHARE of the variance at lag 1
                 lag1=AR * DRIFT_SHARE * var / (var + 1 / 12))
    return cache, truth


@pytest.fixture(scope="module")
def measured():
    cache, truth = world()
    return calibrate.calibrate(cache), truth


def test_k_is_recovered_with_the_border_clip_censored(measured):
    """Within 5% (12 seeds: -2.3% to +1.8% per axis)."""
    r, _ = measured
    for axis in ("x", "y", "pooled"):
        assert abs(r["k_fit"][axis]["k"] - K_TRUE) / K_TRUE < 0.05, (axis, r["k_fit"][axis])
    assert r["k_fit"]["pooled"]["censored"] > 0.01 * r["k_fit"]["pooled"]["n"]   # the clip was exercised
    assert r["k_fit"]["pooled"]["tv_distance"] < 0.02                             # and the law fits


def test_ignoring_the_clip_would_underestimate_k():
    """Heavy clipping (k = 3: sd 9 px on a 56 px grid, keypoints anywhere; 13% of estimates on the border):
    the censored likelihood still finds k (within 5%); the plain standard deviation does not (about -9%)."""
    cache, _ = world(seed=1, videos=12, k=3.0, p_swap=0, p_out=0, edge_frames=1.0)
    c = calibrate.classify(cache)
    # No swaps planted; at 9 px of jitter some estimates land on the twin 23 px away and count as swaps,
    # which would cut the tail: fit every detected keypoint but the outliers.
    c["inlier"] = c["detected"] & ~c["outlier"]
    fit = calibrate.shift_fits(c)["pooled"]
    naive = c["shift"][c["inlier"]].std() / 3
    assert fit["censored"] > 0.1 * fit["n"]
    assert abs(fit["k"] - 3.0) / 3.0 < 0.05 and fit["tv_distance"] < 0.02, fit
    assert naive < 0.93 * 3.0


def test_shares_of_misses_swaps_and_outliers(measured):
    r, truth = measured
    for name in ("missed", "swaps", "outliers"):
        assert abs(r["shares"][name] - truth[name]) < 0.002, (name, r["shares"][name], truth[name])


def test_lag1_autocorrelation_sees_the_drift(measured):
    """Within 0.03 of AR * drift share: its sampling sd at this size is about 0.01, and the pairs that
    clipping leaves are truncated, which pulls it down by about 0.01 (12 seeds: -0.025 to +0.005)."""
    r, truth = measured
    ac = r["autocorrelation_lag1"]
    for axis in ("x", "y", "pooled"):
        assert abs(ac[axis] - truth["lag1"]) < 0.03, (axis, ac[axis], truth["lag1"])


def test_lag1_autocorrelation_is_near_zero_for_independent_jitter():
    rng = np.random.default_rng(3)
    shift = np.rint(rng.normal(0, 3, (400, K, 2))).astype(np.int64)
    ac = calibrate.lag1_autocorrelation(shift, np.ones((400, K), bool), np.array([0, 200]), np.array([200, 200]))
    assert abs(ac["pooled"]) < 0.03 and ac["pairs"] == 398 * K * 2


def ar1_drift_plus_jitter(seed, rho=0.9, sd_drift=2.0, sd_jitter=1.0, videos=24, length=80):
    """Shifts (F, K, 2) in grid px: per video, keypoint and axis a stationary AR(1) offset (rho, sd_drift) plus
    independent per-frame jitter (sd_jitter), rounded; with the videos' starts and lengths."""
    rng = np.random.default_rng(seed)
    off = np.empty((videos, length, K, 2))
    off[:, 0] = rng.normal(0, sd_drift, (videos, K, 2))
    for t in range(1, length):
        off[:, t] = rho * off[:, t - 1] + rng.normal(0, sd_drift * np.sqrt(1 - rho ** 2), (videos, K, 2))
    shift = np.rint(off + rng.normal(0, sd_jitter, off.shape)).astype(np.int64).reshape(videos * length, K, 2)
    return shift, np.arange(videos) * length, np.full(videos, length)


def test_drift_is_told_from_jitter():
    """AR(1) drift (rho 0.9, sd 2 px) plus jitter (sd 1 px): acf(h) = 4 rho**h / (4 + 1 + 1/12) (rounding adds
    variance 1/12), so share = 4 / 5.083 = 0.787 (~4/5) and rho = 0.9. Tolerances: 3x the spread of 12 seeds
    (rho 0.898 to 0.903, share 0.782 to 0.792; ~92000 pairs per lag, sampling sd of each acf ~0.005)."""
    shift, starts, lengths = ar1_drift_plus_jitter(0)
    acf, drift = calibrate.drift_report(shift, np.ones(shift.shape[:2], bool), starts, lengths)
    assert acf["lags"] == [1, 2, 3, 4] and min(acf["pairs"]) > 90000
    assert abs(drift["rho"] - 0.9) < 0.01, drift
    assert abs(drift["share"] - 4 / (5 + 1 / 12)) < 0.015 and abs(drift["share"] - 0.8) < 0.03, drift
    assert drift["lags"] == acf["acf"] and abs(acf["acf"][0] - 0.9 * 4 / (5 + 1 / 12)) < 0.015


def test_independent_jitter_has_no_drift():
    shift, starts, lengths = ar1_drift_plus_jitter(1, sd_drift=0.0)
    acf, drift = calibrate.drift_report(shift, np.ones(shift.shape[:2], bool), starts, lengths)
    assert drift is None and max(abs(a) for a in acf["acf"]) < 0.02, acf


def test_fit_drift_recovers_its_own_law_and_needs_pairs_and_a_lag_1_correlation():
    for rho, share in ((0.9, 0.8), (0.5, 1.0), (0.97, 0.3), (0.2, 0.6)):
        acf = [share * rho ** h for h in calibrate.DRIFT_LAGS]
        fit = calibrate.fit_drift(acf, [1000] * 4)
        assert abs(fit["rho"] - rho) < 1e-5 and abs(fit["share"] - share) < 1e-5 and fit["rms"] < 1e-6, fit
    assert calibrate.fit_drift([0.72, 0.65, 0.58, 0.52], [1000, 1000, 1000, 499]) is None    # too few pairs
    assert calibrate.fit_drift([0.72, 0.65, 0.58, None], [1000] * 4) is None                  # no pair at a lag
    assert calibrate.fit_drift([0.05, 0.04, 0.03, 0.02], [1000] * 4) is None                  # acf(1) <= 0.05
    assert calibrate.fit_drift([1.2, 1.1, 1.05, 1.0], [1000] * 4) == pytest.approx(
        {"rho": 0.99, "share": 1.0, "rms": calibrate.fit_drift([1.2, 1.1, 1.05, 1.0], [1000] * 4)["rms"]})  # clipped


def test_drift_of_the_world(measured):
    """The world's AR(1) offset (AR 0.95, 70% of the variance) is the drift fitted: within 0.01 in rho and 0.03
    in share of the truth (4 seeds: rho 0.947 to 0.952, share 0.680 to 0.697 against 0.697; clipped pairs are
    truncated, which pulls the share down)."""
    r, truth = measured
    share = truth["lag1"] / AR
    assert abs(r["drift"]["rho"] - AR) < 0.01 and abs(r["drift"]["share"] - share) < 0.03, r["drift"]
    assert r["autocorrelation"]["acf"][0] == r["autocorrelation_lag1"]["pooled"]


def test_blur_histogram_and_sigma_probabilities():
    cache, truth = world(seed=2, videos=1, length=80, heatmaps=True)
    r = calibrate.calibrate(cache)
    true_sigma = truth["sigma"][truth["detected"]]
    nearest = np.abs(true_sigma[:, None] - SIGMA_LEVELS).argmin(1)
    true_probs = np.bincount(nearest, minlength=5) / nearest.size
    assert np.abs(np.array(r["sigma"]["probs"]) - true_probs).max() < 0.02, (r["sigma"]["probs"], true_probs)
    edges = np.array(r["sigma_histogram"]["edges"])
    counts = np.array(r["sigma_histogram"]["counts"])
    true_counts = np.histogram(true_sigma, edges)[0]
    tv = 0.5 * np.abs(counts / counts.sum() - true_counts / true_counts.sum()).sum()
    assert tv < 0.05, (tv, counts, true_counts)
    fitted = calibrate.fit_sigma(cache.heatmaps[truth["detected"]])
    assert np.median(np.abs(fitted - true_sigma)) < 0.02


def test_cli_writes_noise_json(tmp_path):
    from posedenoise.data.paired import save_paired      # the paired cache's writer (posedenoise.data.paired)
    cache, _ = world(seed=4, videos=2, length=20, heatmaps=True)
    path, out = str(tmp_path / "paired.npz"), tmp_path / "noise.json"
    save_paired(cache, path)
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        calibrate.main([path, "--out", str(out)])
    assert "| k (shift" in printed.getvalue() and "lag-1 autocorrelation" in printed.getvalue()
    assert "| autocorrelation (pooled) |" in printed.getvalue() and "drift: rho = " in printed.getvalue()
    r = json.loads(out.read_text())
    assert r["format"] == "posedenoise-noise/1" and r["source"] == path
    for law in ("shift", "sigma"):
        assert len(r[law]["values"]) == len(r[law]["probs"]) and abs(sum(r[law]["probs"]) - 1) < 1e-9
    assert all(isinstance(v, int) for v in r["shift"]["values"]) and r["sigma"]["values"] == [1, 1.5, 2, 2.5, 3]
    assert isinstance(r["k"], float) and {"x", "y", "pooled"} <= set(r["k_fit"])
    assert set(r["shares"]) == {"missed", "outliers", "swaps"}
    assert {"x", "y", "pooled"} <= set(r["autocorrelation_lag1"])
    h = r["sigma_histogram"]
    assert len(h["edges"]) == len(h["counts"]) + 1 and sum(h["counts"]) == r["sigma_fitted"]["maps"]
    assert r["keypoints_counted"] == int(cache.visible.sum())
    assert set(r["drift"]) == {"rho", "share", "lags"} and len(r["drift"]["lags"]) == 4
    from posedenoise.noise import load_noise_json        # what `train --noise` reads
    law = load_noise_json(out)
    assert law.sigma_choices == (1.0, 1.5, 2.0, 2.5, 3.0)
    assert (law.drift.rho, law.drift.share) == (r["drift"]["rho"], r["drift"]["share"])


def test_no_heatmaps_gives_null_sigma():
    cache, _ = world(seed=5, videos=2, length=20)
    r = calibrate.calibrate(cache)
    assert r["sigma"] is None and r["sigma_histogram"] is None and r["k"] > 0


def test_few_pairs_give_null_drift_and_say_why():
    cache, _ = world(seed=5, videos=1, length=8)           # 4 frames apart: ~4 x 25 x 2 pairs, under 500
    r = calibrate.calibrate(cache)
    assert r["drift"] is None and max(r["autocorrelation"]["pairs"]) < calibrate.DRIFT_MIN_PAIRS
    assert "drift: none (fewer than 500 pairs at a lag)" in calibrate.table(r)


@pytest.mark.parametrize("argv, names", [(["missing.npz"], "missing.npz"),
                                         (["missing.npz", "--out", "."], "--out"),
                                         (["missing.npz", "--sigma-choices", "1,x"], "--sigma-choices")])
def test_bad_input_is_one_line_exit_2(argv, names, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        calibrate.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1 and names in err[0], err
    assert list(tmp_path.iterdir()) == []


# --- nonsense is refused: paired data a user could really write, through prepare --paired -----------------

FRAME = 112     # the estimator's frame, W = H: a keypoint at x is at (x + 0.5) / 2 - 0.5 on the 56 grid


def paired_folder(folder, kind, videos=3, length=30, seed=0):
    """Paired-data files (posedenoise/data/paired.py's format) of an estimator that gives keypoints: `kind`
    "good" (the truth plus N(0, 3^2) px of the frame: k = 0.5 on the grid), "unit" (those keypoints divided by
    the frame size: in [0, 1]), "unrelated" (keypoints anywhere, unrelated to the truth), "border" (every
    estimate on a border pixel of the grid, its truth 2-9 grid px inside: all censored) or "copy" (the truth)."""
    rng = np.random.default_rng(seed)
    folder.mkdir()
    for v in range(videos):
        gt = rng.uniform(20, FRAME - 20, (length, K, 2))
        if kind == "border":
            side = rng.integers(0, 2, (length, K, 2)).astype(bool)
            est = np.where(side, FRAME - 1.0, 0.0)                    # grid pixels 55 and 0: frame (x + 0.5) / 2 - 0.5
            inside = 2 * rng.integers(2, 10, (length, K, 2))        # frame px, 2-9 grid px
            gt = np.where(side, est - inside, est + inside)
        else:
            est = {"good": gt + rng.normal(0, 3, gt.shape), "unit": (gt + rng.normal(0, 3, gt.shape)) / FRAME,
                   "unrelated": rng.uniform(0, FRAME - 1, gt.shape), "copy": gt}[kind]
        ones = np.ones((length, K, 1))
        np.savez(folder / f"v{v}.npz", gt=np.concatenate([gt, ones], -1),
                 keypoints=np.concatenate([est, 0.9 * ones], -1), frame_size=np.array([FRAME, FRAME]))


def calibrate_cli(tmp_path, capsys, kind):
    """prepare --paired, then calibrate: (exit code, stderr, paired cache path, noise.json path)."""
    from posedenoise import prepare
    paired_folder(tmp_path / kind, kind)
    cache, out = tmp_path / f"{kind}.npz", tmp_path / "noise.json"
    prepare.main(["--paired", str(tmp_path / kind), "--frame", "crop", "--out", str(cache)])
    capsys.readouterr()
    try:
        calibrate.main([str(cache), "--out", str(out)])
        code = 0
    except SystemExit as e:
        code = e.code
    return code, capsys.readouterr().err, cache, out


def test_good_keypoint_data_calibrates(tmp_path, capsys):
    """The control of the refusals below: 3 frame px on a grid of half the frame's size is k = 1.5 / 3."""
    code, err, _, out = calibrate_cli(tmp_path, capsys, "good")
    assert code == 0 and err == "", err
    assert abs(json.loads(out.read_text())["k"] - 0.5) < 0.05


@pytest.mark.parametrize("kind, words", [
    ("unit", ["wrong units", "estimated keypoints span 0."]),   # [0, 1]: under 0.5 px of the grid (k was 56, silently)
    ("unrelated", ["median error", "14 px"]),
    ("border", ["k (x)", "upper bound"]),
    ("copy", ["k (x)", "lower bound", "copy of the ground truth"]),
])
def test_nonsense_is_refused_in_one_line(tmp_path, capsys, kind, words):
    code, err, cache, out = calibrate_cli(tmp_path, capsys, kind)
    assert code == 2 and err.count("\n") == 1 and err.startswith("posedenoise.calibrate: error:"), err
    for w in [str(cache), *words]:
        assert w in err, err
    assert not out.exists()


def test_the_refused_data_are_what_they_claim(tmp_path):
    """The worlds above, checked without calibrate: the unrelated keypoints' median error is over 14 px of the
    grid, the border estimates' under it (only the k fit can catch them), all of them on border pixels."""
    from posedenoise.data.paired import build_paired, read_folder
    for kind, low, high in (("unrelated", 14, 56), ("border", 2, 14)):
        paired_folder(tmp_path / kind, kind)
        p = build_paired(read_folder(str(tmp_path / kind), "crop"))
        err = np.median(np.linalg.norm(p.est - p.gt, axis=-1))
        assert low < err < high, (kind, err)
    assert np.isin(p.est, (0, 55)).all()
