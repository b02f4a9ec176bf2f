"""Plain PyTorch reference implementations: they define what every kernel computes.

Readable, vectorised, not fast. Every fast backend (C++ in csrc/, Triton in kernels/) is tested against
these, and these are tested against independent implementations (scipy.ndimage, numpy, the Random123
known-answer vectors).

Conventions, stated once:
- Coordinates are (x, y) = (column, row) in heatmap pixels; heatmaps are (..., H, W) = (..., y, x).
- Randomness is Philox-4x32-10, keyed by (seed, epoch) and counted by (slot, frame, window id lo, hi) with
  words (r0, r1, r2, r3), where
    slot 0, frame t:              frame t's draw: r0 -> sigma_in index;
    slot j + 1, frame t:          keypoint j's draw: r0 -> x shift, r1 -> y shift; with drift, r2 -> keep the
                                  previous latent shift, r3 -> emit the latent shift (simulate_noise);
    slot j + 1, frame FRESH + t:  keypoint j's fresh shift at frame t when it does not emit the latent one
                                  (r0 -> x, r1 -> y); FRESH = 2**31, beyond every frame index;
    slot CROP_SLOT = 2**32 - 1, frame 0: the window's crop draw (scale, x shift, y shift); no keypoint reaches it.
"""
from __future__ import annotations

import functools
import math
from typing import Tuple

import numpy as np
import torch

from .noise import DiscreteTable

M32 = 0xFFFFFFFF
TRUNCATE = 4.0  # scipy.ndimage.gaussian_filter's default: the kernel's radius is int(4 * sigma + 0.5)

# ----------------------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------------------

def gaussian_radius(sigma: torch.Tensor) -> torch.Tensor:
    """int(4 * sigma + 0.5), computed exactly for float32 sigma (4 * sigma is exact; so is its fraction)."""
    t = TRUNCATE * sigma.to(torch.float32)
    whole = torch.floor(t)
    return (whole + (t - whole >= 0.5).to(t.dtype)).to(torch.int64)


@functools.lru_cache(maxsize=64)
def gaussian_profiles(sigmas: Tuple[float, ...], size: int) -> torch.Tensor:
    """The table every backend renders from: (S, size, size) float32 on the CPU, row [s, m] = g(.; m) for
    sigma = sigmas[s] (float32 values), where

        g(x; m) = sum_{|d| <= r} w[d] [clip(x + d, 0, size - 1) == m],   w[d] = exp(-d^2 / (2 sigma^2)) / Z,

    the response of scipy.ndimage.gaussian_filter1d(sigma, mode='nearest', truncate=4) to a unit impulse at
    m, with r = int(4 sigma + 1/2) and Z the sum of the exps. The clip is 'nearest' mode: the mass the
    kernel sends past a border piles up on the border pixel.

    Computed once per set of sigmas in float64 with the C library's exp, summed in the order of d, and
    rounded to float32 once. The kernels look rows up here instead of evaluating exp themselves: on a GPU
    tl.exp lowers to ex2.approx and / to div.full, and in float64 the exps would cost more than the map's
    stores; with one table every backend multiplies the same float32 factors, so all agree bit for bit.
    """
    out = np.zeros((len(sigmas), size, size))                       # [s, m, x], float64
    x = np.arange(size)
    for s, sigma in enumerate(sigmas):
        r = int(gaussian_radius(torch.tensor(sigma)))
        scale = -0.5 / (sigma * sigma)
        w = [math.exp(scale * (d * d)) for d in range(-r, r + 1)]
        total = 0.0
        for v in w:
            total += v
        for d, v in zip(range(-r, r + 1), w):                      # g[m = clip(x + d), x] += w[d]
            out[s, np.clip(x + d, 0, size - 1), x] += v / total
    return torch.from_numpy(out.astype(np.float32))


def sigma_rows(sigma: torch.Tensor) -> Tuple[Tuple[float, ...], torch.Tensor]:
    """Per-map sigmas (...,) -> (the U distinct values, each map's index among them (...,) int32 on sigma's
    device): the rows of gaussian_profiles(values). Reads the sigmas on the host."""
    values, rows = torch.unique(sigma.detach().to("cpu", torch.float32), return_inverse=True)
    return tuple(values.tolist()), rows.to(sigma.device, torch.int32)


