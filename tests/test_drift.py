"""Drift (posedenoise.noise.Drift): shifts correlated across a window's frames. The law's definition
(reference.simulate_noise) against a frame-by-frame loop, its properties against the draws (each frame's
marginal is the shift table's, corr(s_t, s_t+h) = share * rho**h), no drift is today's draws bit for bit,
every backend draws it bit for bit, calibrate's fit recovers it, and train --drift builds and records it."""
import json
import math
import re

import numpy as np
import pytest
import scipy.stats as st
import torch

from conftest import backends_here
from posedenoise import calibrate, cli, ops, reference
from posedenoise.noise import NO_DRIFT, Drift, simulated

SIGMAS = (1.0, 1.5, 2.0, 2.5, 3.0)
TWO32 = 2**32
FAST = "cpp" if "cpp" in backends_here() else "torch"
BIG = 512   # a map where centred keypoints (256) are never clipped: noisy - 256 is the raw shift


def raw_shifts(law, B, T=5, K=25, seed=5, epoch=2, backend=FAST, first=0):
    """(B, T, K, 2) shifts of windows first..first+B-1, drawn on a BIG map (law built for size BIG)."""
    coords = torch.full((B, T, K, 2), BIG // 2)
    noisy, _ = ops.simulate_noise(coords, torch.ones(B, T, K, dtype=torch.bool), torch.arange(first, first + B),
                                  noise=law, seed=seed, epoch=epoch, size=BIG, backend=backend)
    return (noisy.to(torch.int64) - BIG // 2).numpy()


def loop_shifts(law, wid, T, K, seed, epoch):
    """The definition, frame by frame with a state, for one window: scalar Philox calls and Python ints.
    Frame t keeps the latent shift when t >= 1 and r2 < keep, else redraws it from (r0, r1); it emits the latent
    when r3 < emit, else draws afresh from counter (slot, 2**31 + t)."""
    keep, emit = NO_DRIFT if law.drift is None else law.drift.thresholds

    def words(slot, frame):
        return [int(v) for v in reference.philox4x32(slot, frame, wid % TWO32, wid // TWO32, seed, epoch)]

    def table(u):
        return law.shift.low + sum(u >= t for t in law.shift.thresholds)

    out = np.zeros((T, K, 2), np.int64)
    for j in range(K):
        latent = None
        for t in range(T):
            r = words(j + 1, t)
            if t == 0 or r[2] >= keep:
                latent = (table(r[0]), table(r[1]))
            if r[3] < emit:
                out[t, j] = latent
            else:
                f = words(j + 1, 2**31 + t)
                out[t, j] = (table(f[0]), table(f[1]))
    return out


DRIFTS = [Drift(0.9, 0.8), Drift(0.5, 0.3), Drift(0.7, 1.0), Drift(0.999, 0.5), Drift(0.0, 0.6), Drift(0.95, 0.0)]

# -- the definition -------------------------------------------------------------------------------------


@pytest.mark.parametrize("drift", DRIFTS + [Drift(0.0, 1.0), None])
def test_every_backend_draws_the_frame_by_frame_definition(drift):
    law = simulated(1.0, None, BIG, drift=drift)
    wids = [3, 2**40 + 7]
    expected = np.stack([loop_shifts(law, w, 5, 3, 2**32 - 1, 6) for w in wids])
    coords = torch.full((2, 5, 3, 2), BIG // 2)
    for backend in backends_here():
        noisy, _ = ops.simulate_noise(coords, torch.ones(2, 5, 3, dtype=torch.bool), torch.tensor(wids), noise=law,
                                      seed=2**32 - 1, epoch=6, size=BIG, backend=backend)
        assert np.array_equal(noisy.numpy() - BIG // 2, expected), backend


def test_no_drift_is_todays_draws_bit_for_bit():
    """rho = 0, share = 1 (keep 0, emit 2**32): every frame redraws and emits, so the reference's chain gives
    each frame the draw of its own words r0, r1, computed here straight from Philox; and every backend, with
    that law, draws exactly what it draws without drift (maps and sigma_in included)."""
    assert Drift(0.0, 1.0).thresholds == NO_DRIFT == (0, TWO32)
    law = simulated(2.0, SIGMAS, drift=Drift(0.0, 1.0))
    B, T, K = 3, 5, 4
    wid = torch.tensor([0, 9, 2**33 + 1])
    coords = torch.full((B, T, K, 2), 28)
    noisy, _ = reference.simulate_noise(coords, wid, shift=law.shift, sigma_index=law.sigma_index, seed=11, epoch=4,
                                        keep=0, emit=TWO32)
    slot = torch.arange(1, K + 1).view(1, 1, K)
    w = wid.view(B, 1, 1)
    r0, r1, _, _ = reference.philox4x32(slot, torch.arange(T).view(1, T, 1), w % TWO32, w // TWO32, 11, 4)
    direct = torch.stack([reference.draw(law.shift, r0), reference.draw(law.shift, r1)], -1)
    assert torch.equal(noisy.to(torch.int64), (28 + direct).clamp(0, 55))
    g = torch.Generator().manual_seed(1)
    c, v = torch.randint(0, 56, (2, T, K, 2), generator=g), torch.rand(2, T, K, generator=g) > 0.2
    for backend in backends_here():
        kw = dict(seed=2**32 - 1, epoch=1, offset=-1, backend=backend, return_noise=True)
        today = ops.noisy_pair(c, v, wid[:2], k=2.0, sigma_choices=SIGMAS, **kw)
        ours = ops.noisy_pair(c, v, wid[:2], noise=law, **kw)
        assert all(torch.equal(a, b) for a, b in zip(today, ours)), backend


@pytest.mark.parametrize("T", [1, 2])
def test_short_windows_on_every_backend(T):
    """T = 1 (a compile-time constant in Triton: no earlier frame) and 2, against the reference."""
    law = simulated(1.0, SIGMAS, drift=Drift(0.6, 0.7))
    g = torch.Generator().manual_seed(T)
    c, v = torch.randint(0, 56, (2, T, 3, 2), generator=g), torch.rand(2, T, 3, generator=g) > 0.2
    kw = dict(noise=law, seed=1, epoch=1, return_noise=True, dtype=torch.bfloat16)
    ref = ops.noisy_pair(c, v, torch.tensor([4, 5]), backend="torch", **kw)
    for backend in backends_here():
        out = ops.noisy_pair(c, v, torch.tensor([4, 5]), backend=backend, **kw)
        assert all(torch.equal(a, b) for a, b in zip(out, ref)), backend

# -- its properties, from the draws ---------------------------------------------------------------------


@pytest.mark.parametrize("drift", [Drift(0.9, 0.8), Drift(0.999, 0.5)])
def test_each_frames_shift_has_the_tables_law(drift):
    """Stationary: frame t's shifts (x and y: independent given the law; 4000 windows x 25 keypoints) against
    the shift table's probabilities, a chi-square test per frame at 1e-3 (fixed seeds: fixed p-values)."""
    law = simulated(1.0, None, BIG, drift=drift)
    s = raw_shifts(law, 4000)
    probs = law.shift.probabilities()
    values = np.array([v for v, p in probs.items() if p * s[:, 0].size >= 5])
    for t in range(s.shape[1]):
        x = s[:, t].ravel()
        counts = np.array([(x == v).sum() for v in values] + [(~np.isin(x, values)).sum()])
        p = np.array([probs[v] for v in values])
        expected = np.append(p, 1 - p.sum()) * x.size
        assert st.chisquare(counts, expected).pvalue > 1e-3, (t, drift)


def autocorrelations(s, lags=(1, 2, 3, 4)):
    """corr(s_t, s_t+h) of shifts (B, T, K, 2) pooled over windows, keypoints, axes and t (the mean is 0)."""
    v = (s * s).mean()
    return [float((s[:, :-h] * s[:, h:]).mean() / v) for h in lags]


@pytest.mark.parametrize("drift", DRIFTS)
def test_autocorrelation_is_share_times_rho_to_the_lag(drift):
    """corr(s_t, s_t+h) = share * rho**h, exactly (keep / 2**32)**h (emit / 2**32)**2 in the thresholds: within
    0.012 of the draws' (6000 windows x 25 keypoints x 2 axes = 300000 series of 5 frames; the sampling sd of
    each estimate is ~0.002-0.004)."""
    s = raw_shifts(simulated(1.0, None, BIG, drift=drift), 6000, seed=7)
    exact = [(drift.keep / TWO32) ** h * (drift.emit / TWO32) ** 2 for h in (1, 2, 3, 4)]
    assert exact == pytest.approx([drift.share * drift.rho ** h for h in (1, 2, 3, 4)], abs=1e-8)
    assert autocorrelations(s) == pytest.approx(exact, abs=0.012), (drift, autocorrelations(s), exact)


def test_no_drift_shifts_are_uncorrelated_and_drift_leaves_keypoints_and_windows_independent():
    s = raw_shifts(simulated(1.0, None, BIG), 4000)
    assert max(abs(a) for a in autocorrelations(s)) < 0.01
    d = raw_shifts(simulated(1.0, None, BIG, drift=Drift(0.9, 0.8)), 4000)
    flat = d.astype(np.float64)
    v = (flat * flat).mean()
    assert abs((flat[..., 0] * flat[..., 1]).mean() / v) < 0.01                  # x and y
    assert abs((flat[:, :, :-1] * flat[:, :, 1:]).mean() / v) < 0.01             # neighbouring keypoints
    assert abs((flat[:-1] * flat[1:]).mean() / v) < 0.01                         # neighbouring windows


def test_calibrate_recovers_the_simulated_drift():
    """The two halves agree: calibrate's fit (acf at lags 1-4, least squares) on the simulation's own drifting
    shifts (each window a 5-frame video) finds its rho and share (within 0.03: 4000 windows)."""
    s = raw_shifts(simulated(1.0, None, BIG, drift=Drift(0.9, 0.8)), 4000)
    B, T = s.shape[:2]
    acf, drift = calibrate.drift_report(s.reshape(B * T, *s.shape[2:]), np.ones((B * T, s.shape[2]), bool),
                                        np.arange(B) * T, np.full(B, T))
    assert abs(drift["rho"] - 0.9) < 0.03 and abs(drift["share"] - 0.8) < 0.03, (drift, acf)

# -- Drift, its thresholds and the ops ------------------------------------------------------------------


def test_thresholds_and_their_bounds():
    d = Drift(0.9, 0.8)
    assert d.keep == round(0.9 * TWO32) and d.emit == round(math.sqrt(0.8) * TWO32)
    assert Drift(1 - 1e-12, 1.0).thresholds == (TWO32 - 1, TWO32)       # keep clamped below 2**32, emit: always
    assert Drift(0.0, 0.0).thresholds == (0, 0)                         # never emit: every shift fresh
    rng = np.random.default_rng(0)
    for keep, emit in [(0, 0), (TWO32 - 1, TWO32), (1, 1), (2**31, 2**31)] + \
            [(int(a), int(b)) for a, b in zip(rng.integers(0, TWO32, 500), rng.integers(0, TWO32 + 1, 500))]:
        assert Drift.from_thresholds(keep, emit).thresholds == (keep, emit)
    for bad in [(1.0, 0.5), (-0.1, 0.5), (0.5, 1.01), (0.5, -0.01), (math.nan, 0.5), (0.5, math.inf), (True, 0.5),
                ("0.5", 0.5)]:
        with pytest.raises(ValueError, match="rho|share"):
            Drift(*bad)
    assert Drift.parse(" 0.9, 0.8") == d
    for text in ("0.9", "0.9,0.8,0.1", "a,b", ""):
        with pytest.raises(ValueError, match="RHO,SHARE"):
            Drift.parse(text)


def test_drift_op_arguments_trace_and_compile():
    from posedenoise.ops import _pair_op
    law = simulated(1.0, SIGMAS, drift=Drift(0.9, 0.8))
    g = torch.Generator().manual_seed(0)
    c, v, w = torch.randint(0, 56, (2, 5, 3, 2), generator=g), torch.ones(2, 5, 3, dtype=torch.bool), torch.arange(2)

    def step(c, v, w):
        x, y = ops.noisy_pair(c, v, w, noise=law, seed=0, epoch=1)
        return (x - y).square().mean()

    assert torch.equal(torch.compile(step, backend="eager", fullgraph=True)(c, v, w), step(c, v, w))
    keep, emit = law.drift.thresholds
    for backend in [b for b in backends_here() if b != "triton"]:
        for inputs, targets in ((True, True), (False, False)):
            torch.library.opcheck(_pair_op, (c.to(torch.int32), v, w, 1.0, "normal", list(SIGMAS), 0, 0, 0, 56, 255.0,
                                             torch.float32, inputs, targets, backend),
                                  {"drift_keep": keep, "drift_emit": emit})
    # the op's thresholds are the law's: the simulated law of k with them draws what noise=law draws
    kw = dict(seed=3, epoch=0)
    by_k = _pair_op(c.to(torch.int32), v, w, 1.0, "normal", list(SIGMAS), 3, 0, 0, 56, 255.0, torch.float32, False,
                    False, FAST, drift_keep=keep, drift_emit=emit)
    assert torch.equal(by_k[2], ops.simulate_noise(c, v, w, noise=law, backend=FAST, **kw)[0])


def test_a_drifting_law_is_a_different_law():
    law = simulated(1.0, SIGMAS)
    drifting = law.with_drift(Drift(0.9, 0.8))
    assert drifting != law and drifting.with_drift(None) == law and law.with_drift(None) is law
    assert simulated(1.0, SIGMAS, drift=Drift(0.9, 0.8)) == drifting
    c, v, w = torch.full((1, 5, 2, 2), 28), torch.ones(1, 5, 2, dtype=torch.bool), torch.arange(1)
    with pytest.raises(ValueError, match="different law"):      # k given with a law it does not describe
        ops.simulate_noise(c, v, w, k=1.0, sigma_choices=SIGMAS, noise=drifting, seed=0, epoch=0)
    with pytest.raises(TypeError, match="drift"):
        law.with_drift((0.9, 0.8))

# -- train --drift ----------------------------------------------------------------------------------------


def test_run_noise_is_the_one_place_the_law_is_built():
    from posedenoise.evaluation import SETUPS, run_noise
    plain = run_noise({"setup": 1, "k": 2.0, "seed": 0})
    assert plain["k"] == 2.0 and "noise" not in plain                         # no drift: as before
    d = run_noise({"setup": 2, "k": 2.0, "seed": 0, "drift": "0.9,0.8"})
    assert d["noise"] == simulated(2.0, SETUPS[2]["sigma_choices"], drift=Drift(0.9, 0.8)) and "k" not in d
    measured = {"format": "posedenoise-noise/1", "shift": {"values": [-1, 1], "probs": [0.5, 0.5]}, "sigma": None,
                "drift": {"rho": 0.5, "share": 0.5}}
    own = run_noise({"setup": 1, "k": 1.0, "seed": 0, "noise_law": measured})["noise"]
    assert own.drift == Drift(0.5, 0.5)                                       # the file's drift
    over = run_noise({"setup": 1, "k": 1.0, "seed": 0, "noise_law": measured, "drift": "0.9,0.8"})["noise"]
    assert over == own.with_drift(Drift(0.9, 0.8))                            # --drift overrides it


def test_train_drift_flag(tmp_path, capsys):
    from posedenoise import train
    cfg = train.TrainConfig(drift="0.90, 0.8", out=str(tmp_path / "r"))
    assert cfg.drift == "0.9,0.8"                                              # normalised, as recorded
    recorded = {**json.loads(json.dumps(cfg.__dict__, default=str)), "drift": "0.5,0.8"}
    with pytest.raises(cli.InputError, match="trained with --drift 0.5,0.8, not --drift 0.9,0.8"):
        train.check_same_run(cfg, recorded)                                   # --resume with another drift
    for value, says in (("0.9", "expected RHO,SHARE"), ("1,0.5", "rho: expected a number in \\[0, 1\\)"),
                        ("0.5,2", "share: expected a number in \\[0, 1\\]"), ("nan,1", "rho")):
        with pytest.raises(SystemExit) as e:
            train.main(["--drift", value, "--out", str(tmp_path / "bad")])
        err = capsys.readouterr().err.strip().splitlines()
        assert e.value.code == 2 and len(err) == 1, err
        assert err[0].startswith(f"{train.PROG}: error: --drift {value}: ") and re.search(says, err[0]), err
    assert not (tmp_path / "bad").exists()


@pytest.mark.slow
def test_a_run_with_drift_records_it_and_evaluate_draws_it(tmp_path):
    from posedenoise import evaluate, train
    out = tmp_path / "r"
    train.main(["--drift", "0.9,0.8", "--out", str(out), "--epochs", "1", "--num-windows", "40", "--batch-size", "4",
                "--quiet"])
    config = json.loads((out / "config.json").read_text())
    assert config["drift"] == "0.9,0.8" and config["noise_law"] is None
    test = json.loads((out / "test.json").read_text())
    evaluate.main([str(out), "--out", str(tmp_path / "e.json")])
    assert json.loads((tmp_path / "e.json").read_text())["identity_pck"] == test["identity_pck"]


def test_a_files_drift_is_drawn_only_when_asked_for(tmp_path):
    """train --noise FILE draws the file's shift law without its drift; --drift measured draws it too (the
    recorded noise_law is the law drawn); measured without a file, or with a file without drift, is refused."""
    from posedenoise import train
    law = {"format": "posedenoise-noise/1", "shift": {"values": [-1, 0, 1], "probs": [0.25, 0.5, 0.25]},
           "sigma": None, "drift": {"rho": 0.9, "share": 0.8}}
    path = tmp_path / "noise.json"
    path.write_text(json.dumps(law))
    plain = train.TrainConfig(noise=str(path), out=str(tmp_path / "a"))
    assert plain.noise_law["drift"] is None and plain.drift is None
    asked = train.TrainConfig(noise=str(path), drift="measured", out=str(tmp_path / "b"))
    assert asked.noise_law["drift"] == {"rho": 0.9, "share": 0.8} and asked.drift is None
    for kwargs, says in ((dict(drift="measured"), "needs --noise"),
                         (dict(noise=str(tmp_path / "flat.json"), drift="measured"), "holds no drift")):
        (tmp_path / "flat.json").write_text(json.dumps({**law, "drift": None}))
        with pytest.raises(cli.InputError, match=says):
            train.TrainConfig(out=str(tmp_path / "c"), **kwargs)
