"""MultiTracker: batched equals one tracker per target; ids; adding and removing mid-stream."""
from __future__ import annotations

import numpy as np
import pytest

from tracker import MultiTracker, SiamFCTracker
from tracker.apps.bench_multi import spread_boxes
from tracker.eval.datasets import load_otb
from tracker.eval.synthetic import make_sequence
from tracker.io.video import read_image
from tracker.networks.weights import DEFAULT

STARTS = (0, 12, 25)  # the frames the three targets are added on


@pytest.fixture(scope="module")
def couple(dev_root):
    seq = load_otb(dev_root, ["Couple"], max_frames=45)[0]
    return [read_image(f) for f in seq.img_files], seq.gt


def _same_state(dst: SiamFCTracker, src: SiamFCTracker) -> None:
    """``dst``'s box and search size set to ``src``'s (a step from the same state)."""
    dst.center, dst.target_sz, dst.x_sz = src.center.copy(), src.target_sz.copy(), src.x_sz


def _compare(base: SiamFCTracker, frames, gt, boxes, step_by_step: bool = False) -> float:
    """Largest difference (px) between the batched MultiTracker's boxes and single trackers' over ``frames``,
    the k-th target added on frame STARTS[k] with ``boxes[k]``. ``step_by_step``: each frame from the same state
    (every single tracker given its batched twin's box first), so that differences do not carry over frames."""
    multi = MultiTracker(base)
    singles, ids, worst, compared = [], [], 0.0, 0
    for k, frame in enumerate(frames):
        if step_by_step:
            for single, i in zip(singles, ids):
                _same_state(single, multi._targets[i])
        results = multi.update(frame)
        assert list(results) == ids  # every target, in the order added
        for single, i in zip(singles, ids):
            mine = single.update(frame)
            a, b = np.array(mine.box), np.array(results[i].box)
            worst = max(worst, float(np.abs(a - b).max()))
            assert abs(mine.score - results[i].score) <= 1e-4 and mine.state == results[i].state
            compared += 1
        if k in STARTS:
            box = boxes[STARTS.index(k)]
            singles.append(base.spawn())
            singles[-1].init(frame, box)
            ids.append(multi.add(frame, box))
    assert compared == sum(len(frames) - 1 - s for s in STARTS if s < len(frames))
    return worst


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_batched_equals_one_tracker_per_target(couple, backend):
    if backend == "onnxruntime":
        pytest.importorskip("onnxruntime")
    frames, gt = couple
    base = SiamFCTracker.from_pretrained(device="cpu", backend=backend)
    # The target itself from three frames, and a neighbour shifted off it (a different patch).
    boxes = [gt[0], gt[STARTS[1]], gt[STARTS[2]] + np.array([-40.0, 0.0, 0.0, 0.0])]
    # torch on a CPU: the backbone's rounding depends on the batch size (features 1e-5 apart, 3 crops vs 1); the
    # default's box head carries that into the box, and OpenCV's crops (sub-pixel positions on a 1/32 px grid)
    # make a 1e-5 px move of the centre 1e-3 px the next frame: compared frame by frame from the same state.
    # ONNX Runtime rounds alike whatever the batch: compared over the whole run.
    worst = _compare(base, frames, gt, boxes, step_by_step=backend == "torch")
    print(f"{backend}: batched vs single trackers, largest box difference {worst:.2e} px")
    assert worst <= 1e-3


def test_batched_equals_single_on_the_device_pipeline_and_with_the_sharpness_score(couple):
    """The torch pipeline (one grid_sample for every target's crops, as on CUDA) and the peak-to-sidelobe
    score (scores compared too)."""
    frames, gt = couple
    for kwargs in ({"pipeline": "torch"}, {"config": {"psr_score": True}},
                   {"pipeline": "torch", "config": {"psr_score": True, "long_term": True}},
                   {"backend": "onnxruntime", "config": {"psr_score": True}}):
        base = SiamFCTracker.from_pretrained(device="cpu", **kwargs)
        assert _compare(base, frames[:20], gt, [gt[0], gt[12], gt[0] + np.array([30.0, 10.0, 0, 0])]) <= 1e-3


