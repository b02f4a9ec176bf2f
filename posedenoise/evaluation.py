"""What training, evaluation and the experiment grid share: setups, batches, the loss and the test report.

Conventions: heatmaps (B, T, K, 56, 56); coordinates (B, T, K, 2) as (x, y) pixels; visible (B, T, K).
"""
from __future__ import annotations

import json
import math
from typing import Dict, Optional

import torch

from . import ops
from .data import Batches
from .data.paired import is_paired_data
from .layout import POSE25
from .metrics import PCKResult
from .models.inputs import as_triples, input_kind, read_coords

ALPHAS = (0.05, 0.1, 0.2)
SIGMA_CHOICES = (1.0, 1.5, 2.0, 2.5, 3.0)
# The study's setups: sigma_in per frame from SIGMA_CHOICES (1, 3) or fixed at 1 (2); setup 3 at half frame rate.
SETUPS: Dict[int, dict] = {
    1: {"sigma_choices": SIGMA_CHOICES, "step": 1},
    2: {"sigma_choices": None, "step": 1},
    3: {"sigma_choices": SIGMA_CHOICES, "step": 2},
}
EVAL_EPOCH = 0  # validation and test noise is fixed, so curves compare across epochs


def model_batch(coords: torch.Tensor, visible: torch.Tensor, window_ids: torch.Tensor, output_kind: str, *,
                k: Optional[float] = None, sigma_choices=ops.UNSET, seed: int, epoch: int, backend=None,
                noise: Optional[ops.NoiseLaw] = None, input_kind: str = "heatmaps"):
    """(x, y) of a batch of windows, in one fused launch: the noisy input heatmaps, and the clean target
    heatmaps where the model outputs heatmaps. Coordinate models (DeciWatch) are scored against the clean
    coordinates, so their y is None: rendering it would be half of the data path for nothing (data path
    measured on a 2-core CPU: 6.9% of a DeciWatch step with targets, 3.9-4.4% without). A model that reads
    coordinates (input_kind "coords") gets the noisy keypoints themselves as (x, y, present) triples
    (models/inputs.py): the same values as the argmax of the rendered maps, without rendering them. No host
    round trip: the tables are on the device already, and values were checked where the batch was born
    (Batches). noise: a NoiseLaw (e.g. measured, posedenoise.noise.load_noise_json) drawn instead of k and
    sigma_choices' simulated law (ops.noisy_pair)."""
    law = dict(k=k, sigma_choices=sigma_choices, seed=seed, epoch=epoch, backend=backend, noise=noise)
    if input_kind == "coords":
        if output_kind != "coords":
            raise ValueError("a model that reads coordinates must output coordinates")
        noisy, _ = ops.simulate_noise(coords, visible, window_ids, **law)
        return as_triples(noisy, visible), None
    return ops.noisy_pair(coords, visible, window_ids, targets=output_kind != "coords", **law)


def masked_mse(pred: torch.Tensor, target: torch.Tensor, coords: torch.Tensor, visible: torch.Tensor,
               output_kind: str) -> torch.Tensor:
    """The study's loss: squared error with missing keypoints contributing nothing (the study set their
    targets to the prediction), averaged over all elements.

    heatmaps: pred, target (B, T, K, H, W). coords: pred (B, T, K, 2) against the clean coords (target unused).
    """
    if output_kind == "coords":
        target = coords.to(pred.dtype)
    mask = visible.reshape(visible.shape + (1,) * (pred.dim() - visible.dim())).to(pred.dtype)
    return ((pred - target).square() * mask).mean()


def overall_dict(result) -> Dict[str, float]:
    return {f"{a:g}": _num(v) for a, v in zip(ALPHAS, result.overall.tolist())}


def _num(v) -> Optional[float]:
    """A JSON number, or None where nothing was counted (NaN); accepts floats and 0-d tensors."""
    if v is None:
        return None
    v = float(v)
    return None if math.isnan(v) else round(v, 6)


