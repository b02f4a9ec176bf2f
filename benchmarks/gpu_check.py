"""Everything the Triton path needs measured on a GPU, in one command that writes one folder.

    bash benchmarks/gpu_check.sh --out DIR --data penn.npz     # on the GPU machine: about 8 minutes
    bash benchmarks/gpu_check.sh --out DIR --dry-run           # anywhere: CPU, TRITON_INTERPRET=1, tiny sizes

(gpu_check.sh installs this tree offline first where posedenoise is not installed, then runs this script.)
The phases, in this order; each one's failure is recorded and the next one runs:
  env        Python, torch, CUDA, triton, numpy; the device; posedenoise.build_info(); the offline install
  selfcheck  python -m posedenoise.selfcheck: every op on every backend here against scipy/numpy/the reference
  gpu-tests  pytest tests/test_gpu.py: every op on CUDA against the CPU reference, bit for bit where the README
             promises it (maps, noise, half outputs, argmax, PCK counts)
  kernels    benchmarks/heatmap_bench.py and pck_bench.py at batch 16 and 1024, each against torch's own copy
             of the same number of bytes, timed in the same run (CUDA events, medians)
  steps      benchmarks/train_step_bench.py: a training step per model at its training batch (steps per second,
             the share of the step spent on the data path: noise and rendering), torch.compile off
  epochs     one epoch of pose-mlp and of conv3d (k = 1, setup 1) on --data (python -m posedenoise.train), with
             the test PCK of test.json, the identity and the best classical filter
  compiled   the training step per model again, under torch.compile (inductor)
A phase that would start with less time left than it needs (--budget, counted from gpu_check.sh's start) is
skipped, saying so; --only and --skip choose phases for a rerun. Writes DIR/summary.md (what to paste into the
README), DIR/gpu_check.json (every number) and DIR/gpu_check.log (every command's output), each rewritten
after every phase, and prints the summary. Exit status: 0 when every phase ran and passed, 1 otherwise,
2 for bad input (one line, nothing written).

The dry run (--dry-run) is the same code on the CPU at tiny sizes, with Triton's interpreter: it proves the
command, not the numbers (CI runs it, tests/test_gpu_check.py).
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib
import io
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from posedenoise import cli  # noqa: E402  (imports no torch: the environment is set up first)
from posedenoise.errors import DataError  # noqa: E402

PROG = "gpu_check"
FORMAT = "posedenoise-gpu-check/1"
PHASES = ("env", "selfcheck", "gpu-tests", "kernels", "steps", "epochs", "compiled")
FILES = ("summary.md", "gpu_check.json", "gpu_check.log")
EPOCH_MODELS = ("pose-mlp", "conv3d")   # the new whole-pose model, and the study's conv3d at k = 1, setup 1
# The dry run times a coordinate model and a heatmap model (the two data paths), and compiles one (the compile
# path is the same for all): the others take seconds per step, or to trace, on a CPU.
DRY_MODELS = {"steps": ("pose-mlp", "conv3d"), "compiled": ("conv3d",)}

# Per mode: sizes, repeats, and the least time (s) each phase needs to be worth starting.
MODES = {
    "gpu": dict(device="cuda", batches=(16, 1024), study_batches=(16,), heat_repeats=30, pck_repeats=50,
                large_repeats=20, warmup=3, step_repeats=20, step_warmup=3, step_batch=None, compile="inductor",
                budget=480, epoch_cap=180, epoch_args=[],
                min_s={"selfcheck": 20, "gpu-tests": 30, "kernels": 30, "steps": 20, "epochs": 45, "compiled": 40}),
    "dry": dict(device="cpu", batches=(1, 2), study_batches=(1,), heat_repeats=2, pck_repeats=2, large_repeats=2,
                warmup=1, step_repeats=1, step_warmup=1, step_batch=2, compile="eager", budget=300, epoch_cap=120,
                epoch_args=["--num-windows", "40", "--batch-size", "4"], min_s={}),
}


# ----------------------------------------------------------------------------------------------------------------
# Reading the results (pure functions: the tests feed them made-up results)
# ----------------------------------------------------------------------------------------------------------------

def plan_epoch_models(registry) -> tuple:
    """(models to train for one epoch, notes on those missing from the registry)."""
    run = [m for m in EPOCH_MODELS if m in registry]
    notes = [f"{m} is not in posedenoise.models.MODELS: its epoch was not run" for m in EPOCH_MODELS
             if m not in registry]
    return run, notes


def exit_status(results: dict) -> int:
    """0 when every phase that was asked for ran and passed; 1 otherwise."""
    return 0 if all(p["status"] in ("ok", "not asked") for p in results["phases"].values()) else 1


def _fmt(v, spec=".3g"):
    return "-" if v is None else format(v, spec) if isinstance(v, (int, float)) else str(v)


def _pck(d, alpha):
    return _fmt((d or {}).get(alpha), ".4f")


def _pct(share):
    return "-" if share is None else f"{100 * share:.2f}%"


def _mb(nbytes):
    return f"{nbytes / 1e9:.2f} GB" if nbytes >= 1e9 else f"{nbytes / 1e6:.1f} MB"


def render_summary(results: dict) -> str:
    """The Markdown summary of a results dict (what gpu_check.json holds)."""
    meta, phases = results.get("meta", {}), results["phases"]
    dry = results["mode"] == "dry"
    failed = [n for n, p in phases.items() if p["status"] not in ("ok", "not asked")]
    out = [f"### gpu_check: {meta.get('device_name', '?')}, {results['started'][:10]}", ""]
    if dry:
        out += ["**DRY RUN** (CPU, TRITON_INTERPRET=1, tiny sizes): it proves the command, no number below is a GPU "
                "measurement.", ""]
    out += [f"torch {meta.get('torch', '?')} (CUDA {meta.get('cuda') or '-'}), triton {meta.get('triton', '?')}, "
            f"Python {meta.get('python', '?')}, numpy {meta.get('numpy', '?')}; posedenoise {meta.get('commit', '?')}; "
            f"C++ extension: {meta.get('cpp', '?')}; {results.get('elapsed_s', 0):.0f} s in all.", ""]
    out.append("**Verdict: every check passed and every phase ran.**" if not failed else
               "**Verdict: NOT ALL PASSED**: " + ", ".join(f"{n} ({phases[n]['status']})" for n in failed) + ".")
    out.append("")

    sc, gt = phases.get("selfcheck", {}), phases.get("gpu-tests", {})
    out += ["#### Correctness", ""]
    if sc.get("rows"):
        rows = sc["rows"]
        bad = [r for r in rows if not r["ok"]]
        out.append(f"- `python -m posedenoise.selfcheck`: {len(rows) - len(bad)} of {len(rows)} checks passed "
                   f"({', '.join(sorted({r['backend'] + '/' + r['device'] for r in rows}))})"
                   + (": FAILED " + ", ".join(f"{r['backend']}/{r['device']}/{r['check']} ({r['measures']}: "
                                                f"{_fmt(r['max_error'])})" for r in bad) if bad else "."))
    else:
        out.append(f"- `python -m posedenoise.selfcheck`: {sc.get('status', 'not run')} {sc.get('error', '')}".rstrip())
    if gt.get("counts"):
        c = gt["counts"]
        line = (f"- `pytest tests/test_gpu.py`: {c['passed']} passed, {c['failed']} failed, {c['skipped']} "
                f"skipped")
        bad = [t for t in gt["tests"] if t["outcome"] == "failed"]
        skipped = sorted({t["message"] for t in gt["tests"] if t["outcome"] == "skipped"})
        line += ("; FAILED: " + "; ".join(f"{t['name']}: {t['message']}" for t in bad)) if bad else ""
        line += (" (skipped: " + "; ".join(skipped) + ")") if skipped else ""
        out.append(line + ".")
    else:
        out.append(f"- `pytest tests/test_gpu.py`: {gt.get('status', 'not run')} {gt.get('error', '')}".rstrip())
    out.append("")

    kern = phases.get("kernels", {})
    if kern.get("rows"):
        out += ["#### Kernels against the device's copy", "",
                "Floor: torch's copy of the same number of bytes in the same run (it reads and writes them: a kernel "
                "that only writes, or only reads, its bytes at the copy's bandwidth takes 0.5 x the copy). Bytes: "
                "the maps written (noisy_pair) or read (the fused PCK skips the maps that do not count). Medians"
                + (", CUDA events." if not dry else "."), "",
                "| op | batch | bytes | posedenoise ms | copy ms | x of copy | GB/s | copy GB/s (read + write) |",
                "|---|---|---|---|---|---|---|---|"]
        for r in kern["rows"]:
            out.append(f"| {r['op']} ({r['backend']}) | {r['batch']} | {_mb(r['bytes'])} | {_fmt(r['ms'], '.4g')} | "
                       f"{_fmt(r['copy_ms'], '.4g')} | {_fmt(r['x_of_copy'], '.3f')} | {_fmt(r['GB_per_s'], '.0f')} | "
                       f"{_fmt(r['copy_GB_per_s'], '.0f')} |")
        out.append("")

    steps, comp = phases.get("steps", {}).get("models", {}), phases.get("compiled", {}).get("models", {})
    if steps or comp:
        cname = phases.get("compiled", {}).get("backend", "inductor")
        out += ["#### Training step per model", "",
                f"Data path: noise and rendering (evaluation.model_batch), timed inside the step. Compiled: "
                f"torch.compile(model, backend={cname!r}); the first step, which compiles, is timed apart.", "",
                "| model | batch | step ms | steps/s | data share | compiled step ms | steps/s | data share | "
                "first compiled step s |", "|---|---|---|---|---|---|---|---|---|"]
        for name in dict.fromkeys(list(steps) + list(comp)):
            e, c = steps.get(name, {}), comp.get(name, {})
            err = e.get("error") or c.get("error")
            cells = [name, e.get("batch_windows", c.get("batch_windows"))]
            for d in (e, c):
                cells += [_fmt(d.get("step_ms"), ".2f"), _fmt(d.get("steps_per_s"), ".1f"), _pct(d.get("data_share"))]
            cells.append(_fmt(c.get("first_step_s"), ".1f"))
            out.append("| " + " | ".join(map(str, cells)) + " |" + (f" {err}" if err else ""))
        out.append("")

    ep = phases.get("epochs", {})
    if ep.get("runs"):
        out += [f"#### One epoch on {ep.get('data', '?')} (k = 1, setup 1)", "",
                "| model | batch | train windows | epoch s (train + val) | run s (with filters and test) "
                "| test PCK@0.05 | @0.1 | @0.2 | identity @0.2 | best filter @0.2 |",
                "|---|---|---|---|---|---|---|---|---|---|"]
        for name, r in ep["runs"].items():
            if r.get("error"):
                out.append(f"| {name} | {_fmt(r.get('batch_size'))} | {_fmt(r.get('train_windows'))} | - | "
                           f"{_fmt(r.get('wall_s'), '.0f')} | {r['error']} | | | | |")
                continue
            out.append(f"| {name} | {r['batch_size']} | {r['train_windows']} | {_fmt(r['epoch_s'], '.1f')} | "
                       f"{_fmt(r['wall_s'], '.0f')} | {_pck(r['pck'], '0.05')} | {_pck(r['pck'], '0.1')} | "
                       f"{_pck(r['pck'], '0.2')} | {_pck(r['identity_pck'], '0.2')} | "
                       f"{_pck(r['best_filter_pck'], '0.2')} ({r.get('best_filter') or '-'}) |")
        out.append("")

    notes = [f"{n}: {p['status']}" + (f": {p['error']}" if p.get("error") else "") for n, p in phases.items()
             if p["status"] not in ("ok", "not asked")]
    notes += [f"{n}: {note}" for n, p in phases.items() for note in p.get("notes", [])]
    if notes:
        out += ["#### Notes", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(out)


def parse_junit(path: str) -> dict:
    """pytest's JUnit XML -> {"counts": {...}, "tests": [{"name", "outcome", "message"}]}."""
    tests = []
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            node = case.find(tag)
            if node is not None:
                outcome = "skipped" if tag == "skipped" else "failed"
                message = (node.get("message") or node.text or "").strip().splitlines()
                message = message[0][:300] if message else ""
                break
        tests.append({"name": case.get("name"), "outcome": outcome, "message": message})
    counts = {k: sum(t["outcome"] == k for t in tests) for k in ("passed", "failed", "skipped")}
    return {"counts": counts, "tests": tests}


