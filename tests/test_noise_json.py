"""Measured noise laws (noise.json, posedenoise.noise.NoiseLaw): the simulated law is exactly today's tables,
an empirical law goes through the same tables on every backend (bit-identical draws, frequencies that match
its pmf), and a bad noise.json is one DataError naming the file and the field."""
import json
import re

import numpy as np
import pytest
import scipy.stats as st
import torch

from conftest import backends_here
from posedenoise import ops
from posedenoise.data import DataError
from posedenoise.evaluation import model_batch
from posedenoise.noise import (NOISE_FORMAT, Drift, NoiseLaw, choice_table, from_json_dict, load_noise_json,
                               shift_table, sigma_choices_tuple, simulated)

SIGMAS = (1.0, 1.5, 2.0, 2.5, 3.0)
# A skewed law no Gaussian gives: a gap, mass on -3, 0 and +5, and a shift past the map folded onto +55.
SKEWED = {"format": NOISE_FORMAT, "calibrated_on": "informational fields are ignored",
          "shift": {"values": [5, -3, 0, 80], "probs": [0.25, 0.15, 0.55, 0.05]},
          "sigma": {"values": [3.0, 1.0, 2.5, 1.5], "probs": [0.3, 0.1, 0.6, 0.0]}}


def write(tmp_path, doc, name="noise.json"):
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def centred(B, T=5, K=25):
    """Keypoints at the map's centre, so that every shift within +-27 is seen unclipped."""
    return (torch.full((B, T, K, 2), 28), torch.ones(B, T, K, dtype=torch.bool),
            torch.tensor([5, 2**40 + 3] + list(range(100, 100 + B - 2)))[:B])


def draws_everywhere(law, B_triton=2, B=64, **kw):
    """simulate_noise through every backend here; the reference's draws, after checking the others equal
    them bit for bit (the interpreter is slow: Triton draws its own batch of B_triton windows)."""
    out = {}
    for backend in sorted(backends_here(), key=lambda b: b != "torch"):   # the reference first
        n = B_triton if backend == "triton" else B                       # centred(n): centred(B)'s first n
        c, v, w = centred(n)
        out[backend] = ops.simulate_noise(c, v, w, backend=backend, noise=law, **kw)
        ref = out["torch"]
        assert torch.equal(out[backend][0], ref[0][:n]) and torch.equal(out[backend][1], ref[1][:n]), backend
    return out


# -- (a) the simulated law is today's tables ----------------------------------------------------------


@pytest.mark.parametrize("k,choices,dist", [(0, None, "normal"), (0.5, SIGMAS, "normal"), (1, SIGMAS, "normal"),
                                            (2.5, (2.0, 0.5), "normal"), (1.5, SIGMAS, "uniform")])
def test_simulated_law_is_exactly_todays_tables(k, choices, dist):
    law = simulated(k, choices, 56, dist)
    assert law.shift == shift_table(k, 56, dist)
    assert law.sigma_index == choice_table(len(sigma_choices_tuple(choices)))
    assert law.sigma_choices == sigma_choices_tuple(choices) and law.size == 56
    assert hash(law) == hash(simulated(k, choices, 56, dist))      # the device-table caches key on it
    c, v, w = centred(2, K=4)
    kw = dict(seed=2**32 - 1, epoch=3, offset=1, return_noise=True)
    for backend in [b for b in backends_here() if b != "triton"]:
        old = ops.noisy_pair(c, v, w, k=k, sigma_choices=choices, shift_dist=dist, backend=backend, **kw)
        new = ops.noisy_pair(c, v, w, noise=law, backend=backend, **kw)
        assert all(torch.equal(a, b) for a, b in zip(old, new)), backend


# -- (b) an empirical law equal to a simulated one draws identically ----------------------------------


