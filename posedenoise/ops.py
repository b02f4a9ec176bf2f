"""The one public door to every kernel: rendering, noise, argmax, PCK.

Each operation validates its arguments here, once, for every backend, then runs one of
  "triton"  kernels/ (CUDA tensors; CPU tensors too under TRITON_INTERPRET=1),
  "cpp"     csrc/ via posedenoise._C (CPU tensors),
  "torch"   posedenoise.reference (any device; the semantics and the test oracle).
The backend is chosen by device unless the `backend=` argument or the POSEDENOISE_BACKEND environment
variable names one. Each operation is a torch.library.custom_op with a fake implementation, so callers
can be compiled with torch.compile.
"""
from __future__ import annotations

import functools
import math
import os
from typing import Dict, List, Optional, Tuple

import torch

from . import noise as _noise
from . import reference
from .noise import NoiseLaw

BACKENDS = ("triton", "cpp", "torch")
FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)

# ----------------------------------------------------------------------------------------------------
# Backend discovery and choice
# ----------------------------------------------------------------------------------------------------


def _probe_cpp() -> Tuple[Optional[object], str]:
    try:
        from . import _C
        return _C, "built"
    except ImportError as e:
        from .install import build_status
        return None, f"{build_status()} ({e})"


def _probe_triton() -> Tuple[bool, str]:
    try:
        import triton  # noqa: F401
    except ImportError as e:
        return False, f"triton is not installed ({e})"
    if os.environ.get("TRITON_INTERPRET") == "1":
        return True, f"triton {triton.__version__}, interpreter (TRITON_INTERPRET=1): CPU tensors"
    if torch.cuda.is_available():
        return True, f"triton {triton.__version__} on {torch.cuda.get_device_name()}"
    return False, f"triton {triton.__version__} is installed but there is no CUDA device"


_CPP, _CPP_REASON = _probe_cpp()
_TRITON_OK, _TRITON_REASON = _probe_triton()


def available_backends() -> Dict[str, object]:
    """{"available": {backend: bool}, "reasons": {backend: str}, "default": {"cpu": .., "cuda": ..}}."""
    avail = {"triton": _TRITON_OK, "cpp": _CPP is not None, "torch": True}
    reasons = {"triton": _TRITON_REASON, "cpp": _CPP_REASON, "torch": "always available (reference)"}
    return {"available": avail, "reasons": reasons,
            "default": {"cpu": _default_backend(torch.device("cpu")),
                        "cuda": _default_backend(torch.device("cuda"))}}


def _default_backend(device: torch.device) -> str:
    if device.type == "cuda":
        return "triton" if _TRITON_OK else "torch"
    return "cpp" if _CPP is not None else "torch"


def resolve_backend(backend: Optional[str], device: torch.device) -> str:
    """The backend that runs on `device`: the argument, else $POSEDENOISE_BACKEND, else by device."""
    name = backend or os.environ.get("POSEDENOISE_BACKEND") or None
    if name is None:
        return _default_backend(device)
    if name not in BACKENDS:
        raise ValueError(f"backend: expected one of {BACKENDS}, got {name!r}")
    if name == "cpp":
        if _CPP is None:
            raise RuntimeError(f"backend 'cpp' is not available: {_CPP_REASON}")
        if device.type != "cpu":
            raise ValueError(f"backend 'cpp' runs on CPU tensors, got tensors on {device}")
    if name == "triton":
        if not _TRITON_OK:
            raise RuntimeError(f"backend 'triton' is not available: {_TRITON_REASON}")
        if device.type == "cpu" and os.environ.get("TRITON_INTERPRET") != "1":
            raise ValueError("backend 'triton' needs CUDA tensors (or TRITON_INTERPRET=1 for CPU tensors)")
    return name

# ----------------------------------------------------------------------------------------------------
# Argument checks (shared by every backend)
# ----------------------------------------------------------------------------------------------------


def _checking_values() -> bool:
    """Value checks (finite, positive, non-negative) read tensor data; skip them while torch.compile traces,
    where data-dependent branches would break the graph. Shape and type checks always run."""
    return not torch.compiler.is_compiling()


def _check_tensor(name: str, t, ndim_min: int = 1) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
    if t.dim() < ndim_min:
        raise ValueError(f"{name}: expected at least {ndim_min} dimensions, got shape {tuple(t.shape)}")
    return t


