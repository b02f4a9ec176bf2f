"""Train a heatmap denoiser: python -m posedenoise.train [flags]   (no flags: the synthetic demo)

One linear loop (after nanoGPT's train.py): data -> per-batch noisy pair rendered by the kernels -> model
-> masked MSE -> Adam; ReduceLROnPlateau and early stopping on the validation loss; the best checkpoint is
tested against the identity baseline at the end. Runs under torchrun with DistributedDataParallel: every
rank renders its own share of each batch on its own device.

Run directory: config.json, metrics.jsonl (one line per epoch), checkpoints/{last,best}.pt, test.json,
and tensorboard/ when tensorboard is installed. Every file is written atomically; --resume continues from
the last complete epoch and, on the CPU, ends with exactly the metrics of an uninterrupted run (every field
but the wall-clock `seconds` of the epochs). Progress: a bar on a terminal; otherwise (a batch job's log) a
line on stderr every tenth of an epoch, at least once a minute, with the rate and the time left.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import List, Optional

from . import cli
if __name__ == "__main__":   # a command, not an import: set how OpenMP waits before torch loads OpenMP
    cli.openmp_wait_policy()

import torch
import torch.distributed as dist

from . import files, ops
from .data import Batches, DataError, open_data
from .data.paired import is_paired_data as is_paired
from .evaluate import load_checkpoint, model_from_state
from .evaluation import (SETUPS, batch_inputs, evaluate, filter_test, fit_filters, fmt, format_test_table,
                         masked_mse, overall_dict, run_noise, test_report)
from .noise import Drift, load_noise_json
from .sequences import image_table, paired_image_report
from .memory import keep_freed_memory
from .models import FILTERS, MODELS, build, model_options
from .models.inputs import input_kind

PROG = "posedenoise.train"
DEFAULT_MODEL = "pose-mlp"
# The synthetic demo, for a model without a recipe of its own (the study's: sized for < 10 minutes of conv3d on
# 2 CPU cores): at most this many epochs and windows (train/val/test 60/20/20).
DEMO_EPOCHS = 8
DEMO_WINDOWS = 3200
STUDY_EPOCHS = 50
STUDY_BATCH = 16
SCHEDULES = ("plateau", "cosine")


@dataclass
class TrainConfig:
    model: Optional[str] = field(default=None, metadata={
        "help": f"architecture (default: {DEFAULT_MODEL}, posedenoise's whole-pose residual MLP, or the --init "
                "checkpoint's; the study's: conv3d, deciwatch, biconvlstm-sum, biconvlstm-concat)",
        "choices": sorted(MODELS)})
    setup: int = field(default=1, metadata={"help": "1: sigma_in drawn per frame from {1,...,3}; 2: sigma_in = 1; "
                                            "3: as 1 at half frame rate (frame step 2)", "choices": [1, 2, 3]})
    k: float = field(default=1.0, metadata={"help": "shifting scalar: shifts are round(N(0, (3k)^2)) pixels"})
    data: str = field(default="synthetic", metadata={
        "help": "'synthetic' (bundled generated motion), a cache file from `python -m posedenoise.prepare`, "
                "a BRACE folder (with dataset/) or a Penn Action folder (with labels/)"})
    epochs: Optional[int] = field(default=None, metadata={
        "help": f"maximum epochs (default: the model's recipe, else the study's {STUDY_EPOCHS}; on synthetic data "
                f"the recipe's synthetic_epochs, else {DEMO_EPOCHS})"})
    batch_size: Optional[int] = field(default=None, metadata={
        "help": f"windows per optimisation step, over all ranks (default: the model's recipe, else the study's "
                f"{STUDY_BATCH})"})
    schedule: Optional[str] = field(default=None, metadata={
        "help": "learning rate schedule: 'plateau' (the study's: x0.1 after --patience epochs without a new lowest "
                "val loss) or 'cosine' (decay to 0 over --epochs, per step); default: the model's recipe, else "
                "plateau", "choices": list(SCHEDULES)})
    lr: Optional[float] = field(default=None, metadata={
        "help": "Adam learning rate (default: 1e-3; 1e-4 with --init, the study's finetuning rate)"})
    device: str = field(default="auto", metadata={"help": "where to train", "choices": ["auto", "cpu", "cuda"]})
    seed: int = field(default=0, metadata={"help": "seed of the weights, the splits, the window order and the noise"})
    out: Optional[str] = field(default=None, metadata={"help": "run directory (default: runs/<model>-<k>.<setup>)"})
    resume: bool = field(default=False, metadata={
        "help": "continue the run in --out from its last complete epoch; give the run's flags (only --epochs, "
                "--early-stop, --device, --backend and --quiet may change)"})
    num_windows: Optional[int] = field(default=None, metadata={
        "help": f"use at most this many windows in all (split 60/20/20); default: all (on synthetic data, "
                f"{DEMO_WINDOWS} for a model without a recipe)"})
    split: str = field(default="video", metadata={"help": "split by video (no shared frames) or by window",
                                                  "choices": ["video", "window"]})
    patience: int = field(default=5, metadata={"help": "epochs without a new lowest val loss before lr x 0.1"})
    early_stop: int = field(default=10, metadata={"help": "epochs without a new lowest val loss before stopping"})
    backend: Optional[str] = field(default=None, metadata={"help": "heatmap kernel backend (default: by device)",
                                                           "choices": list(ops.BACKENDS)})
    noise: Optional[str] = field(default=None, metadata={
        "metavar": "NOISE_JSON",
        "help": "train on a measured noise law (python -m posedenoise.calibrate writes it) instead of --k's "
                "simulated shifts and the setup's blur; its \"sigma\": null keeps the setup's blur"})
    drift: Optional[str] = field(default=None, metadata={
        "metavar": "RHO,SHARE|measured",
        "help": "shifts that drift across a window's frames, as a real estimator's error does: a share SHARE in "
                "[0, 1] of the shift variance persists from frame to frame with RHO in [0, 1) (correlation "
                "SHARE * RHO**h at lag h; each frame's shift keeps its law), e.g. 0.9,0.8, added to --k's law or "
                "--noise's; 'measured': the drift calibrate wrote into --noise's file. Default: none, also with a "
                "file that has one: on the stand-in estimator (benchmarks/standin_bench.py) pretraining with the "
                "measured drift did worse than without it, before finetuning and after"})
    init: Optional[str] = field(default=None, metadata={
        "metavar": "RUN_OR_CKPT",
        "help": "start from a trained model (a run directory's best checkpoint, or a .pt file): finetuning, e.g. "
                "on paired data (--data paired.npz from prepare --paired); its architecture and --model-arg are "
                "used, and the optimiser starts afresh"})
    model_arg: List[str] = field(default_factory=list, metadata={
        "metavar": "NAME=VALUE",
        "help": "a constructor option of the model, repeatable: e.g. deciwatch interval=1 (sees every frame), "
                "hidden=64, layers=3; savgol polyorder=1; one-euro beta=0.1 (a filter's options given here are "
                "not tuned on validation); see each model's constructor"})
    crop_scale: float = field(default=1.0, metadata={
        "help": "an imperfect person crop, as a detector's box: each window's keypoints are scaled about the map's "
                "centre by U(CROP_SCALE, 1) before the noise (1: the exact box the keypoints were cropped by)"})
    crop_shift: int = field(default=0, metadata={
        "help": "... and shifted by a uniform integer in [-CROP_SHIFT, CROP_SHIFT] pixels per axis (0: none)"})
    quiet: bool = field(default=False, metadata={"help": "no progress bars (on a terminal) or progress lines (otherwise)"})
    # --noise's law as read (the probabilities the tables draw), recorded in config.json and the checkpoints so
    # that evaluate, inspect and --resume draw it without the file.
    noise_law: Optional[dict] = field(default=None, init=False)

    def __post_init__(self):
        if self.init is not None:
            self._adopt_init()
        self.model = self.model or DEFAULT_MODEL
        self.lr = self.lr if self.lr is not None else 1e-4 if self.init else 1e-3
        recipe = getattr(MODELS[self.model], "RECIPE", {})
        if self.batch_size is None:      # "is None": --batch-size 0 is refused below, not replaced
            self.batch_size = recipe.get("batch_size", STUDY_BATCH)
        self.schedule = self.schedule or recipe.get("schedule", "plateau")
        if not 0 < self.crop_scale <= 1:
            raise cli.InputError(f"--crop-scale: expected a number in (0, 1], got {self.crop_scale}")
        if not 0 <= self.crop_shift < 56:
            raise cli.InputError(f"--crop-shift: expected an integer in [0, 56) pixels, got {self.crop_shift}")
        if self.k < 0 or not math.isfinite(self.k):
            raise cli.InputError(f"--k: expected a number >= 0, got {self.k}")
        for name in ("batch_size", "patience", "early_stop"):
            value = getattr(self, name)
            if value < 1:
                raise cli.InputError(f"--{name.replace('_', '-')}: expected a positive integer, got {value}")
        if self.epochs is not None and self.epochs < 1:
            raise cli.InputError(f"--epochs: expected a positive integer, got {self.epochs}")
        if self.num_windows is not None and self.num_windows < 5:
            raise cli.InputError(f"--num-windows: expected at least 5 (one per split and more), "
                                 f"got {self.num_windows}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise cli.InputError(f"--lr: expected a positive number, got {self.lr}")
        cli.check_seed(self.seed)
        model_options(self.model, self.model_arg)   # InputError naming the option
        if self.noise is not None:
            self.noise = os.path.abspath(self.noise)
            try:
                law = load_noise_json(self.noise, sigma_choices=SETUPS[self.setup]["sigma_choices"])
            except DataError as e:
                raise cli.InputError(f"--noise: {e}") from None
            if self.drift == "measured" and law.drift is None:
                raise cli.InputError(f"--drift measured: {self.noise} holds no drift (calibrate writes none where "
                                     "the shifts are not correlated across frames)")
            # The file's drift is drawn only when asked for (--drift measured); the law recorded is the one drawn.
            self.noise_law = (law if self.drift == "measured" else law.with_drift(None)).to_json_dict()
        if self.drift == "measured":
            if self.noise is None:
                raise cli.InputError("--drift measured: needs --noise NOISE_JSON, the file calibrate wrote")
            self.drift = None                   # the law recorded in noise_law carries it
        if self.drift is not None:   # recorded as given, normalised; run_noise builds the law with it
            try:
                d = Drift.parse(self.drift)
            except ValueError as e:
                raise cli.InputError(f"--drift {self.drift}: {e}") from None
            self.drift = f"{d.rho!r},{d.share!r}"
        synthetic = self.data == "synthetic"
        if not synthetic:   # recorded in the run (config.json, checkpoints): evaluate and resume it from anywhere
            self.data = os.path.abspath(self.data)
        if self.epochs is None:
            self.epochs = recipe.get("synthetic_epochs", DEMO_EPOCHS) if synthetic else recipe.get("epochs", STUDY_EPOCHS)
        if self.num_windows is None and synthetic:
            self.num_windows = recipe.get("synthetic_windows", DEMO_WINDOWS)
        if self.out is None:
            self.out = os.path.join("runs", f"{self.model}-{self.k:g}.{self.setup}")

    def _adopt_init(self) -> None:
        """--init: the model and its options are the checkpoint's; flags that contradict them are refused."""
        state, ckpt = load_checkpoint(self.init, "cpu", needs=())
        theirs = state["config"]
        self.init = os.path.abspath(ckpt)
        if self.model not in (None, theirs["model"]):
            raise cli.InputError(f"--model {self.model}: --init {ckpt} is a {theirs['model']} model; leave --model "
                                 "out (it is read from the checkpoint)")
        if self.model_arg and self.model_arg != (theirs.get("model_arg") or []):
            raise cli.InputError(f"--model-arg {' '.join(self.model_arg)}: --init {ckpt} was built with "
                                 f"{' '.join(theirs.get('model_arg') or []) or 'no --model-arg'}; leave it out")
        self.model, self.model_arg = theirs["model"], list(theirs.get("model_arg") or [])


