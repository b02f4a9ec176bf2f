"""Heatmap rendering and the fused noisy (input, target) pair, in Triton. Semantics: posedenoise/reference.py.

One program renders one map (render mode) or one keypoint's input and/or target map (pair mode), as a
BLOCK x BLOCK tile (BLOCK = next power of two >= SIZE) masked to SIZE x SIZE:

    map[y, x] = (amplitude * g(y; m_y)) * g(x; m_x)        in float32, then rounded to the output dtype,

where g(.; m) is row m of the sigma's block of the profile table (reference.gaussian_profiles: scipy's
'nearest'-mode Gaussian response, computed on the host in float64 and rounded to float32 once). The kernel
evaluates no exp and no division: on a GPU those lower to ex2.approx and div.full in float32, and cost more
than the stores in float64; with the table every backend multiplies the same factors and agrees bit for bit.

Pair mode draws the noise in-kernel: Philox-4x32-10 keyed by (seed, epoch), counter (slot, frame,
window id low, window id high) with slot 0 the frame's draw (r0 -> sigma_in index) and slot j + 1
keypoint j's draw (r0, r1 -> x, y shift); uint32 draws map to integers by counting passed thresholds of
the host tables (posedenoise/noise.py), so the noise is bit-identical to the C++ and PyTorch backends.
With drift (DRIFT: the thresholds keep, emit of noise.Drift; reference.simulate_noise defines it), frame t's
shift words are those of the last frame <= t that redrew the keypoint's latent shift (a loop over the t
earlier frames, T is small), or, when frame t does not emit the latent, of counter (j + 1, FRESH + t, ...).

Bytes moved: the kernel is all stores. Per keypoint it reads 8 B of coords, 1 B of visibility, two or four
224 B profile rows and the thresholds (all cached), and writes 2 * SIZE^2 * elem bytes: for a batch of 16
windows (T=5, K=25, 56x56 fp32) 2 * 2000 * 3136 * 4 B = 50.2 MB, i.e. ~17 us at an H100's ~3 TB/s.
"""
import contextlib

import torch
import triton
import triton.language as tl
from triton.language.random import philox_impl


@triton.jit
def _count_passed(thr_ptr, n_thr, u):
    # #{i : u >= thr[i]} for a uint32 draw u and n_thr uint32 thresholds (stored as int32 bit patterns)
    c = 0
    for i in range(n_thr):
        c += (u >= tl.load(thr_ptr + i).to(tl.uint32, bitcast=True)).to(tl.int32)
    return c


@triton.jit
def _round_to(x, DTYPE: tl.constexpr):
    # float32 -> DTYPE, to nearest even (torch's .to()). bfloat16 on the bits: Triton's interpreter truncates
    # (numpy has no bfloat16), and on a GPU this gives the cvt.rn.bf16.f32 result. Maps are finite and >= 0.
    if DTYPE == tl.bfloat16:
        b = x.to(tl.uint32, bitcast=True)
        b = (b + 0x7FFF + ((b >> 16) & 1)) >> 16
        return b.to(tl.uint16).to(tl.bfloat16, bitcast=True)
    else:
        return x.to(DTYPE)


@triton.jit
def _store_map(out_ptr, profiles_ptr, row, mx, my, amp, r, SIZE: tl.constexpr):
    # one map: (amp * g(.; my))[:, None] * g(.; mx)[None, :] over the BLOCK x BLOCK tile, masked to SIZE x SIZE
    inside = r < SIZE
    block = profiles_ptr + row * (SIZE * SIZE)   # row < 2**31 / SIZE^2 (the table's sigmas); may be a constant
    gx = tl.load(block + mx * SIZE + r, mask=inside, other=0.0)
    gy = tl.load(block + my * SIZE + r, mask=inside, other=0.0)
    heat = (amp * gy)[:, None] * gx[None, :]
    tile = r[:, None] * SIZE + r[None, :]
    tl.store(out_ptr + tile, _round_to(heat, out_ptr.dtype.element_ty), mask=inside[:, None] & inside[None, :])


FRESH = tl.constexpr(1 << 31)   # posedenoise.reference.FRESH (kernels/ does not import posedenoise)


