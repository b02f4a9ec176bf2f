"""Host-side noise tables: the discrete distributions every backend draws from.

Randomness is integer-only so that all backends agree bit for bit (SPEC section 4). A draw is a uint32
`u` from Philox-4x32-10; a distribution over the integers low, low+1, ... is a sorted table of uint32
thresholds, and the drawn value is

    value = low + #{i : u >= thresholds[i]}

The thresholds are computed once here, in float64, and handed unchanged to every backend, so no backend
evaluates a floating-point CDF. Drift (a shift correlated across frames, Drift below) is integer thresholds too.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import math
import numbers
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

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

    def probabilities(self) -> Dict[int, float]:
        """{value: P(value)} as drawn from a uniform uint32 (exact: each is a multiple of 2**-32)."""
        edges = (0,) + self.thresholds + (TWO32,)
        return {self.low + i: (hi - lo) / TWO32 for i, (lo, hi) in enumerate(zip(edges, edges[1:]))}


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

# ----------------------------------------------------------------------------------------------------
# Drift: a lag-1 correlation of the shifts across a window's frames
# ----------------------------------------------------------------------------------------------------

NO_DRIFT = (0, TWO32)   # (keep, emit) thresholds of no drift: every frame redraws and emits, today's law


@dataclass(frozen=True)
class Drift:
    """Drift of the shifts across frames, as a real estimator's error drifts: rho in [0, 1), the persistence of
    a latent shift from frame to frame, and share in [0, 1], the share of the shift variance that drifts.

    Per window and keypoint a latent shift chain runs over the frames: frame t >= 1 keeps the previous latent
    when its Philox word r2 < keep, else it redraws it from the shift table (frame 0 always draws); frame t
    emits the latent when its word r3 < emit, else its shift is a fresh, independent draw of the same table
    (reference.simulate_noise is the definition). Integer thresholds, the same on every backend:

        keep = round(rho * 2**32) clamped to [0, 2**32 - 1],   emit = round(sqrt(share) * 2**32) in [0, 2**32]

    (emit = 2**32: always). Then every frame's shift has exactly the shift table's law (stationary), and
    corr(s_t, s_t+h) = share * rho**h for h >= 1 (with keep / 2**32 for rho and (emit / 2**32)**2 for share):
    the latent chain is copy-or-redraw (autocorrelation rho**h), and both frames emit it with probability
    share. rho = 0, share = 1 is no drift: exactly the draws of a law without it."""
    rho: float
    share: float

    def __post_init__(self):
        for name, v, closed, what in (("rho", self.rho, False, "the drift's persistence"),
                                      ("share", self.share, True, "the share of the shift variance that drifts")):
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or not (
                    0 <= v <= 1 if closed else 0 <= v < 1):
                raise ValueError(f"{name}: expected a number in [0, 1{']' if closed else ')'} ({what}), got {v!r}")
            object.__setattr__(self, name, float(v))

    @property
    def keep(self) -> int:
        """Frame t >= 1 keeps the previous latent shift when its uint32 word r2 < keep."""
        return min(max(round(self.rho * TWO32), 0), TWO32 - 1)

    @property
    def emit(self) -> int:
        """Frame t's shift is the latent one when its uint32 word r3 < emit (2**32: always)."""
        return min(max(round(math.sqrt(self.share) * TWO32), 0), TWO32)

    @property
    def thresholds(self) -> Tuple[int, int]:
        """(keep, emit): what the backends take."""
        return self.keep, self.emit

    @staticmethod
    def from_thresholds(keep: int, emit: int) -> "Drift":
        """The Drift whose thresholds are exactly (keep, emit) (rho = keep / 2**32, share = (emit / 2**32)**2:
        both round back exactly)."""
        d = Drift(keep / TWO32, (emit / TWO32) ** 2)
        if d.thresholds != (keep, emit):
            raise ValueError(f"drift thresholds: expected keep in [0, 2**32) and emit in [0, 2**32], got "
                             f"({keep!r}, {emit!r})")
        return d

    @staticmethod
    def parse(text: str) -> "Drift":
        """"RHO,SHARE" (e.g. "0.9,0.8") -> Drift; ValueError saying what was expected."""
        parts = str(text).split(",")
        try:
            rho, share = (float(p) for p in parts)
        except ValueError:
            raise ValueError(f"expected RHO,SHARE (two numbers, e.g. 0.9,0.8), got {text!r}") from None
        return Drift(rho, share)


def drift_thresholds(drift: Optional[Drift]) -> Tuple[int, int]:
    """(keep, emit) of a drift, or of none (NO_DRIFT)."""
    return NO_DRIFT if drift is None else drift.thresholds

# ----------------------------------------------------------------------------------------------------
# Noise laws: the tables a run draws from, simulated (the study's) or measured (noise.json)
# ----------------------------------------------------------------------------------------------------

NOISE_FORMAT = "posedenoise-noise/1"