# The flags that define a run. Resuming with other values would mix two runs in one directory, or be ignored
# without a word (the optimizer and scheduler states bring their own lr and patience). --epochs, --early-stop,
# --device, --backend and --quiet may change on --resume.
RUN_FLAGS = ("model", "model_arg", "init", "noise", "setup", "k", "data", "seed", "split", "num_windows", "batch_size",
             "lr", "patience", "schedule", "crop_scale", "crop_shift", "drift")


def flag_defaults() -> dict:
    """Each train flag's default as given on the command line (before __post_init__ resolves it)."""
    return {f.name: f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            for f in dataclasses.fields(TrainConfig) if f.init}


def check_same_run(cfg: TrainConfig, recorded: dict) -> None:
    """--resume: cfg must agree with the run's own config (`recorded`, from its checkpoint) on RUN_FLAGS.
    The one exception is --data when the run's data is gone: the file moved, and --data says where to."""
    ours, theirs, moved = [], [], None
    defaults = flag_defaults()
    for name in RUN_FLAGS:
        # A flag added since the run was written (model_arg): the run had its default.
        mine, run = getattr(cfg, name), recorded.get(name, defaults[name])
        if name == "data" and run != "synthetic":
            run = os.path.abspath(run)           # runs before absolute paths were recorded: relative to here
            if mine != run and not os.path.exists(run):
                moved = run
                continue
        if mine != run:
            flag = f"--{name.replace('_', '-')}"
            ours.append(f"{flag} {_shown(mine)}")
            theirs.append(f"{flag} {_shown(run)}")
    if ours:
        raise cli.InputError(f"--resume: {cfg.out} was trained with {' '.join(theirs)}, not {' '.join(ours)}; "
                             "give the run's values to continue it, or another --out for a new run")
    if moved:
        cli.warn(PROG, f"--data: the run's data {moved} is gone; resuming with {cfg.data}")


