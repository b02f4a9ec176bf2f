"""How big and how fast is each model? Parameter count and forward + backward time per batch.

For each registered model: the number of trainable parameters and the median time of one forward pass, an
MSE loss against a fixed target (heatmaps or coordinates, by output_kind) and the backward pass, for a batch
of B windows (B, T = 5, K = 25, 56, 56), after warm-up calls, in float32 on the chosen device. The identity
has no parameters and nothing to time (its row shows the forward alone).

    python benchmarks/model_bench.py [--batch-size 16] [--repeats 5] [--models conv3d,deciwatch] [--json out.json]
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import markdown_table, time_ms, write_json  # noqa: E402

from posedenoise.models import MODELS, build  # noqa: E402

T, K, S = 5, 25, 56


def bench_model(name, x, *, repeats, warmup, device):
    """(parameter count, median milliseconds of forward + loss + backward) for one model."""
    torch.manual_seed(0)
    model = build(name, num_keypoints=K, window=T, size=S).to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    n_params = sum(p.numel() for p in params)
    B = x.shape[0]
    target = torch.rand(B, T, K, 2, device=device) * (S - 1) if model.output_kind == "coords" else torch.rand_like(x)

    def step():
        if not params:
            return model(x)
        model.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(model(x), target)
        loss.backward()
        return loss

    return n_params, time_ms(step, repeats=repeats, warmup=warmup, device=device)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        ap.error(f"--models: unknown {unknown}; expected names from {list(MODELS)}")
    dev = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                       ("cpu" if args.device == "auto" else args.device))
    g = torch.Generator().manual_seed(0)
    x = torch.rand(args.batch_size, T, K, S, S, generator=g).to(dev)      # (B, T, K, 56, 56)
    rows, results = [], []
    for name in names:
        n_params, ms = bench_model(name, x, repeats=args.repeats, warmup=args.warmup, device=dev.type)
        results.append(dict(model=name, parameters=n_params, fwd_bwd_ms=ms))
        rows.append([name, f"{n_params:,}", f"{ms:.1f}"])
        print(f"{name}: {n_params} parameters, {ms:.1f} ms", file=sys.stderr)
    where = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"\nForward + backward per batch of {args.batch_size} windows ({T}, {K}, {S}, {S}), float32, {where}, "
          f"median of {args.repeats} after {args.warmup} warm-up:\n")
    print(markdown_table(["model", "parameters", "fwd+bwd ms / batch"], rows))
    if args.json:
        write_json(args.json, dict(batch_size=args.batch_size, window=T, keypoints=K, size=S, device=where,
                                   repeats=args.repeats, warmup=args.warmup, torch=torch.__version__,
                                   results=results))


if __name__ == "__main__":
    main()
