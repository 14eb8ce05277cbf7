"""The long-term stress set, the VOT-LT measures, and their place in ``siamtrack eval``."""
from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from tracker.core import ops
from tracker.eval import metrics
from tracker.eval.datasets import load_otb, read_boxes
from tracker.eval.stress import MARGIN, WINDOW, make_stress_set
from tracker.eval.synthetic import make_sequence

from .helpers import siamtrack_cmd


def _otb_set(root: Path, n_frames: int = 160) -> Path:
    """A one-sequence OTB-layout set (JPEG frames, 1-based ground truth) of a small target drifting around."""
    frames, gt = make_sequence(n_frames, (320, 240), target=(30, 24), scale_range=(0.9, 1.1), seed=2)
    seq = root / "Drift"
    (seq / "img").mkdir(parents=True)
    for k, f in enumerate(frames, 1):
        cv2.imwrite(str(seq / "img" / f"{k:04d}.jpg"), f)
    rows = ops.zero_based_to_one_based(gt)
    (seq / "groundtruth_rect.txt").write_text("".join(",".join(f"{v:.2f}" for v in r) + "\n" for r in rows))
    return root


@pytest.fixture(scope="module")
def stress(tmp_path_factory):
    src = _otb_set(tmp_path_factory.mktemp("src"))
    out = tmp_path_factory.mktemp("stress") / "set"
    manifest = make_stress_set(src, out, seed=3, log=lambda s: None)
    return src, out, manifest


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_same_seed_gives_the_same_set_and_another_seed_another(stress, tmp_path):
    src, out, _ = stress
    again = tmp_path / "again"
    make_stress_set(src, again, seed=3, log=lambda s: None)
    assert _files(again) == _files(out)
    other = tmp_path / "other"
    make_stress_set(src, other, seed=4, log=lambda s: None)
    assert json.loads((other / "stress.json").read_text())["sequences"] != \
        json.loads((out / "stress.json").read_text())["sequences"]


def test_occlusion_hides_exactly_the_absent_frames(stress):
    src, out, manifest = stress
    info = manifest["sequences"]["Drift-occ"]
    (orig,) = load_otb(src)
    (occ,) = load_otb(out, ["Drift-occ"])
    hidden = np.zeros(len(orig), bool)
    for a, b in info["spans"]:
        hidden[a:b] = True
    assert hidden.any() and info["absent_frames"] == hidden.sum()
    absent = ~np.isfinite(occ.gt).all(axis=1)
    assert np.array_equal(absent, hidden)  # NaN rows are exactly the painted frames
    assert np.allclose(occ.gt[~hidden], orig.gt[~hidden], atol=0.01)
    for k in range(len(orig)):
        a, b = cv2.imread(str(orig.img_files[k])), cv2.imread(str(occ.img_files[k]))
        changed = np.abs(a.astype(int) - b.astype(int)).max(axis=2) > 40
        if not hidden[k]:
            assert orig.img_files[k].read_bytes() == occ.img_files[k].read_bytes()  # copied as they are
            continue
        x, y, w, h = orig.gt[k]
        ys, xs = np.nonzero(changed)
        assert changed.any()
        # Strong changes only within the painted area, give or take a JPEG block (8 px) of ringing.
        assert xs.min() >= x - MARGIN * w - 8 and xs.max() <= x + w + MARGIN * w + 8
        assert ys.min() >= y - MARGIN * h - 8 and ys.max() <= y + h + MARGIN * h + 8
        assert changed[int(y + h / 2), int(x + w / 2)] or changed.sum() > 0.3 * w * h
        # Away from the painted area's border (JPEG ringing), everything else is as it was.
        far = np.ones_like(changed)
        far[max(0, int(y - MARGIN * h) - 8):int(y + h + MARGIN * h) + 8, max(0, int(x - MARGIN * w) - 8):int(x + w + MARGIN * w) + 8] = False
        assert np.abs(a.astype(int) - b.astype(int))[far].mean() < 3


def test_a_got10k_root_gives_a_stress_set_that_keeps_its_own_absences(tmp_path):
    """The training sets' layout (``train/list.txt``): the same generator, deterministic, and the frames where the
    source's target is absent stay absent (NaN) besides the painted ones."""
    frames, gt = make_sequence(160, (320, 240), target=(30, 24), scale_range=(0.9, 1.1), seed=2)
    gt[100:104] = np.nan  # the target absent in the source
    seq = tmp_path / "src" / "train" / "drift"
    seq.mkdir(parents=True)
    for k, f in enumerate(frames, 1):
        cv2.imwrite(str(seq / f"{k:08d}.jpg"), f)
    (seq / "groundtruth.txt").write_text("".join(",".join(f"{v:.2f}" for v in r) + "\n" for r in gt))
    (seq.parent / "list.txt").write_text("drift\n")
    runs = [make_stress_set(tmp_path / "src", tmp_path / name, seed=3, kinds=("occlusion",), log=lambda s: None)
            for name in ("a", "b")]
    assert _files(tmp_path / "a") == _files(tmp_path / "b") and runs[0]["sequences"] == runs[1]["sequences"]
    info = runs[0]["sequences"]["drift-occ"]
    hidden = np.zeros(len(gt), bool)
    for a, b in info["spans"]:
        hidden[a:b] = True
    hidden[100:104] = True
    (occ,) = load_otb(tmp_path / "a", ["drift-occ"])
    assert np.array_equal(~np.isfinite(occ.gt).all(axis=1), hidden)
    assert info["absent_frames"] == hidden.sum()