@dataclass(frozen=True)
class NoiseLaw:
    """Everything the backends draw noise from: the per-axis shift table, the table of an index into
    sigma_choices, and the map size the shifts were folded at (+-(size - 1)) and the sigmas checked against.
    Immutable and hashable: posedenoise.ops caches the per-device tables by it. Built by simulated() (the
    study's law) or load_noise_json() / from_json_dict() (a measured one): both are the same kind of tables,
    so every backend draws either law by the same code, bit for bit. drift: the shifts' drift across frames
    (Drift), None for independent shifts per frame."""
    shift: DiscreteTable
    sigma_index: DiscreteTable
    sigma_choices: Tuple[float, ...]   # float32 values
    size: int = 56
    drift: Optional[Drift] = None

    def __post_init__(self):
        if self.drift is not None and not isinstance(self.drift, Drift):
            raise TypeError(f"drift: expected a posedenoise.noise.Drift or None, got {type(self.drift).__name__}")
        # The kernels count sigma thresholds from 0 (they take no `low` for the index) and index the sigma
        # rows with the count: the index must start at 0 and stay below len(sigma_choices).
        if self.sigma_index.low != 0 or len(self.sigma_index.thresholds) >= len(self.sigma_choices):
            raise ValueError(f"sigma_index: expected a table over [0, {len(self.sigma_choices)}), got "
                             f"{self.sigma_index}")

    @staticmethod
    def simulated(k: float, sigma_choices=None, size: int = 56, dist: str = "normal",
                  drift: Optional[Drift] = None) -> "NoiseLaw":
        """The study's law, exactly the tables ops has always drawn: shift round(N(0, (3k)^2)) per axis (or
        uniform on [-round(3k), round(3k)] with dist="uniform"), sigma_in uniform over sigma_choices (None:
        setup 2's fixed sigma 1); with `drift` (None: independent per frame, the study's). Raises ValueError
        on a bad argument."""
        return _simulated(k, None if sigma_choices is None else tuple(sigma_choices), size, dist).with_drift(drift)

    def with_drift(self, drift: Optional[Drift]) -> "NoiseLaw":
        """This law with `drift` (None: without) instead of its own."""
        return self if drift == self.drift else dataclasses.replace(self, drift=drift)

    def to_json_dict(self) -> dict:
        """The law in noise.json's schema, with the probabilities the tables really draw (multiples of
        2**-32), so that from_json_dict(law.to_json_dict(), law.size) == law."""
        shift, sigma = self.shift.probabilities(), self.sigma_index.probabilities()
        return {"format": NOISE_FORMAT,
                "shift": {"values": list(shift), "probs": list(shift.values())},
                "sigma": {"values": [self.sigma_choices[i] for i in sigma], "probs": list(sigma.values())},
                "drift": None if self.drift is None else {"rho": self.drift.rho, "share": self.drift.share}}


simulated = NoiseLaw.simulated


@functools.lru_cache(maxsize=64)
def _simulated(k, sigma_choices, size, dist) -> NoiseLaw:
    choices = sigma_choices_tuple(sigma_choices, size)
    return NoiseLaw(shift_table(k, size, dist), choice_table(len(choices)), choices, size)


def load_noise_json(path, size: int = 56, sigma_choices=None) -> NoiseLaw:
    """The measured law in a noise.json file (`python -m posedenoise.calibrate` writes them); see
    from_json_dict. A file that cannot be used raises posedenoise.data.DataError naming it and the field;
    a missing or unreadable one, OSError."""
    from .errors import DataError
    with open(path, encoding="utf-8") as f:
        try:
            d = json.load(f)
        except ValueError as e:   # JSONDecodeError, UnicodeDecodeError
            raise DataError(f"{path}: expected a noise.json file (JSON), got: {e}") from None
    return from_json_dict(d, size, sigma_choices, source=str(path))


