"""benchmarks/gpu_check.sh, the one command for the day a GPU is lent: its dry run (CPU, TRITON_INTERPRET=1,
tiny sizes) runs every phase end to end and writes its three files; its summary says what failed; bad input is
one line, exit 2, nothing written."""
import json
import os
import pathlib
import subprocess
import sys
import time

import pytest
import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import gpu_check  # noqa: E402


@pytest.mark.slow
def test_the_dry_run_runs_every_phase_end_to_end(tmp_path):
    out = tmp_path / "check"
    env = {k: v for k, v in os.environ.items() if k not in ("GPU_CHECK_T0", "TRITON_INTERPRET")}
    env["PYTHON"] = sys.executable            # the interpreter this suite runs in, whatever python3 is
    t = time.time()
    p = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--out", str(out), "--dry-run"],
                       capture_output=True, text=True, env=env, timeout=600)
    seconds = time.time() - t
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert sorted(os.listdir(out)) == sorted(gpu_check.FILES)
    r = json.loads((out / "gpu_check.json").read_text())
    assert r["mode"] == "dry" and list(r["phases"]) == list(gpu_check.PHASES)
    assert {n: p["status"] for n, p in r["phases"].items()} == {n: "ok" for n in gpu_check.PHASES}, \
        {n: p.get("error") for n, p in r["phases"].items()}
    ph = r["phases"]
    rows = ph["selfcheck"]["rows"]
    assert all(row["ok"] for row in rows) and {"triton", "cpp", "torch"} <= {row["backend"] for row in rows}
    c = ph["gpu-tests"]["counts"]
    assert c["skipped"] > 0 and c["failed"] == c["passed"] == 0          # no CUDA here: skipped, visibly
    kern = ph["kernels"]["rows"]
    assert {(k["op"].split(":")[0], k["batch"]) for k in kern} == {
        (op, B) for op in ("noisy_pair", "pck_from_heatmaps", "heatmap_argmax") for B in gpu_check.MODES["dry"]["batches"]}
    assert all(k["ms"] > 0 and k["copy_ms"] > 0 and k["x_of_copy"] > 0 for k in kern)
    assert set(ph["steps"]["models"]) == set(gpu_check.DRY_MODELS["steps"])
    assert set(ph["compiled"]["models"]) == set(gpu_check.DRY_MODELS["compiled"])
    for m in list(ph["steps"]["models"].values()) + list(ph["compiled"]["models"].values()):
        assert m["step_ms"] > 0 and 0 <= m["data_share"] <= 1
    runs = ph["epochs"]["runs"]
    assert set(runs) == set(gpu_check.EPOCH_MODELS)
    for run in runs.values():
        assert run["exit"] == 0 and run["train_windows"] > 0
        assert all(0 <= run["pck"][a] <= 1 for a in ("0.05", "0.1", "0.2"))
    summary = (out / "summary.md").read_text()
    for text in ("DRY RUN", "Verdict: every check passed", "#### Kernels against the device's copy",
                 "#### Training step per model", "#### One epoch on", "pose-mlp", "conv3d"):
        assert text in summary, text
    assert summary.strip() in p.stdout                  # printed too: the device tool shows the end of the output
    log = (out / "gpu_check.log").read_text()
    assert "posedenoise.selfcheck" in log and "tests/test_gpu.py" in log and "posedenoise.train" in log
    print(f"gpu_check dry run: {seconds:.0f} s")


def _results(**phases):
    base = {n: {"status": "ok", "notes": []} for n in gpu_check.PHASES}
    base.update(phases)
    return {"format": gpu_check.FORMAT, "mode": "gpu", "started": "2026-01-02T03:04:05", "elapsed_s": 400.0,
            "meta": {"device_name": "NVIDIA H200", "torch": "2.11.0", "cuda": "13.0", "triton": "3.6.0"},
            "phases": base}


ROW = {"backend": "triton", "device": "cuda", "check": "noise", "max_error": 0, "ok": True, "measures": "values"}


