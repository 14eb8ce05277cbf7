"""The online correlation filter: its closed form, its geometry, and its place in the frame loop."""
from __future__ import annotations

import numpy as np
import pytest

from tracker import SiamFCTracker, TrackerConfig
from tracker.dcf import CorrelationFilter, gaussian_label
from tracker.synthetic import make_sequence


def test_closed_form_equals_a_direct_ridge_regression():
    """Over all circular shifts of a tiny 2-channel map, the Fourier-domain solution is the spatial
    least-squares one: same responses to a new map."""
    rng = np.random.default_rng(0)
    c, h, w, lam = 2, 5, 4, 0.3
    x, z = rng.normal(size=(c, h, w)), rng.normal(size=(c, h, w))
    f = CorrelationFilter(lam=lam, sigma=1.0)
    f.window = np.ones((h, w), np.float32)  # the solve below has no window
    f.num, f.den = f._terms(x, (0.0, 0.0))
    y = gaussian_label((h, w), 1.0)
    shifts = [(sy, sx) for sy in range(h) for sx in range(w)]
    a = np.stack([np.roll(x, (-sy, -sx), axis=(1, 2)).reshape(-1) for sy, sx in shifts])  # row s . h = response at s
    filt = np.linalg.solve(a.T @ a + lam * np.eye(a.shape[1]), a.T @ y.reshape(-1)).reshape(c, h, w)
    direct = np.array([(filt * np.roll(z, (-sy, -sx), axis=(1, 2))).sum() for sy, sx in shifts]).reshape(h, w)
    assert np.allclose(np.fft.ifftshift(f.respond(z)), direct, atol=1e-10)


def test_response_peak_follows_the_target():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(8, 25, 25))
    f = CorrelationFilter(lam=1e-3)
    f.fit(x)
    assert np.unravel_index(f.respond(x).argmax(), (25, 25)) == (12, 12)  # the middle: no displacement
    moved = f.respond(np.roll(x, (2, -3), axis=(1, 2)))
    assert np.unravel_index(moved.argmax(), (25, 25)) == (14, 9)
    # Learned with the target displaced by (2, -3): that map now answers at the middle's offset (2, -3).
    f.fit(np.roll(x, (2, -3), axis=(1, 2)), center=(2.0, -3.0))
    assert np.unravel_index(f.respond(np.roll(x, (2, -3), axis=(1, 2))).argmax(), (25, 25)) == (14, 9)


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="lam > 0"):
        CorrelationFilter(lam=0)
    with pytest.raises(ValueError, match="dcf_weight must be in"):
        TrackerConfig(dcf_weight=1.5)
    with pytest.raises(ValueError, match="needs the image pyramid"):
        TrackerConfig(dcf_weight=0.3, feature_pyramid=True)


def _state(a) -> np.ndarray:
    """A copy of the filter's numerator or denominator (a numpy array, or a torch tensor on the torch back-end)."""
    return np.array(a) if isinstance(a, np.ndarray) else a.detach().cpu().numpy().copy()


def test_no_filter_update_while_lost_and_updates_while_held():
    frames, boxes = make_sequence(n_frames=60, seed=3)
    t = SiamFCTracker.from_pretrained("siamfc-effnet", device="cpu", config={"dcf_weight": 0.3, "dcf_lambda": 1e4})
    t.init(frames[0], boxes[0])
    learned = _state(t.dcf.num)
    held = t.update(frames[1])
    assert not held.lost
    assert not np.array_equal(_state(t.dcf.num), learned)  # a held frame is learned from
    before = (_state(t.dcf.num), _state(t.dcf.den))
    grey = np.full_like(frames[0], 127)
    results = [t.update(grey) for _ in range(3)]
    assert all(r.lost for r in results)
    assert np.array_equal(_state(t.dcf.num), before[0]) and np.array_equal(_state(t.dcf.den), before[1])


def test_filter_off_by_default_and_on_only_where_asked():
    assert SiamFCTracker.from_pretrained("siamfc-effnet", device="cpu").uses_dcf is False
    with pytest.raises(ValueError, match="need the scale pyramid"):
        SiamFCTracker.from_pretrained("siamfc-effnet", device="cpu", config={"dcf_weight": 0.3, "box_head": True,
                                                                              "scale_num": 1})


