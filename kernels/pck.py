"""Heatmap argmax and fused argmax + PCK, in Triton. Semantics: posedenoise/reference.py.

One program per map (frame f, keypoint k): it loads the H x W map as one flat block (masked to H * W,
padding -inf), takes the first index of the maximum (tl.argmax with tie_break_left: row-major ties go to
the first index, as torch.argmax), and either writes (x, y) = (i % W, i // W) or, for PCK, compares

    d2 = dx * dx + dy * dy   (float64, from float32 coordinates)   with   thr2 = (alpha * L_f)^2

and adds the hits into a (K, A) tally with atomics. For PCK each program also finds its frame's length L_f
from the frame's K ground-truth keypoints (torso, box or a fixed length, as reference.pck_norm, with the
same float64 operations: every product there is exact, so fused multiply-adds cannot change a bit), so the
whole evaluation of a batch is one launch, instead of the ~30 small PyTorch ops that computing the
thresholds on the host would launch. Maps of keypoints that are not counted are never loaded. Bytes moved:
one read of every counted map (H * W * 4 B) plus K * 9 B of ground truth per map; for 16 windows of 25
keypoints at 56 x 56, at most 25.1 MB + 0.5 MB: ~9 us at ~3 TB/s.
"""
import functools

import torch
import triton
import triton.language as tl

from .heatmaps import on_device


@triton.jit
def _pick(x, kk, j):
    """x[j] of a (K_BLOCK,) block, as a scalar (exact: one term of the sum is nonzero)."""
    return tl.sum(tl.where(kk == j, x, 0), axis=0)


@triton.jit
def _spread(flag, offs):
    """A scalar flag as a block shaped like offs: the interpreter cannot AND a computed scalar flag into a
    block mask, and on a GPU this costs nothing."""
    return (offs * 0 + flag.to(tl.int32)) != 0


@triton.jit
def _frame_length(gt_ptr, vis_ptr, f, K, ls, lh, rs, rh, length, MODE: tl.constexpr, K_BLOCK: tl.constexpr):
    """L of frame f in float64 (reference.pck_norm) and whether the frame counts (it has an L > 0)."""
    kk = tl.arange(0, K_BLOCK)
    inside = kk < K
    row = f.to(tl.int64) * K + kk
    v = (tl.load(vis_ptr + row, mask=inside, other=0) != 0).to(tl.int32)
    gx = tl.load(gt_ptr + 2 * row, mask=inside, other=0.0).to(tl.float64)
    gy = tl.load(gt_ptr + 2 * row + 1, mask=inside, other=0.0).to(tl.float64)
    if MODE == 0:    # torso: mean of the left and right shoulder-hip distances; all four must be visible
        ok = _pick(v, kk, ls) * _pick(v, kk, lh) * _pick(v, kk, rs) * _pick(v, kk, rh) != 0
        lx = _pick(gx, kk, ls) - _pick(gx, kk, lh)
        ly = _pick(gy, kk, ls) - _pick(gy, kk, lh)
        rx = _pick(gx, kk, rs) - _pick(gx, kk, rh)
        ry = _pick(gy, kk, rs) - _pick(gy, kk, rh)
        # float64 sqrt: PTX has only the correctly rounded sqrt.rn.f64 (tests check the PTX)
        L = (tl.sqrt(lx * lx + ly * ly) + tl.sqrt(rx * rx + ry * ry)) / 2
    elif MODE == 1:  # box: the longer side of the visible keypoints' box
        ok = tl.sum(v, axis=0) != 0
        seen = v != 0
        w = tl.max(tl.where(seen, gx, float("-inf")), axis=0) - tl.min(tl.where(seen, gx, float("inf")), axis=0)
        h = tl.max(tl.where(seen, gy, float("-inf")), axis=0) - tl.min(tl.where(seen, gy, float("inf")), axis=0)
        L = tl.where(ok, tl.maximum(w, h), 0.0)
    else:            # a fixed length
        ok = K > 0
        L = tl.load(length).to(tl.float64)
    framed = ok & (L > 0)
    return tl.where(framed, L, 0.0), framed