def test_batched_targets_follow_their_objects():
    """Two targets of one synthetic clip, one of them its moving object: that one is held."""
    frames, gt = make_sequence(n_frames=30, size=(320, 240), target=(48, 36), seed=3)
    multi = MultiTracker.from_pretrained(device="cpu")
    a = multi.add(frames[0], gt[0])
    b = multi.add(frames[0], (10.0, 10.0, 40.0, 30.0))
    boxes = np.array([gt[0]] + [multi.update(f)[a].box for f in frames[1:]])
    from tracker.core.ops import iou

    assert iou(boxes, gt).mean() > 0.6
    assert multi.ids == [a, b]


def test_ids_are_never_reused_and_remove_works_mid_stream():
    frames, gt = make_sequence(n_frames=8, size=(320, 240), target=(48, 36), seed=5)
    multi = MultiTracker.from_pretrained(device="cpu")
    assert multi.update(frames[0]) == {}  # no targets: nothing to do
    a = multi.add(frames[0], gt[0])
    b = multi.add(frames[0], (200.0, 150.0, 40.0, 30.0))
    assert (a, b) == (1, 2)
    assert set(multi.update(frames[1])) == {a, b}
    multi.remove(a)
    assert a not in multi and len(multi) == 1
    assert set(multi.update(frames[2])) == {b}
    c = multi.add(frames[2], gt[2])
    assert c == 3  # not 1 again
    assert list(multi.update(frames[3])) == [b, c]
    multi.clear()
    assert multi.update(frames[4]) == {}
    assert multi.add(frames[4], gt[4]) == 4
    with pytest.raises(KeyError, match="no target with id 1"):
        multi.remove(1)


def test_bad_input_names_the_problem():
    frames, gt = make_sequence(n_frames=3, size=(320, 240), target=(48, 36), seed=5)
    multi = MultiTracker.from_pretrained(device="cpu")
    multi.add(frames[0], gt[0])
    with pytest.raises(ValueError, match="320x240"):
        multi.add(np.zeros((100, 100, 3), np.uint8), (1, 1, 10, 10))
    with pytest.raises(ValueError, match="size changed"):
        multi.update(np.zeros((100, 100, 3), np.uint8))
    with pytest.raises(ValueError, match="box"):
        multi.add(frames[1], (400.0, 300.0, 10.0, 10.0))  # outside the image
    assert len(multi) == 1  # the failed add left nothing behind
    with pytest.raises(TypeError):
        MultiTracker("siamfc-effnet")


def test_spread_boxes_are_inside_the_image():
    boxes = spread_boxes((5, 6, 40, 30), (320, 240), 16)
    assert len(boxes) == 16 and tuple(boxes[0]) == (5, 6, 40, 30)
    b = np.array(boxes)
    assert (b[:, 0] >= 0).all() and (b[:, 1] >= 0).all()
    assert (b[:, 0] + b[:, 2] <= 320).all() and (b[:, 1] + b[:, 3] <= 240).all()
    assert len({(x, y) for x, y, _, _ in boxes}) == 16  # all different places


# -- the demo with several targets (headless, in a subprocess as a user runs it) -----------------