def render_rows(coords: torch.Tensor, visible: torch.Tensor, rows: torch.Tensor, table: torch.Tensor, *,
                amplitude: float = 255.0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Heatmaps (..., K, size, size) = (amplitude * g_y) * g_x in float32, zero where not visible, then
    rounded to `dtype` (to nearest even). coords (..., K, 2) integer in [0, size); visible (..., K) bool;
    rows (..., K) int: each map's row of `table` (gaussian_profiles). amplitude counts as float32."""
    gx = table[rows.long(), coords[..., 0].long()]                      # (..., K, W)
    gy = table[rows.long(), coords[..., 1].long()]                      # (..., K, H)
    amp = torch.tensor(amplitude, dtype=torch.float32, device=coords.device) * visible  # 0 where missing
    maps = (amp[..., None] * gy)[..., :, None] * gx[..., None, :]      # (..., K, H, W)
    return maps.to(dtype)


def render(coords: torch.Tensor, visible: torch.Tensor, sigma: torch.Tensor, *, amplitude: float = 255.0,
           size: int = 56, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Heatmaps (..., K, size, size): amplitude * g(y; q_y) * g(x; q_x), zero where not visible.

    coords (..., K, 2) integer in [0, size); visible (..., K) bool; sigma (..., K) float. Each factor is
    rounded to float32 before the products, in the order (amplitude * g_y) * g_x, which is how scipy's
    separable filter rounds."""
    values, rows = sigma_rows(sigma)
    table = gaussian_profiles(values, size).to(coords.device)
    return render_rows(coords, visible, rows, table, amplitude=amplitude, dtype=dtype)

# ----------------------------------------------------------------------------------------------------
# Philox-4x32-10 and the noise
# ----------------------------------------------------------------------------------------------------

PHILOX_ROUND_A, PHILOX_ROUND_B = 0xD2511F53, 0xCD9E8D57
PHILOX_KEY_A, PHILOX_KEY_B = 0x9E3779B9, 0xBB67AE85


def _mulhilo(a: torch.Tensor, b: int):
    """High and low 32 bits of a * b for a < 2**32 (int64 tensor) and a 32-bit constant b, without
    overflowing int64: split b into 16-bit halves."""
    b_hi, b_lo = b >> 16, b & 0xFFFF
    p_lo = a * b_lo                                                  # < 2**48
    p_hi = a * b_hi                                                  # < 2**48
    hi = (p_hi + (p_lo >> 16)) >> 16
    lo = (((p_hi & 0xFFFF) << 16) + p_lo) & M32
    return hi, lo


def philox4x32(c0, c1, c2, c3, k0, k1, rounds: int = 10):
    """Philox-4x32 (Salmon et al. 2011), as in Random123 and triton.language.random.philox_impl.
    Counters and keys are int64 tensors (or ints) holding uint32 values; returns four such tensors."""
    c0, c1, c2, c3, k0, k1 = (torch.as_tensor(v, dtype=torch.int64) for v in (c0, c1, c2, c3, k0, k1))
    for _ in range(rounds):
        hi_b, lo_b = _mulhilo(c2, PHILOX_ROUND_B)
        hi_a, lo_a = _mulhilo(c0, PHILOX_ROUND_A)
        c0, c1, c2, c3 = hi_b ^ c1 ^ k0, lo_b, hi_a ^ c3 ^ k1, lo_a
        k0 = (k0 + PHILOX_KEY_A) & M32
        k1 = (k1 + PHILOX_KEY_B) & M32
    return c0, c1, c2, c3


def draw(table: DiscreteTable, u: torch.Tensor) -> torch.Tensor:
    """value = low + #{i : u >= thresholds[i]}  (u holds uint32 values in int64)."""
    thr = table.tensor(u.device)
    return table.low + (u[..., None] >= thr).sum(-1)


def simulate_noise(coords: torch.Tensor, window_ids: torch.Tensor, *, shift: DiscreteTable,
                   sigma_index: DiscreteTable, seed: int, epoch: int, offset: int = 0, size: int = 56,
                   keep: int = 0, emit: int = 1 << 32):
    """Noisy coordinates and the index of each frame's input sigma, for a batch of windows.

    coords (B, T, K, 2) int; window_ids (B,) int64 -> (noisy (B, T, K, 2) int32, sigma_idx (B, T) int64)
    noisy = clip(coords + shift + offset, 0, size - 1), one shift per window, frame, keypoint and axis;
    sigma_in = sigma_choices[sigma_idx].

    Drift (keep, emit: noise.Drift's integer thresholds; the defaults 0, 2**32 are no drift). For keypoint j
    of a window, with r0..r3 the words of counter (j + 1, t, window id) and f0, f1 those of (j + 1, FRESH + t,
    window id):
      - frame t redraws the latent shift when t = 0 or r2(t) >= keep, else keeps the previous one: the latent
        at t is the shift table's draw from (r0, r1) of frame j(t), the last frame <= t that redrew;
      - frame t emits the latent when r3(t) < emit; otherwise its shift is a fresh draw from (f0(t), f1(t)).
    Both axes share the decisions (x from r0 / f0, y from r1 / f1). Every frame's shift then has exactly the
    shift table's law, and corr(s_t, s_t+h) = (keep / 2**32)**h (emit / 2**32)**2 = share rho**h. With
    keep = 0 and emit = 2**32 every frame redraws and emits: shift(t) from (r0(t), r1(t)), the law without drift.
    """
    B, T, K, _ = coords.shape
    dev = coords.device
    wid = window_ids.to(torch.int64).view(B, 1, 1)
    frame = torch.arange(T, device=dev).view(1, T, 1)
    slot = torch.arange(K + 1, device=dev).view(1, 1, K + 1)        # 0: the frame; j + 1: keypoint j
    w_lo, w_hi, k0, k1 = wid & M32, (wid >> 32) & M32, seed & M32, epoch & M32
    r0, r1, r2, r3 = (r.expand(B, T, K + 1) for r in philox4x32(slot, frame, w_lo, w_hi, k0, k1))
    own = torch.stack([r0[..., 1:], r1[..., 1:]], dim=-1)                                # (B, T, K, 2)
    # j(t): the last frame <= t that redrew (frame 0 always does); the latent is its (r0, r1). Computed for
    # every law (no drift: j(t) = t, and every frame emits), so that this one path defines them all.
    redraw = r2[..., 1:] >= keep
    redraw[:, 0] = True
    last = torch.cummax(torch.where(redraw, frame, 0), dim=1).values                     # (B, T, K)
    latent = torch.gather(own, 1, last[..., None].expand(B, T, K, 2))
    f0, f1, _, _ = philox4x32(slot[..., 1:], FRESH + frame, w_lo, w_hi, k0, k1)
    fresh = torch.stack([f0.expand(B, T, K), f1.expand(B, T, K)], dim=-1)
    u = torch.where((r3[..., 1:] < emit)[..., None], latent, fresh)
    shifts = draw(shift, u)                                                              # (B, T, K, 2)
    noisy = (coords.to(torch.int64) + shifts + offset).clamp(0, size - 1).to(torch.int32)
    return noisy, draw(sigma_index, r0[..., 0])


CROP_SLOT = M32
FRESH = 1 << 31   # frame offset of the fresh shift draws (drift): counter (j + 1, FRESH + t, window id)
CROP_SCALE_ONE = 1024   # crop scales are drawn in steps of 1/1024


def crop_jitter(coords: torch.Tensor, window_ids: torch.Tensor, *, min_scale: int, max_shift: int, seed: int,
                epoch: int, size: int = 56) -> torch.Tensor:
    """An imperfect person crop, as a detector's box gives it: each window's clean coords scaled about the
    map's centre c = (size - 1) / 2 by s = n / 1024, n uniform in [min_scale, 1024], then shifted by integers
    (dx, dy) uniform in [-max_shift, max_shift], rounded half up and clipped to [0, size - 1]; one draw per
    window, the same for its every frame and keypoint, from Philox counter (CROP_SLOT, 0, window id).

    coords (B, T, K, 2) integer; window_ids (B,) -> (B, T, K, 2) int64. Integer arithmetic only:
    round(c + (x - c) s) = floor(((size - 1) 1024 + (2x - (size - 1)) n + 1024) / 2048), exact on every device,
    so this one implementation serves every backend."""
    wid = window_ids.to(torch.int64)
    r0, r1, r2, _ = philox4x32(CROP_SLOT, 0, wid & M32, (wid >> 32) & M32, seed & M32, epoch & M32)
    n = min_scale + ((r0 * (CROP_SCALE_ONE - min_scale + 1)) >> 32)                 # (B,) in [min_scale, 1024]
    span = 2 * max_shift + 1
    d = torch.stack([(r1 * span) >> 32, (r2 * span) >> 32], dim=-1) - max_shift      # (B, 2) in [-m, m]
    c2 = size - 1                                                                    # 2c
    scaled = torch.div(c2 * CROP_SCALE_ONE + (2 * coords.to(torch.int64) - c2) * n.view(-1, 1, 1, 1)
                       + CROP_SCALE_ONE, 2 * CROP_SCALE_ONE, rounding_mode="floor")
    return (scaled + d.view(-1, 1, 1, 2)).clamp(0, size - 1)


def noisy_pair(coords, visible, window_ids, *, shift, sigma_index, sigma_choices, seed, epoch, offset=0,
               size=56, amplitude=255.0, dtype=torch.float32, targets=True, keep=0, emit=1 << 32):
    """(inputs, targets, noisy, sigma_in): inputs = render(noisy, sigma_in), targets = render(coords, 1)
    (None when targets=False). sigma_choices: a tuple of floats (float32 values). keep, emit: drift
    (simulate_noise)."""
    noisy, idx = simulate_noise(coords, window_ids, shift=shift, sigma_index=sigma_index, seed=seed, epoch=epoch,
                                offset=offset, size=size, keep=keep, emit=emit)
    table = gaussian_profiles(tuple(sigma_choices) + (1.0,), size).to(coords.device)  # last row: sigma_out = 1
    rows = idx[..., None].expand(visible.shape)                                      # (B, T, K)
    kw = dict(amplitude=amplitude, dtype=dtype)
    inputs = render_rows(noisy, visible, rows, table, **kw)
    clean = render_rows(coords, visible, torch.full_like(rows, len(sigma_choices)), table, **kw) if targets else None
    sigma_in = torch.tensor(sigma_choices, dtype=torch.float32, device=coords.device)[idx]
    return inputs, clean, noisy, sigma_in

# ----------------------------------------------------------------------------------------------------
# Evaluation
# ----------------------------------------------------------------------------------------------------


def heatmap_argmax(heatmaps: torch.Tensor) -> torch.Tensor:
    """(..., H, W) -> (..., 2) float32 (x, y) of the maximum; ties go to the first index in row-major
    order (torch.argmax's rule), so an all-equal map gives (0, 0)."""
    H, W = heatmaps.shape[-2:]
    flat = heatmaps.reshape(*heatmaps.shape[:-2], H * W).argmax(-1)
    return torch.stack([flat % W, flat // W], dim=-1).to(torch.float32)


def pck_norm(gt: torch.Tensor, visible: torch.Tensor, norm, torso) -> torch.Tensor:
    """Per-frame normalising length L (...,) float64; NaN where the frame is left out.

    gt (..., K, 2), visible (..., K). norm "torso": mean of the two shoulder-hip distances, `torso` being
    ((shoulder, hip), (shoulder, hip)) indices; a frame missing any of the four is left out. "bbox": the
    longer side of the visible keypoints' box. A number: that length for every frame. L = 0 is left out.
    Distances are sqrt(dx * dx + dy * dy) in float64, spelled out so the C++ kernel can match them bit for bit.
    """
    g = gt.to(torch.float64)
    if norm == "torso":
        (ls, lh), (rs, rh) = torso
        ok = visible[..., ls] & visible[..., lh] & visible[..., rs] & visible[..., rh]

        def dist(i, j):
            d = g[..., i, :] - g[..., j, :]
            return torch.sqrt(d[..., 0] * d[..., 0] + d[..., 1] * d[..., 1])
        L = (dist(ls, lh) + dist(rs, rh)) / 2
    elif norm == "bbox":
        big = torch.tensor(float("inf"), dtype=torch.float64, device=g.device)
        v = visible[..., None]
        lo = torch.where(v, g, big).amin(-2)
        hi = torch.where(v, g, -big).amax(-2)
        ok = visible.any(-1)
        L = torch.where(ok, (hi - lo).amax(-1), torch.zeros((), dtype=torch.float64, device=g.device))
    else:
        ok = torch.ones(visible.shape[:-1], dtype=torch.bool, device=g.device)
        L = torch.full(visible.shape[:-1], float(norm), dtype=torch.float64, device=g.device)
    return torch.where(ok & (L > 0), L, torch.full_like(L, float("nan")))


def pck_thresholds(gt: torch.Tensor, visible: torch.Tensor, alphas, norm, torso):
    """What counts and the thresholds, from gt (N, K, 2) and visible (N, K) bool:
    (valid (N, K) bool: visible and the frame has a length L; thr2 (N, A) float64 = (alpha * L)^2;
    norm_sum () float64: sum of L over the frames counted; frames () int64: how many)."""
    L = pck_norm(gt, visible, norm, torso)
    framed = ~torch.isnan(L)
    L = torch.nan_to_num(L)                                            # 0 where the frame is left out
    thr = torch.stack([float(a) * L for a in alphas], dim=-1)          # (N, A), no upload of the alphas
    return visible & framed[:, None], thr * thr, L.sum(), framed.sum()


def pck_hits(pred: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor, thr2: torch.Tensor) -> torch.Tensor:
    """Hits (K, A) int64: valid keypoints with ||pred - gt||^2 <= thr2, summed over all frames.

    pred, gt (N, K, 2) float32; valid (N, K) bool; thr2 (N, A) float64 = (alpha * L)^2. The squared
    distance is dx * dx + dy * dy in float64 from float32 inputs (each product exact, one rounding in the
    sum), so every backend that follows this rule gets the same integers."""
    d = pred.to(torch.float64) - gt.to(torch.float64)
    d2 = d[..., 0] * d[..., 0] + d[..., 1] * d[..., 1]                  # (N, K)
    hit = (d2[..., None] <= thr2[:, None, :]) & valid[..., None]       # (N, K, A)
    return hit.sum(0)
