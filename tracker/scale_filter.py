"""DSST's scale filter: the target's size from a one-dimensional correlation filter over scales.

The Siamese response says where the target is; its three-crop pyramid says little about how
large it is (neighbouring scales' peaks differ by less than the penalty that steadies them), so
the box's size lags a target that grows or shrinks. DSST (Danelljan et al., "Accurate Scale
Estimation for Robust Visual Tracking", BMVC 2014) learns, per video, how the target looks at
its own size against slightly larger and smaller patches around it:

* at the target's centre, ``n_scales`` patches of ``step ** k`` times the box
  (k = -(n-1)/2 .. (n-1)/2), each resized to one small model size with the box's aspect ratio
  and described by gradient-orientation histograms (HOG-like, 4 px cells, 9 bins);
* a multi-channel ridge regression over the circular shifts of those n samples onto a Gaussian
  peaked at k = 0, solved per frequency (``conj(H_l) = G F_l^* / (sum_k |F_k|^2 + lam)``), its
  numerator and denominator running averages at ``rate``;
* in a new frame, the same samples at the new centre: the shift with the highest response is
  the size change.

Images are BGR ``uint8`` frames; centres and sizes in image pixels. numpy and OpenCV only.
"""
from __future__ import annotations

import cv2
import numpy as np

__all__ = ["ScaleFilter", "hog_features"]

_CELL = 4
_BINS = 9