@pytest.mark.parametrize("k,choices", [(1, SIGMAS), (2, None), (0.2, (2.0, 0.5))])
def test_empirical_law_equal_to_a_simulated_one_draws_identically(tmp_path, k, choices):
    sim = simulated(k, choices)
    # The simulated distribution's own probabilities (multiples of 2**-32), written out of order, with extra
    # zero-probability shifts inside and past the map: the same law.
    shift = sim.shift.probabilities()
    values = sorted(shift, reverse=True) + [-60, 70]
    sigmas = list(sim.sigma_choices)
    doc = {"format": NOISE_FORMAT, "shift": {"values": values, "probs": [shift.get(v, 0.0) for v in values]},
           "sigma": {"values": sigmas, "probs": list(sim.sigma_index.probabilities().values())}}
    law = load_noise_json(write(tmp_path, doc))
    assert law == sim
    assert from_json_dict(sim.to_json_dict()) == sim
    # sigma null: drawn uniformly from the caller's choices, as the simulation draws them
    assert load_noise_json(write(tmp_path, {**doc, "sigma": None}), sigma_choices=choices) == sim
    for backend in backends_here():
        n = 1 if backend == "triton" else 16
        c, v, w = centred(n, K=3 if backend == "triton" else 25)
        kw = dict(seed=7, epoch=2, backend=backend, return_noise=True)
        old = ops.noisy_pair(c, v, w, k=k, sigma_choices=choices, **kw)
        new = ops.noisy_pair(c, v, w, noise=law, **kw)
        assert all(torch.equal(a, b) for a, b in zip(old, new)), backend


# -- (c) an arbitrary empirical law: bit-identical across backends, frequencies match its pmf ----------


def test_empirical_law_tables():
    law = from_json_dict(SKEWED)
    probs = law.shift.probabilities()
    assert law.shift.low == -3 and {v for v, p in probs.items() if p} == {-3, 0, 5, 55}
    assert probs[55] == pytest.approx(0.05, abs=2**-32)                # folded onto +(size - 1)
    # sigma keeps the file's order; 1.5 has no probability and is dropped (the index table starts at 0)
    assert law.sigma_choices == (3.0, 1.0, 2.5) and law.sigma_index.low == 0
    assert list(law.sigma_index.probabilities().values()) == pytest.approx([0.3, 0.1, 0.6], abs=2**-32)
    assert hash(law) == hash(from_json_dict(json.loads(json.dumps(SKEWED))))


def test_empirical_law_is_bit_identical_across_backends_and_matches_its_pmf():
    """Frequencies: a chi-square test at significance 1e-3 on 64 windows x 5 frames x 25 keypoints x 2 axes
    = 16000 shifts and 320 sigma draws (deterministic seeds: the p-values are fixed numbers, not flaky)."""
    law = from_json_dict(SKEWED)
    out = draws_everywhere(law, seed=11, epoch=4)
    assert len(out) >= 2, "only one backend here: nothing to compare"
    noisy, sigma_in = out["torch"]
    shifts = (noisy.to(torch.int64) - 28).flatten()
    shifts[shifts == 27] = 55                                         # +55 is clipped at the map's edge, 55
    values, pmf = [-3, 0, 5, 55], [0.15, 0.55, 0.25, 0.05]
    counts = [int((shifts == v).sum()) for v in values]
    assert sum(counts) == shifts.numel()                              # nothing outside the support
    assert st.chisquare(counts, np.array(pmf) * shifts.numel()).pvalue > 1e-3, counts
    sig_counts = [int((sigma_in == s).sum()) for s in (3.0, 1.0, 2.5)]
    assert sum(sig_counts) == sigma_in.numel()
    assert st.chisquare(sig_counts, np.array([0.3, 0.1, 0.6]) * sigma_in.numel()).pvalue > 1e-3, sig_counts


