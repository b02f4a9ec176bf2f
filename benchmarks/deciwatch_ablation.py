"""Why the study's DeciWatch does not learn to average: one candidate changed at a time, same budget.

    python benchmarks/deciwatch_ablation.py --data penn.npz [--steps 2000] [--variants map-glorot,window-zero]

Each variant trains DeciWatch (interval 1 unless its name says i4) at the study's batch of 16 from the same
seed for --steps steps on Penn Action's first --num-windows windows (k = 1, setup 1, fresh noise per epoch),
and reports the validation MSE (px^2, over all elements as the trainer's loss) four times along the way,
beside the noisy input's and the present-frame mean's. One CPU thread each; run variants in parallel
processes to use more cores. Variants (model options and training changes):
  map-glorot-zeros   the study's model as it was: [0, 1] inputs, Glorot heads, a missing keypoint read as (0, 0)
  map-glorot         ... with missing keypoints filled (the model now)
  map                ... and zero-initialised output heads
  map-nodrop         ... and dropout 0
  map-lr1e-4         ... and lr 1e-4 instead of 1e-3
  window-glorot      offsets from the window's mean ("window" normalisation), Glorot heads
  window             "window" normalisation, zero heads: the model's default now
  window-i4          the same at interval 4 (sees frames 0 and 4 only)
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from posedenoise.data import Batches, open_data  # noqa: E402
from posedenoise.evaluation import batch_inputs, masked_mse, run_noise  # noqa: E402
from posedenoise.models import build  # noqa: E402
from posedenoise.models.inputs import as_triples, fill_missing, read_coords  # noqa: E402

VARIANTS = {
    "map-glorot-zeros": dict(model=dict(normalise="map"), glorot_heads=True, zeros=True),
    "map-glorot": dict(model=dict(normalise="map"), glorot_heads=True),
    "map": dict(model=dict(normalise="map")),
    "map-nodrop": dict(model=dict(normalise="map", dropout=0.0)),
    "map-lr1e-4": dict(model=dict(normalise="map"), lr=1e-4),
    "window-glorot": dict(model=dict(normalise="window"), glorot_heads=True),
    "window": dict(model=dict(normalise="window")),
    "window-i4": dict(model=dict(normalise="window", interval=4)),
}


def run(name, data, steps, seed=0):
    v = VARIANTS[name]
    torch.manual_seed(seed)
    model = build("deciwatch", **({"interval": 1} | v["model"]))
    if v.get("glorot_heads"):
        for head in model.ZERO_INIT:
            torch.nn.init.xavier_uniform_(model.get_parameter(head))
    opt = torch.optim.Adam(model.parameters(), lr=v.get("lr", 1e-3))
    noise = run_noise({"setup": 1, "k": 1, "seed": seed})

    def inputs(coords, visible, ids, epoch):
        x, _, coords = batch_inputs(data, coords, visible, ids, "coords", epoch=epoch, input_kind="coords", **noise)
        if v.get("zeros"):   # the old reading: every keypoint present, a missing one at (0, 0)
            x = as_triples(x[..., :2], torch.ones_like(visible))
        return x, coords

    def validate():
        model.eval()
        sums = torch.zeros(3, dtype=torch.float64)
        with torch.no_grad():
            for coords, visible, ids in Batches(data, "val", 256, "cpu", epoch=0, seed=seed, shuffle=False,
                                                drop_last=False):
                x, coords = inputs(coords, visible, ids, 0)
                xy, present = read_coords(x)
                mean = fill_missing(xy, present)[1].expand_as(xy)
                sums += torch.tensor([masked_mse(p, None, coords, visible, "coords").item() * len(ids)
                                      for p in (model(x), xy, mean)], dtype=torch.float64)
        model.train()
        return (sums / len(data.split_ids("val"))).tolist()

    curve, step, epoch, t0 = [], 0, 0, time.time()
    while step < steps:
        for coords, visible, ids in Batches(data, "train", 16, "cpu", epoch=epoch, seed=seed, shuffle=True,
                                            drop_last=True):
            x, coords = inputs(coords, visible, ids, epoch)
            loss = masked_mse(model(x), None, coords, visible, "coords")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if step % max(1, steps // 4) == 0:
                val, identity, mean = validate()
                curve.append({"step": step, "val_mse": round(val, 4), "seconds": round(time.time() - t0, 1)})
                print(f"{name}: step {step}, val MSE {val:.3f} (identity {identity:.3f}, present-frame mean "
                      f"{mean:.3f}), {time.time() - t0:.0f}s", file=sys.stderr, flush=True)
            if step >= steps:
                break
        epoch += 1
    return {"variant": name, "curve": curve, "identity": round(identity, 4), "mean": round(mean, 4)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="a Penn Action cache (python -m posedenoise.prepare)")
    ap.add_argument("--num-windows", type=int, default=30000)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, from {list(VARIANTS)}")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    names = args.variants.split(",")
    bad = [n for n in names if n not in VARIANTS]
    if bad:
        ap.error(f"--variants: unknown {bad}; expected names from {list(VARIANTS)}")
    torch.set_num_threads(1)
    data = open_data(args.data, step=1, num_windows=args.num_windows)
    results = [run(n, data, args.steps) for n in names]
    if args.json:
        from posedenoise import files
        files.write_json(args.json, results)
    print("| variant | " + " | ".join(f"val MSE @ {p['step']}" for p in results[0]["curve"]) + " | noisy input | "
          "present-frame mean |")
    print("|---|" + "---|" * (len(results[0]["curve"]) + 2))
    for r in results:
        print(f"| {r['variant']} | " + " | ".join(f"{p['val_mse']:.3f}" for p in r["curve"]) +
              f" | {r['identity']:.3f} | {r['mean']:.3f} |")


if __name__ == "__main__":
    main()