def test_the_summary_says_what_failed_and_the_exit_status_follows():
    good = _results(selfcheck={"status": "ok", "rows": [ROW]})
    assert gpu_check.exit_status(good) == 0
    assert "Verdict: every check passed" in gpu_check.render_summary(good)
    bad = _results(selfcheck={"status": "failed", "rows": [ROW, dict(ROW, check="pck", ok=False, max_error=3)],
                              "error": "1 of 2 checks failed (exit 1)"},
                   **{"gpu-tests": {"status": "failed", "counts": {"passed": 1, "failed": 1, "skipped": 0},
                                    "tests": [{"name": "test_a", "outcome": "passed", "message": ""},
                                              {"name": "test_b", "outcome": "failed", "message": "assert 1 == 2"}]}})
    text = gpu_check.render_summary(bad)
    assert gpu_check.exit_status(bad) == 1
    assert "NOT ALL PASSED" in text and "FAILED triton/cuda/pck" in text and "test_b: assert 1 == 2" in text
    skipped = _results(compiled={"status": "skipped", "seconds": 0, "error": "20 s of the 480 s budget left"})
    assert gpu_check.exit_status(skipped) == 1 and "compiled: skipped: 20 s of the 480 s budget left" in \
        gpu_check.render_summary(skipped)
    assert gpu_check.exit_status(_results(compiled={"status": "not asked"})) == 0   # --skip compiled


def test_a_missing_whole_pose_model_is_said_not_faked():
    run, notes = gpu_check.plan_epoch_models({"conv3d": object(), "deciwatch": object()})
    assert run == ["conv3d"] and notes == ["pose-mlp is not in posedenoise.models.MODELS: its epoch was not run"]
    assert gpu_check.plan_epoch_models({"pose-mlp": 1, "conv3d": 2}) == (["pose-mlp", "conv3d"], [])


def test_junit_and_progress_lines_are_read(tmp_path):
    xml = tmp_path / "j.xml"
    xml.write_text('<testsuites><testsuite><testcase name="a"/><testcase name="b"><failure message="boom">x'
                   '</failure></testcase><testcase name="c"><skipped message="needs a CUDA device"/></testcase>'
                   '</testsuite></testsuites>')
    r = gpu_check.parse_junit(str(xml))
    assert r["counts"] == {"passed": 1, "failed": 1, "skipped": 1}
    assert [t["message"] for t in r["tests"]] == ["", "boom", "needs a CUDA device"]
    text = "noise\nepoch 1/1: batch 10/100, loss 1.0, 5.00 batch/s, ETA 18s\nepoch 1/1: batch 20/100, loss 0.9, " \
           "5.00 batch/s, ETA 16s\n[gpu_check: killed after 180 s]"
    assert gpu_check.last_progress(text).startswith("epoch 1/1: batch 20/100") and gpu_check.last_progress("") is None


@pytest.mark.parametrize("argv,says", [
    (["--dry-run"], "--out"),
    (["--out", "{file}", "--dry-run"], "is a file"),
    (["--out", "{dir}", "--dry-run", "--only", "kernels,nope"], "--only kernels,nope: expected phases from"),
    (["--out", "{dir}", "--dry-run", "--data", "{dir}/missing.npz"], "no such file"),
    (["--out", "{dir}", "--dry-run", "--data", "{file}"], "--data"),
    (["--out", "{dir}", "--dry-run", "--budget", "0"], "--budget"),
    pytest.param(["--out", "{dir}", "--data", "synthetic"], "--dry-run",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, monkeypatch, capsys, argv, says):
    monkeypatch.setenv("TRITON_INTERPRET", os.environ.get("TRITON_INTERPRET", "1"))   # main sets or drops it
    (tmp_path / "a_file").write_text("not a cache")
    argv = [a.format(file=tmp_path / "a_file", dir=tmp_path / "out") for a in argv]
    with pytest.raises(SystemExit) as e:
        gpu_check.main(argv)
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and says in err, err
    assert not (tmp_path / "out").exists()
