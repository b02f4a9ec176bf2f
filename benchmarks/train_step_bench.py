"""What share of a training step is the data path (noise + rendering), per model?

For a batch of B windows it times, per model: the data path (ops.noisy_pair on the device) and a full
training step (data path + forward + masked MSE + backward + Adam step), median of several runs after a
warm-up, and prints the share. The issue's target: the data path at most 5% of a step.

    python benchmarks/train_step_bench.py [--batch-size 16] [--repeats 5] [--models conv3d,deciwatch] [--json out.json]
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import markdown_table, time_ms, write_json  # noqa: E402

from posedenoise import ops  # noqa: E402
from posedenoise.evaluation import SIGMA_CHOICES, masked_mse  # noqa: E402
from posedenoise.memory import keep_freed_memory  # noqa: E402
from posedenoise.models import MODELS, build  # noqa: E402

T, K, S = 5, 25, 56


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--models", default=",".join(m for m in MODELS if m != "identity"))
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    dev = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                       ("cpu" if args.device == "auto" else args.device))
    keep_freed_memory()
    B = args.batch_size
    g = torch.Generator().manual_seed(0)
    coords = torch.randint(0, S, (B, T, K, 2), generator=g).to(dev)
    visible = (torch.rand(B, T, K, generator=g) > 0.2).to(dev)
    wid = torch.arange(B, device=dev)

    def data():
        return ops.noisy_pair(coords, visible, wid, k=1, sigma_choices=SIGMA_CHOICES, seed=0, epoch=0)

    timer = dict(repeats=args.repeats, warmup=2, device=dev.type)
    data_ms = time_ms(data, **dict(timer, repeats=max(20, args.repeats)))
    rows, payload = [], {"device": str(dev), "batch_windows": B, "threads": torch.get_num_threads(),
                         "data_path_ms": round(data_ms, 3), "models": {}}
    for name in args.models.split(","):
        torch.manual_seed(0)
        model = build(name).to(dev)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)

        def step():
            x, y = data()
            loss = masked_mse(model(x), y, coords, visible, model.output_kind)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        step_ms = time_ms(step, **timer)
        share = data_ms / step_ms
        payload["models"][name] = {"step_ms": round(step_ms, 1), "data_share": round(share, 4)}
        rows.append([name, f"{step_ms:.1f}", f"{data_ms:.2f}", f"{100 * share:.2f}%"])
        print(f"{name}: step {step_ms:.1f} ms, data path {data_ms:.2f} ms ({100 * share:.2f}%)", flush=True)
    print(f"\ntraining step of {B} windows on {dev}, {torch.get_num_threads()} threads, median of {args.repeats}")
    print(markdown_table(["model", "step ms", "data path ms", "data share"], rows))
    if args.json:
        write_json(args.json, payload)


if __name__ == "__main__":
    main()