def _check_coords(coords, visible, size: int, *, rank: Optional[int] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """coords (..., K, 2) -> int32 clipped to [0, size); visible (..., K) -> bool. Floats are rounded."""
    _check_tensor("coords", coords, 2)
    _check_tensor("visible", visible, 1)
    if rank is not None and coords.dim() != rank:
        raise ValueError(f"coords: expected {rank} dimensions (B, T, K, 2), got shape {tuple(coords.shape)}")
    if coords.shape[-1] != 2:
        raise ValueError(f"coords: expected a last dimension of 2 (x, y), got shape {tuple(coords.shape)}")
    if tuple(visible.shape) != tuple(coords.shape[:-1]):
        raise ValueError(f"visible: expected shape {tuple(coords.shape[:-1])} to match coords "
                         f"{tuple(coords.shape)}, got {tuple(visible.shape)}")
    if visible.device != coords.device:
        raise ValueError(f"visible is on {visible.device} but coords on {coords.device}")
    if coords.is_floating_point():
        if _checking_values() and not bool(torch.isfinite(coords).all()):
            raise ValueError("coords: expected finite values, found NaN or infinity")
        coords = torch.round(coords)
    elif coords.dtype == torch.bool or coords.is_complex():
        raise TypeError(f"coords: expected an integer or floating dtype, got {coords.dtype}")
    coords = coords.clamp(0, size - 1).to(torch.int32).contiguous()
    return coords, visible.to(torch.bool).contiguous()


def _check_size(size: int) -> int:
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"size: expected a positive int, got {size!r}")
    return size


def _check_dtype(dtype) -> torch.dtype:
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"dtype: expected one of {FLOAT_DTYPES}, got {dtype}")
    return dtype

# ----------------------------------------------------------------------------------------------------
# Rendering and noise: custom ops over flat, validated tensors
# ----------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _noise_tables(law: NoiseLaw, device: torch.device):
    """Everything a noisy pair reads besides the batch, built and uploaded once per noise law and device, so
    a training step uploads nothing but its batch. The profile table's rows are the sigma_in choices, then
    the target's sigma 1 (row len(sigma_choices)); drift_keep and drift_emit are the law's drift thresholds
    (noise.Drift; 0 and 2**32 without drift)."""
    sigmas = law.sigma_choices + (1.0,)
    keep, emit = _noise.drift_thresholds(law.drift)
    return dict(drift_keep=keep, drift_emit=emit, shift_low=law.shift.low, shift_thr=law.shift.tensor_u32(device),
                sigma_thr=law.sigma_index.tensor_u32(device),
                sigma_values=torch.tensor(sigmas, dtype=torch.float32, device=device),
                profiles=reference.gaussian_profiles(sigmas, law.size).to(device), target_row=len(sigmas) - 1)


def _op_law(k, shift_dist, choices, size, shift_low, shift_thresholds, sigma_thresholds, drift_keep,
            drift_emit) -> NoiseLaw:
    """The law the noise op draws from: the tables it was given (a NoiseLaw's, taken apart because a custom
    op's arguments are tensors and scalars), else the simulated law of k and shift_dist; with the drift of
    the thresholds drift_keep and drift_emit (noise.Drift's; 0 and 2**32: none)."""
    drift = None if (drift_keep, drift_emit) == _noise.NO_DRIFT else _noise.Drift.from_thresholds(drift_keep,
                                                                                                  drift_emit)
    if shift_thresholds is None:
        return NoiseLaw.simulated(k, choices, size, shift_dist, drift)
    return NoiseLaw(_noise.DiscreteTable(shift_low, tuple(shift_thresholds)),
                    _noise.DiscreteTable(0, tuple(sigma_thresholds)), choices, size, drift)


@torch.library.custom_op("posedenoise::render", mutates_args=())
def _render_op(coords: torch.Tensor, visible: torch.Tensor, rows: torch.Tensor, profiles: torch.Tensor,
               amplitude: float, size: int, backend: str) -> torch.Tensor:
    # coords (N, 2) int32, visible (N,) bool, rows (N,) int32 into profiles (S, size, size) float32
    # -> (N, size, size) float32
    if backend == "torch":
        return reference.render_rows(coords, visible, rows, profiles, amplitude=amplitude)
    if backend == "cpp":
        return _cpp_heatmaps(coords, visible, profiles, rows=rows, amplitude=amplitude, size=size)[0]
    from .kernels import heatmaps as tk
    return tk.render(coords, visible, rows, profiles, amplitude=amplitude, size=size)


@_render_op.register_fake
def _(coords, visible, rows, profiles, amplitude, size, backend):
    return coords.new_empty((coords.shape[0], size, size), dtype=torch.float32)


