"""Tracking metrics, numerically identical to the GOT-10k toolkit (``got10k`` 0.1.3).

All boxes are ``(N, 4)`` ``(x, y, w, h)`` arrays in the same coordinates (which origin does
not matter: IoU and centre distances are translation invariant).

OTB one-pass (``ExperimentOTB``): per sequence, IoU and centre error per frame; the success
curve is the fraction of frames with IoU ``>`` each of 21 thresholds ``linspace(0, 1, 21)``,
its mean is the success score ("AUC"); the precision curve is the fraction with centre error
``<=`` 0..50 px, the precision score its value at 20 px. Frame 1 counts (its box is the
ground truth). Overall curves are the mean of the per-sequence curves. Unlike the toolkit,
frames whose ground truth is NaN or empty are left out (the toolkit counts them as failures;
the two agree on fully annotated sequences). Normalised precision (TrackingNet/LaSOT, as
pytracking reports it): centre offset divided by the ground-truth ``(w, h)``, curve over
thresholds 0..0.5 in steps of 0.01, score at 0.2.

GOT-10k (``ExperimentGOT10k``): IoU after clipping both boxes to the image, over frames
2..N with ``cover > 0``, pooled over sequences and repetitions: AO = mean IoU, SR@t = fraction
with IoU ``> t``. Speed (both protocols) = mean of ``1 / t`` over the recorded per-frame times
``t > 0`` (GOT-10k: pooled over all frames; OTB: per sequence, then averaged over sequences).

Long-term (VOT-LT's tracking precision and recall, Lukezic et al., 2020), on sequences where the
target is sometimes absent (NaN ground truth): a tracker reports the target present on frames whose
confidence is at least a threshold tau. Precision(tau) = mean IoU over the frames it reports (IoU 0
where the target is absent); recall(tau) = mean over the frames where the target is present of the
IoU, counted 0 where it does not report it. F(tau) = 2 Pr Re / (Pr + Re); the F-score is its maximum
over tau in ``LT_THRESHOLDS``, with Pr and Re at that tau. Frames 2..N; per-sequence curves averaged
(as the VOT toolkit does).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ..core import ops
from .datasets import is_valid_box

__all__ = ["SUCCESS_THRESHOLDS", "PRECISION_THRESHOLDS", "NORM_PRECISION_THRESHOLDS", "GOT10K_THRESHOLDS",
           "OTBScores", "GOT10kScores", "overlaps", "center_errors", "normalized_center_errors", "otb_sequence",
           "otb_overall", "got10k_ious", "got10k_scores", "speed_fps", "LT_THRESHOLDS", "LongTermScores",
           "long_term_sequence", "long_term_overall"]

SUCCESS_THRESHOLDS = np.linspace(0, 1, 21)
PRECISION_THRESHOLDS = np.arange(0, 51)
NORM_PRECISION_THRESHOLDS = np.arange(0, 51) / 100.0
GOT10K_THRESHOLDS = np.linspace(0, 1, 101)
LT_THRESHOLDS = np.linspace(0, 1, 101)  # confidence thresholds of the long-term measures
PRECISION_AT = 20  # px
NORM_PRECISION_AT = 20  # index into NORM_PRECISION_THRESHOLDS: 0.2


def overlaps(boxes: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-frame IoU in [0, 1]; 0 where both boxes are empty (the toolkit's ``eps`` rule)."""
    return np.nan_to_num(ops.iou(boxes, gt), nan=0.0)


