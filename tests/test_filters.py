"""Classical temporal filters: each against scipy / numpy applied to the coordinates directly, or (one-euro)
against a plain per-sample implementation of the paper's algorithm; and read from rendered heatmaps."""
import math

import numpy as np
import pytest
import scipy.ndimage as ndi
import scipy.signal as sps
import torch

from posedenoise import ops
from posedenoise.models import build
from posedenoise.models.filters import FILTERS


def coords(B=6, T=5, K=25, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 56, (B, T, K, 2), generator=g).to(torch.float32)


def everywhere(xy):
    """Every keypoint present in every frame."""
    return torch.ones(xy.shape[:-1], dtype=torch.bool)


def one_euro_reference(series, min_cutoff, beta, d_cutoff=1.0):
    """Casiez et al.'s filter, one sample at a time, at one sample per frame."""
    def smoothing(cutoff):
        r = 2 * math.pi * cutoff
        return r / (r + 1)
    x_prev, dx_prev, out = series[0], 0.0, [series[0]]
    for x in series[1:]:
        dx = x - x_prev
        dx_hat = smoothing(d_cutoff) * dx + (1 - smoothing(d_cutoff)) * dx_prev
        a = smoothing(min_cutoff + beta * abs(dx_hat))
        x_hat = a * x + (1 - a) * x_prev
        out.append(x_hat)
        x_prev, dx_prev = x_hat, dx_hat
    return out


def expected(name, options, xy):
    """(B, T, K, 2) numpy -> what the filter must return, computed independently of posedenoise."""
    if name == "mean":
        return np.broadcast_to(xy.mean(1, keepdims=True), xy.shape)
    if name == "linear-fit":
        t = np.arange(xy.shape[1])
        out = np.empty_like(xy)
        for b, k, c in np.ndindex(xy.shape[0], xy.shape[2], 2):
            out[b, :, k, c] = np.polyval(np.polyfit(t, xy[b, :, k, c], 1), t)
        return out
    if name == "savgol":
        return sps.savgol_filter(xy, options.get("filter_window", 5), options["polyorder"], axis=1, mode="interp")
    if name == "gaussian":
        return ndi.gaussian_filter1d(xy, options["sigma"], axis=1, mode="nearest", truncate=4.0)
    if name == "median":
        return ndi.median_filter(xy, size=(1, options["filter_window"], 1, 1), mode="nearest")
    out = np.empty_like(xy)
    for b, k, c in np.ndindex(xy.shape[0], xy.shape[2], 2):
        out[b, :, k, c] = one_euro_reference(list(xy[b, :, k, c]), options["min_cutoff"], options["beta"])
    return out


SETTINGS = [(name, opts) for name, cls in FILTERS.items() for opts in (cls.grid() or [{}])]


@pytest.mark.parametrize("name,options", SETTINGS, ids=[f"{n}-{o}" for n, o in SETTINGS])
def test_filter_equals_its_independent_definition(name, options):
    xy = coords()
    out = build(name, **options).smooth(xy, everywhere(xy))
    np.testing.assert_allclose(out.numpy(), expected(name, options, xy.double().numpy()), rtol=0, atol=2e-4)


def test_filters_read_the_argmax_of_the_heatmaps_they_are_given():
    """From heatmaps rendered at known coordinates: the filter of those coordinates, as DeciWatch is scored."""
    xy = coords(B=2).to(torch.int64)
    maps = ops.render_heatmaps(xy, torch.ones(xy.shape[:-1], dtype=torch.bool), 2.0)
    for name, cls in FILTERS.items():
        f = build(name, **(cls.grid() or [{}])[-1])
        assert f.output_kind == "coords" and not list(f.parameters())
        torch.testing.assert_close(f(maps), f.smooth(xy.float(), everywhere(xy)), rtol=0, atol=0)


@pytest.mark.parametrize("name,options", SETTINGS, ids=[f"{n}-{o}" for n, o in SETTINGS])
def test_missing_frames_are_left_out_not_read_as_the_origin(name, options):
    """A frame where a keypoint is missing (its map all zero: argmax (0, 0)) takes the mean of the keypoint's
    present frames before filtering; a keypoint present in no frame comes back as it came."""
    xy = coords(B=8, seed=3)
    g = torch.Generator().manual_seed(4)
    present = torch.rand(xy.shape[:-1], generator=g) > 0.3
    present[0, :, 0] = False                                  # window 0, keypoint 0: missing in every frame
    present[1, :, 1] = True
    xy = xy * present[..., None]                              # what the argmax of an all-zero map reads
    a, p = xy.double().numpy(), present.numpy()
    mean = np.nanmean(np.where(p[..., None], a, np.nan), axis=1, keepdims=True)   # warns for keypoint 0
    filled = np.where(p[..., None] | np.isnan(mean), a, mean)
    want = np.array(expected(name, options, filled))
    want[0, :, 0] = a[0, :, 0]
    out = build(name, **options).smooth(xy, present)
    np.testing.assert_allclose(out.numpy(), want, rtol=0, atol=2e-4)
    if name == "mean":   # the present frames' average, exactly what a user means by "the mean"
        np.testing.assert_allclose(out[1, 0, 1].numpy(), a[1, :, 1].mean(0), rtol=0, atol=1e-5)


