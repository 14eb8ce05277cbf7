"""Crops and box conversions against straightforward references."""
import numpy as np
import pytest
import torch

from tracker.core import ops


def _padded_reference(img, x0, y0, n, pad):
    """Integer-aligned n x n window starting at (x0, y0), mean-padded outside the image."""
    h, w = img.shape[:2]
    out = np.empty((n, n, 3), np.float64)
    out[:] = pad
    for j in range(n):
        for i in range(n):
            y, x = y0 + j, x0 + i
            if 0 <= y < h and 0 <= x < w:
                out[j, i] = img[y, x]
    return out


def _bilinear_reference(img, cx, cy, size, n, pad):
    """Naive bilinear sampling of the crop, one pixel at a time."""
    h, w = img.shape[:2]
    out = np.empty((n, n, 3))
    a = size / n
    for j in range(n):
        for i in range(n):
            sx = cx - size / 2 + (i + 0.5) * a - 0.5
            sy = cy - size / 2 + (j + 0.5) * a - 0.5
            x0, y0 = int(np.floor(sx)), int(np.floor(sy))
            fx, fy = sx - x0, sy - y0
            acc = np.zeros(3)
            for dy, wy in ((0, 1 - fy), (1, fy)):
                for dx, wx in ((0, 1 - fx), (1, fx)):
                    y, x = y0 + dy, x0 + dx
                    v = img[y, x] if (0 <= y < h and 0 <= x < w) else pad
                    acc += wy * wx * np.asarray(v, float)
            out[j, i] = acc
    return out


@pytest.fixture
def image():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)


@pytest.mark.parametrize("x0,y0", [(10, 8), (-5, 3), (40, 2), (6, -7), (5, 30), (-9, -9), (45, 31), (-30, 10), (100, 100)])
def test_crop_integer_aligned_matches_padded_slice(image, x0, y0):
    n = 15
    pad = np.array(image.reshape(-1, 3).mean(0))
    got = ops.crop(image, (x0 + n / 2, y0 + n / 2), n, n)
    ref = _padded_reference(image, x0, y0, n, pad)
    assert np.abs(got.astype(float) - ref).max() <= 1.0  # uint8 rounding of the pad colour only


@pytest.mark.parametrize("cx,cy,size", [(26.3, 18.7, 20.5), (2.0, 3.0, 30.0), (50.2, 35.9, 17.0), (26.0, 18.0, 90.0)])
def test_crop_scaled_matches_bilinear_reference(image, cx, cy, size):
    n = 12
    pad = (10.0, 200.0, 90.0)
    got = ops.crop(image, (cx, cy), size, n, pad_color=pad).astype(float)
    ref = _bilinear_reference(image, cx, cy, size, n, np.array(pad))
    assert np.abs(got - ref).max() <= 1.5  # OpenCV's fixed-point bilinear weights


@pytest.mark.parametrize("cx,cy", [(26.3, 18.7), (1.0, 2.0), (52.0, 36.0)])
def test_crop_torch_matches_opencv_crop(image, cx, cy):
    sizes = [20.0, 33.3, 71.0]
    ref = ops.crop_multi(image, (cx, cy), sizes, 17).astype(np.float32)
    t = torch.from_numpy(image).permute(2, 0, 1).float()
    got = ops.crop_torch(t, (cx, cy), sizes, 17).permute(0, 2, 3, 1).numpy()
    assert got.shape == ref.shape
    assert np.abs(got - ref).max() <= 1.5


def test_box_conversions_roundtrip():
    b = np.array([[3.0, 4.0, 10.0, 6.0], [0.0, 0.0, 1.0, 1.0]])
    c = ops.xywh_to_cxcywh(b)
    assert np.allclose(c[0], [8.0, 7.0, 10.0, 6.0])
    assert np.allclose(ops.cxcywh_to_xywh(c), b)
    assert np.allclose(ops.zero_based_to_one_based(ops.one_based_to_zero_based(b)), b)
    assert np.allclose(ops.one_based_to_zero_based(b)[0], [2.0, 3.0, 10.0, 6.0])


def test_iou_and_center_error():
    a = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]], float)
    b = np.array([[0, 0, 10, 10], [5, 0, 10, 10], [20, 20, 5, 5]], float)
    assert np.allclose(ops.iou(a, b), [1.0, 50 / 150, 0.0])
    assert np.allclose(ops.center_error(a, b), [0.0, 5.0, np.hypot(17.5, 17.5)])


def test_context_size():
    assert ops.context_size(10, 30, 0.5) == pytest.approx(np.sqrt(30 * 50))