def test_track_several_boxes_writes_mot_and_per_target_files(tmp_path):
    from tracker.io.outputs import read_mot

    from .helpers import read_video, write_frames
    from .test_demo_headless import box_arg, read_boxes, siamtrack

    frames, gt = make_sequence(20, (320, 240), target=(48, 36), seed=3)
    folder = write_frames(frames, tmp_path / "frames")
    (folder / "008.png").write_bytes(b"broken")  # frame 8 cannot be decoded
    other = (200.0, 150.0, 40.0, 30.0)
    out, boxes = tmp_path / "out.mp4", tmp_path / "b.txt"
    p = siamtrack("track", folder, "--no-display", "--box", box_arg(gt[0]), "--box", box_arg(other), "--output", out,
                  "--boxes", boxes, "--boxes-per-target")
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr and "tracking 2 targets" in p.stdout
    lines = boxes.read_text().splitlines()
    assert len(lines) == 2 * 20  # one line per target per source frame
    assert all(len(line.split(",")) == 10 and line.endswith(",-1,-1,-1") for line in lines)
    mot = read_mot(boxes)
    assert sorted(mot) == [1, 2] and all(sorted(rows) == list(range(1, 21)) for rows in mot.values())
    assert np.allclose(mot[1][1], [*gt[0], 1.0], atol=0.01) and np.allclose(mot[2][1], [*other, 1.0], atol=0.01)
    assert all(np.isnan(mot[i][8][:4]).all() and mot[i][8][4] == 0 for i in (1, 2))  # the broken frame
    from tracker.core.ops import iou

    held = np.array([mot[1][k][:4] for k in range(1, 21) if k != 8])
    assert iou(held, np.delete(gt, 7, axis=0)).mean() > 0.6  # target 1 follows its object
    for i in (1, 2):  # the per-target files say the same in the one-target format
        rows = read_boxes(tmp_path / f"b.{i}.txt")
        assert len(rows) == 20
        want = np.array([mot[i][k] for k in range(1, 21)])
        assert np.allclose(rows, want, equal_nan=True, atol=1e-4)
    assert read_video(out) == (20, (320, 240))


def test_mot_flag_with_one_target_and_per_target_needs_boxes(tmp_path):
    from .helpers import encode
    from .test_demo_headless import assert_clean_error, box_arg, siamtrack

    frames, gt = make_sequence(6, (160, 120), target=(32, 24), seed=3)
    clip = encode(frames, tmp_path / "c.mp4")
    p = siamtrack("track", clip, "--no-display", "--box", box_arg(gt[0]), "--boxes", tmp_path / "b.txt", "--mot")
    assert p.returncode == 0, p.stderr
    lines = (tmp_path / "b.txt").read_text().splitlines()
    assert [line.split(",")[:2] for line in lines] == [[str(k), "1"] for k in range(1, 7)]
    p = siamtrack("track", clip, "--no-display", "--box", box_arg(gt[0]), "--output", tmp_path / "o.mp4",
                  "--boxes-per-target")
    assert_clean_error(p, "--boxes-per-target", "--boxes")
    p = siamtrack("track", clip, "--no-display", "--box", box_arg(gt[0]), "--box", "500,10,20,20",
                  "--boxes", tmp_path / "c.txt")
    assert_clean_error(p, "--box")  # the second box is outside the 160x120 frame
    assert not (tmp_path / "c.txt").exists()


def test_read_mot_names_a_malformed_line(tmp_path):
    from tracker.io.outputs import read_mot

    f = tmp_path / "m.txt"
    f.write_text("1,1,2.00,3.00,4.00,5.00,1.0000,-1,-1,-1\n2,1,2.0,3.0\n")
    with pytest.raises(ValueError, match=r"m\.txt:2"):
        read_mot(f)


def test_draw_targets_gives_each_target_its_colour_and_marks_the_lost():
    from tracker.apps.overlay import draw_targets, target_color
    from tracker.core.siamfc import TrackResult

    frame = np.full((240, 320, 3), 128, np.uint8)
    results = {1: TrackResult((20.0, 40.0, 60.0, 40.0), 0.9, False), 2: TrackResult((150.0, 120.0, 60.0, 40.0), 0.8, False),
               3: TrackResult((240.0, 60.0, 50.0, 50.0), 0.1, True)}
    img = draw_targets(frame, results, 25.0, "siamfc-effnet", "cpu")
    assert len({target_color(i) for i in results}) == 3

    def count(i):
        x, y, w, h = (int(v) for v in results[i].box)
        region = img[y - 3:y + h + 3, x - 3:x + w + 3]
        return int(np.all(region == target_color(i), axis=2).sum())

    assert count(1) >= 2 * (60 + 40) and count(2) >= 2 * (60 + 40)
    assert 0 < count(3) < 2 * (50 + 50)  # dashed: the lost target's outline is broken
    assert np.array_equal(frame, np.full((240, 320, 3), 128, np.uint8))  # the input is not drawn on


