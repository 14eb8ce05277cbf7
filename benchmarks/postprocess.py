"""Post-processing: numpy (what the tracker uses) against a fused numba kernel.

Run: ``python benchmarks/postprocess.py``. Both implement ``find_peak``'s contract on a
(scales, 272, 272) upsampled response; the script checks they agree, then times them.
Needs numba, which the tracker does not: ``pip install -e '.[bench]'`` (the ``dev`` extra has it too).
"""
from __future__ import annotations

import sys
import time

import numpy as np

try:
    import numba
except ImportError:
    sys.exit("benchmarks/postprocess.py needs numba (the tracker itself does not): pip install -e '.[bench]'")

from tracker.apps.bench import hardware
from tracker.core.postprocess import find_peak_numpy


@numba.njit(cache=False)
def find_peak_numba(up, penalties, hann, wi):
    s_num, u, _ = up.shape
    best_s = 0
    best_v = -np.inf
    raw = np.empty(s_num)
    for s in range(s_num):
        m = up[s, 0, 0]
        for i in range(u):
            for j in range(u):
                if up[s, i, j] > m:
                    m = up[s, i, j]
        raw[s] = m
        v = m - (1 - penalties[s]) * abs(m)  # as tracker.core.postprocess.penalised
        if v > best_v:
            best_v = v
            best_s = s
    r = up[best_s]
    lo = r[0, 0]
    total = 0.0
    for i in range(u):
        for j in range(u):
            v = r[i, j]
            total += v
            if v < lo:
                lo = v
    total -= lo * u * u
    a = (1.0 - wi) / (total + 1e-16)
    bi = 0
    bj = 0
    bv = -np.inf
    for i in range(u):
        for j in range(u):
            v = a * (r[i, j] - lo) + wi * hann[i, j]
            if v > bv:
                bv = v
                bi = i
                bj = j
    return best_s, bi, bj


def _time(fn, args, n: int = 300) -> float:
    fn(*args)
    t = time.perf_counter()
    for _ in range(n):
        fn(*args)
    return (time.perf_counter() - t) / n * 1e6


def main() -> int:
    rng = np.random.default_rng(0)
    u = 272
    hann = np.outer(np.hanning(u), np.hanning(u)).astype(np.float32)
    hann /= hann.sum()
    print(hardware())
    print(f"{'scales':>6s} {'numpy us':>9s} {'numba us':>9s} {'numba/numpy':>12s}")
    for s in (3, 5):
        up = rng.standard_normal((s, u, u)).astype(np.float32)
        pen = np.where(np.arange(s) == s // 2, 1.0, 0.97)
        a = find_peak_numpy(up, pen, hann, 0.176)
        b = find_peak_numba(up, pen, hann, 0.176)
        if a[:3] != tuple(float(v) for v in b[:3]):
            print(f"mismatch: numpy {a} numba {b}")
            return 1
        tn, tb = _time(find_peak_numpy, (up, pen, hann, 0.176)), _time(find_peak_numba, (up, pen, hann, 0.176))
        print(f"{s:6d} {tn:9.1f} {tb:9.1f} {tb / tn:12.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
