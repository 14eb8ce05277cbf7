"""Choose the checkpoint and the tracking hyper-parameters on a validation benchmark.

``python -m tracker.training.select --candidates runs/lite/snapshots/*.pt runs/lite/lite.pt
--root ../shared/data/dev --out weights/siamfc-lite.pt``

1. Scores every candidate weights file with the paper's 3-scale defaults, or ``--start``
   (OTB success AUC).
2. On the best one, compares the 3- and 5-scale presets, then tunes window influence, scale
   penalty, scale step, scale learning rate and the exemplar update rate by coordinate
   search (a few values each). Weights with a box head search one scale (the box head
   sizes the box) and tune window influence, the size learning rate, the size-change penalty
   and the exemplar update, on a coarse grid around the literature's values.
3. Calibrates ``lost_threshold``: the score that best separates frames where the box has
   lost the target (IoU = 0) from frames where it holds it (IoU > 0.5), balanced accuracy, or
   (``--max-false-lost``) the highest that flags at most a given share of the held frames.
4. Writes the chosen weights with those settings (``.pt`` + ``.json`` with the sha256), and
   every score it measured to ``<out>.selection.json``.

Frames are decoded once and kept in memory; only the tracker's public API is used.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from ..core.config import PRESETS, TrackerConfig
from ..core.siamfc import SiamFCTracker
from ..eval import datasets, metrics
from ..io.video import read_image
from ..networks.weights import load_model, save_weights

__all__ = ["evaluate", "evaluate_tracker", "lost_rates", "calibrate_lost_threshold", "main"]

GRID = {
    "window_influence": [0.12, 0.176, 0.25, 0.33, 0.42],
    "scale_penalty": [0.94, 0.9745, 0.99],
    "scale_step": [1.025, 1.0375, 1.06],
    "scale_lr": [0.35, 0.59, 0.8],
    "template_lr": [0.0, 0.01, 0.03, 0.08],
}
COARSE_GRID = {  # --grid coarse: two values each, the paper's first
    "window_influence": [0.176, 0.3],
    "scale_penalty": [0.9745, 0.99],
    "scale_step": [1.0375, 1.025],
    "scale_lr": [0.59, 0.35],
    "template_lr": [0.0, 0.01],
}
BOX_GRID = {  # coarse on purpose: few parameters, few values, little room to fit the selection data
    "window_influence": [0.21, 0.3, 0.42],  # 0.21: SiamFC++'s value
    "scale_lr": [0.3, 0.52, 0.7],  # 0.52: SiamFC++'s
    "penalty_k": [0.04, 0.1, 0.16],  # 0.04: SiamFC++'s; 0.16: SiamRPN++'s
    "template_lr": [0.0, 0.01],
}


def _decode(seqs) -> list[list[np.ndarray]]:
    return [[read_image(f) for f in s.img_files] for s in seqs]


def evaluate(net, cfg: TrackerConfig, seqs, frames) -> tuple[float, list[np.ndarray], list[np.ndarray]]:
    """Success AUC over ``seqs`` and, per sequence, the IoU and score of every frame after the first."""
    return evaluate_tracker(SiamFCTracker(net, cfg, device="cpu"), seqs, frames)


def evaluate_tracker(tracker: SiamFCTracker, seqs, frames) -> tuple[float, list[np.ndarray], list[np.ndarray]]:
    """As :func:`evaluate`, for a tracker already built (e.g. by ``from_pretrained``)."""
    per_seq, ious, scores = [], [], []
    for s, fr in zip(seqs, frames):
        tracker.init(fr[0], s.init_box)
        res = [tracker.update(f) for f in fr[1:]]
        boxes = np.array([s.init_box] + [r.box for r in res])
        per_seq.append(metrics.otb_sequence(boxes, s.gt))
        ious.append(metrics.overlaps(boxes[1:], s.gt[1:]))
        scores.append(np.array([r.score for r in res]))
    return metrics.otb_overall(per_seq).success, ious, scores


def lost_rates(ious: list[np.ndarray], scores: list[np.ndarray], threshold: float) -> tuple[float, float]:
    """How the ``lost`` flag (score < ``threshold``) agrees with the truth: the share of frames flagged lost
    while the box holds the target (IoU > 0.5; lower is better) and the share of frames where the box has lost
    it (IoU = 0) that are flagged lost (higher is better). NaN where a kind of frame is absent."""
    iou, sc = np.concatenate(ious), np.concatenate(scores)
    held, lost = sc[iou > 0.5], sc[iou == 0]
    false_lost = float((held < threshold).mean()) if len(held) else float("nan")
    caught = float((lost < threshold).mean()) if len(lost) else float("nan")
    return false_lost, caught


def calibrate_lost_threshold(ious: list[np.ndarray], scores: list[np.ndarray],
                             max_false_lost: float | None = None) -> tuple[float, float]:
    """Threshold on the score for "lost" (IoU = 0) vs "held" (IoU > 0.5), and its balanced accuracy.

    Without ``max_false_lost``: the threshold with the best balanced accuracy. With it: the highest
    threshold that flags at most that share of the held frames lost (a user sees LOST only when it
    is very likely), which catches as many lost frames as that allows."""
    iou, sc = np.concatenate(ious), np.concatenate(scores)
    lost, held = sc[iou == 0], sc[iou > 0.5]
    if len(held) == 0:
        raise ValueError("calibrate_lost_threshold: no frame where the box holds the target (IoU > 0.5)")
    if len(lost) == 0 and max_false_lost is None:
        raise ValueError("calibrate_lost_threshold: no frame where the box has lost the target (IoU = 0) to "
                         "separate from the held ones; pass max_false_lost (--max-false-lost) to calibrate on held frames")
    best = (float("nan"), 0.0)  # threshold 0 flags nothing: where even the lowest grid step flags too many
    for t in np.linspace(0.02, 0.98, 49):
        # Balanced accuracy is undefined without lost frames; the max_false_lost rule needs the held ones only.
        acc = 0.5 * ((lost < t).mean() + (held >= t).mean()) if len(lost) else float("nan")
        if max_false_lost is not None:
            if (held < t).mean() <= max_false_lost:
                best = (float(acc), float(t))  # thresholds rise: the last one that qualifies
        elif not best[0] > acc:  # NaN-safe max; on ties the higher threshold, as before
            best = (float(acc), float(t))
    return best[1], best[0]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tracker.training.select", description=__doc__.split("\n\n")[0])
    p.add_argument("--candidates", nargs="+", required=True, help="weights files to choose from")
    p.add_argument("--root", required=True, help="OTB-layout validation sequences (e.g. ../shared/data/dev)")
    p.add_argument("--sequences", nargs="+", default=None,
                   help="choose on these sequences of --root only (e.g. one half of dev; report on the other)")
    p.add_argument("--out", required=True, help="where to write the chosen weights (.pt)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--max-false-lost", type=float, default=None, metavar="SHARE",
                   help="lost_threshold: the highest that flags at most SHARE of the frames where the box holds the "
                        "target (default: the best balanced accuracy)")
    p.add_argument("--grid", choices=["fine", "coarse"], default="fine",
                   help="scale-pyramid search grid: fine (5/3/3/3/4 values) or coarse (2 values each); box heads: one grid")
    p.add_argument("--keep-scales", action="store_true",
                   help="keep --start's scale pyramid (no comparison with the 5-scale preset), e.g. where speed fixes it")
    p.add_argument("--start", default=None, metavar="JSON",
                   help="tracking parameters to start from (a JSON object, e.g. an earlier selection's chosen config)")
    args = p.parse_args(argv)

    seqs = datasets.load_otb(args.root, args.sequences)
    frames = _decode(seqs)
    log: dict = {"root": str(args.root), "sequences": [s.name for s in seqs], "candidates": {}, "search": []}
    t0 = time.time()
    start = json.loads(args.start) if args.start else {}
    nets = {c: load_model(c)[0] for c in args.candidates}
    box = {n.has_box_head for n in nets.values()}
    if len(box) > 1:
        with_head = [c for c, n in nets.items() if n.has_box_head]
        print(f"select: candidates mix weights with a box head ({', '.join(with_head)}) and without; "
              "choose among one kind", file=sys.stderr)
        return 2
    box = box.pop() and start.get("box_head", True)  # --start '{"box_head": false}': the pyramid instead
    base = TrackerConfig.from_dict({**({"scale_num": 1} if box else {}),
                                    **{k: v for k, v in start.items() if k != "lost_threshold"}})
    best_auc, best_path, best_net = -1.0, None, None
    for c, net in nets.items():
        auc, _, _ = evaluate(net, base, seqs, frames)
        log["candidates"][c] = auc
        print(f"{c}: AUC {auc:.4f}  ({time.time() - t0:.0f}s)", flush=True)
        if auc > best_auc:
            best_auc, best_path, best_net = auc, c, net
    if not box and not args.keep_scales:
        five = TrackerConfig.preset("5scale", **{k: v for k, v in base.to_dict().items() if k not in PRESETS["5scale"]})
        auc5, _, _ = evaluate(best_net, five, seqs, frames)
        log["search"].append({"preset": "5scale", "auc": auc5})
        print(f"5-scale preset: AUC {auc5:.4f}", flush=True)
        if auc5 > best_auc:
            base, best_auc = five, auc5
    grid = BOX_GRID if box else (COARSE_GRID if args.grid == "coarse" else GRID)
    params = {k: getattr(base, k) for k in grid}
    for rnd in range(args.rounds):
        changed = False
        for key, values in grid.items():
            for v in values:
                if v == params[key]:
                    continue
                trial = {**params, key: v}
                auc, _, _ = evaluate(best_net, base.replace(**trial), seqs, frames)
                log["search"].append({**trial, "auc": auc})
                print(f"round {rnd + 1} {key}={v}: AUC {auc:.4f}", flush=True)
                if auc > best_auc + 1e-4:
                    best_auc, params, changed = auc, trial, True
        if not changed:
            break
    auc, ious, scores = evaluate(best_net, base.replace(**params), seqs, frames)
    try:
        threshold, bal_acc = calibrate_lost_threshold(ious, scores, args.max_false_lost)
    except ValueError as e:  # e.g. no lost frame on these sequences: --max-false-lost calibrates without
        p.error(str(e))
    default = TrackerConfig().to_dict()
    scored = base.replace(**params).to_dict()
    chosen = {**{k: v for k, v in scored.items() if v != default[k]}, "scale_num": base.scale_num, **params,
              "lost_threshold": round(threshold, 3)}
    false_lost, caught = lost_rates(ious, scores, threshold)
    log.update(chosen_candidate=best_path, chosen_config=chosen, auc=auc, lost_balanced_accuracy=bal_acc,
               lost_while_held=false_lost, lost_flagged_when_lost=caught)
    out = save_weights(best_net, args.out, config=chosen, selected_from=str(best_path), selected_on=str(args.root),
                       selected_on_sequences=[s.name for s in seqs], selection_success_auc=round(auc, 4))
    tmp = out.with_suffix(".selection.json.tmp")
    tmp.write_text(json.dumps(log, indent=2) + "\n")
    os.replace(tmp, out.with_suffix(".selection.json"))
    print(f"chose {best_path} with {chosen}: AUC {auc:.4f}, lost-vs-held balanced accuracy {bal_acc:.3f} "
          f"(flagged lost: {false_lost:.1%} of frames held, {caught:.1%} of frames lost); wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
