"""Scoring saved results and reporting them: console table, CSV, JSON, OTB-style plots and
the GOT-10k test-split submission zip. Nothing here runs a tracker.

Report files (all written atomically into the report folder):
``table.txt`` (the console table), ``summary.json`` (overall and per-sequence scores with
curves), ``per_sequence.csv`` (with ``lt_f_score`` where the target is sometimes absent: each sequence's
long-term F-score at the tracker's overall best threshold), and the plots ``success_plot.png`` / ``precision_plot.png``
(OTB) or ``success_plot.png`` (GOT-10k).
"""
from __future__ import annotations

import csv
import io
import json
import os
import zipfile
from pathlib import Path

import cv2
import numpy as np

from ..core.storage import write_atomic
from . import metrics
from .datasets import AnnotationError, Sequence, read_boxes
from .runner import Layout

__all__ = ["load_boxes", "load_times", "load_scores", "has_absences", "score", "score_otb", "score_got10k", "format_table", "write_reports",
           "pack_got10k_test", "found_trackers"]


def found_trackers(layout: Layout) -> list[str]:
    """Tracker folders present under a results root, sorted."""
    if not layout.root.is_dir():
        return []
    return sorted(p.name for p in layout.root.iterdir() if p.is_dir() and not p.name.startswith("."))


def load_boxes(path: Path, seq: Sequence) -> np.ndarray:
    """Read a result file (1-based, as written) -> 0-based ``(N, 4)``; its length must match ``seq``."""
    if not path.is_file():
        raise AnnotationError(f"{path}: results missing for sequence {seq.name} (run the benchmark first)")
    boxes = read_boxes(path)
    if len(boxes) != len(seq):
        raise AnnotationError(f"{path}: {len(boxes)} boxes but sequence {seq.name} has {len(seq)} frames "
                              "(an unfinished or truncated run; delete it and re-run)")
    return boxes


def load_times(path: Path) -> np.ndarray:
    """Per-frame seconds from a time file (all repetition columns), empty if the file is absent."""
    if not path.is_file():
        return np.empty(0)
    try:
        return np.loadtxt(path, delimiter=",", ndmin=2).reshape(-1)
    except ValueError as e:
        raise AnnotationError(f"{path}: not a time file ({e})") from None


def load_scores(path: Path, seq: Sequence) -> np.ndarray | None:
    """Per-frame confidences from a score file, or None where the run recorded none (older results)."""
    if not path.is_file():
        return None
    try:
        values = np.loadtxt(path, ndmin=1).reshape(-1)
    except ValueError as e:
        raise AnnotationError(f"{path}: not a score file ({e})") from None
    if len(values) != len(seq):
        raise AnnotationError(f"{path}: {len(values)} scores but sequence {seq.name} has {len(seq)} frames")
    return values


def has_absences(sequences: list[Sequence]) -> bool:
    """Whether the target is absent (NaN ground truth) on some frame after the first: long-term measures apply."""
    return any((~np.isfinite(s.gt[1:]).all(axis=1)).any() for s in sequences)


def score_otb(sequences: list[Sequence], layout: Layout, trackers: list[str]) -> dict[str, dict]:
    """``{tracker: {"overall": OTBScores, "sequences": {seq: OTBScores}}}``, and where the target is
    sometimes absent, ``"long_term"`` (:class:`metrics.LongTermScores` over all sequences, or None when
    the results hold no confidences) beside them; the OTB scores then count the present frames only."""
    out = {}
    absences = has_absences(sequences)
    for name in trackers:
        boxes = {s.name: load_boxes(layout.record_file(name, s.name), s) for s in sequences}
        per = {s.name: metrics.otb_sequence(boxes[s.name], s.gt, load_times(layout.time_file(name, s.name)))
               for s in sequences}
        out[name] = {"overall": metrics.otb_overall(list(per.values())), "sequences": per}
        if absences:
            conf = {s.name: load_scores(layout.score_file(name, s.name), s) for s in sequences}
            out[name].update(_long_term(boxes, sequences, conf))
    return out


def _long_term(boxes: dict[str, np.ndarray], sequences: list[Sequence], conf: dict[str, np.ndarray | None]) -> dict:
    """``{"long_term": LongTermScores over all sequences, "long_term_sequences": {seq: LongTermScores}}``, or
    ``{"long_term": None}`` where some result holds no confidences."""
    if any(c is None for c in conf.values()):
        return {"long_term": None}
    per = {s.name: metrics.long_term_sequence(boxes[s.name], s.gt, conf[s.name]) for s in sequences}
    return {"long_term": metrics.long_term_overall(list(per.values())), "long_term_sequences": per}


