"""Test a trained model: python -m posedenoise.evaluate RUN_DIR_OR_CHECKPOINT [flags]

Prints PCK@0.05/0.1/0.2 of the model and of the identity baseline (the noisy input), per keypoint group,
and the mean threshold distances, on the run's own test split (same data, seed, setup and k as training)
or on another dataset given with --data; writes the report as JSON.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Optional

from . import cli
if __name__ == "__main__":   # a command, not an import: set how OpenMP waits before torch loads OpenMP
    cli.openmp_wait_policy()

import torch

from . import files
from .data import DataError, open_data
from .evaluation import SETUPS, evaluate, fmt, format_test_table, test_report
from .models import build

PROG = "posedenoise.evaluate"

@dataclass
class EvaluateConfig:
    run: str = field(default="", metadata={"help": "a run directory (uses checkpoints/best.pt) or a checkpoint file"})
    data: Optional[str] = field(default=None, metadata={
        "help": "evaluate on this data instead of the run's (a cache file, a BRACE or Penn Action folder, or 'synthetic')"})
    split: str = field(default="test", metadata={"help": "which split", "choices": ["train", "val", "test"]})
    device: str = field(default="auto", metadata={"help": "where to run", "choices": ["auto", "cpu", "cuda"]})
    batch_size: int = field(default=32, metadata={"help": "windows per batch"})
    out: Optional[str] = field(default=None, metadata={
        "help": "JSON report path (default: evaluate-<split>.json beside the checkpoint's run)"})


def load_checkpoint(path: str, device="cpu", prog: str = PROG):
    """(state, path of the checkpoint) for a run directory or a checkpoint file; one-line errors as `prog`."""
    ckpt = os.path.join(path, "checkpoints", "best.pt") if os.path.isdir(path) else path
    if not os.path.isfile(ckpt):
        cli.fail(prog, f"{path}: expected a run directory with checkpoints/best.pt or a .pt file")
    try:
        state = torch.load(ckpt, map_location=device, weights_only=False)
    except Exception as e:  # truncated or foreign file
        cli.fail(prog, f"{ckpt}: not a readable checkpoint ({type(e).__name__}: {e})")
    if not isinstance(state, dict) or "config" not in state or "model" not in state:
        cli.fail(prog, f"{ckpt}: not a posedenoise checkpoint (expected keys 'config' and 'model')")
    return state, ckpt


def model_from_state(state, device):
    model = build(state["config"]["model"]).to(device)
    model.load_state_dict(state["model"])
    model.eval()
    return model


def main(argv=None):
    cfg = cli.parse(EvaluateConfig, argv, PROG, __doc__.split("\n\n")[0], positional=("run",))
    dev = cli.device(PROG, cfg.device)
    state, ckpt = load_checkpoint(cfg.run, dev)
    tc = state["config"]
    model = model_from_state(state, dev)
    setup = SETUPS[tc["setup"]]
    try:
        data = open_data(cfg.data or tc["data"], step=setup["step"], split=tc["split"], seed=tc["seed"],
                         num_windows=tc["num_windows"] if cfg.data is None else None)
    except DataError as e:
        cli.fail(PROG, f"--data: {e}")
    result = evaluate(model, model.output_kind, data, cfg.split, dev, batch_size=cfg.batch_size, k=tc["k"],
                      sigma_choices=setup["sigma_choices"], seed=tc["seed"], backend=tc.get("backend"))
    # A checkpoint counts epochs from 0; reports (metrics.jsonl, test.json) from 1.
    epoch = state["epoch"] + 1 if state.get("epoch") is not None else None
    report = test_report(tc["model"], tc["setup"], tc["k"], epoch, result)
    report.update(checkpoint=ckpt, data=cfg.data or tc["data"], split=cfg.split)
    print(format_test_table(report))
    print("per keypoint group, PCK@0.2:")
    for g, v in report["per_group_pck"].items():
        print(f"  {g:9s} {fmt(v):>8}   identity {fmt(report['identity_per_group_pck'][g]):>8}")
    run_dir = os.path.dirname(os.path.dirname(os.path.abspath(ckpt)))
    out = cfg.out or os.path.join(run_dir, f"evaluate-{cfg.split}.json")
    files.write_json(out, report)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
