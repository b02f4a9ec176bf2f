"""What training, evaluation and the experiment grid share: setups, batches, the loss and the test report.

Conventions: heatmaps (B, T, K, 56, 56); coordinates (B, T, K, 2) as (x, y) pixels; visible (B, T, K).
"""
from __future__ import annotations

import math
from typing import Dict, Optional

import torch

from . import ops
from .data import Batches
from .layout import POSE25
from .metrics import PCKResult

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
                k: float, sigma_choices, seed: int, epoch: int, backend=None):
    """(x, y) of a batch of windows, in one fused launch: the noisy input heatmaps, and the clean target
    heatmaps where the model outputs heatmaps. Coordinate models (DeciWatch) are scored against the clean
    coordinates, so their y is None: rendering it would be half of the data path for nothing (data path
    measured on a 2-core CPU: 6.9% of a DeciWatch step with targets, 3.9-4.4% without). No host round trip:
    the tables are on the device already, and values were checked where the batch was born (Batches)."""
    return ops.noisy_pair(coords, visible, window_ids, k=k, sigma_choices=sigma_choices, seed=seed, epoch=epoch,
                          targets=output_kind != "coords", backend=backend)


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


@torch.no_grad()
def evaluate(net, output_kind: str, data, split: str, dev: torch.device, *, batch_size: int, k: float,
             sigma_choices, seed: int, backend=None, rank: int = 0, world: int = 1, show: bool = False) -> dict:
    """Loss and PCK of `net` on a split, with the identity baseline (the noisy input itself), under the
    split's fixed noise (epoch EVAL_EPOCH). Under DDP each rank evaluates its share; sums are all-reduced.
    -> {"loss": float, "pck": PCKResult, "identity": PCKResult}"""
    net.eval()
    # Sums stay on the device and are read once, after the loop: no sync per batch.
    loss_sum, n_el = torch.zeros((), dtype=torch.float64, device=dev), 0
    model_pck, identity_pck = PCKResult.zeros(ALPHAS, len(POSE25), dev), PCKResult.zeros(ALPHAS, len(POSE25), dev)
    batches = Batches(data, split, batch_size, dev, epoch=EVAL_EPOCH, seed=seed, shuffle=False, drop_last=False,
                      rank=rank, world=world)
    if show:
        from tqdm import tqdm
        batches = tqdm(batches, desc=split, unit="batch", leave=False, dynamic_ncols=True)
    for coords, visible, wid in batches:
        x, y = model_batch(coords, visible, wid, output_kind, k=k, sigma_choices=sigma_choices, seed=seed,
                           epoch=EVAL_EPOCH, backend=backend)
        out = net(x)
        loss = masked_mse(out, y, coords, visible, output_kind)
        loss_sum, n_el = loss_sum + loss.detach().double() * out.numel(), n_el + out.numel()
        gt = coords.to(torch.float32)
        if output_kind == "coords":
            p = ops.pck(out, gt, visible, alphas=ALPHAS)
        else:
            p = ops.pck_from_heatmaps(out, gt, visible, alphas=ALPHAS)
        i = ops.pck_from_heatmaps(x, gt, visible, alphas=ALPHAS)
        model_pck, identity_pck = model_pck + p, identity_pck + i
    if world > 1:
        import torch.distributed as dist
        t = torch.stack([loss_sum, torch.tensor(float(n_el), dtype=torch.float64, device=dev)])
        dist.all_reduce(t)
        loss_sum, n_el = t[0], int(t[1])
        model_pck, identity_pck = model_pck.all_reduce(), identity_pck.all_reduce()
    return {"loss": float(loss_sum) / max(n_el, 1), "pck": model_pck.cpu(), "identity": identity_pck.cpu()}


def test_report(model: str, setup: int, k: float, best_epoch, test: dict) -> dict:
    """test.json: PCK of the model and of the identity baseline, per keypoint, threshold distances."""
    per_kp = test["pck"].per_keypoint[:, ALPHAS.index(0.2)].tolist()
    groups = test["pck"].per_group()
    return {
        "model": model, "setup": setup, "k": k, "best_epoch": best_epoch,
        "test_loss": test["loss"],
        "pck": overall_dict(test["pck"]), "identity_pck": overall_dict(test["identity"]),
        "per_keypoint_pck": {name: _num(v) for name, v in zip(POSE25, per_kp)},
        "per_group_pck": {g: _num(v[ALPHAS.index(0.2)]) for g, v in groups.items()},
        "identity_per_group_pck": {g: _num(v[ALPHAS.index(0.2)]) for g, v in test["identity"].per_group().items()},
        "mean_threshold_px": {f"{a:g}": _num(v) for a, v in zip(ALPHAS, test["pck"].mean_threshold.tolist())},
        "keypoints_counted": int(test["pck"].counts.sum()),
    }


def fmt(v: Optional[float], digits: int = 4) -> str:
    """A metric for people: "n/a" where nothing was counted (None, e.g. PCK with no countable keypoint)."""
    return "n/a" if v is None else f"{v:.{digits}f}"


def format_test_table(report: dict) -> str:
    """A Markdown table: PCK of the model and the identity baseline, and the threshold distances."""
    head = "| | " + " | ".join(f"PCK@{a:g}" for a in ALPHAS) + " |"
    rows = [head, "|---|" + "---|" * len(ALPHAS)]
    rows.append(f"| {report['model']} | " + " | ".join(fmt(report["pck"][f"{a:g}"]) for a in ALPHAS) + " |")
    rows.append("| identity (noisy input) | " + " | ".join(fmt(report["identity_pck"][f"{a:g}"]) for a in ALPHAS) + " |")
    rows.append("| mean threshold (px) | " + " | ".join(fmt(report["mean_threshold_px"][f"{a:g}"], 2)
                                                        for a in ALPHAS) + " |")
    best = "n/a" if report["best_epoch"] is None else report["best_epoch"]
    title = (f"test: {report['model']}, setup {report['setup']}, k = {report['k']:g}, best epoch "
             f"{best}, {report['keypoints_counted']} keypoints counted")
    return title + "\n" + "\n".join(rows)