@triton.jit
def _drift_words(kx, ky, k2, k3, slot, t, w_lo, w_hi, k0, k1, keep, emit):
    # Frame t's shift words (x, y) under drift, from its own Philox words (kx, ky, k2, k3): the (r0, r1) of
    # the last frame <= t that redrew (frame 0, or r2 >= keep), if r3 < emit; else the fresh counter's.
    # keep < 2**32 compares as a uint32; emit (up to 2**32: always) in 64 bits.
    keep32 = keep.to(tl.uint32)
    lx = kx
    ly = ky
    for s in range(0, t):                       # frames 0 .. t-1, oldest first: the last redraw wins
        a0, a1, a2, _ = philox_impl(slot, tl.cast(s, tl.uint32), w_lo, w_hi, k0, k1)
        redraw = (s == 0) | (a2 >= keep32)
        lx = tl.where(redraw, a0, lx)
        ly = tl.where(redraw, a1, ly)
    own = (t == 0) | (k2 >= keep32)             # frame t itself redrew
    lx = tl.where(own, kx, lx)
    ly = tl.where(own, ky, ly)
    if k3.to(tl.int64) >= emit.to(tl.int64):  # frame t does not emit the latent: a fresh draw
        lx, ly, _, _ = philox_impl(slot, t.to(tl.uint32) | tl.full((), FRESH, tl.uint32), w_lo, w_hi, k0, k1)
    return lx, ly