@pytest.mark.parametrize("name,crops", [(DEFAULT, 1), ("siamfc-effnet", 3)])
def test_backbone_calls_are_split_at_max_batch(couple, name, crops):
    """Five targets x ``crops`` search crops each (the default's box head: 1; siamfc-effnet's pyramid: 3 scales,
    a target's crops then straddle two calls) in calls of at most 4: the same boxes as one call for all."""
    frames, gt = couple
    base = SiamFCTracker.from_pretrained(name, device="cpu", backend="torch", config={"scale_every": 1})
    calls = []
    embed = base.net.embed
    base.net.embed = lambda x: calls.append(len(x)) or embed(x)
    trackers = [MultiTracker(base, max_batch=m) for m in (4, 64)]
    for t in trackers:
        for k in range(5):
            t.add(frames[0], gt[0] + np.array([12.0 * k, 0, 0, 0]))
    assert all(len(t.search_sizes()) == crops for t in trackers[0]._targets.values())
    calls.clear()
    for f in frames[1:6]:
        if name == DEFAULT:  # frame by frame from the same state: see test_batched_equals_one_tracker_per_target
            for i in trackers[0].ids:
                _same_state(trackers[0]._targets[i], trackers[1]._targets[i])
        a, b = (t.update(f) for t in trackers)
        assert all(np.allclose(a[i].box, b[i].box, atol=1e-3) for i in a)
    n = 5 * crops
    assert calls == ([4] * (n // 4) + [n % 4] * (n % 4 > 0) + [n]) * 5  # e.g. [4, 4, 4, 3, 15] with 3 scales
    assert MultiTracker(base).max_batch == 6  # torch on a CPU
    with pytest.raises(ValueError, match="max_batch"):
        MultiTracker(base, max_batch=0)


def test_multi_bench_times_every_way_in_one_run(dev_root, peers_dir, capsys):
    from tracker.apps.bench_multi import run_multi_bench

    rows = run_multi_bench(dev_root, peers_dir, ["siamfc-effnet"], ["Deer"], 10, "cpu", ("torch",), (1,), (1, 3))
    out = capsys.readouterr().out
    assert "load average" in out and "vs 1 target" in out
    got = {(r["tracker"], r["targets"]) for r in rows}
    for name in ("siamfc-effnet (cpu), batched", "siamfc-effnet (cpu), one after another",
                 "cv2.TrackerNano x N, one after another"):
        assert {(name, 1), (name, 3)} <= got
    assert all(r["ms"] > 0 and r["vs_one"] > 0 for r in rows)
    one = [r for r in rows if r["tracker"] == "siamfc-effnet (cpu), one after another" and r["targets"] == 1]
    assert one[0]["vs_one"] == 1.0


def test_a_per_target_file_that_is_the_output_video_is_refused_before_writing(tmp_path):
    from .helpers import encode
    from .test_demo_headless import assert_clean_error, box_arg, siamtrack

    frames, gt = make_sequence(6, (160, 120), target=(32, 24), seed=3)
    clip = encode(frames, tmp_path / "c.mp4")
    video = tmp_path / "b.1.mp4"
    p = siamtrack("track", clip, "--no-display", "--box", box_arg(gt[0]), "--boxes", tmp_path / "b.mp4",
                  "--boxes-per-target", "--output", video)
    assert_clean_error(p, "--boxes-per-target file", "--output")
    assert not video.exists() and not (tmp_path / "b.mp4").exists()
