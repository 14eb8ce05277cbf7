"""Our metrics against the GOT-10k toolkit's own code, on real tracking results over ../shared data.

The toolkit (``got10k`` + ``six``) reads the result files our runner wrote, in place, and
its numbers must equal ours to 1e-6. Its dataset classes are pointed at temporary folders
of symbolic links to the shared sequences (nothing is copied).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

pytest.importorskip("six")
got10k_otb = pytest.importorskip("got10k.experiments.otb")
got10k_got = pytest.importorskip("got10k.experiments.got10k")
from got10k.datasets import OTB, GOT10k  # noqa: E402
from got10k.utils.metrics import rect_iou  # noqa: E402

from tracker.eval import metrics  # noqa: E402
from tracker.eval.datasets import load_got10k, load_otb  # noqa: E402
from tracker.eval.report import score_got10k, score_otb  # noqa: E402
from tracker.eval.runner import Layout, run_benchmark  # noqa: E402

OTB_SEQS = ["Couple", "Crossing", "Deer"]  # OTB-2013 names, so the toolkit's OTB class lists them
GOT_SEQS = ["car_tld", "group2_2"]  # both have absent (NaN) frames


@pytest.fixture(scope="module")
def otb_run(dev_root: Path, tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("otb")
    root = tmp / "OTB"
    root.mkdir()
    for s in OTB_SEQS:
        (root / s).symlink_to(dev_root / s, target_is_directory=True)
    layout = Layout("otb", tmp / "results")
    run_benchmark(load_otb(root), ["csrt", "kcf"], layout, progress=False)
    return root, layout.root


def _toolkit_otb(root: Path, results: Path, report: Path):
    exp = got10k_otb.ExperimentOTB.__new__(got10k_otb.ExperimentOTB)
    exp.dataset = OTB(str(root), 2013, download=False)
    exp.result_dir, exp.report_dir = str(results), str(report)
    exp.nbins_iou, exp.nbins_ce = 21, 51
    return exp.report(["csrt", "kcf"])


@pytest.mark.slow
def test_otb_scores_equal_toolkit(otb_run, tmp_path: Path) -> None:
    root, results = otb_run
    theirs = _toolkit_otb(root, results, tmp_path)
    ours = score_otb(load_otb(root), Layout("otb", results), ["csrt", "kcf"])
    for name in ("csrt", "kcf"):
        for seq in OTB_SEQS:
            t, o = theirs[name]["seq_wise"][seq], ours[name]["sequences"][seq]
            np.testing.assert_allclose(o.success_curve, t["success_curve"], atol=1e-6)
            np.testing.assert_allclose(o.precision_curve, t["precision_curve"], atol=1e-6)
            assert o.success == pytest.approx(t["success_score"], abs=1e-6)
            assert o.precision == pytest.approx(t["precision_score"], abs=1e-6)
            assert o.success_rate == pytest.approx(t["success_rate"], abs=1e-6)
            assert o.speed_fps == pytest.approx(t["speed_fps"], rel=1e-6)
        t, o = theirs[name]["overall"], ours[name]["overall"]
        np.testing.assert_allclose(o.success_curve, t["success_curve"], atol=1e-6)
        np.testing.assert_allclose(o.precision_curve, t["precision_curve"], atol=1e-6)
        assert (o.success, o.precision, o.success_rate) == pytest.approx(
            (t["success_score"], t["precision_score"], t["success_rate"]), abs=1e-6)
        assert o.speed_fps == pytest.approx(t["speed_fps"], rel=1e-6)
    # the cross-check compares something: the trackers' results differ and are not trivial
    assert ours["csrt"]["overall"].success != pytest.approx(ours["kcf"]["overall"].success, abs=1e-3)
    assert 0.05 < ours["csrt"]["overall"].success < 0.99


@pytest.fixture(scope="module")
def got_run(training_root: Path, tmp_path_factory) -> tuple[Path, Path]:
    """A GOT-10k ``val`` split of links to training sequences, with the label files the toolkit needs."""
    tmp = tmp_path_factory.mktemp("got")
    for name in GOT_SEQS:
        src, dst = training_root / "train" / name, tmp / "val" / name
        dst.mkdir(parents=True)
        for f in src.iterdir():
            (dst / f.name).symlink_to(f)
        absence = np.loadtxt(src / "absence.label")
        (dst / "cover.label").write_text("".join(f"{0 if a else 8}\n" for a in absence))
        (dst / "cut_by_image.label").write_text("0\n" * len(absence))
        h, w = cv2.imread(str(sorted(src.glob("*.jpg"))[0])).shape[:2]
        (dst / "meta_info.ini").write_text(f"[METAINFO]\nresolution: ({w}, {h})\n")
    (tmp / "val" / "list.txt").write_text("\n".join(GOT_SEQS) + "\n")
    layout = Layout("got10k", tmp / "results")
    run_benchmark(load_got10k(tmp, "val"), ["csrt", "mil"], layout, progress=False)
    return tmp, layout.root


@pytest.mark.slow
def test_got10k_scores_equal_toolkit(got_run, tmp_path: Path) -> None:
    root, results = got_run
    assert len(list((results / "mil" / GOT_SEQS[0]).glob("*_00[0-9].txt"))) == 3  # MIL: 3 repetitions
    assert np.loadtxt(results / "mil" / GOT_SEQS[0] / f"{GOT_SEQS[0]}_time.txt", delimiter=",").shape[1] == 3
    exp = got10k_got.ExperimentGOT10k.__new__(got10k_got.ExperimentGOT10k)
    exp.subset, exp.dataset = "val", GOT10k(str(root), subset="val")
    exp.result_dir, exp.report_dir, exp.nbins_iou, exp.repetitions = str(results), str(tmp_path), 101, 3
    theirs = exp.report(["csrt", "mil"])
    seqs = load_got10k(root, "val")
    ours = score_got10k(seqs, Layout("got10k", results), ["csrt", "mil"])
    for name in ("csrt", "mil"):
        t, o = theirs[name]["overall"], ours[name]["overall"]
        assert (o.ao, o.sr50, o.speed_fps) == pytest.approx((t["ao"], t["sr"], t["speed_fps"]), abs=1e-6)
        np.testing.assert_allclose(o.success_curve, t["succ_curve"], atol=1e-6)
        for s in GOT_SEQS:
            assert (ours[name]["sequences"][s].ao, ours[name]["sequences"][s].sr50) == pytest.approx(
                (theirs[name]["seq_wise"][s]["ao"], theirs[name]["seq_wise"][s]["sr"]), abs=1e-6)
        # SR0.75 is not in the toolkit's report: pool its rect_iou the way its report does
        pooled = []
        for seq in seqs:
            anno = np.loadtxt(root / "val" / seq.name / "groundtruth.txt", delimiter=",")
            cover = np.loadtxt(root / "val" / seq.name / "cover.label")[1:]
            for f in sorted((results / name / seq.name).glob(f"{seq.name}_[0-9]*.txt")):
                b = np.loadtxt(f, delimiter=",")
                pooled.append(rect_iou(b[1:], anno[1:], bound=seq.resolution)[cover > 0])
        assert o.sr75 == pytest.approx(np.mean(np.concatenate(pooled) > 0.75), abs=1e-6)
    assert 0.05 < ours["csrt"]["overall"].ao < 0.99


def test_nan_ground_truth_frames_are_left_out() -> None:
    gt = np.array([[10, 10, 20, 20], [12, 10, 20, 20], [np.nan] * 4, [0, 0, 0, 0], [30, 30, 10, 10]], float)
    boxes = np.array([[0, 0, 1, 1], [12, 10, 20, 20], [5, 5, 5, 5], [1, 1, 2, 2], [60, 60, 10, 10]], float)
    full = metrics.otb_sequence(boxes, gt)
    kept = metrics.otb_sequence(boxes[[0, 1, 4]], gt[[0, 1, 4]])
    assert full.frames == 3
    np.testing.assert_array_equal(full.success_curve, kept.success_curve)
    # frame 1 is replaced by the ground truth: frames 1-2 perfect, frame 5 a miss
    assert full.success_rate == pytest.approx(2 / 3) and full.precision == pytest.approx(2 / 3)


def test_normalized_precision_by_hand() -> None:
    gt = np.array([[0, 0, 10, 20]] * 3, float)
    boxes = gt + np.array([[0, 0, 0, 0], [2, 0, 0, 0], [0, 5, 0, 0]], float)  # 0, 0.2, 0.25 of the size
    s = metrics.otb_sequence(boxes, gt)
    assert s.norm_precision_curve[19] == pytest.approx(1 / 3)  # <= 0.19: only frame 1
    assert s.norm_precision == pytest.approx(2 / 3)  # <= 0.2
    assert s.norm_precision_curve[25] == pytest.approx(1.0)


def test_got10k_metrics_skip_first_frame_and_invisible() -> None:
    gt = np.array([[0, 0, 10, 10]] * 4, float)
    boxes = np.array([[50, 50, 1, 1], [0, 0, 10, 10], [0, 0, 10, 5], [50, 50, 10, 10]], float)
    ious = metrics.got10k_ious(boxes, gt, np.array([8, 8, 8, 0]), (100, 100))
    assert ious.tolist() == [1.0, 0.5]
    s = metrics.got10k_scores(ious, np.array([0.01, 0.02, 0.0, np.nan]))
    assert (s.ao, s.sr50, s.sr75) == (0.75, 0.5, 0.5) and s.speed_fps == pytest.approx(75.0)