class _Sums:
    """Loss and PCK sums per label, kept on the device while batches are added (no sync per batch) and read
    once, after summing over DDP ranks (every rank reads every label, an empty share included)."""

    def __init__(self, dev: torch.device, labels):
        self.dev = dev
        self.loss = {label: torch.zeros(2, dtype=torch.float64, device=dev) for label in labels}  # sum, elements
        self.pck = {label: PCKResult.zeros(ALPHAS, len(POSE25), dev) for label in labels}

    def add(self, label: str, out: torch.Tensor, y, coords, visible, output_kind: str, loss: bool = True):
        """out: a model's output for the batch (heatmaps or coordinates); y: the target heatmaps (or None)."""
        gt = coords.to(torch.float32)
        if output_kind == "coords":
            self.pck[label] = self.pck[label] + ops.pck(out, gt, visible, alphas=ALPHAS)
        else:
            self.pck[label] = self.pck[label] + ops.pck_from_heatmaps(out, gt, visible, alphas=ALPHAS)
        if loss:
            mse = masked_mse(out, y, coords, visible, output_kind).detach().double()
            self.loss[label] = self.loss[label] + torch.stack([mse * out.numel(), mse.new_tensor(out.numel())])

    def read(self, world: int = 1) -> Dict[str, dict]:
        """{label: {"loss": float (None where nothing was scored), "pck": PCKResult on the host}}."""
        out = {}
        for label, pck in self.pck.items():
            t = self.loss[label]
            if world > 1:
                import torch.distributed as dist
                dist.all_reduce(t)
                pck = pck.all_reduce()
            total, n = t.tolist()
            out[label] = {"loss": total / n if n else None, "pck": pck.cpu()}
        return out


def _eval_batches(data, split, dev, batch_size, seed, rank, world, show):
    batches = Batches(data, split, batch_size, dev, epoch=EVAL_EPOCH, seed=seed, shuffle=False, drop_last=False,
                      rank=rank, world=world)
    if show:
        from tqdm import tqdm
        return tqdm(batches, desc=split, unit="batch", leave=False, dynamic_ncols=True)
    return batches


def run_noise(config: dict) -> dict:
    """The noise arguments (for batch_inputs, evaluate, ...) of a run's config: its measured law (train
    --noise, recorded as noise_law, with the file's drift if it has one), else k and the setup's sigma
    choices; train --drift (recorded as drift, "RHO,SHARE") sets the law's drift, overriding the file's; with
    its seed and backend. The one place a run's noise law is built from its config."""
    from .noise import Drift, NoiseLaw, from_json_dict
    setup = SETUPS[config["setup"]]
    common = dict(seed=config["seed"], backend=config.get("backend"),
                  crop=(config.get("crop_scale", 1.0), config.get("crop_shift", 0)))
    drift = Drift.parse(config["drift"]) if config.get("drift") else None
    if config.get("noise_law"):
        law = from_json_dict(config["noise_law"], sigma_choices=setup["sigma_choices"],
                             source=config.get("noise") or "noise_law")
        return common | {"noise": law if drift is None else law.with_drift(drift)}
    if drift is not None:
        return common | {"noise": NoiseLaw.simulated(config["k"], setup["sigma_choices"], drift=drift)}
    return common | {"k": config["k"], "sigma_choices": setup["sigma_choices"]}


def batch_inputs(data, coords: torch.Tensor, visible: torch.Tensor, window_ids: torch.Tensor, output_kind: str, *,
                 epoch: int, input_kind: str = "heatmaps", crop=(1.0, 0), **noise):
    """(x, y, coords) of a batch of `data`'s windows: model_batch's simulated noise (noise: its k,
    sigma_choices, seed, backend, ...), or for paired data (a PairedDataset) the estimator's own maps as x,
    with the clean target rendered as the simulation renders it (sigma 1; None for coordinate models).
    crop (scale, shift): an imperfect person crop (ops.crop_jitter) moves the clean keypoints first, so the
    returned coords, not the cache's, are what a prediction is scored against; (1.0, 0) is the exact crop."""
    if not is_paired_data(data):
        if tuple(crop) != (1.0, 0):
            coords = ops.crop_jitter(coords, window_ids, scale=crop[0], shift=crop[1], seed=noise["seed"],
                                     epoch=epoch)
        return (*model_batch(coords, visible, window_ids, output_kind, epoch=epoch, input_kind=input_kind, **noise),
                coords)
    y = None if output_kind == "coords" else ops.render_heatmaps(coords, visible, 1.0, backend=noise.get("backend"))
    # A coordinate model (and every filter) reads the estimator's own sub-pixel keypoints, not an argmax.
    return (data.triples(window_ids) if input_kind == "coords" else data.inputs(window_ids)), y, coords


