"""Classical temporal filters over a window's argmax coordinates: the baselines a learned denoiser must beat.

Each takes heatmaps (B, T, K, H, W) like every model (or (x, y, present) triples, models/inputs.py), reads
their argmax coordinates (what the identity baseline is scored on), filters every keypoint's x and y along
time, and returns coordinates (B, T, K, 2) in heatmap pixels, scored exactly like DeciWatch. Missing means
missing: a frame where the keypoint's map is all zero (not detected) is not read as the point (0, 0); it
takes the mean of the keypoint's present frames before filtering, so the mean filter averages exactly the
present frames (measured on Penn Action, k = 1, PCK@0.2: 0.875 against 0.859 when (0, 0) was averaged in).
A keypoint present in no frame of the window stays as it came, missing. Nothing is trained: the few
hyper-parameters of each filter are chosen on the validation split from its GRID (every combination;
posedenoise.evaluation.fit_filters), never on test.

| name       | what                                                                  | GRID                       |
|------------|-----------------------------------------------------------------------|----------------------------|
| mean       | every frame gets the window's mean                                    | -                          |
| linear-fit | the least-squares line through the window, per keypoint and axis      | -                          |
| savgol     | Savitzky-Golay, scipy.signal.savgol_filter(mode='interp')             | polyorder 1, 2 (window 5)  |
| gaussian   | temporal Gaussian, scipy.ndimage.gaussian_filter1d(mode='nearest')    | sigma 0.5-3 frames         |
| median     | running median, scipy.ndimage.median_filter(mode='nearest')           | window 3, 5                |
| one-euro   | One-Euro (Casiez et al., CHI 2012), causal: frame t sees 0..t only    | min_cutoff x beta          |

(With window 5 = T, savgol fits one polynomial to the whole window, so polyorder 1 is linear-fit.)
The linear filters are a (T, T) matrix made by running the scipy filter on the identity, so scipy defines
them and the forward is one product over the whole batch; median and one-euro are vectorised over windows,
keypoints and axes (one-euro steps through the T frames: it is causal).
"""
import itertools
import math

import numpy as np
import scipy.ndimage as ndi
import scipy.signal as sps
import torch
import torch.nn as nn

from .inputs import fill_missing, read_coords


