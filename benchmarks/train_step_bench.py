"""What share of a training step is the data path (noise + rendering), per model?

For a batch of B windows it times, per model: a full training step (data path + forward + masked MSE +
backward + Adam step) and the data path (evaluation.model_batch on the device, as train.py calls it: the
fused noisy pair for heatmap models, the noise alone for coordinate models) inside it, medians of several
runs after a warm-up, and prints the share and the steps per second. The data path is also timed alone:
inside a step it runs right after the model's work, whose threads and caches it inherits, and that is the
figure that counts. The issue's target: the data path at most 5% of a step.

--compile BACKEND wraps the model in torch.compile (inductor is the default compiler; eager only traces):
the first step, which compiles, is timed on its own (compile_s). --model-batch times each model at its own
training batch (the trainer's default for it: a recipe's batch, else the study's 16) instead of --batch-size.

    python benchmarks/train_step_bench.py [--batch-size 16 | --model-batch] [--repeats 5]
                                          [--models conv3d,deciwatch] [--compile inductor] [--json out.json]
"""
import functools
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import bench_parser, device_name, markdown_table, pick_device, time_ms, write_json  # noqa: E402

from posedenoise.evaluation import SIGMA_CHOICES, masked_mse, model_batch  # noqa: E402
from posedenoise.memory import keep_freed_memory  # noqa: E402
from posedenoise.models import FILTERS, MODELS, build  # noqa: E402
from posedenoise.models.inputs import input_kind  # noqa: E402

T, K, S = 5, 25, 56


def trainable_models():
    """The registry's models that train: not the identity, not the classical filters."""
    return [m for m in MODELS if m != "identity" and m not in FILTERS]


def training_batch(name: str) -> int:
    """The batch the trainer uses for `name` when --batch-size is not given (TrainConfig's default)."""
    from posedenoise.train import TrainConfig
    return int(TrainConfig(model=name, quiet=True).batch_size)


def bench_model(name, dev, B, *, repeats, warmup, compile_backend=None):
    """One model's step and data path -> dict of medians (ms) and the compile time (s)."""
    g = torch.Generator().manual_seed(0)
    coords = torch.randint(0, S, (B, T, K, 2), generator=g).to(dev)
    visible = (torch.rand(B, T, K, generator=g) > 0.2).to(dev)
    wid = torch.arange(B, device=dev)
    torch.manual_seed(0)
    model = build(name).to(dev)
    data = functools.partial(model_batch, coords, visible, wid, model.output_kind, k=1,  # as train.py does
                             sigma_choices=SIGMA_CHOICES, seed=0, epoch=0, input_kind=input_kind(model))
    timer = dict(repeats=repeats, warmup=warmup, device=dev.type)
    data_ms = time_ms(data, **dict(timer, repeats=max(20, repeats)))
    net = torch.compile(model, backend=compile_backend) if compile_backend else model
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    in_step = []  # the data path's own time inside each step, where it follows the model's work

    def step():
        if dev.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            x, y = data()
            end.record()
            in_step.append(lambda: start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            x, y = data()
            t = (time.perf_counter() - t0) * 1e3
            in_step.append(lambda: t)
        loss = masked_mse(net(x), y, coords, visible, model.output_kind)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    t0 = time.perf_counter()
    step()                       # the first step: compiles the forward and backward under torch.compile
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    first_s = time.perf_counter() - t0
    step_ms = time_ms(step, **timer)
    data_in_step_ms = statistics.median(f() for f in in_step[-repeats:])
    return {"batch_windows": B, "compile": compile_backend or "off", "step_ms": round(step_ms, 3),
            "steps_per_s": round(1e3 / step_ms, 2), "windows_per_s": round(B * 1e3 / step_ms, 1),
            "first_step_s": round(first_s, 2), "data_alone_ms": round(data_ms, 3),
            "data_in_step_ms": round(data_in_step_ms, 3), "data_share": round(data_in_step_ms / step_ms, 4),
            "parameters": sum(p.numel() for p in model.parameters())}


def main(argv=None):
    ap = bench_parser(__doc__, 5, "timed steps per model")
    ap.set_defaults(warmup=2)
    ap.add_argument("--models", default=",".join(trainable_models()), help="comma-separated model names")
    ap.add_argument("--model-batch", action="store_true",
                    help="each model at its own training batch (the trainer's default for it), not --batch-size")
    ap.add_argument("--compile", default=None, metavar="BACKEND",
                    help="torch.compile the model with this backend (inductor, eager, ...); default: not compiled")
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in trainable_models()]
    if unknown:
        ap.error(f"--models: {unknown} do not train; expected names from {trainable_models()}")
    dev = pick_device(args.device)
    keep_freed_memory()
    rows, payload = [], {"device": str(dev), "device_name": device_name(dev), "threads": torch.get_num_threads(),
                         "compile": args.compile or "off", "models": {}}
    for name in names:
        B = training_batch(name) if args.model_batch else args.batch_size
        r = bench_model(name, dev, B, repeats=args.repeats, warmup=args.warmup, compile_backend=args.compile)
        payload["models"][name] = r
        rows.append([name, B, f"{r['step_ms']:.2f}", f"{r['steps_per_s']:.1f}", f"{r['data_alone_ms']:.3f}",
                     f"{r['data_in_step_ms']:.3f}", f"{100 * r['data_share']:.2f}%", f"{r['first_step_s']:.1f}"])
        print(f"{name}: batch {B}, step {r['step_ms']:.2f} ms ({r['steps_per_s']:.1f}/s), data path "
              f"{r['data_in_step_ms']:.3f} ms inside it ({100 * r['data_share']:.2f}%), {r['data_alone_ms']:.3f} ms "
              f"alone; first step {r['first_step_s']:.1f} s", flush=True)
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    print(f"\ntraining step on {device_name(dev)}, torch.compile {args.compile or 'off'}, median of {args.repeats} "
          f"after {args.warmup} warm-up steps")
    print(markdown_table(["model", "batch", "step ms", "steps/s", "data path alone ms", "data path in step ms",
                          "data share", "first step s"], rows))
    if args.json:
        write_json(args.json, payload)


if __name__ == "__main__":
    main()
