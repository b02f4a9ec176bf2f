"""Heatmap rendering and the fused noisy (input, target) pair, in Triton. Semantics: posedenoise/reference.py.

One program renders one map (render mode) or one keypoint's pair of maps (pair mode), as a
BLOCK x BLOCK tile (BLOCK = next power of two >= SIZE) masked to SIZE x SIZE:

    map[y, x] = (amplitude * g(y; m_y)) * g(x; m_x),
    g(x; m)   = sum_{|d| <= r} w[d] [clip(x + d, 0, SIZE - 1) == m],   w[d] = exp(-d^2 / (2 sigma^2)) / Z,
    r         = int(4 sigma + 1/2),

the response of scipy's gaussian_filter1d(sigma, mode='nearest', truncate=4) to a unit impulse at m
('nearest' piles the mass that falls past a border onto the border pixel). For a given d the x that land on
m form a range: x = m - d inside, every x at or past the border when m is a border pixel; so g is built
with 2r + 1 range-masked adds on a BLOCK vector, and the tile is an outer product.

Pair mode draws the noise in-kernel: Philox-4x32-10 keyed by (seed, epoch), counter (slot, frame,
window id low, window id high) with slot 0 the frame's draw (r0 -> sigma_in index) and slot j + 1
keypoint j's draw (r0, r1 -> x, y shift); uint32 draws map to integers by counting passed thresholds of
the host tables (posedenoise/noise.py), so the noise is bit-identical to the C++ and PyTorch backends.

Bytes moved: the kernel is all stores. Per keypoint it reads 8 B of coords, 1 B of visibility and the
tables (cached), and writes 2 * SIZE^2 * elem bytes: for a batch of 16 windows (T=5, K=25, 56x56 fp32)
2 * 2000 * 3136 * 4 B = 50.2 MB, i.e. ~17 us at an H100's ~3 TB/s.
"""
import torch
import triton
import triton.language as tl
from triton.language.random import philox_impl


@triton.jit
def _gaussian_1d(m, sigma, xs, SIZE: tl.constexpr):
    # m: int32 centre; sigma: float32; xs: (BLOCK,) int32 positions -> (BLOCK,) float32 g(xs; m)
    t = 4.0 * sigma
    whole = tl.floor(t)
    r = whole.to(tl.int32) + (t - whole >= 0.5).to(tl.int32)  # int(4 sigma + 1/2), exact for fp32 sigma
    scale = -0.5 / (sigma * sigma)
    total = 0.0
    for d in range(-r, r + 1):
        total += tl.exp(scale * (d * d * 1.0))
    g = tl.zeros(xs.shape, dtype=tl.float32)
    for d in range(-r, r + 1):
        lo = tl.where(m == 0, 0, m - d)                 # x with clip(x + d) == m: [lo, hi]
        hi = tl.where(m == SIZE - 1, SIZE - 1, m - d)
        w = tl.exp(scale * (d * d * 1.0)) / total
        g += tl.where((xs >= lo) & (xs <= hi), w, 0.0)
    return g


@triton.jit
def _count_passed(thr_ptr, n_thr, u):
    # #{i : u >= thr[i]} for a uint32 draw u and n_thr uint32 thresholds (stored as int32 bit patterns)
    c = 0
    for i in range(n_thr):
        c += (u >= tl.load(thr_ptr + i).to(tl.uint32, bitcast=True)).to(tl.int32)
    return c