def last_progress(text: str):
    """The trainer's last progress line (a batch count, loss, batches per second and the time left), or None."""
    lines = re.findall(r"^epoch \d+/\d+: batch .*$", text or "", flags=re.M)
    return lines[-1] if lines else None


# ----------------------------------------------------------------------------------------------------------------
# Running the phases
# ----------------------------------------------------------------------------------------------------------------

class Check:
    def __init__(self, args, mode: str):
        self.args, self.mode, self.cfg = args, mode, MODES[mode]
        self.t0 = float(os.environ.get("GPU_CHECK_T0") or time.time())
        self.deadline = self.t0 + (args.budget if args.budget is not None else self.cfg["budget"])
        self.work = tempfile.mkdtemp(prefix="gpu_check.")
        self.log_parts = []
        self.results = {"format": FORMAT, "mode": mode,
                        "started": datetime.datetime.now().isoformat(timespec="seconds"),
                        "budget_s": round(self.deadline - self.t0), "meta": {}, "phases": {}}
        import torch
        self.torch = torch
        self.dev = torch.device(self.cfg["device"])

    # -- bookkeeping -------------------------------------------------------------------------------------------

    def left(self) -> float:
        return self.deadline - time.time()

    def log(self, title: str, text: str) -> None:
        self.log_parts.append(f"\n===== {title} =====\n{text.rstrip()}\n")

    def write(self) -> None:
        from posedenoise import files
        self.results["elapsed_s"] = round(time.time() - self.t0, 1)
        out = self.args.out
        files.write_json(os.path.join(out, "gpu_check.json"), self.results)
        files.write_text(os.path.join(out, "summary.md"), render_summary(self.results) + "\n")
        files.write_text(os.path.join(out, "gpu_check.log"), "".join(self.log_parts))

    def sub(self, title: str, cmd, timeout: float):
        """Run cmd (a list) in the repository root; its output goes to the log. -> (rc or None on timeout, text)."""
        t = time.time()
        try:
            p = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, timeout=max(timeout, 1))
            rc, text = p.returncode, p.stdout
        except subprocess.TimeoutExpired as e:
            rc, text = None, e.output.decode(errors="replace") if isinstance(e.output, bytes) else (e.output or "")
            text += f"\n[gpu_check: killed after {timeout:.0f} s]"
        self.log(f"{title}: {' '.join(cmd)} (exit {rc}, {time.time() - t:.1f} s)", text)
        return rc, text

    @contextlib.contextmanager
    def captured(self, title: str):
        """In-process work whose printed output goes to the log."""
        buf = io.StringIO()
        t = time.time()
        try:
            with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
                yield
        finally:
            self.log(f"{title} ({time.time() - t:.1f} s)", buf.getvalue())

    def run(self, phases) -> int:
        for name in PHASES:
            if name not in phases:
                self.results["phases"][name] = {"status": "not asked", "seconds": 0}
                continue
            need = self.cfg["min_s"].get(name, 0)
            if self.left() < need:
                self.results["phases"][name] = {"status": "skipped", "seconds": 0, "error": (
                    f"{self.left():.0f} s of the {self.results['budget_s']} s budget left, it needs about {need} s")}
                print(f"[{PROG}] {name}: skipped (budget)", flush=True)
                self.write()
                continue
            print(f"[{PROG}] {name} ...", flush=True)
            t = time.time()
            phase = {"status": "ok", "notes": []}
            self.results["phases"][name] = phase
            try:
                getattr(self, "phase_" + name.replace("-", "_"))(phase)
            except Exception as e:  # recorded with its traceback; the next phase still runs
                phase["status"] = "failed"
                phase["error"] = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
                self.log(f"{name}: crashed", traceback.format_exc())
            phase["seconds"] = round(time.time() - t, 1)
            if self.dev.type == "cuda":
                self.torch.cuda.empty_cache()
            print(f"[{PROG}] {name}: {phase['status']} ({phase['seconds']:.0f} s)"
                  + (f": {phase['error']}" if phase.get("error") else ""), flush=True)
            self.write()
        summary = render_summary(self.results)
        print("\n" + summary)
        print(f"[{PROG}] wrote {', '.join(os.path.join(self.args.out, f) for f in FILES)}")
        shutil.rmtree(self.work, ignore_errors=True)
        return exit_status(self.results)

    # -- the phases --------------------------------------------------------------------------------------------

    def phase_env(self, phase):
        import numpy
        import posedenoise
        torch = self.torch
        meta = self.results["meta"]
        meta.update(python=platform.python_version(), torch=torch.__version__, cuda=torch.version.cuda,
                    numpy=numpy.__version__, platform=platform.platform(), cpus=os.cpu_count())
        try:
            import triton
            meta["triton"] = triton.__version__
        except ImportError as e:
            meta["triton"] = f"missing ({e})"
        if self.dev.type == "cuda":
            p = torch.cuda.get_device_properties(self.dev)
            meta.update(device_name=p.name, capability=f"sm_{p.major}{p.minor}",
                        multiprocessors=p.multi_processor_count, memory_GB=round(p.total_memory / 1e9, 1))
        else:
            meta["device_name"] = f"CPU ({torch.get_num_threads()} threads; dry run)"
        try:
            meta["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                            text=True, timeout=10).stdout.strip() or "unknown (no git history here)"
        except (OSError, subprocess.SubprocessError):
            meta["commit"] = "unknown (no git here)"
        importlib.import_module("posedenoise.kernels")      # installed (gpu_check.sh), not only the source tree
        info = posedenoise.build_info()
        meta["backends"] = info["available"]
        meta["cpp"] = info["reasons"]["cpp"]
        self.log("posedenoise.build_info()", json.dumps(info, indent=2, default=str))
        if self.args.install_log and os.path.isfile(self.args.install_log):
            with open(self.args.install_log, errors="replace") as f:
                self.log("offline install (gpu_check.sh)", f.read())
        if shutil.which("nvidia-smi"):
            self.sub("nvidia-smi", ["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm,"
                                                  "clocks.max.mem,power.limit", "--format=csv"], 30)
        self.log("environment", json.dumps(meta, indent=2))
        if self.dev.type == "cuda" and not info["available"]["triton"]:
            phase["status"] = "failed"
            phase["error"] = f"the Triton backend is not available: {info['reasons']['triton']}"

    def phase_selfcheck(self, phase):
        path = os.path.join(self.work, "selfcheck.json")
        cmd = [sys.executable, "-m", "posedenoise.selfcheck", "--json", path]
        cmd += ["--quick"] if self.mode == "dry" else []
        rc, _ = self.sub("selfcheck", cmd, self.left())
        if not os.path.isfile(path):
            phase.update(status="failed", error=f"no result (exit {rc})")
            return
        with open(path) as f:
            phase["rows"] = json.load(f)["rows"]
        bad = [r for r in phase["rows"] if not r["ok"]]
        if rc != 0 or bad:
            phase.update(status="failed", error=f"{len(bad)} of {len(phase['rows'])} checks failed (exit {rc})")
        elif self.dev.type == "cuda" and not any(r["backend"] == "triton" and r["device"] == "cuda"
                                                 for r in phase["rows"]):
            phase.update(status="failed", error="no Triton check ran on CUDA")

    def phase_gpu_tests(self, phase):
        path = os.path.join(self.work, "junit.xml")
        cmd = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", f"--junitxml={path}",
               "tests/test_gpu.py"]
        rc, _ = self.sub("pytest tests/test_gpu.py", cmd, self.left())
        if not os.path.isfile(path):
            phase.update(status="failed", error=f"no result (exit {rc})")
            return
        phase.update(parse_junit(path))
        c = phase["counts"]
        if rc not in (0, 5) or c["failed"]:
            phase.update(status="failed", error=f"{c['failed']} failed (exit {rc})")
        elif self.dev.type == "cuda" and c["passed"] == 0:
            phase.update(status="failed", error="no test ran on the GPU")
        elif self.dev.type != "cuda":
            phase["notes"].append("no CUDA device: every test is skipped (dry run)")

    def _bench(self, module: str, argv, title: str) -> dict:
        path = os.path.join(self.work, f"{title.replace(' ', '_')}.json")
        mod = importlib.import_module(module)
        with self.captured(f"{title}: {module} {' '.join(argv)}"):
            mod.main(list(argv) + ["--json", path, "--device", self.dev.type])
        with open(path) as f:
            return json.load(f)

    def phase_kernels(self, phase):
        cfg, fast = self.cfg, "triton" if self.dev.type == "cuda" else "cpp"
        rows, raw = [], {}
        phase.update(rows=rows, raw=raw)          # filled as the benchmarks finish: a crash keeps the ones before
        for B in cfg["batches"]:
            small = B == cfg["batches"][0]
            study = [] if B in cfg["study_batches"] else ["--skip-study"]
            common = ["--batch-size", str(B), "--warmup", str(cfg["warmup"])] + study
            heat = self._bench("heatmap_bench", common + ["--repeats", str(cfg["heat_repeats" if small else
                                                                               "large_repeats"])], f"heatmap {B}")
            pck = self._bench("pck_bench", common + ["--repeats", str(cfg["pck_repeats" if small else
                                                                          "large_repeats"])], f"pck {B}")
            raw[f"heatmap_bench B={B}"], raw[f"pck_bench B={B}"] = heat, pck
            copy = heat["results"]["(d) copy: torch's copy of the same bytes"]["ms"]
            r = heat["results"][f"posedenoise {fast}"]
            rows.append(dict(op="noisy_pair: inputs + targets written", backend=fast, batch=B,
                             bytes=heat["bytes_written"], ms=r["ms"], copy_ms=copy, x_of_copy=r["x_of_copy"],
                             GB_per_s=heat["bytes_written"] / r["ms"] / 1e6, copy_GB_per_s=heat["copy_GB_per_s"]))
            copy = pck["results"]["(c) copy: torch's copy of the same bytes"]["ms"]
            for label, op in ((f"posedenoise {fast} (fused)", "pck_from_heatmaps: maps read"),
                              (f"posedenoise {fast} heatmap_argmax (every map)", "heatmap_argmax: maps read")):
                r = pck["results"][label]
                rows.append(dict(op=op, backend=fast, batch=B, bytes=pck["bytes"], ms=r["ms"], copy_ms=copy,
                                 x_of_copy=r["x_of_copy"], GB_per_s=pck["bytes"] / r["ms"] / 1e6,
                                 copy_GB_per_s=pck["copy_GB_per_s"]))
            if self.dev.type == "cuda":
                self.torch.cuda.empty_cache()

    def _models(self, phase, which):
        from train_step_bench import trainable_models
        names = trainable_models()
        if self.mode == "dry":
            left_out = [m for m in names if m not in DRY_MODELS[which]]
            names = [m for m in names if m in DRY_MODELS[which]]
            if left_out:
                phase["notes"].append(f"dry run: {', '.join(left_out)} not timed (seconds per step on a CPU)")
        if "pose-mlp" not in names and self.mode == "gpu":
            phase["notes"].append("pose-mlp is not in posedenoise.models.MODELS: not timed")
        return names

    def _steps(self, phase, compile_backend):
        cfg = self.cfg
        phase["models"], failed = {}, []
        if compile_backend:
            phase["backend"] = compile_backend
        for name in self._models(phase, "compiled" if compile_backend else "steps"):
            if compile_backend and self.left() < cfg["min_s"].get("compiled", 0):
                phase["notes"].append(f"{name}: not compiled, {self.left():.0f} s of the budget left")
                phase["status"] = "incomplete"
                continue
            argv = ["--models", name, "--repeats", str(cfg["step_repeats"]), "--warmup", str(cfg["step_warmup"])]
            argv += ["--model-batch"] if cfg["step_batch"] is None else ["--batch-size", str(cfg["step_batch"])]
            argv += ["--compile", compile_backend] if compile_backend else []
            try:
                r = self._bench("train_step_bench", argv, f"step {name}{' compiled' if compile_backend else ''}")
                phase["models"][name] = r["models"][name]
            except Exception as e:  # one model's failure (e.g. under torch.compile) is its own row
                msg = str(e).strip().splitlines()
                phase["models"][name] = {"error": f"{type(e).__name__}: {msg[0][:200] if msg else ''}"}
                self.log(f"step {name}: crashed", traceback.format_exc())
                failed.append(name)
            if self.dev.type == "cuda":
                self.torch.cuda.empty_cache()
        if failed:
            phase.update(status="failed", error=f"{', '.join(failed)} failed (see gpu_check.log)")

    def phase_steps(self, phase):
        self._steps(phase, None)

    def phase_compiled(self, phase):
        self._steps(phase, self.cfg["compile"])

    def phase_epochs(self, phase):
        from posedenoise.models import MODELS
        data = self.args.data
        if data is None:   # the dry run: a tiny keypoint cache file, opened as --data FILE is on a GPU
            from posedenoise.data import save_cache, synthetic_cache
            data = os.path.join(self.work, "tiny.npz")
            save_cache(synthetic_cache(12, (30, 60), seed=0), data)
            phase["notes"].append("dry run: a tiny synthetic keypoint cache (12 videos), 40 windows")
        phase["data"] = os.path.basename(data) if self.args.data else "a tiny synthetic cache"
        models, notes = plan_epoch_models(MODELS)
        phase["notes"] += notes
        phase["runs"], failed = {}, []
        if notes:
            phase["status"] = "incomplete"
        for name in models:
            timeout = min(self.cfg["epoch_cap"], self.left())
            if timeout < self.cfg["min_s"].get("epochs", 0):
                phase["notes"].append(f"{name}: not run, {self.left():.0f} s of the budget left")
                phase["status"] = "incomplete"
                continue
            out = os.path.join(self.work, "runs", name)
            cmd = [sys.executable, "-m", "posedenoise.train", "--data", data, "--model", name, "--k", "1", "--setup",
                   "1", "--epochs", "1", "--out", out, "--device", self.dev.type] + self.cfg["epoch_args"]
            t = time.time()
            rc, text = self.sub(f"epoch {name}", cmd, timeout)
            run = {"wall_s": round(time.time() - t, 1), "exit": rc}
            phase["runs"][name] = run
            config = _read_json(os.path.join(out, "config.json")) or {}
            run["batch_size"] = config.get("batch_size")
            run["train_windows"] = (config.get("data_summary") or {}).get("windows", {}).get("train")
            test = _read_json(os.path.join(out, "test.json"))
            if rc != 0 or test is None:
                progress = last_progress(text)
                run["error"] = ("timed out" if rc is None else f"exit {rc}") + (f"; last progress: {progress}"
                                                                                 if progress else "")
                failed.append(name)
                continue
            with open(os.path.join(out, "metrics.jsonl")) as f:
                metrics = [json.loads(line) for line in f if line.strip()]
            run.update(epoch_s=metrics[-1]["seconds"] if metrics else None, pck=test["pck"],
                       identity_pck=test["identity_pck"], best_filter=test.get("best_filter"),
                       best_filter_pck=test.get("best_filter_pck"), margin=test.get("margin_over_best_filter"),
                       keypoints_counted=test.get("keypoints_counted"))
        if failed:
            phase.update(status="failed", error=f"{', '.join(failed)}: see the table and gpu_check.log")


