"""benchmarks/standin_bench.py --quick: the day-two path in image pixels, end to end, as commands (a synthetic
stand-in, a few videos, one epoch each: the numbers prove the plumbing, not the models)."""
import importlib.util
import json
import math
import os

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_quick_run_writes_one_table_of_every_row(tmp_path):
    spec = importlib.util.spec_from_file_location("standin_bench", os.path.join(ROOT, "benchmarks", "standin_bench.py"))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.main(["--out", str(tmp_path), "--quick", "--threads", "1"])
    summary = json.loads((tmp_path / "summary.json").read_text())
    img = summary["image_px"]
    filters = {f"{n} filter" for n in ("mean", "linear-fit", "savgol", "gaussian", "median", "one-euro")}
    models = {f"{stage} pose-mlp, {arm}" for stage in ("pretrained", "finetuned") for arm in ("no-drift", "drift")}
    assert set(img["detected"]) == {"estimator"} | filters | models
    assert set(img["missed"]) == filters | models                      # the estimator answers no miss
    # every row scores the same keypoints: the same test videos of the same paired cache
    assert len({row["n"] for row in img["detected"].values()}) == 1 and img["detected"]["estimator"]["n"] > 100
    for label, row in img["detected"].items():
        assert all(math.isfinite(row[s]) for s in ("mean", "median", "p90")), label
        assert row["median"] <= row["p90"], label
    # models and filters answer the same misses (those every window over the frame can see), not all of them
    assert len({img["filled"][label] for label in filters | models}) == 1
    assert 0 < img["filled"]["mean filter"] <= img["missed_total"]
    # the estimator's row is its own error, recomputed here from the paired cache in image pixels
    from posedenoise.data.paired import PairedDataset, load_paired
    paired = load_paired(str(tmp_path / "paired.npz"))
    data = PairedDataset(paired, T=5, step=1, split="video", seed=0)
    frames = np.concatenate([np.arange(paired.video_starts[v], paired.video_starts[v] + paired.video_lengths[v])
                             for v in np.flatnonzero(data.video_part == 2)])
    t = np.asarray(paired.to_image)[frames]
    img_of = lambda g: np.asarray(g, np.float64)[frames] * t[:, None, :2] + t[:, None, 2:]  # noqa: E731
    found = np.asarray(paired.visible)[frames] & (np.asarray(paired.confidence)[frames] > 0)
    err = np.linalg.norm(img_of(paired.est) - img_of(paired.gt), axis=-1)[found]
    assert np.isclose(img["detected"]["estimator"]["mean"], err.mean())
    assert summary["noise_json_drift"] is not None and 0.5 < summary["noise_json_drift"]["rho"] < 0.99
    assert "finetuned pose-mlp, drift" in (tmp_path / "summary.md").read_text()