def _shown(value) -> str:
    if isinstance(value, list):
        return " ".join(value) or "(none)"
    return "(default)" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def _distributed():
    """(rank, world size, device); initialises the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    rank = dist.get_rank() if world > 1 else 0
    return rank, world


def _device(cfg: TrainConfig) -> torch.device:
    if cli.device(cfg.device).type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))   # torchrun: one GPU per rank
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return torch.device("cpu")


def _state(cfg, model, opt, sched, epoch, best, since_best, history):
    return {"config": dataclasses.asdict(cfg), "model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
            "epoch": epoch, "best_val_loss": best, "epochs_since_best": since_best, "history": history,
            "rng": torch.get_rng_state(), "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def train(cfg: TrainConfig) -> dict:
    rank, world = _distributed()
    main_rank = rank == 0
    dev = _device(cfg)
    keep_freed_memory()
    cli.check_backend(cfg.backend, dev)
    ckpt_dir = os.path.join(cfg.out, "checkpoints")
    last_path, best_path = os.path.join(ckpt_dir, "last.pt"), os.path.join(ckpt_dir, "best.pt")
    if cfg.resume and not os.path.exists(last_path):
        raise cli.InputError(f"--resume: no checkpoint at {last_path}")
    if not cfg.resume and os.path.exists(last_path):
        raise cli.InputError(f"{cfg.out} already holds a run; pass --resume to continue it or choose another --out")
    state = None
    if cfg.resume:
        state, _ = load_checkpoint(last_path, dev)
        check_same_run(cfg, state["config"])
    for folder in (cfg.out, ckpt_dir):           # before any work: the run must be able to save its epochs
        cli.check_output(folder, "--out", kind="dir")

    try:
        data = open_data(cfg.data, step=SETUPS[cfg.setup]["step"], split=cfg.split, seed=cfg.seed,
                         num_windows=cfg.num_windows)
    except DataError as e:
        raise cli.InputError(f"--data: {e}") from None
    if is_paired(data) and (cfg.crop_scale, cfg.crop_shift) != (1.0, 0):
        raise cli.InputError(f"--crop-scale/--crop-shift: simulate a detector's box on ground truth; {cfg.data} is "
                             "paired data, whose inputs are the estimator's own output")
    torch.manual_seed(cfg.seed)
    model = build(cfg.model, **model_options(cfg.model, cfg.model_arg)).to(dev)
    params = [p for p in model.parameters() if p.requires_grad]
    n_train = len(data.split_ids("train"))
    if params and n_train < cfg.batch_size:
        # Only full batches are trained (drop_last): this run would take no optimisation step at all.
        raise cli.InputError(f"--batch-size {cfg.batch_size}: the train split has only {n_train} windows, fewer "
                             "than one batch, so no optimisation step would run; lower --batch-size or use more "
                             "windows (--num-windows)")
    opt = torch.optim.Adam(params, lr=cfg.lr) if params else None
    sched = _scheduler(cfg, opt, n_train // cfg.batch_size) if opt else None
    net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 and params else model
    start, best, since_best, history = 0, math.inf, 0, []
    if cfg.init and state is None:   # finetuning starts from the trained weights; a resumed run has its own
        start_state, ckpt = load_checkpoint(cfg.init, dev, needs=())
        model.load_state_dict(model_from_state(start_state, dev, ckpt).state_dict())
    if state is not None:
        model.load_state_dict(state["model"])
        if opt:
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
        start, best, since_best, history = (state["epoch"] + 1, state["best_val_loss"], state["epochs_since_best"],
                                            state["history"])
        torch.set_rng_state(state["rng"])
        if state["cuda_rng"]:
            torch.cuda.set_rng_state_all(state["cuda_rng"])
    if main_rank:
        for folder in (cfg.out, ckpt_dir):   # temporaries of writes killed in an earlier run of this directory
            for path in files.sweep_temp_files(folder):
                print(f"removed {path}, left by an interrupted write", file=sys.stderr)
        files.write_json(os.path.join(cfg.out, "config.json"), dataclasses.asdict(cfg) | {"data_summary": data.summary()})
        files.write_jsonl(os.path.join(cfg.out, "metrics.jsonl"), history)  # drops a partly logged epoch
    writer = _tensorboard(cfg.out) if main_rank else None
    noise = run_noise(dataclasses.asdict(cfg))
    show = main_rank and not cfg.quiet and sys.stderr.isatty()    # progress bars, else progress lines
    progress = None if not main_rank or cfg.quiet else "bar" if show else "lines"

    epoch = start
    for epoch in range(start, cfg.epochs):
        if since_best >= cfg.early_stop or not params:
            break
        t0 = time.time()
        net.train()
        # The loss sum stays on the device: reading it (.item()) would wait for the GPU after every step.
        # float64, as the Python float sum it replaces (resumed runs still match earlier ones to the bit).
        total, n = torch.zeros((), dtype=torch.float64, device=dev), 0
        batches = Batches(data, "train", cfg.batch_size, dev, epoch=epoch, seed=cfg.seed, shuffle=True,
                          drop_last=True, rank=rank, world=world)
        meter = _Progress(len(batches), progress, f"epoch {epoch + 1}/{cfg.epochs}")
        for coords, visible, wid in batches:
            x, y, coords = batch_inputs(data, coords, visible, wid, model.output_kind, epoch=epoch,
                                        input_kind=input_kind(model), **noise)   # x: (B,T,K,56,56) or (B,T,K,3)
            loss = masked_mse(net(x), y, coords, visible, model.output_kind)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if cfg.schedule == "cosine":
                sched.step()
            total, n = total + loss.detach(), n + 1
            meter.step(total, n)
        meter.close()
        train_loss = _mean_over_ranks(total, n, dev, world)
        val = evaluate(net, model.output_kind, data, "val", dev, batch_size=cfg.batch_size, rank=rank, world=world,
                       show=show, **noise)
        lr_before = opt.param_groups[0]["lr"]
        if cfg.schedule == "plateau":
            sched.step(val["loss"])
        lr = opt.param_groups[0]["lr"]
        improved = val["loss"] < best
        best, since_best = (val["loss"], 0) if improved else (best, since_best + 1)
        row = {"epoch": epoch + 1, "train_loss": train_loss, "val_loss": val["loss"],
               "val_pck": overall_dict(val["pck"]), "val_identity_pck": overall_dict(val["identity"]),
               "lr": lr_before, "lr_reduced": lr < lr_before, "best": improved, "seconds": round(time.time() - t0, 2)}
        history.append(row)
        if main_rank:
            state = _state(cfg, model, opt, sched, epoch, best, since_best, history)
            if improved:
                files.torch_save(best_path, state)
            files.torch_save(last_path, state)     # the epoch is complete once this lands
            files.write_jsonl(os.path.join(cfg.out, "metrics.jsonl"), history)
            _log(writer, row)
            print(f"epoch {epoch + 1}: train {train_loss:.4f}  val {val['loss']:.4f}  "
                  f"val PCK@0.2 {fmt(row['val_pck']['0.2'], 3)} (identity {fmt(row['val_identity_pck']['0.2'], 3)})  "
                  f"lr {lr_before:.0e}{'  -> reduced' if row['lr_reduced'] else ''}  {row['seconds']:.0f}s", flush=True)

    # Test the checkpoint with the lowest validation loss.
    if params:
        if world > 1:
            dist.barrier()  # rank 0 has written best.pt
        model.load_state_dict(torch.load(best_path, map_location=dev, weights_only=False)["model"])
    best_epoch = next((r["epoch"] for r in history if r["best"] and r["val_loss"] == best), None)
    # The classical filters, tuned on validation, for the same split and noise: what a learned model must beat.
    ranks = dict(rank=rank, world=world, show=show)
    fitted = fit_filters(data, dev, **noise, **ranks)
    options = model_options(cfg.model, cfg.model_arg)
    if cfg.model in FILTERS:   # a filter as the model: the options --model-arg gives held, the rest tuned
        options = fit_filters(data, dev, fixed={cfg.model: options}, **noise, **ranks)["filters"][cfg.model]["options"]
        model = net = build(cfg.model, **options).to(dev)
    test = evaluate(net, model.output_kind, data, "test", dev, batch_size=cfg.batch_size, **ranks, **noise)
    fitted["test"] = filter_test(data, dev, fitted, **noise, **ranks)
    report = test_report(cfg.model, cfg.setup, cfg.k, best_epoch, test, filters=fitted, paired=is_paired(data),
                         noise=cfg.noise) \
        | {"model_options": options}
    image = paired_image_report(net, cfg.model, fitted, data, show=show) if main_rank else None
    if image:   # paired data: what the user gets, whole test videos in the estimator's image pixels
        report["image_px"] = image
    if main_rank:
        files.write_json(os.path.join(cfg.out, "test.json"), report)
        print(format_test_table(report))
        if image:
            print(image_table(image))
        print(f"run directory: {cfg.out}")
    if writer:
        writer.close()
    if world > 1:
        dist.barrier()  # rank 0 has written its files; no rank tears gloo down under another
        dist.destroy_process_group()
    return report


def _scheduler(cfg: TrainConfig, opt, steps_per_epoch: int):
    """plateau: the study's ReduceLROnPlateau on the validation loss (threshold=0: "a new lowest validation
    loss" is any decrease); cosine: per optimisation step, from --lr down to 0 at the end of --epochs."""
    if cfg.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.1, patience=cfg.patience, threshold=0.0)
    total = max(1, cfg.epochs * steps_per_epoch)
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total) / total)))