def test_filters_read_a_missing_keypoint_from_its_all_zero_map_and_from_triples_alike():
    """Heatmaps with missing keypoints (all-zero maps) and the (x, y, present) triples the trainer feeds
    coordinate models give the same filtered coordinates."""
    from posedenoise.models.inputs import as_triples, read_coords
    xy = coords(B=3, seed=5).to(torch.int64)
    present = torch.rand(xy.shape[:-1], generator=torch.Generator().manual_seed(6)) > 0.25
    maps = ops.render_heatmaps(xy, present, 1.5)
    got_xy, got_present = read_coords(maps)
    assert torch.equal(got_present, present)
    assert torch.equal(got_xy, (xy * present[..., None]).float())
    triples = as_triples(xy, present)
    for name in FILTERS:
        torch.testing.assert_close(build(name)(maps), build(name)(triples), rtol=0, atol=0)


def test_linear_filters_pass_a_straight_line_and_constants_through():
    t = torch.arange(5, dtype=torch.float32)
    line = (3.0 + 2.5 * t)[None, :, None, None].expand(1, 5, 25, 2)
    for name in ("linear-fit", "savgol"):
        torch.testing.assert_close(build(name).smooth(line, everywhere(line)), line)
    const = torch.full((1, 5, 25, 2), 17.0)
    for name, cls in FILTERS.items():
        for options in cls.grid() or [{}]:
            torch.testing.assert_close(build(name, **options).smooth(const, everywhere(const)), const, msg=f"{name} {options}")


@pytest.mark.parametrize("name,options,match", [
    ("savgol", {"polyorder": 5}, "polyorder"), ("savgol", {"filter_window": 4}, "odd"),
    ("gaussian", {"sigma": 0.0}, "sigma"), ("median", {"filter_window": 2}, "odd"),
    ("one-euro", {"min_cutoff": 0.0}, "min_cutoff"),
])
def test_bad_filter_options_name_the_option(name, options, match):
    with pytest.raises(ValueError, match=match):
        build(name, **options)


def test_filter_bank_scores_filters_as_evaluate_scores_a_coordinate_model():
    """One pass over a split for every filter gives what evaluate() gives each filter (and the identity)
    as a model, batch size aside."""
    from posedenoise.data import open_data
    from posedenoise.evaluation import SETUPS, evaluate, filter_bank
    data = open_data("synthetic", step=1, num_windows=100)
    noise = dict(k=1.0, sigma_choices=SETUPS[1]["sigma_choices"], seed=3)
    dev = torch.device("cpu")
    filters = {"mean": build("mean"), "g1": build("gaussian", sigma=1.0)}
    bank = filter_bank(data, "val", dev, filters, batch_size=7, **noise)
    for label, f in filters.items():
        alone = evaluate(f, "coords", data, "val", dev, batch_size=5, **noise)
        assert torch.equal(bank[label]["pck"].hits, alone["pck"].hits)
        assert bank[label]["loss"] == pytest.approx(alone["loss"], rel=1e-6)   # float32 batch means
        assert torch.equal(bank["identity"]["pck"].hits, alone["identity"].hits)


def test_fit_filters_chooses_on_validation_only_and_by_the_highest_pck(monkeypatch):
    from posedenoise import evaluation
    from posedenoise.data import Batches, open_data
    data = open_data("synthetic", step=1, num_windows=100)
    noise = dict(k=2.0, sigma_choices=evaluation.SETUPS[1]["sigma_choices"], seed=1)
    seen = []
    real_init = Batches.__init__
    monkeypatch.setattr(Batches, "__init__", lambda self, d, split, *a, **kw: (seen.append(split),
                                                                             real_init(self, d, split, *a, **kw))[1])
    fitted = evaluation.fit_filters(data, torch.device("cpu"), **noise)
    assert set(seen) == {"val"}
    # every setting scored separately: the chosen one has the highest mean validation PCK of its filter
    for name, cls in FILTERS.items():
        settings = cls.grid() or [{}]
        scores = evaluation.filter_bank(data, "val", torch.device("cpu"),
                                        {str(i): build(name, **o) for i, o in enumerate(settings)}, **noise)
        pcks = [scores[str(i)]["pck"].overall.mean().item() for i in range(len(settings))]
        best_pck = max(pcks)
        assert fitted["filters"][name]["options"] in [o for o, p in zip(settings, pcks) if p == best_pck], name
    mean_pck = {n: np.mean(list(f["val_pck"].values())) for n, f in fitted["filters"].items()}
    assert mean_pck[fitted["best"]] == max(mean_pck.values())
    # with k = 2 (shifts of ~6 px) the best filter beats the noisy input by far
    assert fitted["filters"][fitted["best"]]["val_pck"]["0.2"] > scores["identity"]["pck"].overall[2] + 0.05
