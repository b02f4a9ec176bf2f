"""Compile every Triton launch the public ops make, exactly as on an sm_80 or sm_90 GPU, without a GPU.

A launch `kernel[grid](*args)` runs Triton's JITFunction.run: its binder specialises the actual argument
values (an int equal to 1 becomes a compile-time constant, ints that are multiples of 16 (0 included) are
marked divisible, ints >= 2**31 become i64, tensors become pointers typed by their dtype and marked 16-byte
aligned when they are), then it compiles for the current device's target, then it launches.
`compile_only(cc)` keeps all of that and swaps two things: the active driver reports
GPUTarget("cuda", cc, 32) and has no device, and instead of launching, each compiled kernel is recorded.
Nothing here restates a kernel's signature: the public ops run as in training and evaluation, on CPU
tensors standing in for CUDA ones (only their dtype and alignment reach the compiler), and Triton's own
code path decides what gets compiled.

Must run in a process without TRITON_INTERPRET (the tests set it for theirs): run_in_subprocess() runs
`python tests/triton_launch.py CC` and reads back one JSON record per compiled kernel.
"""
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile

# ----------------------------------------------------------------------------------------------------
# Compiling instead of launching
# ----------------------------------------------------------------------------------------------------


class _TargetOnlyDriver:
    """Stands in for triton.runtime.driver.active: the target a real sm_<cc> device would report, and the
    device/stream handles JITFunction.run asks for (never used: nothing is launched)."""

    def __init__(self, cc):
        from triton.backends.compiler import GPUTarget
        self.target = GPUTarget("cuda", cc, 32)

    def get_current_target(self):
        return self.target

    def get_current_device(self):
        return 0

    def get_current_stream(self, device=None):
        return 0


@contextlib.contextmanager
def compile_only(cc, records):
    """Inside: every `kernel[grid](...)` is bound, specialised and compiled for sm_<cc> by Triton's own
    JITFunction.run (with warmup=True: compile, do not launch), and appended to `records` as the
    CompiledKernel, once per distinct specialisation (Triton's kernel cache dedups the rest). The Triton
    backend of posedenoise.ops accepts the CPU tensors standing in for CUDA ones."""
    from triton.runtime import driver
    from triton.runtime.jit import JITFunction

    from posedenoise import ops

    real_run, real_resolve = JITFunction.run, ops.resolve_backend

    def run(self, *args, grid, warmup, **kwargs):
        before = sum(len(c[0]) for c in self.device_caches.values())
        kernel = real_run(self, *args, grid=grid, warmup=True, **kwargs)
        if sum(len(c[0]) for c in self.device_caches.values()) > before:
            records.append(kernel)
        return kernel

    previous = driver._active  # reset_active() would build the default driver, which fails without a GPU
    driver.set_active(_TargetOnlyDriver(cc))
    JITFunction.run = run
    ops.resolve_backend = lambda backend, device: "triton"
    try:
        yield
    finally:
        JITFunction.run, ops.resolve_backend = real_run, real_resolve
        driver.set_active(previous)