def _image_size(seq: Sequence) -> tuple[int, int]:
    if seq.resolution is not None:
        return seq.resolution
    img = cv2.imread(str(seq.img_files[0]), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise AnnotationError(f"{seq.img_files[0]}: cannot read image")
    return img.shape[1], img.shape[0]


def score_got10k(sequences: list[Sequence], layout: Layout, trackers: list[str]) -> dict[str, dict]:
    """``{tracker: {"overall": GOT10kScores, "sequences": {seq: GOT10kScores}}}``, all repetitions pooled; where
    the target is sometimes absent, ``"long_term"`` as :func:`score_otb` gives it (first repetition)."""
    if any(not s.full_gt for s in sequences):
        raise ValueError("the GOT-10k test split has no ground truth to score; pack it with pack_got10k_test")
    sizes = {s.name: _image_size(s) for s in sequences}
    absences = has_absences(sequences)
    out = {}
    for name in trackers:
        per, all_ious, all_times = {}, [], []
        for s in sequences:
            files = sorted(layout.record_file(name, s.name, 1).parent.glob(f"{s.name}_[0-9][0-9][0-9].txt"))
            if not files:
                raise AnnotationError(f"{layout.record_file(name, s.name, 1)}: results missing for sequence {s.name}")
            ious = np.concatenate([metrics.got10k_ious(load_boxes(f, s), s.gt, s.cover, sizes[s.name]) for f in files])
            times = load_times(layout.time_file(name, s.name))
            per[s.name] = metrics.got10k_scores(ious, times)
            all_ious.append(ious)
            all_times.append(times)
        out[name] = {"overall": metrics.got10k_scores(np.concatenate(all_ious), np.concatenate(all_times)),
                     "sequences": per}
        if absences:  # the first repetition's boxes and confidences
            conf = {s.name: load_scores(layout.score_file(name, s.name, 1), s) for s in sequences}
            first = {s.name: load_boxes(layout.record_file(name, s.name, 1), s) for s in sequences}
            out[name].update(_long_term(first, sequences, conf))
    return out


def score(kind: str, sequences: list[Sequence], layout: Layout, trackers: list[str]) -> dict[str, dict]:
    """Score ``trackers`` on ``sequences``: ``kind`` is ``"otb"`` or ``"got10k"``."""
    return (score_otb if kind == "otb" else score_got10k)(sequences, layout, trackers)


def _columns(kind: str) -> list[tuple[str, str]]:
    if kind == "otb":
        return [("Success AUC", "success_auc"), ("Prec@20px", "precision_20px"), ("Norm prec", "norm_precision"),
                ("SR0.5", "sr50"), ("FPS", "fps")]
    return [("AO", "ao"), ("SR0.5", "sr50"), ("SR0.75", "sr75"), ("FPS", "fps")]


def _ranked(results: dict[str, dict], kind: str) -> list[str]:
    key = "success_auc" if kind == "otb" else "ao"
    return sorted(results, key=lambda n: -np.nan_to_num(results[n]["overall"].as_dict(False)[key], nan=-1))


def format_table(results: dict[str, dict], kind: str, title: str = "") -> str:
    """A plain-text table, best first (by success AUC for OTB, AO for GOT-10k)."""
    cols = _columns(kind)
    width = max([len("Tracker")] + [len(n) for n in results])
    head = f"{'Tracker':<{width}}  " + "  ".join(f"{c:>11}" for c, _ in cols)
    lines = ([title] if title else []) + [head, "-" * len(head)]
    for name in _ranked(results, kind):
        d = results[name]["overall"].as_dict(False)
        cells = [f"{d[k]:11.1f}" if k == "fps" else f"{d[k]:11.3f}" for _, k in cols]
        lines.append(f"{name:<{width}}  " + "  ".join(cells))
    lt = {n: r["long_term"] for n, r in results.items() if "long_term" in r}
    if lt:
        absent = max((v.absent for v in lt.values() if v is not None), default=0)
        lt_cols = ("F-score", "LT Pr", "LT Re", "at conf >=")
        head = f"{'Tracker':<{width}}  " + "  ".join(f"{c:>11}" for c in lt_cols)
        lines += ["", f"Long-term (VOT-LT precision/recall; the target is absent on {absent} frames; the table "
                      "above scores the frames where it is present)", head, "-" * len(head)]
        for name in sorted(lt, key=lambda n: -(lt[n].f_score if lt[n] is not None else -1)):
            v = lt[name]
            cells = ["n/a (no confidences recorded)"] if v is None else \
                [f"{v.f_score:11.3f}", f"{v.precision:11.3f}", f"{v.recall:11.3f}", f"{v.threshold:11.2f}"]
            lines.append(f"{name:<{width}}  " + "  ".join(cells))
    return "\n".join(lines) + "\n"


def _plot(results: dict[str, dict], kind: str, which: str, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if which == "success":
        x = metrics.SUCCESS_THRESHOLDS if kind == "otb" else metrics.GOT10K_THRESHOLDS
        curve, key, xlabel, ylabel = "success_curve", ("success_auc" if kind == "otb" else "ao"), "Overlap threshold", "Success rate"
    else:
        x, curve, key = metrics.PRECISION_THRESHOLDS, "precision_curve", "precision_20px"
        xlabel, ylabel = "Location error threshold (px)", "Precision"
    order = sorted(results, key=lambda n: -np.nan_to_num(results[n]["overall"].as_dict(False)[key], nan=-1))
    styles = ["-", "--", "-.", ":"]
    colour = {n: i for i, n in enumerate(sorted(results))}  # a tracker keeps its colour in every plot
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for name in order:
        d = results[name]["overall"].as_dict(True)
        c = colour[name]
        ax.plot(x, d[curve], styles[(c // 10) % len(styles)], color=f"C{c % 10}", linewidth=2,
                label=f"{name} [{d[key]:.3f}]")
    ax.set(xlabel=xlabel, ylabel=ylabel, xlim=(x[0], x[-1]), ylim=(0, 1), title=title)
    ax.grid(True, alpha=0.5)
    ax.legend(loc="lower left" if which == "success" else "lower right", fontsize=8)
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.png")
    try:
        fig.savefig(tmp, dpi=150, format="png")
        os.replace(tmp, path)
    except OSError as e:  # a full disk: no partial plot, the error names the plot
        raise OSError(e.errno, e.strerror or str(e), str(path)) from None
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)


def write_reports(results: dict[str, dict], kind: str, report_dir: str | Path, title: str = "") -> list[Path]:
    """Write table, JSON, per-sequence CSV and plots into ``report_dir``; returns the paths written."""
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    written = []
    table = report_dir / "table.txt"
    write_atomic(table, format_table(results, kind, title))
    summary = {name: {"overall": r["overall"].as_dict(True),
                      "sequences": {s: v.as_dict(False) for s, v in r["sequences"].items()},
                      **({"long_term": r["long_term"].as_dict(True) if r["long_term"] is not None else None}
                         if "long_term" in r else {})}
               for name, r in results.items()}
    js = report_dir / "summary.json"
    write_atomic(js, json.dumps({"benchmark": kind, "title": title, "trackers": summary}, indent=1) + "\n")
    cols = [k for _, k in _columns(kind)] + ["frames"]
    # Long-term F-score per sequence at the threshold that is best for the tracker over all sequences.
    lt_col = any(r.get("long_term_sequences") for r in results.values())
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["tracker", "sequence"] + cols + (["lt_f_score"] if lt_col else []))
    for name in _ranked(results, kind):
        lt = results[name].get("long_term_sequences")
        for seq, v in results[name]["sequences"].items():
            d = v.as_dict(False)
            row = [name, seq] + [f"{d[c]:.6f}" if isinstance(d[c], float) else d[c] for c in cols]
            if lt_col:
                row.append(f"{lt[seq].f_curve[results[name]['long_term'].best]:.6f}" if lt else "")
            w.writerow(row)
    per_csv = report_dir / "per_sequence.csv"
    write_atomic(per_csv, buf.getvalue())
    written += [table, js, per_csv]
    name = "OPE" if kind == "otb" else "GOT-10k"
    succ = report_dir / "success_plot.png"
    _plot(results, kind, "success", succ, f"Success plots of {name}" + (f" - {title}" if title else ""))
    written.append(succ)
    if kind == "otb":
        prec = report_dir / "precision_plot.png"
        _plot(results, kind, "precision", prec, f"Precision plots of {name}" + (f" - {title}" if title else ""))
        written.append(prec)
    return written


def pack_got10k_test(sequences: list[Sequence], layout: Layout, tracker: str, zip_path: str | Path) -> Path:
    """Zip one tracker's GOT-10k results as the evaluation server expects:
    ``<seq>/<seq>_001.txt`` (… ``_003``) and ``<seq>/<seq>_time.txt`` at the archive root."""
    zip_path = Path(zip_path)
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = zip_path.with_name(f".{zip_path.name}.{os.getpid()}.tmp")
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            for s in sequences:
                folder = layout.record_file(tracker, s.name, 1).parent
                files = sorted(folder.glob(f"{s.name}_[0-9][0-9][0-9].txt"))
                if not files:
                    raise AnnotationError(f"{folder}: results missing for sequence {s.name}; the server needs all of them")
                for f in files:
                    load_boxes(f, s)  # complete and well formed
                    z.write(f, f"{s.name}/{f.name}")
                t = layout.time_file(tracker, s.name)
                if t.is_file():
                    z.write(t, f"{s.name}/{t.name}")
        os.replace(tmp, zip_path)
    except OSError as e:
        raise OSError(e.errno, e.strerror or str(e), str(zip_path)) from None
    finally:
        tmp.unlink(missing_ok=True)
    return zip_path
