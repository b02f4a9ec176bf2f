"""Heatmap argmax and fused argmax + PCK, in Triton. Semantics: posedenoise/reference.py.

One program per map (frame n, keypoint k): it loads the H x W map as one flat block (masked to H * W,
padding -inf), takes the first index of the maximum (tl.argmax with tie_break_left: row-major ties go to
the first index, as torch.argmax), and either writes (x, y) = (i % W, i // W) or, for PCK, compares

    d2 = dx * dx + dy * dy   (float64, from float32 coordinates)   with   thr2[n, a] = (alpha_a * L_n)^2

and adds the hits into a (K, A) int32 tally with atomics. Maps of keypoints that are not counted are
never loaded. Bytes moved: one read of every counted map (H * W * 4 B) plus 8 B of ground truth and A * 8 B
of thresholds per frame; for 16 windows of 25 keypoints at 56 x 56, at most 25.1 MB: ~8 us at ~3 TB/s.
"""
import torch
import triton
import triton.language as tl


@triton.jit
def _argmax_pck_kernel(
    maps_ptr,      # (N * K, HW) float32/float16 heatmaps
    gt_ptr,        # (N * K, 2) float32 ground-truth (x, y)                         [PCK]
    valid_ptr,     # (N * K,) uint8: keypoint counted (visible and its frame has L) [PCK]
    thr2_ptr,      # (N, A) float64 squared thresholds (alpha * L)^2                [PCK]
    hits_ptr,      # (K, A) int32 tally, accumulated atomically                     [PCK]
    xy_ptr,        # (N * K, 2) float32 out: argmax (x, y)                          [not PCK]
    nan_ptr,       # (1,) int32 out: number of maps read that hold a NaN (the caller rejects them)
    K, A,
    HW: tl.constexpr,       # H * W
    W: tl.constexpr,
    BLOCK: tl.constexpr,    # next power of two >= HW
    A_BLOCK: tl.constexpr,  # next power of two >= A
    PCK: tl.constexpr,
):
    n = tl.program_id(0)
    offs = tl.arange(0, BLOCK)
    if PCK:
        # Loaded as a (BLOCK,) broadcast of one byte rather than a scalar: the interpreter cannot combine a
        # scalar mask with a block mask; on a GPU the repeated address costs one transaction.
        counted = tl.load(valid_ptr + n + offs * 0) != 0
    else:
        counted = offs >= 0
    heat = tl.load(maps_ptr + n.to(tl.int64) * HW + offs, mask=(offs < HW) & counted, other=float("-inf"))
    i = tl.argmax(heat, axis=0, tie_break_left=True)
    tl.atomic_add(nan_ptr, (tl.sum((heat != heat).to(tl.int32), axis=0) > 0).to(tl.int32))
    x = (i % W).to(tl.float32)
    y = (i // W).to(tl.float32)
    if PCK:
        dx = x.to(tl.float64) - tl.load(gt_ptr + 2 * n).to(tl.float64)
        dy = y.to(tl.float64) - tl.load(gt_ptr + 2 * n + 1).to(tl.float64)
        d2 = dx * dx + dy * dy
        a = tl.arange(0, A_BLOCK)
        live = (a < A) & (tl.load(valid_ptr + n + a * 0) != 0)
        thr2 = tl.load(thr2_ptr + (n // K) * A + a, mask=live, other=-1.0)
        tl.atomic_add(hits_ptr + (n % K) * A + a, (d2 <= thr2).to(tl.int32), mask=live)
    else:
        tl.store(xy_ptr + 2 * n, x)
        tl.store(xy_ptr + 2 * n + 1, y)


def _check(name, t, dev):
    if t.device != dev or not t.is_contiguous():
        raise ValueError(f"{name}: expected a contiguous tensor on {dev}")


def heatmap_argmax(maps: torch.Tensor):
    """maps (M, H, W) float -> ((M, 2) float32 (x, y) of the first maximum, (1,) maps holding a NaN)."""
    _check("maps", maps, maps.device)
    M, H, W = maps.shape
    xy = torch.empty((M, 2), dtype=torch.float32, device=maps.device)
    nan = torch.zeros(1, dtype=torch.int32, device=maps.device)
    if M:
        dummy = torch.empty(1, device=maps.device)
        _argmax_pck_kernel[(M,)](maps, dummy, dummy, dummy, dummy, xy, nan, 1, 1, HW=H * W, W=W,
                                 BLOCK=triton.next_power_of_2(H * W), A_BLOCK=1, PCK=False, num_warps=4)
    return xy, nan.to(torch.int64)


def pck_heatmaps(maps: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor, thr2: torch.Tensor):
    """maps (N, K, H, W), gt (N, K, 2) float32, valid (N, K) bool, thr2 (N, A) float64
    -> (hits (K, A) int64, (1,) maps read that hold a NaN)."""
    dev = maps.device
    for name, t in (("maps", maps), ("gt", gt), ("valid", valid), ("thr2", thr2)):
        _check(name, t, dev)
    N, K, H, W = maps.shape
    A = thr2.shape[1]
    hits = torch.zeros((K, A), dtype=torch.int32, device=dev)
    nan = torch.zeros(1, dtype=torch.int32, device=dev)
    if N * K:
        _argmax_pck_kernel[(N * K,)](maps, gt, valid.view(torch.uint8), thr2, hits, gt, nan, K, A, HW=H * W, W=W,
                                     BLOCK=triton.next_power_of_2(H * W), A_BLOCK=triton.next_power_of_2(A),
                                     PCK=True, num_warps=4)
    return hits.to(torch.int64), nan.to(torch.int64)
