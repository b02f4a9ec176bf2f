"""What share of a training step is the data path (noise + rendering), per model?

For a batch of B windows it times, per model: a full training step (data path + forward + masked MSE +
backward + Adam step) and the data path (evaluation.model_batch on the device) inside it, medians of several runs
after a warm-up, and prints the share. The data path is also timed alone: inside a step it runs right after
the model's work, whose threads and caches it inherits, and that is the figure that counts. The issue's
target: the data path at most 5% of a step.

    python benchmarks/train_step_bench.py [--batch-size 16] [--repeats 5] [--models conv3d,deciwatch] [--json out.json]
"""
import functools
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import bench_parser, markdown_table, pick_device, time_ms, write_json  # noqa: E402

from posedenoise.evaluation import SIGMA_CHOICES, masked_mse, model_batch  # noqa: E402
from posedenoise.memory import keep_freed_memory  # noqa: E402
from posedenoise.models import MODELS, build  # noqa: E402

T, K, S = 5, 25, 56


def main(argv=None):
    ap = bench_parser(__doc__, 5, "timed steps per model")
    ap.add_argument("--models", default=",".join(m for m in MODELS if m != "identity"),
                    help="comma-separated model names")
    args = ap.parse_args(argv)
    dev = pick_device(args.device)
    keep_freed_memory()
    B = args.batch_size
    g = torch.Generator().manual_seed(0)
    coords = torch.randint(0, S, (B, T, K, 2), generator=g).to(dev)
    visible = (torch.rand(B, T, K, generator=g) > 0.2).to(dev)
    wid = torch.arange(B, device=dev)

    timer = dict(repeats=args.repeats, warmup=2, device=dev.type)
    rows, payload = [], {"device": str(dev), "batch_windows": B, "threads": torch.get_num_threads(), "models": {}}
    for name in args.models.split(","):
        torch.manual_seed(0)
        model = build(name).to(dev)
        data = functools.partial(model_batch, coords, visible, wid, model.output_kind, k=1,  # as train.py does
                                 sigma_choices=SIGMA_CHOICES, seed=0, epoch=0)
        data_ms = time_ms(data, **dict(timer, repeats=max(20, args.repeats)))
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
            loss = masked_mse(model(x), y, coords, visible, model.output_kind)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        step_ms = time_ms(step, **timer)
        data_in_step_ms = statistics.median(f() for f in in_step[-args.repeats:])
        share = data_in_step_ms / step_ms
        payload["models"][name] = {"step_ms": round(step_ms, 1), "data_alone_ms": round(data_ms, 3),
                                   "data_in_step_ms": round(data_in_step_ms, 3), "data_share": round(share, 4)}
        rows.append([name, f"{step_ms:.1f}", f"{data_ms:.2f}", f"{data_in_step_ms:.2f}", f"{100 * share:.2f}%"])
        print(f"{name}: step {step_ms:.1f} ms, data path {data_in_step_ms:.2f} ms inside it "
              f"({100 * share:.2f}%), {data_ms:.2f} ms alone", flush=True)
    print(f"\ntraining step of {B} windows on {dev}, {torch.get_num_threads()} threads, median of {args.repeats}")
    print(markdown_table(["model", "step ms", "data path alone ms", "data path in step ms", "data share"], rows))
    if args.json:
        write_json(args.json, payload)


if __name__ == "__main__":
    main()
