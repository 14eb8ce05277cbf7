"""Does the response prefer the target's true size? (the scale search can only follow what it prefers)

    python benchmarks/scale_preference.py --weights siamfc-effnet --half A
    python benchmarks/scale_preference.py --weights runs/SS/snapshots/effnet-lite0_0001000.pt \
        --settings-from siamfc-effnet --half A

For each sequence of ``--root`` (optionally one half of eval/dev_halves.json): the tracker is started on
frame 1 (the exemplar), then on about 40 frames spread over the sequence the search region is cut at the
ground truth's centre at 17 sizes, exp(-0.4 .. 0.4) times the true one, and the response peak of each is
taken. Prints the mean peak at each size relative to the true size's (in logits: how much a wrong size
costs) and the share of frames whose best size is within 5% of the truth (log 0.05). The side scales of
the tracker's pyramid are 3.75% apart and pay ``scale_penalty`` on their peak's magnitude.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tracker import ops  # noqa: E402
from tracker.eval import datasets  # noqa: E402
from tracker.siamfc import SiamFCTracker, torch  # noqa: E402
from tracker.video import read_image  # noqa: E402
from tracker.weights import resolve  # noqa: E402

GRID = np.linspace(-0.4, 0.4, 17)  # log size factors around the true size


def peaks_by_size(tracker: SiamFCTracker, seq: datasets.Sequence, samples: int = 40) -> np.ndarray:
    """(F, len(GRID)) response peaks on ``samples`` frames of ``seq`` at the ground truth's centre and sizes."""
    cfg = tracker.config
    tracker.init(read_image(seq.img_files[0]), seq.init_box)
    rows = []
    for t in range(max(1, len(seq) // samples), len(seq), max(1, len(seq) // samples)):
        box = seq.gt[t]
        if not datasets.is_valid_box(box)[0] or min(box[2:]) < 4:
            continue
        frame = read_image(seq.img_files[t])
        tracker.center = ops.xywh_to_cxcywh(box)[:2]
        x_sz = ops.context_size(box[2], box[3], cfg.context) * cfg.instance_sz / cfg.exemplar_sz
        with torch.no_grad():
            xf = tracker.net.embed(tracker._crops(frame, None, list(x_sz * np.exp(GRID)), cfg.instance_sz))
            rows.append(np.asarray(tracker.net.respond(xf, tracker.zf)[0]).reshape(len(GRID), -1).max(1))
    return np.array(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", default="siamfc-effnet", help="weights name or .pt (its .json's settings apply)")
    p.add_argument("--root", default=str(REPO.parent / "shared" / "data" / "dev"), help="OTB-layout sequences")
    p.add_argument("--settings-from", metavar="WEIGHTS", help="tracking parameters (crop sizes, context) from these "
                   "weights' .json instead of --weights' own, e.g. siamfc-effnet for a training snapshot")
    p.add_argument("--half", choices=["A", "B"], help="only this half of eval/dev_halves.json")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    names = json.loads((REPO / "eval" / "dev_halves.json").read_text())[args.half] if args.half else None
    config = resolve(args.settings_from).config if args.settings_from else None
    tracker = SiamFCTracker.from_pretrained(args.weights, device="cpu", config=config, backend="torch")
    peaks = np.concatenate([peaks_by_size(tracker, s) for s in datasets.load_otb(args.root, names)])
    centre = len(GRID) // 2
    curve = (peaks - peaks[:, centre:centre + 1]).mean(0)
    best = GRID[peaks.argmax(1)]
    print(f"{args.weights}: {len(peaks)} frames; mean peak relative to the true size's, by log size factor:")
    print("  " + "  ".join(f"{g:+.2f}:{v:+.3f}" for g, v in zip(GRID, curve)))
    print(f"best size within 5% of the truth on {np.mean(np.abs(best) <= 0.05 + 1e-9):.1%} of frames; "
          f"mean best log size factor {best.mean():+.3f}")


if __name__ == "__main__":
    main()