class TemporalFilter(nn.Module):
    """Heatmaps (B, T, K, H, W) -> filtered argmax coordinates (B, T, K, 2). No parameters to train."""

    input_kind = "coords"
    output_kind = "coords"
    GRID: dict = {}   # hyper-parameter -> the values tried on the validation split

    def __init__(self, num_keypoints: int = 25, window: int = 5, size: int = 56):
        super().__init__()
        self.num_keypoints, self.window, self.size = num_keypoints, window, size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != self.window:
            raise ValueError(f"{type(self).__name__}: expected windows of {self.window} frames, got shape "
                             f"{tuple(x.shape)}")
        with torch.no_grad():
            return self.smooth(*read_coords(x))

    def smooth(self, xy: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """(B, T, K, 2) coordinates and (B, T, K) presence -> (B, T, K, 2), filtered along T over the present
        frames (the missing ones filled with the present frames' mean first)."""
        return self.filter(fill_missing(xy, present)[0])

    def filter(self, xy: torch.Tensor) -> torch.Tensor:
        """(B, T, K, 2) coordinates, every frame present -> the same shape, filtered along T."""
        raise NotImplementedError

    @classmethod
    def grid(cls):
        """Every combination of GRID, as constructor keyword arguments."""
        keys = list(cls.GRID)
        return [dict(zip(keys, values)) for values in itertools.product(*(cls.GRID[k] for k in keys))]


class _LinearFilter(TemporalFilter):
    """out[t] = sum_s M[t, s] xy[s], with M = the scipy filter applied to the identity (column s: the filter's
    response to a unit impulse at frame s)."""

    def __init__(self, num_keypoints=25, window=5, size=56):
        super().__init__(num_keypoints, window, size)
        m = self.scipy_filter(np.eye(window))                                  # (T, T), float64
        self.register_buffer("matrix", torch.tensor(m, dtype=torch.float32), persistent=False)

    def scipy_filter(self, frames: np.ndarray) -> np.ndarray:
        """The filter along axis 0 of a (T, ...) array."""
        raise NotImplementedError

    def filter(self, xy):
        return torch.einsum("ts,bskc->btkc", self.matrix.to(xy.device), xy)


class Mean(_LinearFilter):
    def scipy_filter(self, frames):
        return np.broadcast_to(frames.mean(0, keepdims=True), frames.shape)


class SavGol(_LinearFilter):
    GRID = {"polyorder": (1, 2)}

    def __init__(self, num_keypoints=25, window=5, size=56, filter_window=None, polyorder: int = 2):
        whole = window if window % 2 else window - 1           # default: the longest odd span of the window
        filter_window = whole if filter_window is None else filter_window
        if not (filter_window % 2 == 1 and 1 <= filter_window <= window and 0 <= polyorder < filter_window):
            raise ValueError(f"savgol: expected an odd filter_window <= {window} (the window) and 0 <= polyorder "
                             f"< filter_window, got filter_window={filter_window}, polyorder={polyorder}")
        self.filter_window, self.polyorder = filter_window, polyorder
        super().__init__(num_keypoints, window, size)

    def scipy_filter(self, frames):
        return sps.savgol_filter(frames, self.filter_window, self.polyorder, axis=0, mode="interp")


class LinearFit(SavGol):
    """Savitzky-Golay over the whole window with polyorder 1: the least-squares line."""

    GRID = {}

    def __init__(self, num_keypoints=25, window=5, size=56):
        super().__init__(num_keypoints, window, size, polyorder=1)


class Gaussian(_LinearFilter):
    GRID = {"sigma": (0.5, 0.75, 1.0, 1.5, 2.0, 3.0)}

    def __init__(self, num_keypoints=25, window=5, size=56, sigma: float = 1.0):
        if not (math.isfinite(sigma) and sigma > 0):
            raise ValueError(f"gaussian: expected sigma > 0 frames, got {sigma}")
        self.sigma = sigma
        super().__init__(num_keypoints, window, size)

    def scipy_filter(self, frames):
        return ndi.gaussian_filter1d(frames, self.sigma, axis=0, mode="nearest", truncate=4.0)


class Median(TemporalFilter):
    GRID = {"filter_window": (3, 5)}

    def __init__(self, num_keypoints=25, window=5, size=56, filter_window: int = 3):
        super().__init__(num_keypoints, window, size)
        if not (filter_window % 2 == 1 and 1 <= filter_window):
            raise ValueError(f"median: expected an odd filter_window >= 1, got {filter_window}")
        self.filter_window = filter_window

    def filter(self, xy):
        r = self.filter_window // 2
        T = xy.shape[1]
        # 'nearest': frame t's neighbourhood is frames clip(t + d, 0, T - 1), |d| <= r
        idx = (torch.arange(T)[:, None] + torch.arange(-r, r + 1)[None, :]).clamp(0, T - 1).to(xy.device)
        return xy[:, idx].median(dim=2).values                                  # (B, T, 2r + 1, K, 2) -> median


class OneEuro(TemporalFilter):
    """x_hat_t = x_hat_{t-1} + alpha(f_c) (x_t - x_hat_{t-1}), with the cutoff f_c = min_cutoff + beta * |dx_hat_t|
    raised by the filtered speed (dx_hat: the speed low-passed at d_cutoff); alpha(f) = 1 / (1 + 1 / (2 pi f))
    at one sample per frame. Frequencies in cycles per frame, speeds in pixels per frame."""

    GRID = {"min_cutoff": (0.01, 0.03, 0.1, 0.3), "beta": (0.0, 0.01, 0.1, 1.0)}

    def __init__(self, num_keypoints=25, window=5, size=56, min_cutoff: float = 0.1, beta: float = 0.0,
                 d_cutoff: float = 1.0):
        super().__init__(num_keypoints, window, size)
        if not (min_cutoff > 0 and beta >= 0 and d_cutoff > 0):
            raise ValueError(f"one-euro: expected min_cutoff > 0, beta >= 0, d_cutoff > 0, got {min_cutoff}, "
                             f"{beta}, {d_cutoff}")
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff

    @staticmethod
    def alpha(cutoff):
        return 1.0 / (1.0 + 1.0 / (2 * math.pi * cutoff))

    def filter(self, xy):
        x_hat, dx_hat = xy[:, 0], torch.zeros_like(xy[:, 0])
        out = [x_hat]
        for t in range(1, xy.shape[1]):
            dx_hat = dx_hat + self.alpha(self.d_cutoff) * ((xy[:, t] - x_hat) - dx_hat)
            a = self.alpha(self.min_cutoff + self.beta * dx_hat.abs())
            x_hat = x_hat + a * (xy[:, t] - x_hat)
            out.append(x_hat)
        return torch.stack(out, dim=1)


FILTERS = {"mean": Mean, "linear-fit": LinearFit, "savgol": SavGol, "gaussian": Gaussian, "median": Median,
           "one-euro": OneEuro}
