"""The two-network tracker (tracker.fusion): where the networks agree it reports the primary's box; where
one has drifted off the target, both networks' scores side with the one still on it, and the drifted one is
moved back; and it loads by spec in the evaluation harness."""
from __future__ import annotations

import numpy as np
import pytest

from tracker import SiamFCTracker, ops
from tracker.eval.trackers import TrackerSpecError, make_tracker
from tracker.fusion import FusionTracker
from tracker.synthetic import make_sequence


def _fusion() -> FusionTracker:
    return FusionTracker(SiamFCTracker.from_pretrained("nanotrack-v2", device="cpu", backend="torch"),
                         SiamFCTracker.from_pretrained("siamfc-effnet", device="cpu", backend="torch"))


def test_agreeing_networks_give_the_primarys_boxes():
    frames, gt = make_sequence(n_frames=25, size=(320, 240), target=(48, 36), seed=2)
    f = _fusion()
    solo = SiamFCTracker.from_pretrained("nanotrack-v2", device="cpu", backend="torch")
    f.init(frames[0], gt[0])
    solo.init(frames[0], gt[0])
    for frame in frames[1:]:
        r, s = f.update(frame), solo.update(frame)
        assert r.box == s.box and r.score == s.score
    assert f.disagreements == 0


@pytest.mark.parametrize("drifted", ["primary", "secondary"])
def test_the_drifted_tracker_is_outvoted_and_moved_back(drifted):
    """One tracker is pushed off the target onto background; on the next frame the two boxes part, both
    networks score the box still on the target higher, the fused box is that one, and the drifted tracker
    is re-synchronised onto it."""
    frames, gt = make_sequence(n_frames=80, size=(480, 360), target=(56, 44), seed=4)
    f = _fusion()
    f.init(frames[0], gt[0])
    for frame in frames[1:6]:
        f.update(frame)
    for t in (f.primary, f.secondary):  # both on the target before one is pushed off
        assert ops.iou(np.array([t.box]), gt[5:6])[0] > 0.5
    before = (f.disagreements, f.switches)
    off = getattr(f, drifted)
    x, y, w, h = gt[5]
    far = np.array([x + w / 2, y + h / 2]) + np.array([150.0, 110.0]) * np.sign(np.array([240, 180]) - (x, y))
    off.center = np.clip(far, 0, [480, 360])
    r = f.update(frames[6])
    assert f.disagreements == before[0] + 1
    assert f.switches == before[1] + (1 if drifted == "primary" else 0)
    kept = f.secondary if drifted == "primary" else f.primary
    assert np.allclose(r.box, kept.box)  # the fused box is the one still on the target
    x, y, w, h = gt[6]
    for box in (r.box, off.box):  # the drifted tracker moved back onto it
        cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
        assert x <= cx <= x + w and y <= cy <= y + h, (box, gt[6])
    assert not r.lost


def test_spec_builds_a_fusion_and_rejects_a_bad_one():
    t = make_tracker("nanotrack-v2+siamfc-effnet:agree_iou=0.4,weight=0.5", device="cpu")
    assert isinstance(t.tracker, FusionTracker) and t.tracker.agree_iou == 0.4 and t.tracker.weight == 0.5
    with pytest.raises(TrackerSpecError, match="agree_iou"):
        make_tracker("nanotrack-v2+siamfc-effnet:agree_iou=2", device="cpu")
    with pytest.raises(TrackerSpecError, match="two weights"):
        make_tracker("nanotrack-v2+siamfc-effnet+nanotrack-v3", device="cpu")
