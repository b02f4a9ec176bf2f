"""Host-side noise tables: the discrete distributions every backend draws from.

Randomness is integer-only so that all backends agree bit for bit (SPEC section 4). A draw is a uint32
`u` from Philox-4x32-10; a distribution over the integers low, low+1, ... is a sorted table of uint32
thresholds, and the drawn value is

    value = low + #{i : u >= thresholds[i]}

The thresholds are computed once here, in float64, and handed unchanged to every backend, so no backend
evaluates a floating-point CDF.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Sequence, Tuple

import numpy as np
import torch

TWO32 = 1 << 32


@dataclass(frozen=True)
class DiscreteTable:
    low: int                       # the value drawn when u is below every threshold
    thresholds: Tuple[int, ...]    # nondecreasing, each in [1, 2**32 - 1]

    def tensor(self, device="cpu") -> torch.Tensor:
        """Thresholds as int64 (values < 2**32): the torch reference's representation."""
        return _as_tensor(self, torch.device(device), torch.int64)

    def tensor_u32(self, device="cpu") -> torch.Tensor:
        """Thresholds as uint32 bit patterns in an int32 tensor: the C++ and Triton representation."""
        return _as_tensor(self, torch.device(device), torch.int32)


@functools.lru_cache(maxsize=256)
def _as_tensor(table: DiscreteTable, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Built once per table, device and dtype (tables are immutable; callers only read them)."""
    t = torch.tensor(table.thresholds, dtype=torch.int64)
    if dtype == torch.int32:
        t = torch.where(t >= 1 << 31, t - TWO32, t).to(torch.int32)
    return t.to(device)


def _from_cdf(values: Sequence[int], cdf: Sequence[float]) -> DiscreteTable:
    """values[i] is drawn when cdf[i-1] <= u / 2**32 < cdf[i]; the last value takes the rest."""
    thr = [min(max(round(c * TWO32), 0), TWO32) for c in cdf[:-1]]
    low = values[0]
    # A threshold of 0 is always passed and one of 2**32 never: drop both, shifting `low` for the former.
    low += sum(1 for t in thr if t == 0)
    return DiscreteTable(low=low, thresholds=tuple(t for t in thr if 0 < t < TWO32))


def _normal_cdf(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


@functools.lru_cache(maxsize=64)
def shift_table(k: float, size: int = 56, dist: str = "normal") -> DiscreteTable:
    """Per-axis keypoint shift in pixels, for shifting-scalar k.

    "normal": s = round(N(0, (3k)^2)). "uniform": s uniform on the integers of [-round(3k), round(3k)].
    Shifts are clipped afterwards, so the support is cut at +-(size - 1) with the tails folded onto its
    ends; that changes no clipped coordinate. k = 0 gives no shift.
    """
    if not (isinstance(k, (int, float)) and math.isfinite(k) and k >= 0):
        raise ValueError(f"k: expected a finite number >= 0, got {k!r}")
    lim = size - 1
    values = list(range(-lim, lim + 1))
    if k == 0:
        return DiscreteTable(low=0, thresholds=())
    if dist == "normal":
        sd = 3.0 * k
        # P(round(N) <= j) = P(N < j + 1/2); the rounding rule at exact halves has probability 0.
        cdf = [_normal_cdf((j + 0.5) / sd) for j in values]
    elif dist == "uniform":
        a = min(int(round(3.0 * k)), lim)
        cdf = [min(max(j + a + 1, 0), 2 * a + 1) / (2 * a + 1) for j in values]
    else:
        raise ValueError(f"shift_dist: expected 'normal' or 'uniform', got {dist!r}")
    return _from_cdf(values, cdf)


@functools.lru_cache(maxsize=64)
def choice_table(n: int) -> DiscreteTable:
    """A uniform index in [0, n)."""
    if n < 1:
        raise ValueError(f"expected at least one choice, got {n}")
    return _from_cdf(list(range(n)), [(i + 1) / n for i in range(n)])


def sigma_choices_tuple(sigma_choices, size: int = 56) -> Tuple[float, ...]:
    """Validate the set sigma_in is drawn from (None means setup 2: sigma_in = 1), as float32 values (the
    precision every backend renders with). A hashable tuple: the device tables are cached by it."""
    values = (1.0,) if sigma_choices is None else tuple(float(s) for s in sigma_choices)
    if not values or not all(check_sigma(s, size) for s in values):
        raise ValueError(f"sigma_choices: expected sigmas in [{MIN_SIGMA}, {size}] (the map size), got "
                         f"{sigma_choices!r}")
    return tuple(float(np.float32(s)) for s in values)


MIN_SIGMA = 0.05  # a Gaussian below it is one pixel anyway (r = 0 for sigma < 0.125); 1 / sigma^2 overflows near 0


def check_sigma(sigma: float, size: int) -> bool:
    """sigma in [MIN_SIGMA, size]: above the map size the kernel is wider than four maps and the map is flat."""
    return math.isfinite(sigma) and MIN_SIGMA <= sigma <= size