# seed and epoch are never specialised: Triton would turn a value of 1 into a compile-time Python int (which
# has no .to()) and compile a new kernel for every other class of value (0 or multiples of 16, 1, the rest).
# Nor are the drift thresholds keep and emit, for the same reasons.
@triton.jit(do_not_specialize=["seed", "epoch", "keep", "emit"])
def _heatmap_kernel(
    coords_ptr,        # (N, 2) int32 clean (x, y), N = B * T * K, in [0, SIZE)
    visible_ptr,       # (N,) bool
    profiles_ptr,      # (S, SIZE, SIZE) float32 profile table: [s, m] = g(.; m) for the table's sigma s
    rows_ptr,          # (N,) int32 each map's sigma s (render mode)
    wid_ptr,           # (B,) int64 window ids (pair mode)
    shift_thr_ptr,     # (n_shift_thr,) uint32 thresholds of the shift table
    n_shift_thr,
    shift_low,         # int32: the shift when u is below every threshold
    sigma_thr_ptr,     # (n_sigma_thr,) uint32 thresholds of the sigma index table
    n_sigma_thr,
    sigma_values_ptr,  # (S,) float32 the table's sigmas: the sigma_in choices, then the target's
    target_row,        # the target's sigma s (sigma_out = 1)
    seed,              # Philox key word 0, in [0, 2**32)
    epoch,             # Philox key word 1, in [0, 2**32)
    offset,            # int32 pixels added to every noisy coordinate before clipping (mu_in), |offset| < SIZE
    keep,              # drift: frame t >= 1 keeps the latent shift when r2 < keep, in [0, 2**32) (DRIFT only)
    emit,              # drift: frame t emits the latent shift when r3 < emit, in [0, 2**32] (DRIFT only)
    maps_ptr,          # (N, SIZE, SIZE) out: rendered maps, or the noisy inputs in pair mode
    targets_ptr,       # (N, SIZE, SIZE) out: clean targets (pair mode)
    noisy_ptr,         # (N, 2) int32 out: noisy coords (pair mode)
    sigma_in_ptr,      # (B * T,) float32 out: sigma_in per frame (pair mode)
    T, K,
    amplitude,         # float32 peak scale c
    SIZE: tl.constexpr,
    NOISE: tl.constexpr,     # pair mode: draw noise (and write inputs and/or targets)
    INPUTS: tl.constexpr,    # write maps_ptr (False: noise only, simulate_noise)
    TARGETS: tl.constexpr,   # write targets_ptr
    DRIFT: tl.constexpr,     # the shifts drift (keep, emit); else every frame draws from its own words
    BLOCK: tl.constexpr,
):
    n = tl.program_id(0)
    mx = tl.load(coords_ptr + 2 * n)
    my = tl.load(coords_ptr + 2 * n + 1)
    amp = tl.where(tl.load(visible_ptr + n), amplitude, 0.0)   # all-zero maps where not visible
    r = tl.arange(0, BLOCK)
    base = n.to(tl.int64) * SIZE * SIZE
    if NOISE:
        j = n % K
        bt = n // K
        t = bt % T
        wid = tl.load(wid_ptr + bt // T)
        w_lo = (wid & 0xFFFFFFFF).to(tl.uint32)
        w_hi = ((wid >> 32) & 0xFFFFFFFF).to(tl.uint32)
        k0 = seed.to(tl.uint32)
        k1 = epoch.to(tl.uint32)
        tu = t.to(tl.uint32)
        slot = (j + 1).to(tl.uint32)
        kx, ky, k2, k3 = philox_impl(slot, tu, w_lo, w_hi, k0, k1)
        if DRIFT:
            kx, ky = _drift_words(kx, ky, k2, k3, slot, t, w_lo, w_hi, k0, k1, keep, emit)
        fr, _, _, _ = philox_impl((j * 0).to(tl.uint32), tu, w_lo, w_hi, k0, k1)
        row = _count_passed(sigma_thr_ptr, n_sigma_thr, fr)
        qx = mx + shift_low + _count_passed(shift_thr_ptr, n_shift_thr, kx) + offset
        qy = my + shift_low + _count_passed(shift_thr_ptr, n_shift_thr, ky) + offset
        qx = tl.minimum(tl.maximum(qx, 0), SIZE - 1)
        qy = tl.minimum(tl.maximum(qy, 0), SIZE - 1)
        tl.store(noisy_ptr + 2 * n, qx)
        tl.store(noisy_ptr + 2 * n + 1, qy)
        tl.store(sigma_in_ptr + bt, tl.load(sigma_values_ptr + row), mask=j == 0)
        if INPUTS:
            _store_map(maps_ptr + base, profiles_ptr, row, qx, qy, amp, r, SIZE)
        if TARGETS:
            _store_map(targets_ptr + base, profiles_ptr, target_row, mx, my, amp, r, SIZE)
    else:
        _store_map(maps_ptr + base, profiles_ptr, tl.load(rows_ptr + n), mx, my, amp, r, SIZE)


def on_device(dev: torch.device):
    """Launch on the tensors' own GPU (Triton launches on the current one), not on whatever is current."""
    return torch.cuda.device(dev) if dev.type == "cuda" else contextlib.nullcontext()


def _launch(coords, visible, profiles, *, rows=None, window_ids=None, shift_low=0, shift_thr=None,
            sigma_thr=None, sigma_values=None, target_row=0, seed=0, epoch=0, offset=0, size=56, amplitude=255.0,
            inputs=True, targets=False, dtype=torch.float32, drift_keep=0, drift_emit=1 << 32):
    """Allocate and launch. Render mode when `rows` is given (coords (N, 2)), else pair mode (coords
    (B, T, K, 2)); drift_keep, drift_emit: the drift's thresholds (0, 2**32: none). Returns (maps, targets,
    noisy, sigma_in); unused outputs are empty."""
    noise = rows is None
    drift = noise and (drift_keep, drift_emit) != (0, 1 << 32)
    dev = coords.device
    for name, x in (("coords", coords), ("visible", visible), ("profiles", profiles), ("rows", rows),
                    ("window_ids", window_ids), ("shift_thr", shift_thr), ("sigma_thr", sigma_thr),
                    ("sigma_values", sigma_values)):
        if x is not None and (x.device != dev or not x.is_contiguous()):
            raise ValueError(f"{name}: expected a contiguous tensor on {dev}")
    B, T, K = coords.shape[:3] if noise else (1, 1, coords.shape[0])
    N = B * T * K
    maps_shape = coords.shape[:-1] + (size, size)
    maps = torch.empty(maps_shape if inputs else (0,), dtype=dtype, device=dev)
    clean = torch.empty(maps_shape if targets else (0,), dtype=dtype, device=dev)
    noisy = torch.empty(coords.shape if noise else (0,), dtype=torch.int32, device=dev)
    sigma_in = torch.empty((B, T) if noise else (0,), dtype=torch.float32, device=dev)
    if N == 0:
        return maps, clean, noisy, sigma_in
    # Pointers the mode does not use get a one-element stand-in of the argument's dtype (never accessed).
    i32, i64, f32 = (torch.zeros(1, dtype=d, device=dev) for d in (torch.int32, torch.int64, torch.float32))
    out = torch.zeros(1, dtype=dtype, device=dev)
    with on_device(dev):
        _heatmap_kernel[(N,)](
            coords, visible, profiles, i32 if noise else rows, window_ids if noise else i64,
            shift_thr if noise and shift_thr.numel() else i32, shift_thr.numel() if noise else 0, shift_low,
            sigma_thr if noise and sigma_thr.numel() else i32, sigma_thr.numel() if noise else 0,
            sigma_values if noise else f32, target_row, seed, epoch, offset,
            drift_keep if drift else 0, drift_emit if drift else 0,   # without drift: unused, one signature
            maps if inputs else out, clean if targets else out, noisy if noise else i32,
            sigma_in if noise else f32, T, K, float(amplitude),
            SIZE=size, NOISE=noise, INPUTS=inputs, TARGETS=targets, DRIFT=drift, BLOCK=triton.next_power_of_2(size),
            num_warps=4, enable_fp_fusion=False,  # no contraction anywhere: the products are the CPU's
        )
    return maps, clean, noisy, sigma_in


def render(coords, visible, rows, profiles, *, amplitude=255.0, size=56):
    """coords (N, 2) int32, visible (N,) bool, rows (N,) int32 into profiles (S, size, size) float32
    -> (N, size, size) float32."""
    return _launch(coords, visible, profiles, rows=rows, amplitude=amplitude, size=size)[0]


def noisy_pair(coords, visible, window_ids, profiles, *, dtype=torch.float32, **tables_and_args):
    """coords (B, T, K, 2) int32 -> (inputs, targets, noisy, sigma_in); see posedenoise.ops.noisy_pair."""
    return _launch(coords, visible, profiles, window_ids=window_ids, dtype=dtype, **tables_and_args)