def report(kernel):
    """What a compiled kernel uses: registers and spills (cuobjdump on the cubin), and PTX instruction counts
    that the tests assert on."""
    import triton
    ptx = kernel.asm["ptx"]
    cuobjdump = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(kernel.asm["cubin"])
        f.flush()
        usage = subprocess.run([cuobjdump, "-res-usage", f.name], capture_output=True, text=True,
                               check=True).stdout
    field = lambda name: int(re.search(rf"{name}:(\d+)", usage).group(1))  # noqa: E731
    # st.global[.hints].v<n>.<type><bits> [addr], ...: bytes per store
    stores = [(int(v or 1) * int(bits) // 8) for v, bits in
              re.findall(r"st\.global(?:\.[a-z]\w*)*?(?:\.v(\d))?\.[a-z]+(\d+)\s", ptx)]
    src = kernel.src
    constants = {src.fn.arg_names[path[0]]: v for path, v in src.constants.items() if len(path) == 1}
    return {
        "kernel": kernel.name,
        "signature": {k: v for k, v in src.signature.items() if v != "constexpr"},
        "constants": {k: (v if isinstance(v, (int, float, bool, str)) else str(v)) for k, v in constants.items()},
        "divisible_16": sorted(src.fn.arg_names[p[0]] for p, a in src.attrs.items()
                               if ["tt.divisibility", 16] in [list(x) for x in a]),
        "enable_fp_fusion": kernel.metadata.enable_fp_fusion,
        "registers": field("REG"), "local_bytes": field("LOCAL"), "stack_bytes": field("STACK"),
        "store_bytes": stores,
        "vector_loads_16B": len(re.findall(r"ld\.global(?:\.\w+)*\.v4\.(?:b32|f32)", ptx)),
        "approx": len(re.findall(r"\.approx\.", ptx)), "div_full": len(re.findall(r"div\.full", ptx)),
        "ex2": len(re.findall(r"ex2\.", ptx)),
        "fma_float": len(re.findall(r"\bfma\.rn\.f(?:32|64)", ptx)),
        "sqrt_rn_f64": len(re.findall(r"sqrt\.rn\.f64", ptx)),
        "cvt_to_16bit": sorted(set(re.findall(r"cvt\.(\w+)\.(?:bf16|f16)(?:x2)?\.f32", ptx))),
    }

# ----------------------------------------------------------------------------------------------------
# The launches: the argument values training, evaluation and DeciWatch's forward really pass
# ----------------------------------------------------------------------------------------------------

EPOCHS = range(51)                          # the study's at most 50 epochs, and validation's fixed epoch 0
SEEDS = (0, 1, 2**31, 2**32 - 1)
BATCH_SIZES = (1, 16, 1024)
SHAPES = ((1, 1), (1, 25), (5, 1), (5, 25))  # (T, K)
# Measured noise laws (noise.json, posedenoise.noise.from_json_dict) as {shift: prob}, {sigma: prob} or None:
# table sizes and lows the simulated law never passes, each of which Triton specialises on (an int equal to 1
# becomes a constant, 0 and multiples of 16 are marked divisible).
EMPIRICAL = {
    "skewed": ({-3: 0.15, 0: 0.55, 5: 0.25, 80: 0.05}, {3.0: 0.3, 1.0: 0.1, 2.5: 0.6}),  # 58 shift thresholds
    "one value": ({2: 1.0}, {1.5: 1.0}),                         # no thresholds at all; target_row 1
    "two from +1": ({1: 0.5, 2: 0.5}, {1.0: 0.5, 2.0: 0.5}),     # shift_low 1, one threshold in each table
    "17 from 0": ({v: 1 / 17 for v in range(17)}, {0.5 * (i + 1): 1 / 17 for i in range(17)}),  # 0, 16, 16, 17
    "folded": ({-100: 0.1, 0: 0.8, 100: 0.1}, None),             # low -55, 110 thresholds; sigma: setup 2's
}

# Drifting laws (posedenoise.noise.Drift: the DRIFT specialisation of the pair kernel) as (rho, share): the
# thresholds keep and emit are never specialised, but their type is: each of i32 and i64 for each.
DRIFTS = {
    "0.9,0.8": (0.9, 0.8),     # keep, emit >= 2**31: both i64
    "0.3,1": (0.3, 1.0),       # keep i32, emit = 2**32 (always) i64
    "0.2,0.04": (0.2, 0.04),   # both i32
}


def launches():
    """(label, thunk) for every launch scenario; each thunk calls a public entry point. Grids over the values
    that change what Triton specialises; epochs and seeds in full."""
    import torch

    from posedenoise import ops
    from posedenoise.evaluation import ALPHAS, SETUPS, model_batch
    from posedenoise.noise import NOISE_FORMAT, Drift, from_json_dict, simulated

    def batch(B, T, K):
        coords = torch.zeros(B, T, K, 2, dtype=torch.int64)
        return coords, torch.ones(B, T, K, dtype=torch.bool), torch.arange(B, dtype=torch.int64) * 7919

    def train_step(kind, B, T, K, setup, k, seed, epoch):
        c, v, w = batch(B, T, K)
        # heatmap models: the fused pair; DeciWatch: noise only, then render the input
        return lambda: model_batch(c, v, w, kind, k=k, sigma_choices=SETUPS[setup]["sigma_choices"], seed=seed,
                                   epoch=epoch, backend="triton")

    def pair(B, T, K, dtype, seed, epoch):
        c, v, w = batch(B, T, K)
        return lambda: ops.noisy_pair(c, v, w, k=1.0, sigma_choices=SETUPS[1]["sigma_choices"], seed=seed,
                                      epoch=epoch, dtype=dtype, backend="triton")

    def noise_only(B, T, K, seed, epoch):
        c, v, w = batch(B, T, K)
        return lambda: ops.simulate_noise(c, v, w, k=1.0, sigma_choices=SETUPS[1]["sigma_choices"], seed=seed,
                                          epoch=epoch, backend="triton")

    def law(shift, sigma):
        pmf = lambda d: None if d is None else {"values": list(d), "probs": list(d.values())}  # noqa: E731
        return from_json_dict({"format": NOISE_FORMAT, "shift": pmf(shift), "sigma": pmf(sigma)})

    def empirical(noise, call, B, T, K, **kw):
        c, v, w = batch(B, T, K)
        return lambda: call(c, v, w, noise=noise, seed=1, epoch=1, backend="triton", **kw)

    out = []
    for seed in SEEDS:
        for epoch in EPOCHS:
            out.append((f"simulate_noise seed={seed} epoch={epoch}", noise_only(16, 5, 25, seed, epoch)))
    for B in BATCH_SIZES:
        for T, K in SHAPES:
            out.append((f"simulate_noise B={B} T={T} K={K}", noise_only(B, T, K, 1, 1)))
    for kind in ("heatmaps", "coords"):
        for seed in SEEDS:
            for epoch in EPOCHS:
                out.append((f"train {kind} seed={seed} epoch={epoch}", train_step(kind, 16, 5, 25, 1, 1.0, seed, epoch)))
        for B in BATCH_SIZES:
            for T, K in SHAPES:
                for setup in SETUPS:
                    for k in (1.0, 2.0):
                        out.append((f"train {kind} B={B} T={T} K={K} setup={setup} k={k:g}",
                                    train_step(kind, B, T, K, setup, k, 1, 1)))
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        for B in BATCH_SIZES:
            for T, K in SHAPES:
                for seed, epoch in ((0, 0), (1, 1), (2**32 - 1, 16)):
                    out.append((f"noisy_pair {dtype} B={B} T={T} K={K} seed={seed} epoch={epoch}",
                                pair(B, T, K, dtype, seed, epoch)))
        for B in BATCH_SIZES:   # DeciWatch's forward: argmax of its input maps (any float dtype under autocast)
            for T, K in SHAPES:
                maps = torch.empty(B, T, K, 56, 56, dtype=dtype)
                out.append((f"heatmap_argmax {dtype} B={B} T={T} K={K}",
                            lambda m=maps: ops.heatmap_argmax(m, backend="triton")))
    for B in BATCH_SIZES:   # render mode: denoise's keypoint input, and users
        for T, K in SHAPES:
            c, v, _ = batch(B, T, K)
            for sigma in (1.0, torch.tensor(SETUPS[1]["sigma_choices"]).repeat(K)[:K]):
                out.append((f"render_heatmaps B={B} T={T} K={K} sigma={sigma}",
                            lambda c=c, v=v, s=sigma: ops.render_heatmaps(c, v, s, backend="triton")))
    layout_1 = ("nose",)   # K = 1: a one-keypoint layout; torso needs the shoulders and hips of a full one
    for B in BATCH_SIZES:
        for T, K in SHAPES:
            for norm in ("torso", "bbox", 10.190901510826777):
                if norm == "torso" and K == 1:
                    continue
                for alphas in (ALPHAS[2:], ALPHAS[1:], ALPHAS):
                    for dtype in (torch.float32, torch.float16, torch.bfloat16):
                        maps = torch.empty(B * T, K, 56, 56, dtype=dtype)
                        gt = torch.zeros(B * T, K, 2)
                        vis = torch.ones(B * T, K, dtype=torch.bool)
                        out.append((f"pck_from_heatmaps norm={norm} alphas={alphas} {dtype} B={B} T={T} K={K}",
                                    lambda m=maps, g=gt, v=vis, a=alphas, n=norm, lay=layout_1 if K == 1 else None:
                                    ops.pck_from_heatmaps(m, g, v, alphas=a, norm=n, layout=lay, backend="triton")))
    def law_cases(label, noise, shapes):
        """Every mode of the pair kernel under one noise law, at each (B, T, K)."""
        for B, T, K in shapes:
            for kind in ("heatmaps", "coords"):
                out.append((f"train {kind} {label} B={B} T={T} K={K}",
                            empirical(noise, lambda *a, kind=kind, **kw: model_batch(*a, kind, **kw), B, T, K)))
            for dtype in (torch.float16, torch.bfloat16):
                out.append((f"noisy_pair {dtype} {label} B={B} T={T} K={K}",
                            empirical(noise, ops.noisy_pair, B, T, K, dtype=dtype)))
            out.append((f"simulate_noise {label} B={B} T={T} K={K}", empirical(noise, ops.simulate_noise, B, T, K)))

    # last: the kernels they are first to compile are the specialisations only a measured law needs
    for name, (shift, sigma) in EMPIRICAL.items():
        law_cases(f"empirical {name}", law(shift, sigma), ((16, 5, 25), (1, 1, 1)))
    # then the drifting laws: simulated (both setups' blur) and a measured one, every mode of the pair kernel
    for name, (rho, share) in DRIFTS.items():
        drift = Drift(rho, share)
        laws = {f"setup={s}": simulated(1.0, SETUPS[s]["sigma_choices"], drift=drift) for s in (1, 2)}
        laws["empirical skewed"] = law(*EMPIRICAL["skewed"]).with_drift(drift)
        for what, noise in laws.items():
            law_cases(f"drift {name} {what}", noise, ((16, 5, 25), (1, 1, 1), (1, 5, 1)))
    return out


def main(cc):
    """Run every scenario under compile_only(cc); print one JSON line per compiled kernel (with the first
    scenario that compiled it) and one per scenario that failed."""
    records = []
    with compile_only(cc, records):
        for label, thunk in launches():
            n = len(records)
            try:
                thunk()
            except Exception as e:  # reported, not raised: the test lists every failing value at once
                msg = str(e).strip().splitlines()
                print(json.dumps({"failed": label, "error": f"{type(e).__name__}: {msg[-1] if msg else ''}"}),
                      flush=True)
                continue
            for kernel in records[n:]:
                print(json.dumps({"first_launch": label, **report(kernel)}), flush=True)


def run_in_subprocess(cc, timeout=1800):
    """main(cc) in a fresh interpreter without TRITON_INTERPRET -> (records, failures)."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    out = subprocess.run([sys.executable, os.path.abspath(__file__), str(cc)], capture_output=True, text=True,
                         env=env, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"compiling the launches for sm_{cc} crashed:\n{out.stderr[-4000:]}")
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    return [r for r in rows if "kernel" in r], [r for r in rows if "failed" in r]


if __name__ == "__main__":
    main(int(sys.argv[1]))