def center_errors(boxes: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-frame distance between box centres, pixels."""
    return ops.center_error(boxes, gt)


def normalized_center_errors(boxes: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-frame centre offset divided by the ground truth's ``(w, h)``, Euclidean norm."""
    d = ops.xywh_to_cxcywh(np.asarray(boxes, np.float64).reshape(-1, 4))[:, :2]
    g = ops.xywh_to_cxcywh(np.asarray(gt, np.float64).reshape(-1, 4))
    return np.sqrt((((d - g[:, :2]) / g[:, 2:]) ** 2).sum(axis=1))


def speed_fps(times: np.ndarray) -> float:
    """Mean of ``1 / t`` over the finite times ``t > 0`` (seconds); -1 when there are none."""
    t = np.asarray(times, dtype=np.float64).reshape(-1)
    t = t[np.isfinite(t) & (t > 0)]
    return float(np.mean(1.0 / t)) if len(t) else -1.0


@dataclass(frozen=True)
class OTBScores:
    """OTB one-pass scores of one sequence or of a whole benchmark (curves averaged)."""

    success_curve: np.ndarray  # (21,) fraction of frames with IoU > SUCCESS_THRESHOLDS
    precision_curve: np.ndarray  # (51,) fraction with centre error <= 0..50 px
    norm_precision_curve: np.ndarray  # (51,) fraction with normalised error <= 0..0.5
    speed_fps: float  # -1 when unknown
    frames: int  # frames scored

    @property
    def success(self) -> float:
        """Success score: mean of the success curve (the "AUC")."""
        return float(np.mean(self.success_curve))

    @property
    def precision(self) -> float:
        """Precision at 20 px."""
        return float(self.precision_curve[PRECISION_AT])

    @property
    def norm_precision(self) -> float:
        """Normalised precision at 0.2."""
        return float(self.norm_precision_curve[NORM_PRECISION_AT])

    @property
    def success_rate(self) -> float:
        """Fraction of frames with IoU > 0.5 (SR0.5)."""
        return float(self.success_curve[len(SUCCESS_THRESHOLDS) // 2])

    def as_dict(self, curves: bool = True) -> dict:
        d = {"success_auc": self.success, "precision_20px": self.precision, "norm_precision": self.norm_precision,
             "sr50": self.success_rate, "fps": self.speed_fps, "frames": self.frames}
        if curves:
            d.update(success_curve=self.success_curve.tolist(), precision_curve=self.precision_curve.tolist(),
                     norm_precision_curve=self.norm_precision_curve.tolist())
        return d


def otb_sequence(boxes: np.ndarray, gt: np.ndarray, times: np.ndarray | None = None) -> OTBScores:
    """Score one sequence's result ``boxes`` against ``gt`` (both ``(N, 4)``) the OTB way.

    The first result box is replaced by the first ground-truth box, as the toolkit does.
    """
    boxes = np.array(boxes, dtype=np.float64).reshape(-1, 4)
    gt = np.asarray(gt, dtype=np.float64).reshape(-1, 4)
    if boxes.shape != gt.shape:
        raise ValueError(f"boxes: {len(boxes)} rows but the ground truth has {len(gt)}")
    boxes[0] = gt[0]
    keep = is_valid_box(gt)
    b, g = boxes[keep], gt[keep]
    iou = overlaps(b, g)[:, None]
    ce = center_errors(b, g)[:, None]
    nce = normalized_center_errors(b, g)[:, None]
    with np.errstate(invalid="ignore"):
        succ = np.mean(np.greater(iou, SUCCESS_THRESHOLDS[None]), axis=0)
        prec = np.mean(np.less_equal(ce, PRECISION_THRESHOLDS[None]), axis=0)
        nprec = np.mean(np.less_equal(nce, NORM_PRECISION_THRESHOLDS[None]), axis=0)
    fps = speed_fps(times) if times is not None else -1.0
    return OTBScores(succ, prec, nprec, fps, int(keep.sum()))


def otb_overall(per_sequence: list[OTBScores]) -> OTBScores:
    """Benchmark scores: per-sequence curves averaged; speed averaged over sequences that have one."""
    if not per_sequence:
        raise ValueError("no sequences to score")
    mean = lambda attr: np.mean([getattr(s, attr) for s in per_sequence], axis=0)  # noqa: E731
    speeds = np.array([s.speed_fps for s in per_sequence])
    speeds = speeds[speeds > 0]
    fps = float(np.sum(speeds) / len(speeds)) if len(speeds) else -1.0
    return OTBScores(mean("success_curve"), mean("precision_curve"), mean("norm_precision_curve"), fps,
                     int(sum(s.frames for s in per_sequence)))


def _clip_to_image(boxes: np.ndarray, size: tuple[float, float]) -> np.ndarray:
    # The toolkit's ``bound``: x, y into [0, W] x [0, H]; w, h cut at the right/bottom edge.
    b = np.array(boxes, dtype=np.float64).reshape(-1, 4)
    b[:, 0] = np.clip(b[:, 0], 0, size[0])
    b[:, 1] = np.clip(b[:, 1], 0, size[1])
    b[:, 2] = np.clip(b[:, 2], 0, size[0] - b[:, 0])
    b[:, 3] = np.clip(b[:, 3], 0, size[1] - b[:, 1])
    return b


def got10k_ious(boxes: np.ndarray, gt: np.ndarray, cover: np.ndarray | None, image_size: tuple[float, float]) -> np.ndarray:
    """IoUs the GOT-10k way: frames 2..N with ``cover > 0`` and a known box, boxes clipped to the image.

    ``image_size`` is ``(width, height)`` in pixels. Returns a 1-D array (frames kept only).
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    gt = np.asarray(gt, dtype=np.float64).reshape(-1, 4)
    if boxes.shape != gt.shape:
        raise ValueError(f"boxes: {len(boxes)} rows but the ground truth has {len(gt)}")
    keep = np.isfinite(gt).all(axis=1)
    if cover is not None:
        keep &= np.asarray(cover) > 0
    keep[0] = False
    # Clip in the file's 1-based coordinates, as the toolkit does with the raw files.
    b = _clip_to_image(ops.zero_based_to_one_based(boxes[keep]), image_size)
    g = _clip_to_image(ops.zero_based_to_one_based(gt[keep]), image_size)
    return overlaps(b, g)


@dataclass(frozen=True)
class GOT10kScores:
    """GOT-10k scores over a pool of IoUs."""

    ao: float
    sr50: float
    sr75: float
    speed_fps: float
    success_curve: np.ndarray  # (101,) fraction with IoU > GOT10K_THRESHOLDS
    frames: int

    def as_dict(self, curves: bool = True) -> dict:
        d = {"ao": self.ao, "sr50": self.sr50, "sr75": self.sr75, "fps": self.speed_fps, "frames": self.frames}
        if curves:
            d["success_curve"] = self.success_curve.tolist()
        return d


def got10k_scores(ious: np.ndarray, times: np.ndarray) -> GOT10kScores:
    """AO, SR0.5, SR0.75, speed and the 101-bin success curve of pooled ``ious`` and ``times``."""
    ious = np.asarray(ious, dtype=np.float64).reshape(-1)
    if len(ious) == 0:
        nan = float("nan")
        return GOT10kScores(nan, nan, nan, speed_fps(times), np.full(len(GOT10K_THRESHOLDS), np.nan), 0)
    curve = np.mean(np.greater(ious[:, None], GOT10K_THRESHOLDS[None]), axis=0)
    return GOT10kScores(float(np.mean(ious)), float(np.mean(ious > 0.5)), float(np.mean(ious > 0.75)),
                        speed_fps(times), curve, len(ious))


@dataclass(frozen=True)
class LongTermScores:
    """Long-term tracking precision and recall over :data:`LT_THRESHOLDS` (NaN where undefined: no frame
    reported at that threshold, or no frame with the target present)."""

    precision_curve: np.ndarray  # (T,)
    recall_curve: np.ndarray  # (T,)
    frames: int  # frames scored (2..N)
    absent: int  # of which the target is absent

    @property
    def f_curve(self) -> np.ndarray:
        pr, re = np.nan_to_num(self.precision_curve), np.nan_to_num(self.recall_curve)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(pr + re > 0, 2 * pr * re / (pr + re), 0.0)

    @property
    def best(self) -> int:
        """Index of the threshold with the highest F (the lowest such threshold on ties)."""
        return int(np.argmax(self.f_curve))

    @property
    def f_score(self) -> float:
        return float(self.f_curve[self.best])

    @property
    def precision(self) -> float:
        return float(np.nan_to_num(self.precision_curve[self.best]))

    @property
    def recall(self) -> float:
        return float(np.nan_to_num(self.recall_curve[self.best]))

    @property
    def threshold(self) -> float:
        return float(LT_THRESHOLDS[self.best])

    def as_dict(self, curves: bool = True) -> dict:
        d = {"f_score": self.f_score, "lt_precision": self.precision, "lt_recall": self.recall,
             "lt_threshold": self.threshold, "frames": self.frames, "absent_frames": self.absent}
        if curves:
            d.update(lt_precision_curve=np.nan_to_num(self.precision_curve, nan=-1).tolist(),
                     lt_recall_curve=np.nan_to_num(self.recall_curve, nan=-1).tolist())
        return d


def long_term_sequence(boxes: np.ndarray, gt: np.ndarray, confidence: np.ndarray) -> LongTermScores:
    """Long-term precision and recall curves of one sequence: result ``boxes`` and ``gt`` ``(N, 4)`` (NaN
    rows: target absent), per-frame ``confidence`` ``(N,)``; frame 1 (the initialisation) is left out."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)[1:]
    gt = np.asarray(gt, dtype=np.float64).reshape(-1, 4)[1:]
    conf = np.asarray(confidence, dtype=np.float64).reshape(-1)[1:]
    if not (len(boxes) == len(gt) == len(conf)):
        raise ValueError(f"boxes, ground truth and confidences differ in length: {len(boxes) + 1}, {len(gt) + 1}, "
                         f"{len(conf) + 1}")
    present = is_valid_box(gt)
    iou = np.zeros(len(gt))
    iou[present] = overlaps(boxes[present], gt[present])
    reported = conf[None, :] >= LT_THRESHOLDS[:, None]  # (T, N)
    n_reported = reported.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        pr = np.where(n_reported > 0, (reported * iou[None]).sum(axis=1) / n_reported, np.nan)
        re = ((reported & present[None]) * iou[None]).sum(axis=1) / present.sum() if present.any() \
            else np.full(len(LT_THRESHOLDS), np.nan)
    return LongTermScores(pr, re, len(gt), int((~present).sum()))


def long_term_overall(per_sequence: list[LongTermScores]) -> LongTermScores:
    """Benchmark curves: the per-sequence curves averaged where defined."""
    if not per_sequence:
        raise ValueError("no sequences to score")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column: the mean of nothing is NaN
        pr = np.nanmean([s.precision_curve for s in per_sequence], axis=0)
        re = np.nanmean([s.recall_curve for s in per_sequence], axis=0)
    return LongTermScores(pr, re, sum(s.frames for s in per_sequence), sum(s.absent for s in per_sequence))