def test_out_of_view_frames_are_window_crops_and_absent_outside(stress):
    src, out, manifest = stress
    info = manifest["sequences"]["Drift-oov"]
    (orig,) = load_otb(src)
    (oov,) = load_otb(out, ["Drift-oov"])
    ww, wh = info["window"]
    assert (ww, wh) == (int(320 * WINDOW), int(240 * WINDOW))
    absent = ~np.isfinite(oov.gt).all(axis=1)
    assert absent.sum() == info["absent_frames"] > 0
    for k, (x0, y0) in enumerate(info["corners"]):
        crop = cv2.imread(str(orig.img_files[k]))[y0:y0 + wh, x0:x0 + ww].astype(int)
        assert np.abs(crop - cv2.imread(str(oov.img_files[k])).astype(int)).mean() < 4  # JPEG of the crop
        x, y, w, h = orig.gt[k]
        inside = max(0, min(x + w, x0 + ww) - max(x, x0)) * max(0, min(y + h, y0 + wh) - max(y, y0)) / (w * h)
        assert absent[k] == (inside < 0.5)
        if not absent[k]:
            assert np.allclose(oov.gt[k], [x - x0, y - y0, w, h], atol=0.01)
    span = info["span"]
    before = np.flatnonzero(~absent[:span[0]])
    after = np.flatnonzero(~absent[span[1]:]) + span[1]
    assert len(before) and len(after)  # visible before it leaves and after it comes back


def test_long_term_measures_against_a_direct_count():
    rng = np.random.default_rng(0)
    n = 50
    gt = rng.uniform(10, 50, (n, 4))
    gt[rng.random(n) < 0.3] = np.nan
    gt[0] = [20, 20, 30, 30]
    boxes = gt.copy()
    boxes[~np.isfinite(boxes)] = 25.0
    boxes += rng.normal(0, 4, boxes.shape)
    conf = rng.random(n)
    s = metrics.long_term_sequence(boxes, gt, conf)
    for k, tau in enumerate(metrics.LT_THRESHOLDS[::10]):
        ious, reported, present = [], [], []
        for t in range(1, n):
            p = bool(np.isfinite(gt[t]).all())
            iou = float(ops.iou(boxes[t:t + 1], gt[t:t + 1])[0]) if p else 0.0
            ious.append(iou)
            reported.append(conf[t] >= tau)
            present.append(p)
        ious, reported, present = map(np.array, (ious, reported, present))
        pr = ious[reported].mean() if reported.any() else np.nan
        re = (ious * reported)[present].mean()
        np.testing.assert_allclose(s.precision_curve[10 * k], pr, equal_nan=True)
        np.testing.assert_allclose(s.recall_curve[10 * k], re)
    assert s.absent == int((~np.isfinite(gt[1:]).all(axis=1)).sum())
    perfect = metrics.long_term_sequence(np.nan_to_num(gt, nan=0.0), gt, np.isfinite(gt).all(axis=1).astype(float))
    assert perfect.f_score == pytest.approx(1.0)
    always = metrics.long_term_sequence(np.nan_to_num(gt, nan=0.0), gt, np.ones(n))
    assert always.recall == pytest.approx(1.0) and always.precision < 0.9 and always.f_score < perfect.f_score


@pytest.mark.slow
def test_eval_reports_the_long_term_block(stress, tmp_path):
    _, out, _ = stress
    res = tmp_path / "res"
    p = subprocess.run(siamtrack_cmd() + ["eval", "otb", "--root", str(out), "--out", str(res), "--no-progress",
                                          "--trackers", "siamfc-effnet:long_term=true", "kcf"],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    assert "Long-term" in p.stdout and "F-score" in p.stdout
    summary = json.loads((res / "report" / "summary.json").read_text())["trackers"]
    assert set(summary) == {"siamfc-effnet_long_term=True", "kcf"}
    for name, v in summary.items():
        lt = v["long_term"]
        assert 0 <= lt["f_score"] <= 1 and lt["absent_frames"] > 0
    # Per sequence too: each one's F-score at the tracker's overall threshold, as the metric computes it.
    rows = list(csv.DictReader(open(res / "report" / "per_sequence.csv")))
    assert {r["tracker"] for r in rows} == set(summary) and all(0 <= float(r["lt_f_score"]) <= 1 for r in rows)
    seq = load_otb(out, ["Drift-occ"])[0]
    ours = res / "results" / "siamfc-effnet_long_term=True"
    direct = metrics.long_term_sequence(read_boxes(ours / "Drift-occ.txt"), seq.gt,
                                        np.loadtxt(ours / "scores" / "Drift-occ_score.txt"))
    best = int(np.argmin(np.abs(metrics.LT_THRESHOLDS - summary["siamfc-effnet_long_term=True"]["long_term"]["lt_threshold"])))
    got = next(float(r["lt_f_score"]) for r in rows if r["sequence"] == "Drift-occ" and r["tracker"] != "kcf")
    assert np.isclose(got, direct.f_curve[best], atol=1e-6)
    scores = np.loadtxt(res / "results" / "kcf" / "scores" / "Drift-occ_score.txt")
    assert set(np.unique(scores)) <= {0.0, 1.0} and scores[0] == 1.0
    # Older results without confidences: the long-term block says so instead of failing.
    for f in (res / "results" / "kcf" / "scores").iterdir():
        f.unlink()
    p = subprocess.run(siamtrack_cmd() + ["eval", "report", "--benchmark", "otb", "--root", str(out), "--out", str(res)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "n/a (no confidences recorded)" in p.stdout


def test_stress_cli_refuses_its_source_as_output(tmp_path):
    src = _otb_set(tmp_path / "src", n_frames=40)
    p = subprocess.run(siamtrack_cmd() + ["eval", "stress", "--root", str(src), "--out", str(src)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode != 0 and "source set itself" in p.stderr and "Traceback" not in p.stderr