@pytest.mark.parametrize("backend", [b for b in backends_here() if b != "torch"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_empirical_pairs_are_bit_identical_across_backends(backend, dtype):
    law = from_json_dict(SKEWED)
    g = torch.Generator().manual_seed(0)
    B, K = (2, 3) if backend == "triton" else (16, 25)
    c = torch.randint(0, 56, (B, 5, K, 2), generator=g)
    v = torch.rand(B, 5, K, generator=g) > 0.2
    kw = dict(noise=law, seed=2**32 - 1, epoch=9, offset=-2, dtype=dtype, return_noise=True)
    ref = ops.noisy_pair(c, v, torch.arange(B) * 7919, backend="torch", **kw)
    out = ops.noisy_pair(c, v, torch.arange(B) * 7919, backend=backend, **kw)
    assert all(torch.equal(a, b) for a, b in zip(out, ref))
    # model_batch passes noise= through (the training and evaluation path)
    x, y = model_batch(c, v, torch.arange(B) * 7919, "heatmaps", noise=law, seed=2**32 - 1, epoch=9, backend=backend)
    assert torch.equal(x, ops.noisy_pair(c, v, torch.arange(B) * 7919, noise=law, seed=2**32 - 1, epoch=9,
                                         backend="torch")[0])


def test_extreme_tables():
    """One shift value and one sigma (no thresholds at all), and one threshold starting at +1: tables of
    sizes the simulated law never makes."""
    one = from_json_dict({"format": NOISE_FORMAT, "shift": {"values": [2], "probs": [1]},
                          "sigma": {"values": [1.5], "probs": [1.0]}})
    assert one.shift.thresholds == () and one.sigma_index.thresholds == ()
    out = draws_everywhere(one, B=4, seed=0, epoch=0)
    assert bool((out["torch"][0] == 30).all()) and bool((out["torch"][1] == 1.5).all())
    two = from_json_dict({"format": NOISE_FORMAT, "shift": {"values": [1, 2], "probs": [0.5, 0.5]},
                          "sigma": {"values": [1.0, 2.0], "probs": [0.5, 0.5]}})
    assert two.shift.low == 1 and len(two.shift.thresholds) == 1 and len(two.sigma_index.thresholds) == 1
    noisy, sigma_in = draws_everywhere(two, B=4, seed=0, epoch=0)["torch"]
    assert set((noisy - 28).unique().tolist()) == {1, 2} and set(sigma_in.unique().tolist()) == {1.0, 2.0}


def test_noise_law_compiles_in_one_graph():
    law = from_json_dict(SKEWED)
    c, v, w = centred(2, K=3)

    def step(c, v, w):
        x, y = ops.noisy_pair(c, v, w, noise=law, seed=0, epoch=1)
        return (x - y).square().mean()

    assert torch.equal(torch.compile(step, backend="eager", fullgraph=True)(c, v, w), step(c, v, w))

# -- the ops' arguments ---------------------------------------------------------------------------------


def test_noise_with_other_arguments():
    c, v, w = centred(1, K=2)
    law, kw = simulated(1, SIGMAS), dict(seed=0, epoch=0)
    same = ops.simulate_noise(c, v, w, k=1, sigma_choices=SIGMAS, noise=law, **kw)   # consistent: allowed
    assert all(torch.equal(a, b) for a, b in zip(same, ops.simulate_noise(c, v, w, noise=law, **kw)))
    for bad in (dict(k=2), dict(k=1), dict(k=1, sigma_choices=None), dict(sigma_choices=SIGMAS),
                dict(k=1, sigma_choices=SIGMAS, shift_dist="uniform")):
        with pytest.raises(ValueError, match="noise: given with .*different law"):
            ops.noisy_pair(c, v, w, noise=law, **bad, **kw)
    with pytest.raises(ValueError, match="noise: given with"):
        ops.simulate_noise(c, v, w, k=1, noise=from_json_dict(SKEWED), **kw)
    with pytest.raises(ValueError, match="size=56.*size=64"):
        ops.simulate_noise(c, v, w, noise=law, size=64, **kw)
    with pytest.raises(TypeError, match="noise: expected a posedenoise.noise.NoiseLaw"):
        ops.simulate_noise(c, v, w, noise=SKEWED, **kw)
    with pytest.raises(TypeError, match="sigma_choices: required"):
        ops.simulate_noise(c, v, w, k=1, **kw)
    with pytest.raises(ValueError, match="k: expected"):
        ops.simulate_noise(c, v, w, sigma_choices=None, **kw)


def test_sigma_null_uses_the_callers_choices():
    doc = {**SKEWED, "sigma": None}
    assert from_json_dict(doc).sigma_choices == (1.0,)                 # setup 2's fixed sigma 1
    law = from_json_dict(doc, sigma_choices=SIGMAS)
    assert law.sigma_choices == SIGMAS and law.sigma_index == choice_table(5)
    with pytest.raises(DataError, match="sigma' is null.*sigma_choices"):
        from_json_dict(doc, sigma_choices=(1.0, 0.0))


def test_size_folds_and_checks_sigma():
    law = from_json_dict(SKEWED, size=32)
    assert law.size == 32 and max(v for v, p in law.shift.probabilities().items() if p) == 31
    with pytest.raises(DataError, match="'sigma.values'.*\\[0.05, 2\\]"):
        from_json_dict(SKEWED, size=2)

# -- (d) bad noise.json files ---------------------------------------------------------------------------


def _edit(path, value):
    doc = json.loads(json.dumps(SKEWED))
    *parents, last = path.split(".")
    obj = doc
    for p in parents:
        obj = obj[p]
    if value is KeyError:
        del obj[last]
    else:
        obj[last] = value
    return doc


@pytest.mark.parametrize("doc,field,says", [
    (_edit("format", "posedenoise-noise/2"), "format", "'posedenoise-noise/1', got 'posedenoise-noise/2'"),
    (_edit("format", KeyError), "format", "field is missing"),
    (_edit("shift", KeyError), "shift", "field is missing"),
    (_edit("sigma", KeyError), "sigma", "or null, got nothing"),
    (_edit("shift.probs", KeyError), "shift.probs", "a list of 4 probabilities"),
    (_edit("shift.values", []), "shift.values", "non-empty list"),
    (_edit("shift.values", [5, -3, 0.5, 80]), "shift.values", "integers, got 0.5"),
    (_edit("shift.values", [5, -3, 5, 80]), "shift.values", "distinct"),
    (_edit("shift.probs", [0.25, 0.15, 0.55]), "shift.probs", "a list of 4"),
    (_edit("shift.probs", [0.25, 0.15, 0.55, 0.1]), "shift.probs", "summing to 1 .*got a sum of 1.05"),
    (_edit("shift.probs", [0.35, -0.1, 0.7, 0.05]), "shift.probs", "finite numbers >= 0, got -0.1"),
    (_edit("shift.probs", [0.25, float("nan"), 0.55, 0.05]), "shift.probs", "got nan"),
    (_edit("shift.probs", [0.25, float("inf"), 0.55, 0.05]), "shift.probs", "got inf"),
    (_edit("shift.probs", [0.25, "0.15", 0.55, 0.05]), "shift.probs", "got '0.15'"),
    (_edit("sigma.probs", [0.3, 0.1, 0.5, 0.0]), "sigma.probs", "summing to 1"),
    (_edit("sigma.probs", [0.0, 0.0, 0.0, 0.0]), "sigma.probs", "summing to 1"),
    (_edit("sigma.values", [3.0, 0.01, 2.5, 1.5]), "sigma.values", "\\[0.05, 56\\].*got 0.01"),
    (_edit("sigma.values", [3.0, 1.0, 57.0, 1.5]), "sigma.values", "got 57.0"),
    (_edit("sigma.values", [3.0, 1.0, float("nan"), 1.5]), "sigma.values", "got nan"),
    (_edit("sigma.values", [3.0, True, 2.5, 1.5]), "sigma.values", "numbers, got True"),
    (_edit("sigma", [1.0, 2.0]), "sigma", "an object with 'values' and 'probs'"),
    ({**SKEWED, "drift": [0.9, 0.8]}, "drift", "null or an object with 'rho' and 'share', got \\[0.9, 0.8\\]"),
    ({**SKEWED, "drift": {"share": 0.8}}, "drift.rho", "a number in \\[0, 1\\), got nothing"),
    ({**SKEWED, "drift": {"rho": 1.0, "share": 0.8}}, "drift.rho", "a number in \\[0, 1\\), got 1.0"),
    ({**SKEWED, "drift": {"rho": -0.1, "share": 0.8}}, "drift.rho", "got -0.1"),
    ({**SKEWED, "drift": {"rho": "0.9", "share": 0.8}}, "drift.rho", "got '0.9'"),
    ({**SKEWED, "drift": {"rho": 0.9, "share": 1.5}}, "drift.share", "a number in \\[0, 1\\], got 1.5"),
    ({**SKEWED, "drift": {"rho": 0.9, "share": float("nan")}}, "drift.share", "got nan"),
    ({**SKEWED, "drift": {"rho": 0.9, "share": True}}, "drift.share", "got True"),
])
def test_bad_noise_json_names_the_file_and_field(tmp_path, doc, field, says):
    path = write(tmp_path, doc)
    with pytest.raises(DataError, match=f"^{re.escape(str(path))}: field '{field}': expected .*{says}") as e:
        load_noise_json(path)
    assert isinstance(e.value, ValueError)                             # an InputError: one line, exit 2


@pytest.mark.parametrize("text,says", [("{not json", "expected a noise.json file \\(JSON\\)"),
                                       ("[1, 2]", "expected a JSON object"), ("\udcff", "")])
def test_not_a_noise_json(tmp_path, text, says):
    path = tmp_path / "noise.json"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(DataError, match=f"^{re.escape(str(path))}: {says}"):
        load_noise_json(path)


def test_drift_round_trips_and_missing_or_null_is_none(tmp_path):
    """noise.json's optional "drift": {"rho", "share"} (calibrate adds "lags", ignored here); missing or null
    means no drift. to_json_dict writes it, so that a law with drift round-trips, through a file too."""
    assert from_json_dict(SKEWED).drift is None and from_json_dict({**SKEWED, "drift": None}).drift is None
    law = from_json_dict({**SKEWED, "drift": {"rho": 0.9, "share": 0.8, "lags": [0.7, 0.6, 0.5, 0.4]}})
    assert law.drift == Drift(0.9, 0.8) and law == from_json_dict(SKEWED).with_drift(Drift(0.9, 0.8))
    assert law.to_json_dict()["drift"] == {"rho": 0.9, "share": 0.8}
    assert from_json_dict(law.to_json_dict()) == law and hash(from_json_dict(law.to_json_dict())) == hash(law)
    assert load_noise_json(write(tmp_path, law.to_json_dict())) == law
    assert from_json_dict(from_json_dict(SKEWED).to_json_dict()).drift is None       # "drift": null
    sim = simulated(1, SIGMAS, drift=Drift(0.5, 1))                                   # ints are numbers too
    assert from_json_dict(json.loads(json.dumps(sim.to_json_dict())), sigma_choices=SIGMAS) == sim
    edge = from_json_dict({**SKEWED, "drift": {"rho": 0, "share": 1}})
    assert edge.drift == Drift(0.0, 1.0) and edge.drift.thresholds == (0, 2**32)


def test_a_law_rejects_an_index_table_the_kernels_cannot_draw():
    with pytest.raises(ValueError, match="sigma_index"):
        NoiseLaw(shift_table(1), choice_table(3), (1.0, 2.0))