def test_numpy_and_torch_filters_agree():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    x, z = rng.normal(size=(16, 25, 25)).astype(np.float32), rng.normal(size=(3, 16, 25, 25)).astype(np.float32)
    a, b = CorrelationFilter(lam=10.0, sigma=0.8, rate=0.1), CorrelationFilter(lam=10.0, sigma=0.8, rate=0.1)
    a.fit(x)
    b.fit(torch.from_numpy(x))
    a.update(z[1], (1.5, -0.5))
    b.update(torch.from_numpy(z[1]), (1.5, -0.5))
    ra, rb = a.respond(z), b.respond(torch.from_numpy(z))
    assert isinstance(rb, torch.Tensor) and rb.shape == ra.shape == (3, 25, 25)
    assert np.allclose(ra, rb.numpy(), atol=1e-4 * float(np.abs(ra).max()))


def test_torch_and_onnxruntime_trackers_agree_with_the_filter_on(dev_root):
    pytest.importorskip("onnxruntime")
    from tracker.eval.datasets import load_otb
    from tracker.video import read_image

    seq = load_otb(dev_root, ["David"], max_frames=60)[0]
    frames = [read_image(f) for f in seq.img_files]
    cfg = {"dcf_weight": 0.5, "dcf_lambda": 1e4}
    out = []
    for backend in ("torch", "onnxruntime"):
        t = SiamFCTracker.from_pretrained("siamfc-effnet", device="cpu", config=cfg, backend=backend)
        assert t.backend == backend and t.uses_dcf
        t.init(frames[0], seq.init_box)
        out.append(np.array([t.update(f).box for f in frames[1:]]))
    assert np.abs(out[0] - out[1]).max() <= 0.5


def test_exemplar_memory_keeps_confident_frames_only():
    frames, boxes = make_sequence(n_frames=60, seed=3)
    t = SiamFCTracker.from_pretrained("siamfc-effnet", device="cpu",
                                      config={"memory_size": 2, "memory_every": 2, "memory_score": 0.3})
    t.init(frames[0], boxes[0])
    assert t.memory == []
    results = [t.update(f) for f in frames[1:9]]
    assert all(not r.lost and r.score >= 0.3 for r in results)
    assert len(t.memory) == 2  # four confident additions, the two oldest gone
    kept = [_state(m) for m in t.memory]
    grey = np.full_like(frames[0], 127)
    assert all(t.update(grey).lost for _ in range(4))
    assert len(t.memory) == 2 and all(np.array_equal(a, _state(m)) for a, m in zip(kept, t.memory))
    t.init(frames[0], boxes[0])
    assert t.memory == []  # a new target starts without one
    with pytest.raises(ValueError, match="memory_size must be"):
        TrackerConfig(memory_size=-1)


def test_torch_and_onnxruntime_agree_with_the_memory_on():
    pytest.importorskip("onnxruntime")
    frames, boxes = make_sequence(n_frames=60, seed=4)
    cfg = {"memory_size": 2, "memory_every": 3, "memory_score": 0.3}
    out = []
    for backend in ("torch", "onnxruntime"):
        t = SiamFCTracker.from_pretrained("siamfc-effnet", device="cpu", config=cfg, backend=backend)
        t.init(frames[0], boxes[0])
        out.append(np.array([t.update(f).box for f in frames[1:30]]))
        assert len(t.memory) == 2
    assert np.abs(out[0] - out[1]).max() <= 0.5


@pytest.mark.parametrize("seed", [1, 2])
def test_online_filter_keeps_a_target_whose_look_changes(seed):
    """The target's texture changes gradually, then a look-alike of its first frame appears beside it:
    the fixed exemplar moves to the look-alike, the correlation filter learned online keeps the target."""
    from tracker.ops import iou
    from tracker.synthetic import make_morph_sequence

    frames, gt = make_morph_sequence(seed=seed)
    end = {}
    # The window of the settings the filter was measured with (the paper's 0.176): with the default's 0.1 since
    # session 24, the look-alike beside the target takes both trackers with seed 1 (IoU 0 at the end for both).
    for name, cfg in (("fixed", {}), ("dcf", {"dcf_weight": 0.5, "dcf_lambda": 1e4})):
        # siamfc-effnet: the online filter needs the scale pyramid (box-head networks such as the default refuse it).
        t = SiamFCTracker.from_pretrained("siamfc-effnet", device="cpu",
                                          config={**cfg, "lost_threshold": 0.0, "window_influence": 0.176})
        t.init(frames[0], gt[0])
        boxes = np.array([gt[0]] + [t.update(f).box for f in frames[1:]])
        end[name] = float(iou(boxes[-20:], gt[-20:]).mean())
    print(f"look change, seed {seed}: mean IoU over the last 20 frames, fixed exemplar {end['fixed']:.2f}, "
          f"online filter {end['dcf']:.2f}")
    assert end["fixed"] < 0.3 and end["dcf"] > 0.8, end
