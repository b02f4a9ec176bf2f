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
from .data.paired import is_paired_data
from .sequences import image_table, paired_image_report
from .evaluation import SETUPS, evaluate, filter_test, fit_filters, fmt, format_test_table, run_noise, test_report
from .models import MODELS, from_config

PROG = "posedenoise.evaluate"

@dataclass
class EvaluateConfig:
    run: str = field(default="", metadata={"help": "a run directory (uses checkpoints/best.pt) or a checkpoint file"})
    data: Optional[str] = field(default=None, metadata={
        "help": "evaluate on this data instead of the run's (a cache file, a BRACE or Penn Action folder, or "
                "'synthetic'); where the run's data is gone, its new location (the run's windows are used)"})
    split: str = field(default="test", metadata={"help": "which split", "choices": ["train", "val", "test"]})
    device: str = field(default="auto", metadata={"help": "where to run", "choices": ["auto", "cpu", "cuda"]})
    batch_size: int = field(default=32, metadata={"help": "windows per batch"})
    out: Optional[str] = field(default=None, metadata={
        "help": "JSON report path (default: evaluate-<split>.json in the run directory, or beside a checkpoint "
                "file that is not in a run's checkpoints/)"})

    def __post_init__(self):
        if self.batch_size < 1:
            raise cli.InputError(f"--batch-size: expected a positive integer, got {self.batch_size}")


# What evaluate reads from a checkpoint's config besides model and setup, which every reader needs (train
# writes all of it).
EVALUATE_NEEDS = ("k", "data", "seed", "split", "num_windows")


def load_checkpoint(path: str, device="cpu", needs=EVALUATE_NEEDS):
    """(state, path of the checkpoint) for a run directory or a checkpoint file whose config holds model, setup
    and `needs`; InputError, naming the file, for anything else."""
    ckpt = os.path.join(path, "checkpoints", "best.pt") if os.path.isdir(path) else path
    if not os.path.isfile(ckpt):
        raise cli.InputError(f"{path}: expected a run directory with checkpoints/best.pt or a .pt file")
    try:
        state = torch.load(ckpt, map_location=device, weights_only=False)
    except Exception as e:  # truncated or foreign file: whatever unpickling raises
        raise cli.InputError(f"{ckpt}: not a readable checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(state, dict) or not isinstance(state.get("config"), dict) or "model" not in state:
        raise cli.InputError(f"{ckpt}: not a posedenoise checkpoint (expected keys 'config' and 'model')")
    config = state["config"]
    missing = [k for k in ("model", "setup", *needs) if k not in config]
    if missing:
        raise cli.InputError(f"{ckpt}: not a posedenoise checkpoint (its config lacks {missing})")
    if config["model"] not in MODELS or config["setup"] not in SETUPS:
        raise cli.InputError(f"{ckpt}: model {config['model']!r}, setup {config['setup']!r}: expected a model of "
                             f"{sorted(MODELS)} and a setup of {sorted(SETUPS)}")
    return state, ckpt


def model_from_state(state, device, ckpt: str):
    """The model of a checkpoint from load_checkpoint, in eval mode; InputError if its weights do not fit."""
    try:
        model = from_config(state["config"]).to(device)
    except cli.InputError as e:   # the options recorded in the checkpoint (--model-arg) no longer build it
        raise cli.InputError(f"{ckpt}: {e}") from None
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:   # load_state_dict's error for weights of another shape or architecture
        raise cli.InputError(f"{ckpt}: its weights do not fit the model {state['config']['model']!r} "
                             f"({' '.join(str(e).split())[:300]})") from None
    model.eval()
    return model


def data_to_read(data: Optional[str], recorded: dict, ckpt: str):
    """(data spec, num_windows) to evaluate on. No --data: the run's own data and windows. --data while the
    run's data is gone: the run's data moved there (the run's windows); otherwise another dataset (all of it)."""
    run_data = recorded["data"]
    there = run_data == "synthetic" or os.path.exists(run_data)
    if data is None:
        if not there:
            raise cli.InputError(f"{ckpt}: the run's data {run_data} is not there (moved, or a path relative to "
                                 "where it was trained); give its location with --data")
        return run_data, recorded["num_windows"]
    if there:
        return data, None
    cli.warn(PROG, f"--data: the run's data {run_data} is gone; reading it from {data} with the run's windows")
    return data, recorded["num_windows"]


def open_run(path: str, dev, data: Optional[str], out: Optional[str], default_out: str, what: str):
    """What a command that reads a run needs (evaluate, inspect), every input checked before any work:
    (its state, its checkpoint's path, its model in eval mode, its data (or --data's), its noise arguments,
    the output path). The
    output defaults to `default_out` in the run directory, or beside a checkpoint not in a run's checkpoints/;
    `what` names it in errors."""
    state, ckpt = load_checkpoint(path, dev)
    tc = state["config"]
    cli.check_backend(tc.get("backend"), dev, label="the run's --backend")
    folder = os.path.dirname(os.path.abspath(ckpt))   # a run's checkpoints/, or wherever a loose .pt lies
    run_dir = os.path.dirname(folder) if os.path.basename(folder) == "checkpoints" else folder
    path_out = out or os.path.join(run_dir, default_out)
    cli.check_output(path_out, "--out" if out else f"{what} (choose another with --out)")
    model = model_from_state(state, dev, ckpt)
    spec, num_windows = data_to_read(data, tc, ckpt)
    try:
        dataset = open_data(spec, step=SETUPS[tc["setup"]]["step"], split=tc["split"], seed=tc["seed"],
                            num_windows=num_windows)
    except DataError as e:
        raise cli.InputError(f"{'--data' if data else 'the data of the run'}: {e}") from None
    return state, ckpt, model, dataset, run_noise(tc), path_out


@cli.command(PROG)
def main(argv=None):
    cfg = cli.parse(EvaluateConfig, argv, PROG, __doc__.split("\n\n")[0], positional=("run",))
    dev = cli.device(cfg.device)
    state, ckpt, model, data, noise, out = open_run(cfg.run, dev, cfg.data, cfg.out, f"evaluate-{cfg.split}.json",
                                                    "report")
    tc = state["config"]
    result = evaluate(model, model.output_kind, data, cfg.split, dev, batch_size=cfg.batch_size, **noise)
    fitted = fit_filters(data, dev, **noise)            # the classical baselines, tuned on val, as train does
    fitted["test"] = filter_test(data, dev, fitted, split=cfg.split, **noise)
    # A checkpoint counts epochs from 0; reports (metrics.jsonl, test.json) from 1.
    epoch = state["epoch"] + 1 if state.get("epoch") is not None else None
    report = test_report(tc["model"], tc["setup"], tc["k"], epoch, result, filters=fitted, paired=is_paired_data(data),
                         noise=tc.get("noise"))
    report.update(checkpoint=ckpt, data=data.name, split=cfg.split)
    image = paired_image_report(model, tc["model"], fitted, data, cfg.split)
    if image:   # paired data: whole videos in the estimator's image pixels
        report["image_px"] = image
    print(format_test_table(report))
    if image:
        print(image_table(image))
    print("per keypoint group, PCK@0.2:")
    for g, v in report["per_group_pck"].items():
        print(f"  {g:9s} {fmt(v):>8}   identity {fmt(report['identity_per_group_pck'][g]):>8}")
    files.write_json(out, report)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
