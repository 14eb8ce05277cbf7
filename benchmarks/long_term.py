"""Long-term behaviour of tracking settings on sets where the target goes away: is it flagged lost while gone, found
again after, and what does that cost on plain video? (issue 30)

    siamtrack eval stress --root ../shared/data/dev --out runs/stress_dev --seed 0
    python benchmarks/long_term.py --root runs/stress_dev --out runs/lt \\
        --config short='{"long_term": false}' --config default='{}'

Each ``--root`` is an OTB-layout set (a stress set from ``siamtrack eval stress``, or plain dev) or a GOT-10k root
(``train/list.txt``; ``--absent-only`` keeps its sequences with real absences). Each ``--config LABEL=JSON`` is a
set of tracking-parameter overrides of ``--weights``' shipped ones. Every (config, sequence) is tracked one pass
through the public API (``SiamFCTracker.update``) and its per-frame boxes, scores, ``lost`` flags and states are
kept in ``--out`` (an interrupted run resumes; a config changed under the same label is refused). Prints per root
and config, over the frames after the first:

* ``absent lost``: the share of frames where the target is absent (NaN ground truth) flagged ``lost``;
* ``held lost``: the share of frames where the box holds the target (IoU > 0.5) flagged ``lost``;
* ``back 15``: of the absence spans after which the target comes back, those where the box held it (IoU > 0.5) on
  the last frame before, the share where the box is on it again (IoU > 0.3) within 15 frames of its return;
* ``F``: the long-term F-score (VOT-LT's precision and recall over the confidence the evaluation records:
  ``tracker.eval.trackers.SiamFCEvalTracker``);
* ``AUC``: the OTB success AUC over the frames where the target is present.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tracker.core.ops import iou  # noqa: E402
from tracker.core.storage import write_atomic  # noqa: E402
from tracker.eval import datasets, metrics  # noqa: E402
from tracker.eval.stress import source_sequences  # noqa: E402

BACK_WITHIN = 15


def _job(args: tuple) -> tuple[str, str, str]:
    weights, config, root, name, path = args
    import torch

    torch.set_num_threads(1)
    from tracker import SiamFCTracker
    from tracker.io.video import read_image

    seq = source_sequences(root, [name])[0]
    config = dict(config)
    follow = config.pop("_follow", False)  # an experiment: a lost frame's box where the local search put it
    t = SiamFCTracker.from_pretrained(weights, device="cpu", config=config)
    if follow:
        after = t._after

        def _after(frame, img, peak):
            moved = (t.center.copy(), t.target_sz.copy(), t.x_sz)
            r = after(frame, img, peak)
            if r.lost:
                t.center, t.target_sz, t.x_sz = moved
                r = dataclasses.replace(r, box=t.box)
            return r
        t._after = _after
    n = len(seq)
    rec = {"box": np.zeros((n, 4)), "score": np.ones(n), "lost": np.zeros(n, bool), "state": np.zeros(n, "U10"),
           "conf": np.ones(n)}
    start = time.perf_counter()
    for f, img in enumerate(seq.img_files):
        frame = read_image(img)
        if f == 0:
            t.init(frame, seq.init_box)
            rec["box"][0], rec["state"][0] = seq.init_box, "tracking"
            continue
        r = t.update(frame)
        rec["box"][f], rec["score"][f], rec["lost"][f], rec["state"][f] = r.box, r.score, r.lost, r.state
        rec["conf"][f] = 0.0 if r.lost and t.config.long_term else r.score  # as the evaluation records it
    rec["seconds"] = np.array(time.perf_counter() - start)
    rec["long_term"] = np.array(t.config.long_term)
    tmp = Path(str(path) + ".part.npz")
    np.savez(tmp, **rec)
    os.replace(tmp, path)
    return root, name, str(path)


def spans(gt: np.ndarray) -> list[tuple[int, int]]:
    """Runs ``[a, b)`` of frames where the target is absent (NaN ground truth), after the first frame."""
    absent = ~datasets.is_valid_box(gt)
    out, k = [], 1
    while k < len(gt):
        if absent[k]:
            a = k
            while k < len(gt) and absent[k]:
                k += 1
            out.append((a, k))
        k += 1
    return out


def summarise(seqs: list, recs: list[dict]) -> dict:
    held_flag, held_n, abs_flag, abs_n, back, back_n = 0, 0, 0, 0, 0, 0
    lt, otb = [], []
    for seq, r in zip(seqs, recs):
        gt = seq.gt
        present = datasets.is_valid_box(gt)
        ious = np.zeros(len(gt))
        ious[present] = iou(r["box"][present], gt[present])
        frames = np.arange(len(gt)) >= 1
        held = frames & present & (ious > 0.5)
        absent = frames & ~present
        held_flag += int(r["lost"][held].sum())
        held_n += int(held.sum())
        abs_flag += int(r["lost"][absent].sum())
        abs_n += int(absent.sum())
        for a, b in spans(gt):
            if b >= len(gt) or a < 1 or not present[a - 1] or ious[a - 1] <= 0.5:
                continue
            back_n += 1
            back += int((ious[b:b + BACK_WITHIN] > 0.3).any())
        long_term = bool(r["long_term"]) if "long_term" in r else (r["state"] != "tracking").any()
        conf = np.where(r["lost"] & long_term, 0.0, r["score"])  # as tracker.eval.trackers records it
        conf[0] = 1.0
        lt.append(metrics.long_term_sequence(r["box"], gt, conf))
        keep = present
        otb.append(metrics.otb_sequence(r["box"][keep], gt[keep]))
    has_absent = abs_n > 0
    return {"held_lost": held_flag / max(held_n, 1), "absent_lost": abs_flag / abs_n if has_absent else float("nan"),
            "back": back / back_n if back_n else float("nan"), "back_n": back_n,
            "f": metrics.long_term_overall(lt).f_score if has_absent else float("nan"),
            "auc": metrics.otb_overall(otb).success, "seconds": float(sum(float(r["seconds"]) for r in recs)),
            "frames": int(sum(len(s) for s in seqs))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", nargs="+", required=True, help="OTB-layout sets or GOT-10k roots")
    p.add_argument("--absent-only", action="store_true", help="only sequences with an absent frame")
    p.add_argument("--weights", default="nanotrack-v2")
    p.add_argument("--config", action="append", default=[], metavar="LABEL=JSON", help="overrides, one set per flag")
    p.add_argument("--out", default="runs/long_term", help="per-sequence records (resumable)")
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    configs = {}
    for item in args.config or ["shipped={}"]:
        label, _, text = item.partition("=")
        configs[label] = json.loads(text or "{}")
    out = Path(args.out)
    jobs, plan = [], {}
    for label, cfg in configs.items():
        folder = out / args.weights / label
        folder.mkdir(parents=True, exist_ok=True)
        saved = folder / "config.json"
        if saved.exists() and json.loads(saved.read_text()) != cfg:
            raise SystemExit(f"{saved}: label {label!r} was run with {saved.read_text().strip()}; use another label")
        write_atomic(saved, json.dumps(cfg) + "\n")
        for root in args.root:
            seqs = source_sequences(root)
            if args.absent_only:
                seqs = [s for s in seqs if (~datasets.is_valid_box(s.gt[1:])).any()]
            tag = Path(root).resolve().name
            for s in seqs:
                path = folder / f"{tag}__{s.name}.npz"
                plan.setdefault((label, root), []).append((s, path))
                if not path.exists():
                    jobs.append((args.weights, cfg, root, s.name, path))
    print(f"{len(jobs)} runs to do ({args.workers} workers, load {os.getloadavg()[0]:.1f})", flush=True)
    if jobs:
        with ProcessPoolExecutor(args.workers) as pool:
            for k, _ in enumerate(pool.map(_job, jobs), 1):
                if k % 20 == 0:
                    print(f"  {k}/{len(jobs)}", flush=True)
    print(f"\n{args.weights}; {', '.join(f'{k}={json.dumps(v)}' for k, v in configs.items())}")
    print(f"{'root':>14s} {'config':>14s} {'absent lost':>11s} {'held lost':>9s} {'back 15':>12s} {'F':>6s} "
          f"{'AUC':>6s} {'fps':>6s}")
    for (label, root), items in plan.items():
        recs = [dict(np.load(path)) for _, path in items]
        s = summarise([q for q, _ in items], recs)
        print(f"{Path(root).name:>14s} {label:>14s} {s['absent_lost']:11.3f} {s['held_lost']:9.3f} "
              f"{s['back']:6.3f} ({s['back_n']:3d}) {s['f']:6.3f} {s['auc']:6.3f} {s['frames'] / s['seconds']:6.1f}")


if __name__ == "__main__":
    main()