@triton.jit
def _heatmap_kernel(
    coords_ptr,        # (N, 2) int32 clean (x, y), N = B * T * K, in [0, SIZE)
    visible_ptr,       # (N,) bool
    sigma_ptr,         # (N,) float32 sigma per map (render mode)
    wid_ptr,           # (B,) int64 window ids (pair mode)
    shift_thr_ptr,     # (n_shift_thr,) uint32 thresholds of the shift table
    n_shift_thr,
    shift_low,         # int32: the shift when u is below every threshold
    sigma_thr_ptr,     # (n_sigma_thr,) uint32 thresholds of the sigma index table
    n_sigma_thr,
    sigma_values_ptr,  # (n_sigma_thr + 1,) float32 sigma_in choices
    seed,              # Philox key word 0, in [0, 2**32)
    epoch,             # Philox key word 1, in [0, 2**32)
    offset,            # int32 pixels added to every noisy coordinate before clipping (mu_in)
    maps_ptr,          # (N, SIZE, SIZE) out: rendered maps, or the noisy inputs in pair mode
    targets_ptr,       # (N, SIZE, SIZE) out: clean targets (pair mode)
    noisy_ptr,         # (N, 2) int32 out: noisy coords (pair mode)
    sigma_in_ptr,      # (B * T,) float32 out: sigma_in per frame (pair mode)
    T, K,
    amplitude,         # float32 peak scale c
    SIZE: tl.constexpr,
    NOISE: tl.constexpr,       # pair mode: draw noise, write inputs and targets
    WRITE_MAPS: tl.constexpr,  # False: noise only (simulate_noise)
    BLOCK: tl.constexpr,
):
    n = tl.program_id(0)
    mx = tl.load(coords_ptr + 2 * n)
    my = tl.load(coords_ptr + 2 * n + 1)
    vis = tl.load(visible_ptr + n)
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
        kx, ky, _, _ = philox_impl((j + 1).to(tl.uint32), tu, w_lo, w_hi, k0, k1)
        fr, _, _, _ = philox_impl((j * 0).to(tl.uint32), tu, w_lo, w_hi, k0, k1)
        s_in = tl.load(sigma_values_ptr + _count_passed(sigma_thr_ptr, n_sigma_thr, fr))
        qx = mx + shift_low + _count_passed(shift_thr_ptr, n_shift_thr, kx) + offset
        qy = my + shift_low + _count_passed(shift_thr_ptr, n_shift_thr, ky) + offset
        qx = tl.minimum(tl.maximum(qx, 0), SIZE - 1)
        qy = tl.minimum(tl.maximum(qy, 0), SIZE - 1)
        tl.store(noisy_ptr + 2 * n, qx)
        tl.store(noisy_ptr + 2 * n + 1, qy)
        tl.store(sigma_in_ptr + bt, s_in, mask=j == 0)
    else:
        qx, qy = mx, my
        s_in = tl.load(sigma_ptr + n)
    if WRITE_MAPS:
        r = tl.arange(0, BLOCK)
        mask = (r[:, None] < SIZE) & (r[None, :] < SIZE)
        tile = r[:, None] * SIZE + r[None, :]
        base = n.to(tl.int64) * SIZE * SIZE
        scale = tl.where(vis, amplitude, 0.0)
        gx = _gaussian_1d(qx, s_in, r, SIZE)
        gy = _gaussian_1d(qy, s_in, r, SIZE)
        heat = (scale * gy)[:, None] * gx[None, :]
        tl.store(maps_ptr + base + tile, heat.to(maps_ptr.dtype.element_ty), mask=mask)
        if NOISE:
            one = tl.full((), 1.0, tl.float32)
            gx = _gaussian_1d(mx, one, r, SIZE)
            gy = _gaussian_1d(my, one, r, SIZE)
            heat = (scale * gy)[:, None] * gx[None, :]
            tl.store(targets_ptr + base + tile, heat.to(targets_ptr.dtype.element_ty), mask=mask)


def _launch(coords, visible, *, sigma=None, window_ids=None, shift_low=0, shift_thr=None, sigma_thr=None,
            sigma_values=None, seed=0, epoch=0, offset=0, size=56, amplitude=255.0, write_maps=True,
            dtype=torch.float32):
    """Validate, allocate and launch. Render mode when `sigma` is given (coords (N, 2)), else pair mode
    (coords (B, T, K, 2)). Returns (maps, targets, noisy, sigma_in); unused outputs are empty."""
    noise = sigma is None
    dev = coords.device
    for name, x in (("coords", coords), ("visible", visible), ("sigma", sigma), ("window_ids", window_ids),
                    ("shift_thr", shift_thr), ("sigma_thr", sigma_thr), ("sigma_values", sigma_values)):
        if x is not None and (x.device != dev or not x.is_contiguous()):
            raise ValueError(f"{name}: expected a contiguous tensor on {dev}")
    if coords.dtype != torch.int32 or visible.dtype != torch.bool:
        raise TypeError("coords must be int32 and visible bool")
    B, T, K = coords.shape[:3] if noise else (1, 1, coords.shape[0])
    N = B * T * K
    maps_shape = coords.shape[:-1] + (size, size) if write_maps else (0,)
    maps = torch.empty(maps_shape, dtype=dtype, device=dev)
    targets = torch.empty(maps_shape if noise else (0,), dtype=dtype, device=dev)
    noisy = torch.empty(coords.shape if noise else (0,), dtype=torch.int32, device=dev)
    sigma_in = torch.empty((B, T) if noise else (0,), dtype=torch.float32, device=dev)
    dummy_f = torch.empty(1, dtype=torch.float32, device=dev)
    dummy_i = torch.zeros(1, dtype=torch.int32, device=dev)
    if N == 0:
        return maps, targets, noisy, sigma_in
    _heatmap_kernel[(N,)](
        coords, visible, sigma if not noise else dummy_f,
        window_ids if noise else torch.zeros(1, dtype=torch.int64, device=dev),
        shift_thr if noise and shift_thr.numel() else dummy_i, shift_thr.numel() if noise else 0, shift_low,
        sigma_thr if noise and sigma_thr.numel() else dummy_i, sigma_thr.numel() if noise else 0,
        sigma_values if noise else dummy_f, seed, epoch, offset,
        maps if write_maps else dummy_f.to(dtype), targets if noise and write_maps else dummy_f.to(dtype),
        noisy if noise else dummy_i, sigma_in if noise else dummy_f,
        T, K, float(amplitude),
        SIZE=size, NOISE=noise, WRITE_MAPS=write_maps, BLOCK=triton.next_power_of_2(size), num_warps=4,
    )
    return maps, targets, noisy, sigma_in


def render(coords, visible, sigma, *, amplitude=255.0, size=56):
    """coords (N, 2) int32, visible (N,) bool, sigma (N,) float32 -> (N, size, size) float32."""
    return _launch(coords, visible, sigma=sigma, amplitude=amplitude, size=size)[0]


def noisy_pair(coords, visible, window_ids, *, dtype=torch.float32, **tables_and_args):
    """coords (B, T, K, 2) int32 -> (inputs, targets, noisy, sigma_in); see posedenoise.ops.noisy_pair."""
    return _launch(coords, visible, window_ids=window_ids, dtype=dtype, **tables_and_args)