def from_json_dict(d, size: int = 56, sigma_choices=None, source: str = "noise.json") -> NoiseLaw:
    """The law of a noise.json document:

        {"format": "posedenoise-noise/1",
         "shift": {"values": [int, ...], "probs": [float, ...]},                 per-axis shift, pixels
         "sigma": {"values": [float, ...], "probs": [float, ...]} or null,
         "drift": {"rho": float, "share": float} or null (optional), ...}       (other fields: ignored)

    Probabilities must be finite, >= 0 and sum to 1 within 1e-6; they are renormalised, then quantised to
    multiples of 2**-32 as every table is. Shifts beyond +-(size - 1) are folded onto those ends (coordinates
    are clipped to the map, so no clipped coordinate changes). Sigma values must lie in [0.05, size]; they
    keep their order, and those left with no probability are dropped. "sigma": null means the file measured
    no sigma_in: it is then drawn uniformly from the caller's `sigma_choices` (e.g. the setup's), where None
    is setup 2's fixed sigma 1. "drift" (Drift: rho in [0, 1), share in [0, 1]; other keys such as calibrate's
    "lags" ignored), missing or null: no drift. Raises posedenoise.data.DataError "<source>: field '<name>':
    expected ...".
    """
    from .errors import DataError

    def bad(field, expected, got):
        raise DataError(f"{source}: field '{field}': expected {expected}, got {got}")

    if not isinstance(d, dict):
        raise DataError(f"{source}: expected a JSON object with 'format', 'shift' and 'sigma', got {_show(d)}")
    if d.get("format") != NOISE_FORMAT:
        bad("format", repr(NOISE_FORMAT), _show(d, "format"))
    if "sigma" not in d:
        bad("sigma", "an object with 'values' and 'probs', or null", _show(d, "sigma"))

    lim = size - 1
    values, probs = _pmf(d, "shift", int, bad)
    # Fold onto [-lim, lim], then give every integer between the lowest and highest shift drawn its mass
    # (0 in gaps): _from_cdf reads consecutive values from the lowest.
    mass = {}
    for v, p in zip(values, probs):
        v = min(max(v, -lim), lim)
        mass[v] = mass.get(v, 0.0) + p
    drawn = [v for v in mass if mass[v] > 0]
    span = range(min(drawn), max(drawn) + 1)
    shift = _from_cdf(list(span), np.cumsum([mass.get(v, 0.0) for v in span]).tolist())
    drift = _drift(d, bad)

    if d["sigma"] is None:
        try:
            choices = sigma_choices_tuple(sigma_choices, size)
        except ValueError as e:
            raise DataError(f"{source}: 'sigma' is null and the default {e}") from None
        return NoiseLaw(shift, choice_table(len(choices)), choices, size, drift)
    sigmas, probs = _pmf(d, "sigma", float, bad)
    for s in sigmas:
        if not check_sigma(s, size):
            bad("sigma.values", f"sigmas in [{MIN_SIGMA}, {size}] (the map size)", _show(s))
    # Quantise the CDF first, then keep the sigmas that got a share of the 2**32 draws: the index table then
    # starts at 0, as the backends need, and every kept sigma is drawn.
    cut = [min(max(round(c * TWO32), 0), TWO32) for c in np.cumsum(probs).tolist()[:-1]] + [TWO32]
    kept = [i for i, (lo, hi) in enumerate(zip([0] + cut, cut)) if hi > lo]
    index = _from_cdf(list(range(len(kept))), [cut[i] / TWO32 for i in kept])  # exact: multiples of 2**-32
    return NoiseLaw(shift, index, tuple(float(np.float32(sigmas[i])) for i in kept), size, drift)


def _drift(d: dict, bad) -> Optional[Drift]:
    """d["drift"] -> Drift, or None when missing or null; checked field by field."""
    obj = d.get("drift")
    if obj is None:
        return None
    if not isinstance(obj, dict):
        bad("drift", "null or an object with 'rho' and 'share'", _show(d, "drift"))
    for name, interval, test in (("rho", "[0, 1)", lambda v: 0 <= v < 1), ("share", "[0, 1]", lambda v: 0 <= v <= 1)):
        v = obj.get(name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not test(v):
            bad(f"drift.{name}", f"a number in {interval}", _show(obj, name))
    return Drift(obj["rho"], obj["share"])


def _pmf(d: dict, name: str, kind, bad):
    """(values, probs) of d[name] = {"values": [...], "probs": [...]}, checked; probs renormalised."""
    obj = d.get(name)
    if not isinstance(obj, dict):
        bad(name, "an object with 'values' and 'probs'", _show(d, name))
    values, probs = obj.get("values"), obj.get("probs")
    if not isinstance(values, list) or not values:
        bad(f"{name}.values", "a non-empty list", _show(obj, "values"))
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float) if kind is float else int):
            bad(f"{name}.values", "integers" if kind is int else "numbers", _show(v))
    if len(set(values)) != len(values):
        bad(f"{name}.values", "distinct values", _show(values))
    if not isinstance(probs, list) or len(probs) != len(values):
        bad(f"{name}.probs", f"a list of {len(values)} probabilities (one per value)", _show(obj, "probs"))
    for p in probs:
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not math.isfinite(p) or p < 0:
            bad(f"{name}.probs", "finite numbers >= 0", _show(p))
    total = math.fsum(probs)
    if abs(total - 1.0) > 1e-6:
        bad(f"{name}.probs", "probabilities summing to 1 (within 1e-6)", f"a sum of {total!r}")
    return [kind(v) for v in values], [p / total for p in probs]


def _show(x, key=None, limit: int = 80) -> str:
    """repr(x), or of x[key] ("nothing" when missing), cut to `limit` characters."""
    if key is not None:
        if key not in x:
            return "nothing (the field is missing)"
        x = x[key]
    text = repr(x)
    return text if len(text) <= limit else text[:limit] + "..."