@torch.no_grad()
def evaluate(net, output_kind: str, data, split: str, dev: torch.device, *, batch_size: int, seed: int,
             rank: int = 0, world: int = 1, show: bool = False, **noise) -> dict:
    """Loss and PCK of `net` on a split, with the identity baseline (the noisy input itself), under the
    split's fixed noise (epoch EVAL_EPOCH; noise: batch_inputs' arguments). Under DDP each rank evaluates its
    share; sums are all-reduced. -> {"loss": float, "pck": PCKResult, "identity": PCKResult}"""
    net.eval()
    sums = _Sums(dev, ("model", "identity"))
    kind = input_kind(net)
    for coords, visible, wid in _eval_batches(data, split, dev, batch_size, seed, rank, world, show):
        x, y, coords = batch_inputs(data, coords, visible, wid, output_kind, epoch=EVAL_EPOCH, seed=seed,
                                    input_kind=kind, **noise)
        sums.add("model", net(x), y, coords, visible, output_kind)
        identity = (x, "heatmaps") if x.dim() == 5 else (read_coords(x)[0], "coords")
        sums.add("identity", identity[0], None, coords, visible, identity[1], loss=False)
    r = sums.read(world)
    return {"loss": r["model"]["loss"] or 0.0, "pck": r["model"]["pck"], "identity": r["identity"]["pck"]}


# Classical filters (models/filters.py): a few hyper-parameters, chosen on the validation split.
FILTER_BATCH = 256  # windows per batch when only filters run: cheap per window, so fewer, larger batches


@torch.no_grad()
def filter_bank(data, split: str, dev: torch.device, filters: Dict[str, torch.nn.Module], *, seed: int,
                rank: int = 0, world: int = 1, show: bool = False, batch_size: int = FILTER_BATCH,
                **noise) -> Dict[str, dict]:
    """Loss and PCK on a split of every filter in `filters` ({label: filter}) and of "identity" (the noisy
    argmax), under the split's fixed noise, in one pass: each batch is rendered and its argmax read once.
    -> {label: {"loss": float, "pck": PCKResult}}"""
    sums = _Sums(dev, ["identity", *filters])
    for coords, visible, wid in _eval_batches(data, split, dev, batch_size, seed, rank, world, show):
        x, _, coords = batch_inputs(data, coords, visible, wid, "coords", epoch=EVAL_EPOCH, seed=seed,
                                    input_kind="coords", **noise)
        xy, present = read_coords(x)                                       # (B, T, K, 2), what filters read
        sums.add("identity", xy, None, coords, visible, "coords")
        for label, f in filters.items():
            sums.add(label, f.smooth(xy, present), None, coords, visible, "coords")
    return sums.read(world)


def fit_filters(data, dev: torch.device, fixed: Optional[Dict[str, dict]] = None, **noise_and_ranks) -> dict:
    """Each classical filter's hyper-parameters chosen on the validation split, and the best filter: the
    highest validation PCK averaged over ALPHAS (what the reports compare; the lower loss breaks ties; the
    first setting of the GRID on full ties). Never looks at test. (A learned model's checkpoint is chosen by
    validation loss; picking filters by PCK can only make the baseline stronger.) `fixed` ({name: options},
    e.g. from --model-arg) fits only those filters, holding the options given and tuning the rest.
    -> {"filters": {name: {"options": dict, "val_loss": float, "val_pck": {alpha: PCK}}}, "best": name}"""
    from .models import build
    from .models.filters import FILTERS
    fixed = fixed if fixed is not None else {name: {} for name in FILTERS}
    settings = {f"{name} {json.dumps(opts, sort_keys=True)}": (name, opts)
                for name, held in fixed.items()
                for opts in ({**g, **held} for g in (FILTERS[name].grid() or [{}]))}
    val = filter_bank(data, "val", dev, {label: build(name, **opts) for label, (name, opts) in settings.items()},
                      **noise_and_ranks)

    def score(label):  # larger is better; NaN (nothing counted) ranks last
        pck, loss = val[label]["pck"].overall.mean().item(), val[label]["loss"]
        return (-math.inf if math.isnan(pck) else pck, -math.inf if loss is None else -loss)

    chosen = {}
    for label, (name, opts) in settings.items():
        if name not in chosen or score(label) > score(chosen[name]):
            chosen[name] = label
    filters = {name: {"options": settings[label][1], "val_loss": val[label]["loss"],
                      "val_pck": overall_dict(val[label]["pck"])} for name, label in chosen.items()}
    best = max(chosen, key=lambda name: score(chosen[name]))
    return {"filters": filters, "best": best if score(chosen[best])[0] > -math.inf else None}


def filter_test(data, dev: torch.device, fitted: dict, split: str = "test", **noise_and_ranks) -> Dict[str, dict]:
    """The fitted filters (fit_filters) and the identity on `split`: {name: {"loss", "pck"}}."""
    from .models import build
    filters = {name: build(name, **f["options"]) for name, f in fitted["filters"].items()}
    return filter_bank(data, split, dev, filters, **noise_and_ranks)