@torch.library.custom_op("posedenoise::noisy_pair", mutates_args=())
def _pair_op(coords: torch.Tensor, visible: torch.Tensor, window_ids: torch.Tensor, k: float, shift_dist: str,
             sigma_choices: List[float], seed: int, epoch: int, offset: int, size: int, amplitude: float,
             dtype: torch.dtype, inputs: bool, targets: bool, backend: str, shift_low: Optional[int] = None,
             shift_thresholds: Optional[List[int]] = None, sigma_thresholds: Optional[List[int]] = None,
             drift_keep: int = 0, drift_emit: int = 2**32,
             ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    # coords (B, T, K, 2) int32 -> inputs, targets (B, T, K, size, size) [each (0,) when not written],
    # noisy (B, T, K, 2) int32, sigma_in (B, T) float32. The noise is drawn from the given tables (then k and
    # shift_dist are unused), else from the simulated law of k and shift_dist: one path below for both.
    # drift_keep, drift_emit: the drift's thresholds (noise.Drift); the defaults are no drift.
    choices = tuple(sigma_choices)
    law = _op_law(k, shift_dist, choices, size, shift_low, shift_thresholds, sigma_thresholds, drift_keep,
                  drift_emit)
    if backend == "torch":
        keep, emit = _noise.drift_thresholds(law.drift)
        kw = dict(shift=law.shift, sigma_index=law.sigma_index, seed=seed, epoch=epoch, offset=offset, size=size,
                  keep=keep, emit=emit)
        noisy, idx = reference.simulate_noise(coords, window_ids, **kw)
        sigma_in = torch.tensor(choices, dtype=torch.float32, device=coords.device)[idx]
        empty = coords.new_empty((0,), dtype=dtype)
        if not inputs:
            return empty, empty.clone(), noisy, sigma_in
        x, y, _, _ = reference.noisy_pair(coords, visible, window_ids, sigma_choices=choices, amplitude=amplitude,
                                          dtype=dtype, targets=targets, **kw)
        return x, empty.clone() if y is None else y, noisy, sigma_in
    tables = _noise_tables(law, coords.device)
    args = dict(seed=seed, epoch=epoch, offset=offset, size=size, amplitude=amplitude, inputs=inputs,
                targets=targets)
    if backend == "cpp":
        x, y, noisy, sigma_in = _cpp_heatmaps(coords, visible, window_ids=window_ids, **tables, **args)
        if dtype != torch.float32:  # the C++ kernels write float32; .to() rounds to nearest even
            x, y = x.to(dtype), y.to(dtype)
        return x, y, noisy, sigma_in
    from .kernels import heatmaps as tk
    return tk.noisy_pair(coords, visible, window_ids, dtype=dtype, **tables, **args)


@_pair_op.register_fake
def _(coords, visible, window_ids, k, shift_dist, sigma_choices, seed, epoch, offset, size, amplitude, dtype,
      inputs, targets, backend, shift_low=None, shift_thresholds=None, sigma_thresholds=None, drift_keep=0,
      drift_emit=2**32):
    B, T, K, _ = coords.shape
    maps = lambda on: (B, T, K, size, size) if on else (0,)  # noqa: E731
    return (coords.new_empty(maps(inputs), dtype=dtype), coords.new_empty(maps(targets), dtype=dtype),
            coords.new_empty((B, T, K, 2), dtype=torch.int32), coords.new_empty((B, T), dtype=torch.float32))


def _cpp_heatmaps(coords, visible, profiles, *, rows=None, window_ids=None, shift_low=0, shift_thr=None,
                  sigma_thr=None, sigma_values=None, target_row=0, seed=0, epoch=0, offset=0, size=56,
                  amplitude=255.0, inputs=True, targets=False, drift_keep=0, drift_emit=2**32):
    """Run csrc/heatmaps.cpp: render mode when `rows` is given (coords (N, 2)), else noisy-pair mode
    (coords (B, T, K, 2)). Allocates the outputs and passes raw pointers (the extension has no libtorch).
    Returns (maps, targets, noisy, sigma_in); unused outputs are empty tensors."""
    noise = rows is None
    B, T, K = coords.shape[:3] if noise else (1, 1, coords.shape[0])
    maps_shape = coords.shape[:-1] + (size, size)
    maps = torch.empty(maps_shape if inputs else (0,), dtype=torch.float32)
    clean = torch.empty(maps_shape if targets else (0,), dtype=torch.float32)
    noisy = torch.empty(coords.shape if noise else (0,), dtype=torch.int32)
    sigma_in = torch.empty((B, T) if noise else (0,), dtype=torch.float32)
    none = torch.empty(0, dtype=torch.int32)
    st, gt = (shift_thr, sigma_thr) if noise else (none, none)
    _CPP.heatmaps(
        coords.data_ptr(), visible.data_ptr(), (none if noise else rows).data_ptr(), profiles.data_ptr(),
        (window_ids if noise else none).data_ptr(), st.data_ptr(), st.numel(), shift_low, gt.data_ptr(),
        gt.numel(), (sigma_values if noise else none).data_ptr(), target_row, seed, epoch, offset, drift_keep,
        drift_emit, maps.data_ptr(), clean.data_ptr(), noisy.data_ptr(), sigma_in.data_ptr(),
        B, T, K, size, float(amplitude), noise, inputs, targets, torch.get_num_threads())
    return maps, clean, noisy, sigma_in

# ----------------------------------------------------------------------------------------------------
# Public rendering and noise operations
# ----------------------------------------------------------------------------------------------------


def _on_cpu(t: torch.Tensor) -> bool:
    """Whether checking t's values is free: on the CPU it costs no device sync (and never while compiling,
    where a data-dependent branch would break the graph). On a GPU, values are checked where the data is
    born, on the host (posedenoise.data.Batches), not by a sync in every step."""
    return t.device.type == "cpu" and _checking_values()


def render_heatmaps(coords: torch.Tensor, visible: torch.Tensor, sigma, *, amplitude: float = 255.0,
                    size: int = 56, backend: Optional[str] = None) -> torch.Tensor:
    """Render Gaussian heatmaps.

    coords (..., K, 2) as (x, y) pixels (floats are rounded, all are clipped to [0, size - 1]);
    visible (..., K) bool; sigma a float or a tensor broadcastable to (..., K), each in [0.05, size].
    Returns (..., K, size, size) float32 equal to scipy.ndimage.gaussian_filter(amplitude * delta, sigma,
    mode='nearest', truncate=4.0) up to float32 rounding; all zero where not visible.
    The sigmas are read on the host (a sync for CUDA tensors) to build the profile table; the training path
    (noisy_pair) does not call this.
    """
    size = _check_size(size)
    coords, visible = _check_coords(coords, visible, size)
    sig = torch.as_tensor(sigma, dtype=torch.float32, device=coords.device) if not isinstance(
        sigma, torch.Tensor) else sigma
    if sig.device != coords.device:
        raise ValueError(f"sigma is on {sig.device} but coords on {coords.device}")
    try:
        sig = torch.broadcast_to(sig.to(torch.float32), visible.shape)
    except RuntimeError:
        raise ValueError(f"sigma: expected a shape broadcastable to {tuple(visible.shape)}, "
                         f"got {tuple(sig.shape)}") from None
    if not math.isfinite(amplitude):
        raise ValueError(f"amplitude: expected a finite number, got {amplitude!r}")
    values, rows = reference.sigma_rows(sig)
    bad = [s for s in values if not _noise.check_sigma(s, size)]
    if bad:
        raise ValueError(f"sigma: expected values in [{_noise.MIN_SIGMA}, {size}] (the map size), got {bad[0]!r}")
    table = reference.gaussian_profiles(values, size).to(coords.device)
    be = resolve_backend(backend, coords.device)
    out = _render_op(coords.reshape(-1, 2), visible.reshape(-1), rows.reshape(-1), table, float(amplitude), size,
                     be)
    return out.view(*visible.shape, size, size)


class _Unset:
    def __repr__(self):
        return "<unset>"


# The default of sigma_choices, which is required unless noise= is given: None is a value (setup 2's fixed
# sigma 1), so "left out" needs its own marker. Callers that forward sigma_choices default to it as well.
UNSET = _Unset()


def _noise_law(noise, k, sigma_choices, shift_dist, size: int) -> Optional[NoiseLaw]:
    """The law given as noise=, checked against the other arguments; None when the draw is the simulated law
    of k, sigma_choices and shift_dist."""
    if noise is None:
        if sigma_choices is UNSET:
            raise TypeError("sigma_choices: required (None for setup 2's fixed sigma 1) unless noise= is given")
        return None
    if not isinstance(noise, NoiseLaw):
        raise TypeError(f"noise: expected a posedenoise.noise.NoiseLaw, got {type(noise).__name__}")
    if noise.size != size:
        raise ValueError(f"noise: the law was built for size={noise.size} (its shifts fold at "
                         f"+-{noise.size - 1} and its sigmas were checked against it), got size={size}")
    if k is not None or sigma_choices is not UNSET or shift_dist is not None:
        # Allowed only when they describe the very same law: a caller may pass its k and setup along with
        # noise=simulated(...), but never a k that a measured law would silently override.
        try:
            same = NoiseLaw.simulated(k, None if sigma_choices is UNSET else sigma_choices, size,
                                      shift_dist or "normal") == noise
        except (ValueError, TypeError):
            same = False
        if not same:
            raise ValueError(f"noise: given with k={k!r}, sigma_choices={sigma_choices!r}, shift_dist="
                             f"{shift_dist!r}, which describe a different law; pass noise= alone")
    return noise


def _noise_args(coords, visible, window_ids, k, sigma_choices, shift_dist, noise, seed, epoch, offset, size):
    """Checked (coords, visible, window ids, size, the op's noise arguments): a law's tables, or k and
    shift_dist for the op to build the simulated law from."""
    size = _check_size(size)
    coords, visible = _check_coords(coords, visible, size, rank=4)
    if coords.shape[2] == 0:
        raise ValueError(f"coords: expected at least one keypoint (B, T, K >= 1, 2), got shape {tuple(coords.shape)}")
    _check_tensor("window_ids", window_ids, 1)
    if window_ids.shape != coords.shape[:1]:
        raise ValueError(f"window_ids: expected shape ({coords.shape[0]},) (one id per window), "
                         f"got {tuple(window_ids.shape)}")
    if window_ids.device != coords.device:
        raise ValueError(f"window_ids is on {window_ids.device} but coords on {coords.device}")
    if window_ids.is_floating_point() or window_ids.dtype == torch.bool:
        raise TypeError(f"window_ids: expected an integer dtype, got {window_ids.dtype}")
    if _on_cpu(window_ids) and window_ids.numel() and int(window_ids.min()) < 0:
        raise ValueError("window_ids: expected non-negative ids")
    law = _noise_law(noise, k, sigma_choices, shift_dist, size)
    if law is None and (not isinstance(k, (int, float)) or isinstance(k, bool) or not math.isfinite(k) or k < 0):
        raise ValueError(f"k: expected a finite number >= 0, got {k!r}")
    for name, v in (("seed", seed), ("epoch", epoch)):
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 2**32:
            raise ValueError(f"{name}: expected an int in [0, 2**32), got {v!r}")
    # Past the map every keypoint is clipped to its border anyway; the bound keeps coords + shift + offset
    # far inside int32 on every backend.
    if not isinstance(offset, int) or isinstance(offset, bool) or not -size < offset < size:
        raise ValueError(f"offset: expected an int in ({-size}, {size}) pixels, got {offset!r}")
    if law is None:
        drawn = dict(k=float(k), shift_dist=shift_dist or "normal",
                     sigma_choices=list(_noise.sigma_choices_tuple(sigma_choices, size)))
    else:
        drawn = dict(k=0.0, shift_dist="normal", sigma_choices=list(law.sigma_choices), shift_low=law.shift.low,
                     shift_thresholds=list(law.shift.thresholds),
                     sigma_thresholds=list(law.sigma_index.thresholds))
        if law.drift is not None:
            drawn["drift_keep"], drawn["drift_emit"] = law.drift.thresholds
    return coords, visible, window_ids.to(torch.int64).contiguous(), size, drawn


def simulate_noise(coords: torch.Tensor, visible: torch.Tensor, window_ids: torch.Tensor, *,
                   k: Optional[float] = None, sigma_choices=UNSET, seed: int, epoch: int,
                   shift_dist: Optional[str] = None, offset: int = 0, size: int = 56, backend: Optional[str] = None,
                   noise: Optional[NoiseLaw] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Simulated estimator noise for a batch of windows.

    coords (B, T, K, 2) integer; window_ids (B,) int64. Returns noisy coords (B, T, K, 2) int32, clipped
    to [0, size - 1], shifted per frame, keypoint and axis by round(N(0, (3k)^2)) (or uniformly, with
    shift_dist="uniform"; default "normal"), plus `offset` pixels (the seed text's mu_in; default 0); and
    sigma_in (B, T) float32 drawn per frame from `sigma_choices` (None: 1.0, setup 2). A pure function of
    (seed, epoch, window id, frame, keypoint): independent of the batch a window sits in.

    noise: a posedenoise.noise.NoiseLaw (e.g. a measured one, noise.load_noise_json) to draw the shifts and
    sigma_in from instead; then leave k, sigma_choices and shift_dist out, or give exactly those it was
    simulated from (anything else is a ValueError). Its size must be `size`. A law with a drift (noise.Drift,
    e.g. NoiseLaw.simulated(k, sigma_choices, drift=Drift(0.9, 0.8))) draws shifts correlated across a
    window's frames, each frame's with the same law (reference.simulate_noise defines it).
    """
    coords, visible, wid, size, drawn = _noise_args(coords, visible, window_ids, k, sigma_choices, shift_dist,
                                                    noise, seed, epoch, offset, size)
    be = resolve_backend(backend, coords.device)
    _, _, noisy, sigma_in = _pair_op(coords, visible, wid, seed=seed, epoch=epoch, offset=offset, size=size,
                                     amplitude=255.0, dtype=torch.float32, inputs=False, targets=False, backend=be,
                                     **drawn)
    return noisy, sigma_in


def noisy_pair(coords: torch.Tensor, visible: torch.Tensor, window_ids: torch.Tensor, *,
               k: Optional[float] = None, sigma_choices=UNSET, seed: int, epoch: int,
               dtype: torch.dtype = torch.float32, shift_dist: Optional[str] = None, offset: int = 0,
               amplitude: float = 255.0, size: int = 56, targets: bool = True, backend: Optional[str] = None,
               return_noise: bool = False, noise: Optional[NoiseLaw] = None):
    """The training pair of a batch, in one fused pass.

    Returns (inputs, targets), both (B, T, K, size, size) of `dtype`: inputs = render(noisy, sigma_in) with
    exactly the noise simulate_noise() returns for the same arguments (noise= included); targets =
    render(coords, 1), or None with targets=False (coordinate models: only the inputs are rendered). With
    return_noise=True, also (noisy, sigma_in). Other dtypes are the float32 maps rounded to nearest even.
    """
    coords, visible, wid, size, drawn = _noise_args(coords, visible, window_ids, k, sigma_choices, shift_dist,
                                                    noise, seed, epoch, offset, size)
    dtype = _check_dtype(dtype)
    if not math.isfinite(amplitude):
        raise ValueError(f"amplitude: expected a finite number, got {amplitude!r}")
    be = resolve_backend(backend, coords.device)
    inputs, clean, noisy, sigma_in = _pair_op(coords, visible, wid, seed=seed, epoch=epoch, offset=offset,
                                              size=size, amplitude=float(amplitude), dtype=dtype, inputs=True,
                                              targets=bool(targets), backend=be, **drawn)
    clean = clean if targets else None
    return (inputs, clean, noisy, sigma_in) if return_noise else (inputs, clean)

def crop_jitter(coords: torch.Tensor, window_ids: torch.Tensor, *, scale: float = 1.0, shift: int = 0, seed: int,
                epoch: int, size: int = 56) -> torch.Tensor:
    """An imperfect person crop, drawn per window: clean coords (B, T, K, 2) scaled about the map's centre by
    s ~ U(scale, 1) (in steps of 1/1024) and shifted by integers uniform in [-shift, shift] on each axis, then
    rounded and clipped to the map, as a detector's box would misplace the person; the same for every frame
    and keypoint of the window. -> (B, T, K, 2) int64. A pure function of (seed, epoch, window id), in integer
    arithmetic (reference.crop_jitter), so every device and backend gets the same coordinates; it runs before
    the noise kernels, whose input it is. scale=1, shift=0 returns the coords unchanged."""
    size = _check_size(size)
    coords, _ = _check_coords(coords, torch.ones(coords.shape[:-1], dtype=torch.bool, device=coords.device), size,
                              rank=4)
    if not (isinstance(scale, (int, float)) and 0 < scale <= 1):
        raise ValueError(f"scale: expected a number in (0, 1] (the smallest box scale), got {scale!r}")
    if not isinstance(shift, int) or isinstance(shift, bool) or not 0 <= shift < size:
        raise ValueError(f"shift: expected an int in [0, {size}) pixels, got {shift!r}")
    for name, v in (("seed", seed), ("epoch", epoch)):
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 2**32:
            raise ValueError(f"{name}: expected an int in [0, 2**32), got {v!r}")
    if window_ids.shape != coords.shape[:1]:
        raise ValueError(f"window_ids: expected shape ({coords.shape[0]},), got {tuple(window_ids.shape)}")
    min_scale = max(1, round(scale * reference.CROP_SCALE_ONE))
    if min_scale == reference.CROP_SCALE_ONE and shift == 0:
        return coords.to(torch.int64)
    return reference.crop_jitter(coords, window_ids, min_scale=min_scale, max_shift=shift, seed=seed, epoch=epoch,
                                 size=size)

# ----------------------------------------------------------------------------------------------------
# Evaluation
# ----------------------------------------------------------------------------------------------------


# The argmax and PCK ops also count the maps that held a NaN: the fast kernels see it during their one read
# (no second pass over the heatmaps), and the count is read where a result is read. A NaN map's argmax is its
# first NaN on every backend (torch.argmax's rule).

@torch.library.custom_op("posedenoise::heatmap_argmax", mutates_args=())
def _argmax_op(maps: torch.Tensor, backend: str) -> Tuple[torch.Tensor, torch.Tensor]:
    # maps (M, H, W) contiguous -> ((M, 2) float32, (1,) int64 NaN maps)
    if backend == "torch":
        return reference.heatmap_argmax(maps), torch.isnan(maps).flatten(1).any(1).sum().reshape(1)
    if backend == "cpp":
        maps = maps.to(torch.float32).contiguous()  # exact for float16/bfloat16 (float64 runs the reference)
        xy = torch.empty((maps.shape[0], 2), dtype=torch.float32)
        nan = _CPP.heatmap_argmax(maps.data_ptr(), maps.shape[0], maps.shape[1], maps.shape[2], xy.data_ptr(),
                                  torch.get_num_threads())
        return xy, torch.tensor([nan], dtype=torch.int64)
    from .kernels import pck as tk
    return tk.heatmap_argmax(maps)


@_argmax_op.register_fake
def _(maps, backend):
    return maps.new_empty((maps.shape[0], 2), dtype=torch.float32), maps.new_empty((1,), dtype=torch.int64)


@torch.library.custom_op("posedenoise::pck_heatmaps", mutates_args=())
def _pck_heatmaps_op(maps: torch.Tensor, gt: torch.Tensor, visible: torch.Tensor, alphas: List[float], norm: str,
                     norm_length: float, torso: List[int], backend: str) -> Tuple[torch.Tensor, torch.Tensor]:
    # maps (N, K, H, W), gt (N, K, 2) float32, visible (N, K) bool; norm "torso" | "bbox" | "fixed" (a length
    # of norm_length); torso: left shoulder, left hip, right shoulder, right hip indices
    # -> (tally (K * A + K + 2,) int64 = [hits (K, A), counts (K,), frames, NaN maps], norm_sum () float64)
    # One integer buffer, so that the fast backends fill it in one call.
    N, K, H, W = maps.shape
    A = len(alphas)
    if backend == "cpp":  # thresholds included, in one call (csrc/pck.cpp)
        maps = maps.to(torch.float32).contiguous()
        tally, norm_sum = torch.zeros(K * A + K + 2, dtype=torch.int64), torch.zeros((), dtype=torch.float64)
        p = tally.data_ptr()
        tally[-1] = _CPP.pck_heatmaps(maps.data_ptr(), gt.data_ptr(), visible.data_ptr(), N, K, H, W, alphas,
                                      _NORM_MODES[norm], torso, norm_length, p, p + 8 * K * A,
                                      p + 8 * (K * A + K), norm_sum.data_ptr(), torch.get_num_threads())
        return tally, norm_sum
    if backend == "triton":  # thresholds included, in one launch (kernels/pck.py)
        from .kernels import pck as tk
        return tk.pck_heatmaps(maps, gt, visible, alphas, _NORM_MODES[norm], torso, norm_length)
    spec = norm_length if norm == "fixed" else norm
    valid, thr2, norm_sum, frames = reference.pck_thresholds(gt, visible, alphas, spec, _torso_pairs(torso))
    hits = reference.pck_hits(reference.heatmap_argmax(maps), gt, valid, thr2)
    nan = (torch.isnan(maps).flatten(2).any(-1) & valid).sum()
    return torch.cat([hits.flatten(), valid.sum(0), frames.reshape(1), nan.reshape(1)]), norm_sum


@_pck_heatmaps_op.register_fake
def _(maps, gt, visible, alphas, norm, norm_length, torso, backend):
    K = maps.shape[1]
    return (maps.new_empty((K * len(alphas) + K + 2,), dtype=torch.int64),
            maps.new_empty((), dtype=torch.float64))


_NORM_MODES = {"torso": 0, "bbox": 1, "fixed": 2}  # csrc/ops.h PckNorm::Mode, kernels/pck.py


def _torso_pairs(torso: List[int]):
    return (torso[0], torso[1]), (torso[2], torso[3])


def _check_maps(heatmaps, backend: Optional[str]) -> Tuple[torch.Tensor, str]:
    """(heatmaps, the backend that reads them). The C++ kernels read float32: float64 maps would be cast
    first, merging values that differ past float32's precision and so moving maxima and ties; they run on
    the reference instead (exact, slower)."""
    _check_tensor("heatmaps", heatmaps, 2)
    if not heatmaps.is_floating_point():
        raise TypeError(f"heatmaps: expected a floating dtype, got {heatmaps.dtype}")
    be = resolve_backend(backend, heatmaps.device)
    return heatmaps, "torch" if be == "cpp" and heatmaps.dtype == torch.float64 else be


def heatmap_argmax(heatmaps: torch.Tensor, *, backend: Optional[str] = None, check_nan: bool = True) -> torch.Tensor:
    """(..., H, W) -> (..., 2) float32 (x, y) of each map's maximum; ties go to the first index in
    row-major order (as numpy.argmax and torch.argmax); an all-equal map gives (0, 0).

    A map holding a NaN raises ValueError, which reads a counter on the host (a device sync on a GPU). With
    check_nan=False nothing is read and such a map gives its first NaN's position (torch.argmax's rule) on
    every backend: for callers whose maps the kernels rendered (DeciWatch's forward, every training step)."""
    heatmaps, be = _check_maps(heatmaps, backend)
    H, W = heatmaps.shape[-2:]
    xy, nan = _argmax_op(heatmaps.detach().reshape(-1, H, W).contiguous(), be)
    if check_nan and _checking_values() and int(nan.sum()):
        raise ValueError(f"heatmaps: {int(nan.sum())} maps contain NaN (the argmax of such a map is undefined)")
    return xy.view(*heatmaps.shape[:-2], 2)


def _pck_args(gt, visible, alphas, norm, layout, lead_shape=None):
    """Validated (gt (N, K, 2) float32, visible (N, K) bool, alphas, norm name, fixed length, torso indices)."""
    from .layout import POSE25, torso_indices
    layout = POSE25 if layout is None else layout
    _check_tensor("gt", gt, 2)
    _check_tensor("visible", visible, 1)
    if gt.shape[-1] != 2 or tuple(visible.shape) != tuple(gt.shape[:-1]):
        raise ValueError(f"gt and visible: expected shapes (..., K, 2) and (..., K), got {tuple(gt.shape)} "
                         f"and {tuple(visible.shape)}")
    if visible.device != gt.device:
        raise ValueError(f"visible is on {visible.device} but gt on {gt.device}")
    if lead_shape is not None and tuple(lead_shape) != tuple(gt.shape[:-1]):
        raise ValueError(f"predictions: expected leading shape {tuple(gt.shape[:-1])} to match gt, got "
                         f"{tuple(lead_shape)}")
    if gt.shape[-2] != len(layout):
        raise ValueError(f"gt: expected K = {len(layout)} keypoints (the layout's), got {gt.shape[-2]}")
    alphas = [float(a) for a in alphas]
    if not alphas or not all(0 < a <= 1 for a in alphas):
        raise ValueError(f"alphas: expected values in (0, 1], got {tuple(alphas)}")
    if isinstance(norm, str):
        if norm not in ("torso", "bbox"):
            raise ValueError(f"norm: expected 'torso', 'bbox' or a length in pixels, got {norm!r}")
        name, length = norm, 0.0
    elif isinstance(norm, bool) or not isinstance(norm, (int, float)) or not (norm > 0 and math.isfinite(norm)):
        raise ValueError(f"norm: expected 'torso', 'bbox' or a positive length in pixels, got {norm!r}")
    else:
        name, length = "fixed", float(norm)
    torso = [i for pair in torso_indices(layout) for i in pair] if name == "torso" else [0, 0, 0, 0]
    K = gt.shape[-2]
    gt = gt.reshape(-1, K, 2).to(torch.float32).contiguous()
    visible = visible.reshape(-1, K).to(torch.bool).contiguous()
    return gt, visible, alphas, name, length, torso


def _result(alphas, hits, counts, norm_sum, frames, nan_maps=None):
    """A PCKResult on the device that computed it: nothing is copied to the host until it is read."""
    from .metrics import PCKResult
    nan_maps = torch.zeros((), dtype=torch.int64, device=hits.device) if nan_maps is None else nan_maps
    return PCKResult(tuple(alphas), hits, counts, norm_sum, frames, nan_maps)


def pck(pred: torch.Tensor, gt: torch.Tensor, visible: torch.Tensor, *, alphas=(0.05, 0.1, 0.2), norm="torso",
        layout=None):
    """PCK of predicted coordinates. pred, gt (..., K, 2) pixels; visible (..., K) bool (the ground truth's).

    A visible keypoint of a frame with a normalising length L counts; it is correct when
    ||pred - gt||_2 <= alpha * L. norm: "torso" (mean of the two shoulder-hip lengths; frames missing one of
    the four are left out), "bbox" (longer side of the visible keypoints' box), or a length in pixels.
    Returns a PCKResult (hits (K, A), counts (K,), overall, per_keypoint, mean_threshold) on pred's device;
    results of several batches add up exactly, without a device sync until one is read."""
    _check_tensor("pred", pred, 2)
    if pred.shape != gt.shape:
        raise ValueError(f"pred: expected the shape of gt {tuple(gt.shape)}, got {tuple(pred.shape)}")
    gt2, vis2, alphas, _, _, torso = _pck_args(gt, visible, alphas, norm, layout)
    valid, thr2, norm_sum, frames = reference.pck_thresholds(gt2, vis2, alphas, norm, _torso_pairs(torso))
    hits = reference.pck_hits(pred.detach().reshape(gt2.shape).to(torch.float32), gt2, valid, thr2)
    return _result(alphas, hits, valid.sum(0), norm_sum, frames)


def pck_from_heatmaps(heatmaps: torch.Tensor, gt: torch.Tensor, visible: torch.Tensor, *, alphas=(0.05, 0.1, 0.2),
                      norm="torso", layout=None, backend: Optional[str] = None):
    """pck(heatmap_argmax(heatmaps), gt, visible, ...), fused: one read of each counted heatmap, no
    coordinate tensor in between. heatmaps (..., K, H, W). The result stays on the heatmaps' device until it
    is read; reading a result that counted a map holding a NaN raises ValueError."""
    heatmaps, be = _check_maps(heatmaps, backend)
    if heatmaps.dim() < 3:
        raise ValueError(f"heatmaps: expected (..., K, H, W), got shape {tuple(heatmaps.shape)}")
    gt2, vis2, alphas, name, length, torso = _pck_args(gt, visible, alphas, norm, layout, heatmaps.shape[:-2])
    if gt2.device != heatmaps.device:
        raise ValueError(f"gt is on {gt2.device} but heatmaps on {heatmaps.device}")
    H, W = heatmaps.shape[-2:]
    maps = heatmaps.detach().reshape(gt2.shape[0], gt2.shape[1], H, W).contiguous()
    tally, norm_sum = _pck_heatmaps_op(maps, gt2, vis2, alphas, name, length, torso, be)
    K, A = gt2.shape[1], len(alphas)
    return _result(alphas, tally[:K * A].view(K, A), tally[K * A:K * A + K], norm_sum, tally[-2], tally[-1])