@triton.jit
def _argmax_pck_kernel(
    maps_ptr,      # (N * K, HW) float32/float16 heatmaps
    gt_ptr,        # (N * K, 2) float32 ground-truth (x, y)                           [PCK]
    vis_ptr,       # (N * K,) uint8 ground-truth visibility                          [PCK]
    params_ptr,    # (A + 1,) float64: the alphas, then the fixed length (mode 2)     [PCK]
    ints_ptr,      # int64 tally, accumulated atomically: hits (K, A), counts (K,), frames [PCK]
    lengths_ptr,   # (N,) float64 out: L per frame, 0 where it does not count        [PCK]
    xy_ptr,        # (N * K, 2) float32 out: argmax (x, y)                           [not PCK]
    nan_ptr,       # (1,) int64 out: number of maps read that hold a NaN (the caller rejects them)
    K, A, ls, lh, rs, rh,   # keypoints per frame, alphas, torso indices (mode 0)
    HW: tl.constexpr,       # H * W
    W: tl.constexpr,
    BLOCK: tl.constexpr,    # next power of two >= HW
    A_BLOCK: tl.constexpr,  # next power of two >= A
    K_BLOCK: tl.constexpr,  # next power of two >= K
    MODE: tl.constexpr,     # norm: 0 torso, 1 box, 2 fixed (posedenoise/ops.py _NORM_MODES)
    PCK: tl.constexpr,
):
    n = tl.program_id(0)
    offs = tl.arange(0, BLOCK)
    if PCK:
        f = n // K
        k = n % K
        L, framed = _frame_length(gt_ptr, vis_ptr, f, K, ls, lh, rs, rh, params_ptr + A, MODE, K_BLOCK)
        counted = framed & (tl.load(vis_ptr + n) != 0)
        tl.atomic_add(ints_ptr + K * A + k, counted.to(tl.int64))                    # counts
        first = k == 0                                                               # one program per frame
        tl.atomic_add(ints_ptr + K * A + K, framed.to(tl.int64), mask=first)         # frames
        tl.store(lengths_ptr + f, L, mask=first)
        read = (offs < HW) & _spread(counted, offs)
    else:
        read = offs < HW
    heat = tl.load(maps_ptr + n.to(tl.int64) * HW + offs, mask=read, other=float("-inf"))
    first_nan = tl.min(tl.where(heat != heat, offs, BLOCK), axis=0)
    has_nan = first_nan < BLOCK
    # torch.argmax's rule on every backend: the first maximum, or the first NaN of a map that holds one
    i = tl.where(has_nan, first_nan, tl.argmax(heat, axis=0, tie_break_left=True))
    tl.atomic_add(nan_ptr, has_nan.to(tl.int64))
    x = (i % W).to(tl.float32)
    y = (i // W).to(tl.float32)
    if PCK:
        dx = x.to(tl.float64) - tl.load(gt_ptr + 2 * n).to(tl.float64)
        dy = y.to(tl.float64) - tl.load(gt_ptr + 2 * n + 1).to(tl.float64)
        d2 = dx * dx + dy * dy
        a = tl.arange(0, A_BLOCK)
        live = (a < A) & _spread(counted, a)
        thr = tl.load(params_ptr + a, mask=a < A, other=0.0) * L
        tl.atomic_add(ints_ptr + k * A + a, (d2 <= thr * thr).to(tl.int64), mask=live)
    else:
        tl.store(xy_ptr + 2 * n, x)
        tl.store(xy_ptr + 2 * n + 1, y)


def _check(name, t, dev):
    if t.device != dev or not t.is_contiguous():
        raise ValueError(f"{name}: expected a contiguous tensor on {dev}")


@functools.lru_cache(maxsize=64)
def _params(alphas, length, device):
    """(A + 1,) float64 [alphas..., fixed length] on the device, uploaded once per setting, not per batch."""
    return torch.tensor([*alphas, length], dtype=torch.float64, device=device)


# enable_fp_fusion=False: the squared distance dx * dx + dy * dy must be rounded twice, as on the CPU; a fused
# multiply-add rounds once and can flip a hit that lies on the threshold (tests/test_pck.py has such a case).

def heatmap_argmax(maps: torch.Tensor):
    """maps (M, H, W) float -> ((M, 2) float32 (x, y) of the first maximum, (1,) maps holding a NaN)."""
    _check("maps", maps, maps.device)
    M, H, W = maps.shape
    xy = torch.empty((M, 2), dtype=torch.float32, device=maps.device)
    nan = torch.zeros(1, dtype=torch.int64, device=maps.device)
    if M:
        unused = torch.empty(1, device=maps.device)
        with on_device(maps.device):
            _argmax_pck_kernel[(M,)](maps, unused, unused, unused, unused, unused, xy, nan, 1, 1, 0, 0, 0, 0,
                                     HW=H * W, W=W, BLOCK=triton.next_power_of_2(H * W), A_BLOCK=1, K_BLOCK=1,
                                     MODE=0, PCK=False, num_warps=4, enable_fp_fusion=False)  # MODE unused
    return xy, nan


def pck_heatmaps(maps: torch.Tensor, gt: torch.Tensor, visible: torch.Tensor, alphas, mode: int, torso,
                 length: float):
    """maps (N, K, H, W), gt (N, K, 2) float32, visible (N, K) bool; mode as _NORM_MODES
    -> (tally (K * A + K + 2,) int64 = hits (K, A), counts (K,), frames, NaN maps read; norm_sum () float64)."""
    dev = maps.device
    for name, t in (("maps", maps), ("gt", gt), ("visible", visible)):
        _check(name, t, dev)
    N, K, H, W = maps.shape
    A = len(alphas)
    tally = torch.zeros(K * A + K + 2, dtype=torch.int64, device=dev)
    lengths = torch.zeros(N, dtype=torch.float64, device=dev)
    if N * K:
        with on_device(dev):
            _argmax_pck_kernel[(N * K,)](maps, gt, visible.view(torch.uint8), _params(tuple(alphas), length, dev),
                                         tally, lengths, gt, tally[-1:], K, A, *torso, HW=H * W, W=W,
                                         BLOCK=triton.next_power_of_2(H * W), A_BLOCK=triton.next_power_of_2(A),
                                         K_BLOCK=triton.next_power_of_2(K), MODE=mode, PCK=True, num_warps=4,
                                         enable_fp_fusion=False)
    return tally, lengths.sum()