def test_report(model: str, setup: int, k: float, best_epoch, test: dict, filters: Optional[dict] = None,
                paired: bool = False, noise: Optional[str] = None) -> dict:
    """test.json: PCK of the model and of the identity baseline, per keypoint, threshold distances; with
    `filters` (fit_filters on val, plus "test": filter_test's results), every classical filter's test PCK,
    the best one (chosen on val) and the model's margin over it."""
    per_kp = test["pck"].per_keypoint[:, ALPHAS.index(0.2)].tolist()
    groups = test["pck"].per_group()
    report = {
        "model": model, "setup": setup, "k": k, "best_epoch": best_epoch,
        "input": "estimator" if paired else "simulated",   # paired data: the identity is the estimator itself
        "noise": noise,                                     # train --noise: the measured law's file (else k)
        "test_loss": test["loss"],
        "pck": overall_dict(test["pck"]), "identity_pck": overall_dict(test["identity"]),
        "per_keypoint_pck": {name: _num(v) for name, v in zip(POSE25, per_kp)},
        "per_group_pck": {g: _num(v[ALPHAS.index(0.2)]) for g, v in groups.items()},
        "identity_per_group_pck": {g: _num(v[ALPHAS.index(0.2)]) for g, v in test["identity"].per_group().items()},
        "mean_threshold_px": {f"{a:g}": _num(v) for a, v in zip(ALPHAS, test["pck"].mean_threshold.tolist())},
        "keypoints_counted": int(test["pck"].counts.sum()),
    }
    if filters:
        report["filters"] = {name: {**{k_: f[k_] for k_ in ("options", "val_loss", "val_pck")},
                                    "test_loss": filters["test"][name]["loss"],
                                    "pck": overall_dict(filters["test"][name]["pck"])}
                             for name, f in filters["filters"].items()}
        best = filters["best"]
        report["best_filter"] = best
        report["best_filter_pck"] = report["filters"][best]["pck"] if best else None
        report["margin_over_best_filter"] = {a: _margin(report["pck"][a], (report["best_filter_pck"] or {}).get(a))
                                             for a in report["pck"]}
    return report


def _margin(a, b):
    return None if a is None or b is None else round(a - b, 6)


def fmt(v: Optional[float], digits: int = 4, sign: bool = False) -> str:
    """A metric for people: "n/a" where nothing was counted (None, e.g. PCK with no countable keypoint)."""
    return "n/a" if v is None else f"{v:{'+' if sign else ''}.{digits}f}"


def filter_label(name: str, options: dict) -> str:
    """"savgol (polyorder=2)": a filter with the hyper-parameters validation chose."""
    return name + (" (" + ", ".join(f"{k}={v:g}" for k, v in options.items()) + ")" if options else "")


def format_test_table(report: dict) -> str:
    """A Markdown table: PCK of the model, the identity baseline and the best classical filter (chosen on
    validation) with the model's margin over it, and the threshold distances."""
    head = "| | " + " | ".join(f"PCK@{a:g}" for a in ALPHAS) + " |"
    rows = [head, "|---|" + "---|" * len(ALPHAS)]
    row = lambda label, values, **kw: f"| {label} | " + " | ".join(  # noqa: E731
        fmt(values.get(f"{a:g}"), **kw) for a in ALPHAS) + " |"
    rows.append(row(report["model"], report["pck"]))
    estimator = report.get("input") == "estimator"
    rows.append(row("identity (the estimator's output)" if estimator else "identity (noisy input)",
                    report["identity_pck"]))
    if report.get("best_filter"):
        best = report["filters"][report["best_filter"]]
        rows.append(row(f"best classical filter: {filter_label(report['best_filter'], best['options'])}", best["pck"]))
        rows.append(row(f"{report['model']} minus the best filter", report["margin_over_best_filter"], sign=True))
    rows.append(row("mean threshold (px)", report["mean_threshold_px"], digits=2))
    best = "n/a" if report["best_epoch"] is None else report["best_epoch"]
    noise = ("the estimator's own output (paired data)" if estimator else
             f"setup {report['setup']}, measured noise {report['noise']}" if report.get("noise") else
             f"setup {report['setup']}, k = {report['k']:g}")
    title = f"test: {report['model']}, {noise}, best epoch {best}, {report['keypoints_counted']} keypoints counted"
    return title + "\n" + "\n".join(rows)