def _mean_over_ranks(total: torch.Tensor, n: int, dev, world: int) -> float:
    """Mean train loss of the epoch over all ranks' steps; total is the loss sum on the device."""
    t = torch.stack([total, torch.tensor(float(n), dtype=torch.float64, device=dev)])
    if world > 1:
        dist.all_reduce(t)
    total, n = t.tolist()
    return total / max(n, 1)


class _Progress:
    """Progress of one training epoch of `num_batches`. mode "bar": a tqdm bar (a terminal); "lines": a line
    on stderr every tenth of the epoch, at least once a minute, and at its end (a log, where a bar is not
    shown); None: nothing. The running loss is read from the device, a sync, only when it is shown."""

    def __init__(self, num_batches: int, mode: Optional[str], desc: str):
        self.num_batches, self.mode, self.desc = num_batches, mode, desc
        # A bar shows a fresh loss every second; lines come every tenth of the epoch or every minute.
        self.every, self.seconds = (num_batches, 1.0) if mode == "bar" else (max(1, math.ceil(num_batches / 10)), 60.0)
        self.bar = None
        if mode == "bar":
            from tqdm import tqdm
            self.bar = tqdm(total=num_batches, desc=desc, unit="batch", leave=False, dynamic_ncols=True)
        self.start = self.shown = time.time()

    def step(self, total: torch.Tensor, n: int) -> None:
        """After the n-th batch, with the loss sum of the batches so far (on the device)."""
        if self.mode is None:
            return
        if self.bar is not None:
            self.bar.update(1)
        now = time.time()
        if n % self.every and n != self.num_batches and now - self.shown < self.seconds:
            return
        self.shown = now
        loss = total.item() / n
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{loss:.4f}")
            return
        rate = n / max(now - self.start, 1e-9)
        left = f"ETA {_duration((self.num_batches - n) / rate)}" if n < self.num_batches else \
            f"took {_duration(now - self.start)}"
        print(f"{self.desc}: batch {n}/{self.num_batches}, loss {loss:.4f}, {rate:.2f} batch/s, {left}",
              file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _duration(seconds: float) -> str:
    """12s, 3m05s, 2h07m."""
    s = round(seconds)
    return f"{s}s" if s < 60 else f"{s // 60}m{s % 60:02d}s" if s < 3600 else f"{s // 3600}h{s % 3600 // 60:02d}m"


def _tensorboard(out):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(os.path.join(out, "tensorboard"))


def _log(writer, row):
    if writer is None:
        return
    step = row["epoch"]
    for key in ("train_loss", "val_loss", "lr"):
        writer.add_scalar(key, row[key], step)
    for a, v in row["val_pck"].items():
        if v is not None:   # None: no keypoint of the split could be counted
            writer.add_scalar(f"val_pck@{a}", v, step)
    writer.flush()


@cli.command(PROG)
def main(argv=None):
    cfg = cli.parse(TrainConfig, argv, PROG, __doc__.split("\n\n")[0])
    report = train(cfg)
    if not (sys.argv[1:] if argv is None else argv) and report is not None:   # the demo: something to look at
        demo_pictures(cfg.out)


def demo_pictures(out: str) -> List[str]:
    """A run's learning curves (curves.png: validation PCK@0.2 with its best filter's, train loss) and its
    first test window through inspect (window.png: input, prediction and target per frame)."""
    from . import inspect
    from .curves import draw_curves

    def read(name):
        with open(os.path.join(out, name), encoding="utf-8") as f:
            return [json.loads(line) for line in f] if name.endswith(".jsonl") else json.load(f)
    run = {"metrics": read("metrics.jsonl"), "test": read("test.json"), "config": read("config.json")}
    curves, window = os.path.join(out, "curves.png"), os.path.join(out, "window.png")
    draw_curves([run], f"learning curves: {out}", curves, [run["config"]["model"]])
    print(f"wrote {curves}")
    inspect.main([out, "--window", "0", "--out", window])          # prints "wrote <window>"
    return [curves, window]


if __name__ == "__main__":
    main()
