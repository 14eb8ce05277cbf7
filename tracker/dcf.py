"""An online discriminative correlation filter (DCF) on the backbone's features.

A Siamese tracker compares every frame with one fixed exemplar. This filter learns, per video,
what separates *this* target from *its* background, on the same stride-8 features of the search
region (as KCF/DSST/MOSSE do on hand-made features, UniTrack on deep ones): multi-channel ridge
regression over all circular shifts of a feature map, solved in closed form per frequency,

    min_h  sum_s (sum_c <h_c, shift_s(x_c)> - y_s)^2 + lam * sum_c |h_c|^2
    =>     conj(H_c) = Y X_c^* / (sum_k |X_k|^2 + lam)      (one sample; Sherman-Morrison),

with ``y`` a Gaussian on the target. Numerator and denominator are running averages over the
frames where the target is held (DSST's update); the response to features ``z`` is
``IFFT(sum_c conj(H_c) Z_c)``, centred so that the middle cell means "no displacement".
The filter computes with what it is given: numpy arrays (numpy's FFTs; the ONNX Runtime
back-end) or torch tensors (``torch.fft``, on their device: the torch back-end, CPU or GPU).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = ["CorrelationFilter", "gaussian_label", "as_filter_input", "fuse"]


class _NumpyFFT:
    rfft2 = staticmethod(np.fft.rfft2)
    conj = staticmethod(np.conj)

    @staticmethod
    def irfft2(a, shape):
        return np.fft.irfft2(a, s=shape)

    @staticmethod
    def fftshift(a):
        return np.fft.fftshift(a, axes=(-2, -1))

    @staticmethod
    def like(a: np.ndarray, ref):
        return a.astype(ref.dtype, copy=False)


class _TorchFFT:
    @staticmethod
    def rfft2(a):
        import torch

        return torch.fft.rfft2(a)

    @staticmethod
    def conj(a):
        return a.conj()

    @staticmethod
    def irfft2(a, shape):
        import torch

        return torch.fft.irfft2(a, s=tuple(shape))

    @staticmethod
    def fftshift(a):
        import torch

        return torch.fft.fftshift(a, dim=(-2, -1))

    @staticmethod
    def like(a: np.ndarray, ref):
        import torch

        return torch.as_tensor(a, dtype=ref.dtype, device=ref.device)


def _fft(x):
    return _NumpyFFT if isinstance(x, np.ndarray) else _TorchFFT


def gaussian_label(size: tuple[int, int], sigma: float, center: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """(H, W) Gaussian of std ``sigma`` cells peaking at displacement ``center`` = (dy, dx) cells from
    shift 0, wrapped around (circular), as the filter's regression target."""
    h, w = size
    dy = (np.arange(h) - center[0] + h / 2) % h - h / 2
    dx = (np.arange(w) - center[1] + w / 2) % w - w / 2
    return np.exp(-0.5 * (dy[:, None] ** 2 + dx[None, :] ** 2) / sigma**2)


class CorrelationFilter:
    """Multi-channel linear DCF. ``fit`` once on features (C, H, W) where the target sits at
    displacement ``center`` (cells from the map's middle), ``update`` on later frames, ``respond``
    on new features: (H, W) responses, middle cell = the target where it was when learned.
    Features are numpy arrays or torch tensors, the same kind throughout."""

    def __init__(self, lam: float = 1e-2, sigma: float = 1.0, rate: float = 0.02) -> None:
        if lam <= 0 or sigma <= 0 or not 0 <= rate <= 1:
            raise ValueError(f"CorrelationFilter: need lam > 0, sigma > 0, 0 <= rate <= 1; got {lam}, {sigma}, {rate}")
        self.lam, self.sigma, self.rate = lam, sigma, rate
        self.num: np.ndarray | None = None  # (C, H, W // 2 + 1) complex: Y X_c^* (real FFT)
        self.den: np.ndarray | None = None  # (H, W // 2 + 1) real: sum_c |X_c|^2
        self.window: np.ndarray | None = None

    def _window(self, x):
        h, w = x.shape[-2:]
        if self.window is None or tuple(self.window.shape) != (h, w) or type(self.window) is not type(x):
            self.window = _fft(x).like(np.outer(np.hanning(h + 2)[1:-1], np.hanning(w + 2)[1:-1]), x)
        return self.window

    def _terms(self, x, center: tuple[float, float]):
        ops = _fft(x)
        xf = ops.rfft2(x * self._window(x))  # real maps: half the spectrum holds it all
        yf = ops.rfft2(ops.like(gaussian_label(tuple(x.shape[-2:]), self.sigma, center), x))
        return yf * ops.conj(xf), (xf.real**2 + xf.imag**2).sum(0)

    def fit(self, x: np.ndarray | torch.Tensor, center: tuple[float, float] = (0.0, 0.0)) -> None:
        """Learn from features ``x`` (C, H, W) with the target at ``center`` = (dy, dx) cells from the middle."""
        self.num, self.den = self._terms(x, center)

    def update(self, x: np.ndarray | torch.Tensor, center: tuple[float, float] = (0.0, 0.0)) -> None:
        """Blend in a new sample at learning rate ``rate`` (call only on frames where the target is held)."""
        if self.num is None:
            raise RuntimeError("CorrelationFilter.update called before fit()")
        num, den = self._terms(x, center)
        self.num = (1 - self.rate) * self.num + self.rate * num
        self.den = (1 - self.rate) * self.den + self.rate * den

    def respond(self, z: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """Responses to features ``z`` (C, H, W) or (S, C, H, W): (H, W) or (S, H, W) of the same kind, the middle cell
        (``(H - 1) // 2`` for odd sizes) meaning no displacement; 1 at a perfect match of the label."""
        if self.num is None:
            raise RuntimeError("CorrelationFilter.respond called before fit()")
        ops = _fft(z)
        zf = ops.rfft2(z * self._window(z))
        r = ops.irfft2((self.num * zf).sum(-3) / (self.den + self.lam), z.shape[-2:])
        # A label centred at shift 0 -> response peaks at index 0: roll it to the middle.
        return ops.fftshift(r)


def as_filter_input(feats):
    """Features for the filter: ONNX Runtime's numpy arrays as they are, torch's tensors in float32 on their
    device (torch.fft there, on the GPU too)."""
    return feats if isinstance(feats, np.ndarray) else feats.float()


def fuse(resp: np.ndarray, filt: np.ndarray, weight: float) -> np.ndarray:
    """Siamese responses ``resp`` (S, R, R) blended with the filter's ``filt`` (S, D, D), D >= R, on the same
    cells (the filter's cut to R x R around its middle), at ``weight``; each relative to its peak on the
    first frame already."""
    r = resp.shape[-1]
    start = filt.shape[-1] // 2 - (r - 1) // 2
    return ((1 - weight) * resp + weight * filt[:, start:start + r, start:start + r]).astype(np.float32)
