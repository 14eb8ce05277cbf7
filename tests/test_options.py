"""Each tracking option the README's table lists does what it says, seen from outside the frame loop (the options
with tests of their own elsewhere: scale_every in test_scale_modes.py, long-term ones in test_long_term.py,
template_lr and the scale pyramid in test_tracker.py, half in test_cuda.py)."""
import dataclasses

import numpy as np
import pytest

from tracker import SiamFCTracker, TrackerConfig
from tracker.core.config import REMOVED
from tracker.eval.synthetic import make_sequence


@pytest.fixture(scope="module")
def growing():
    """A target whose side doubles over 40 frames (the growing half of a synthetic sequence)."""
    frames, gt = make_sequence(n_frames=80, size=(480, 360), target=(48, 36), scale_range=(0.8, 1.6), seed=11)
    return frames[:41], gt[:41]


def _widths(name: str, config: dict, frames, gt) -> np.ndarray:
    t = SiamFCTracker.from_pretrained(name, device="cpu", config=config)
    t.init(frames[0], gt[0])
    return np.array([gt[0][2]] + [t.update(f).box[2] for f in frames[1:]])


@pytest.mark.parametrize("name,extra", [("nanotrack-v2", {}), ("siamfc-effnet", {"scale_every": 1})])
def test_max_scale_and_min_scale_bound_the_box_size(growing, name, extra):
    """The target doubles: with max_scale 1.2 the box never passes 1.2x the first box's width; min_scale 1.0
    keeps it from ever shrinking below it; without the bounds it grows past 1.2x."""
    frames, gt = growing
    free = _widths(name, extra, frames, gt)
    capped = _widths(name, {**extra, "max_scale": 1.2}, frames, gt)
    floored = _widths(name, {**extra, "min_scale": 1.0}, frames, gt)
    assert free.max() > 1.3 * gt[0][2]
    assert capped.max() <= 1.2 * gt[0][2] + 1e-6
    assert floored.min() >= gt[0][2] - 1e-6


def test_penalty_k_holds_the_box_shape_back(growing):
    """A large penalty on the size change a box-head proposal implies: the box follows the growth less (here,
    not at all: a growing proposal's weight in the size update goes to ~0)."""
    frames, gt = growing
    free = _widths("nanotrack-v2", {"penalty_k": 0.0}, frames, gt)
    held = _widths("nanotrack-v2", {"penalty_k": 50.0}, frames, gt)
    assert held[-1] < free[-1] - 0.5 * gt[0][2] and held.max() < 1.1 * gt[0][2]


def test_scale_penalty_and_scale_step_act_on_the_pyramid(growing):
    """siamfc-effnet's pyramid: a strong toll on the side scales (scale_penalty 0.5) keeps the size nearly still,
    and scale_step sets the search's factors."""
    frames, gt = growing
    moving = _widths("siamfc-effnet", {"scale_every": 1}, frames, gt)
    still = _widths("siamfc-effnet", {"scale_every": 1, "scale_penalty": 0.5}, frames, gt)
    assert abs(still[-1] - gt[0][2]) < abs(moving[-1] - gt[0][2])
    assert np.allclose(TrackerConfig(scale_num=3, scale_step=1.1).scale_factors, [1 / 1.1, 1.0, 1.1])


def test_size_bias_is_measured_on_the_first_frame_only_when_on(growing):
    frames, gt = growing
    for on in (False, True):
        t = SiamFCTracker.from_pretrained("nanotrack-v2", device="cpu", config={"size_bias": on})
        t.init(frames[0], gt[0])
        assert np.allclose(t.size_bias, 1.0) != on  # off: no correction; on: the head's own first-frame error


def test_response_up_sets_the_upsampled_map_and_context_the_crop(growing):
    frames, gt = growing
    t = SiamFCTracker.from_pretrained("siamfc-effnet", device="cpu", config={"response_up": 4})
    t8 = SiamFCTracker.from_pretrained("siamfc-effnet", device="cpu", config={"response_up": 8})
    assert t8.upscale_sz == 2 * t.upscale_sz
    wide = SiamFCTracker.from_pretrained("nanotrack-v2", device="cpu", config={"context": 1.0})
    narrow = SiamFCTracker.from_pretrained("nanotrack-v2", device="cpu")
    for tr in (wide, narrow):
        tr.init(frames[0], gt[0])
    assert wide.x_sz > narrow.x_sz  # more context around the box: a larger search region in the image


def test_removed_options_are_gone_and_named_in_the_error():
    fields = {f.name for f in dataclasses.fields(TrackerConfig)}
    assert not fields & set(REMOVED)
    with pytest.raises(ValueError, match="feature_pyramid.*removed from siamtrack"):
        TrackerConfig.from_dict({"feature_pyramid": True})
    with pytest.raises(ValueError, match="unknown key"):
        TrackerConfig.from_dict({"no_such_option": 1})


def test_an_export_made_before_the_removal_still_loads_unless_it_used_a_removed_option(tmp_path):
    """model.json files written before 2026-12-07 list every option then known, the removed ones at their off
    values: such a folder loads; one made with a removed option set is refused, naming the file."""
    import json
    import shutil

    from tracker.backends.onnx_net import OnnxExportError
    from tracker.networks.weights import find_export

    old = tmp_path / "old-onnx"
    shutil.copytree(find_export("nanotrack-v2"), old)
    meta = json.loads((old / "model.json").read_text())
    meta["config"].update(REMOVED)
    (old / "model.json").write_text(json.dumps(meta))
    pytest.importorskip("onnxruntime")
    assert SiamFCTracker.from_onnx(old).config.instance_sz == meta["instance_sz"]
    meta["config"]["dcf_weight"] = 0.3
    (old / "model.json").write_text(json.dumps(meta))
    with pytest.raises(OnnxExportError, match=f"{old}.*dcf_weight.*removed"):
        SiamFCTracker.from_onnx(old)