def _read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


# ----------------------------------------------------------------------------------------------------------------
# The command
# ----------------------------------------------------------------------------------------------------------------

def _phase_list(text, flag):
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in PHASES]
    if unknown or not names:
        raise cli.InputError(f"{flag} {text}: expected phases from {', '.join(PHASES)}")
    return names


def parse(argv):
    ap = cli.OneLineParser(prog=PROG, description=__doc__.split("\n\n")[0],
                           formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--out", required=True, metavar="DIR", help=f"folder for {', '.join(FILES)} (made if missing)")
    ap.add_argument("--data", metavar="CACHE", help="keypoint cache of the epochs phase (python -m posedenoise.prepare "
                    "--penn-action ... --out penn.npz); required on a GPU unless --skip epochs")
    ap.add_argument("--dry-run", action="store_true", help="CPU, TRITON_INTERPRET=1, tiny sizes: proves the command")
    ap.add_argument("--budget", type=float, help="seconds from gpu_check.sh's start after which phases are skipped "
                    f"(default: {MODES['gpu']['budget']} on a GPU, {MODES['dry']['budget']} for a dry run)")
    ap.add_argument("--only", help="comma-separated phases to run (default: all)")
    ap.add_argument("--skip", help="comma-separated phases to leave out")
    ap.add_argument("--install-log", help=argparse.SUPPRESS)   # gpu_check.sh's offline install, for the log
    return ap.parse_args(argv)


@cli.command(PROG)
def main(argv=None) -> int:
    args = parse(argv)
    phases = _phase_list(args.only, "--only") if args.only else list(PHASES)
    if args.skip:
        skip = _phase_list(args.skip, "--skip")
        phases = [p for p in phases if p not in skip]
    cli.check_output(args.out, "--out", kind="dir")
    for name in FILES:
        if os.path.isdir(os.path.join(args.out, name)):
            raise cli.InputError(f"--out {args.out}: {name} is a folder there; expected a file name")
    if args.budget is not None and not args.budget > 0:
        raise cli.InputError(f"--budget: expected a positive number of seconds, got {args.budget:g}")
    mode = "dry" if args.dry_run else "gpu"
    # Before triton is imported: a dry run interprets the kernels, a GPU run compiles them.
    interpret = os.environ.pop("TRITON_INTERPRET", None)
    if mode == "dry":
        os.environ["TRITON_INTERPRET"] = "1"
    if args.data is not None and args.data != "synthetic":
        from posedenoise.data.cache import KEYPOINTS, cache_kind, load_cache
        if not os.path.isfile(args.data):
            raise cli.InputError(f"--data {args.data}: no such file (python -m posedenoise.prepare --penn-action "
                                 "DIR --out penn.npz makes one)")
        try:
            if cache_kind(args.data) != KEYPOINTS:
                raise cli.InputError(f"--data {args.data}: a {cache_kind(args.data)} cache; expected a keypoint cache")
            load_cache(args.data)
        except DataError as e:
            raise cli.InputError(f"--data: {e}") from None
        args.data = os.path.abspath(args.data)
    import torch
    if mode == "gpu":
        if not torch.cuda.is_available():
            raise cli.InputError("no CUDA device here (torch.cuda.is_available() is False); --dry-run runs every "
                                 "phase on the CPU at tiny sizes")
        if "epochs" in phases and args.data is None:
            raise cli.InputError("--data: the epochs phase needs a keypoint cache (python -m posedenoise.prepare "
                                 "--penn-action DIR --out penn.npz), or --skip epochs")
        if interpret == "1":
            cli.warn(PROG, "TRITON_INTERPRET=1 is ignored: a GPU run compiles the kernels (--dry-run interprets them)")
    os.makedirs(args.out, exist_ok=True)
    return Check(args, mode).run(phases)


if __name__ == "__main__":
    sys.exit(main())