def hog_features(patches: np.ndarray) -> np.ndarray:
    """Gradient-orientation histograms of grayscale ``patches`` (N, H, W) float32, H and W multiples of 4:
    (N, H/4 * W/4 * 9), unsigned orientations in 9 bins (linear between the two nearest), 4x4 px cells,
    each cell L2-normalised with its 3x3 neighbourhood's energy."""
    n, h, w = patches.shape
    gx = np.zeros_like(patches)
    gy = np.zeros_like(patches)
    gx[:, :, 1:-1] = patches[:, :, 2:] - patches[:, :, :-2]
    gy[:, 1:-1, :] = patches[:, 2:, :] - patches[:, :-2, :]
    mag = np.sqrt(gx * gx + gy * gy)
    ang = (np.arctan2(gy, gx) % np.pi) * (_BINS / np.pi)  # [0, 9)
    lo = np.floor(ang).astype(np.int64)
    frac = (ang - lo).astype(np.float32)
    hist = np.zeros((n, h, w, _BINS), np.float32)
    idx = np.indices((n, h, w))
    np.add.at(hist, (idx[0], idx[1], idx[2], lo % _BINS), mag * (1 - frac))
    np.add.at(hist, (idx[0], idx[1], idx[2], (lo + 1) % _BINS), mag * frac)
    cells = hist.reshape(n, h // _CELL, _CELL, w // _CELL, _CELL, _BINS).sum((2, 4))
    energy = (cells ** 2).sum(-1)
    padded = np.pad(energy, ((0, 0), (1, 1), (1, 1)), mode="edge")
    block = sum(padded[:, 1 + dy:1 + dy + energy.shape[1], 1 + dx:1 + dx + energy.shape[2]]
                for dy in (-1, 0, 1) for dx in (-1, 0, 1)) / 9.0
    cells = cells / np.sqrt(block + 1e-4)[..., None]
    return np.minimum(cells, 0.2 * np.sqrt(_BINS)).reshape(n, -1)  # clipped as HOG clips


class ScaleFilter:
    """One target's scale filter (see the module's docstring). ``init`` on the first frame, then per frame
    ``estimate`` (the size factor at the new centre) and, where the target is held, ``update``."""

    def __init__(self, n_scales: int = 33, step: float = 1.02, rate: float = 0.025, lam: float = 1e-2,
                 model_area: float = 512.0, sigma_factor: float = 0.25) -> None:
        if n_scales < 3 or n_scales % 2 == 0 or step <= 1 or not 0 < rate <= 1:
            raise ValueError(f"ScaleFilter: need an odd n_scales >= 3, step > 1, 0 < rate <= 1; got {n_scales}, "
                             f"{step}, {rate}")
        self.n, self.step, self.rate, self.lam, self.model_area = n_scales, step, rate, lam, model_area
        k = np.arange(n_scales) - (n_scales - 1) / 2
        self.factors = step ** k
        sigma = sigma_factor * np.sqrt(n_scales)  # DSST: the label's std in scale samples
        self._label = np.fft.fft(np.exp(-0.5 * (np.roll(k, -(n_scales - 1) // 2) / sigma) ** 2))
        self._window = np.hanning(n_scales + 2)[1:-1].astype(np.float32)
        self._model_sz: tuple[int, int] | None = None
        self._num: np.ndarray | None = None
        self._den: np.ndarray | None = None

    def _samples(self, frame: np.ndarray, center, size) -> np.ndarray:
        """(d, n) windowed features of the n scale patches around ``center`` (x, y) for box ``size`` (w, h)."""
        mw, mh = self._model_sz
        big = self.factors[-1]
        # The largest patch once, anti-aliased (INTER_AREA) to a little over the model's resolution; each
        # scale's patch is a centred sub-window of it, resampled to the model size (by at most `big`).
        gray = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        region = (max(2, int(round(size[0] * big))), max(2, int(round(size[1] * big))))
        out = (int(np.ceil(mw * big)), int(np.ceil(mh * big)))
        crop = cv2.getRectSubPix(gray, region, (float(center[0]), float(center[1])))
        crop = cv2.resize(crop, out, interpolation=cv2.INTER_AREA if region[0] > out[0] else cv2.INTER_LINEAR)
        crop = crop.astype(np.float32) / 255.0
        patches = np.empty((self.n, mh, mw), np.float32)
        for i, f in enumerate(self.factors):
            sx, sy = f / big * out[0] / mw, f / big * out[1] / mh  # crop px per model px
            warp = np.array([[sx, 0, (out[0] - 1) / 2 - sx * (mw - 1) / 2], [0, sy, (out[1] - 1) / 2 - sy * (mh - 1) / 2]])
            patches[i] = cv2.warpAffine(crop, warp, (mw, mh), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                        borderMode=cv2.BORDER_REPLICATE)
        return (hog_features(patches) * self._window[:, None]).T.astype(np.float64)

    def init(self, frame: np.ndarray, center, size) -> None:
        """Learn the filter from the first frame's box (``center`` (x, y), ``size`` (w, h), image px)."""
        w, h = float(size[0]), float(size[1])
        f = np.sqrt(self.model_area / max(w * h, 1e-6))
        mw, mh = (max(_CELL * 2, int(round(v * f / _CELL)) * _CELL) for v in (w, h))
        self._model_sz = (mw, mh)
        num, den = self._fit(frame, center, size)
        self._num, self._den = num, den

    def _fit(self, frame, center, size) -> tuple[np.ndarray, np.ndarray]:
        F = np.fft.fft(self._samples(frame, center, size), axis=1)
        return np.conj(self._label)[None] * F, (F * np.conj(F)).real.sum(0)

    def estimate(self, frame: np.ndarray, center, size) -> float:
        """The size change (a factor of ``size``) whose patch responds most, at ``center`` in ``frame``."""
        if self._num is None:
            raise RuntimeError("ScaleFilter.estimate before init")
        Z = np.fft.fft(self._samples(frame, center, size), axis=1)
        resp = np.fft.ifft((np.conj(self._num) * Z).sum(0) / (self._den + self.lam)).real
        return float(self.factors[(int(np.argmax(resp)) + (self.n - 1) // 2) % self.n])

    def update(self, frame: np.ndarray, center, size) -> None:
        """Blend this frame's samples at the box (``center``, ``size``) into the filter at ``rate``."""
        num, den = self._fit(frame, center, size)
        self._num = (1 - self.rate) * self._num + self.rate * num
        self._den = (1 - self.rate) * self._den + self.rate * den
