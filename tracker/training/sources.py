"""Training data sources -> :class:`Track` lists.

``--data KIND:PATH`` with KIND one of:

* ``got10k`` — a GOT-10k root (with ``train/``) or split folder (with ``list.txt``);
  ``absence.label`` / ``cover.label`` honoured when present.
* ``otb`` — a folder of OTB-layout sequences (``<Seq>/img``, ``groundtruth_rect.txt``).
* ``voc`` — a Pascal VOC folder (``JPEGImages/``, ``Annotations/*.xml``): every object
  of every image is a one-frame track (a still-image pair under augmentation).
* ``video`` — a video file or a folder of images without labels: frames are sampled
  evenly and random boxes on them serve as still-image pairs.

Sequence loaders are the evaluation harness's (:mod:`tracker.eval.datasets`), so
annotation parsing lives in one place.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np

from .pairs import Track

__all__ = ["parse_spec", "load_tracks", "KINDS"]

KINDS = ("got10k", "otb", "voc", "video")


def parse_spec(spec: str) -> tuple[str, Path]:
    """``"got10k:/data/GOT-10k"`` -> ``("got10k", Path(...))``; raises ValueError naming the argument."""
    kind, sep, path = spec.partition(":")
    if not sep or kind not in KINDS:
        raise ValueError(f"--data {spec!r}: expected KIND:PATH with KIND one of {', '.join(KINDS)}")
    p = Path(path)
    if not p.exists():
        raise ValueError(f"--data {spec!r}: {p} does not exist")
    return kind, p


def _sequence_tracks(kind: str, root: Path) -> list[Track]:
    from ..eval import datasets  # deferred: keeps `import tracker.training` light

    if kind == "got10k":
        split_dir = root / "train" if (root / "train" / "list.txt").exists() else root
        seqs = datasets.load_got10k(split_dir.parent, split_dir.name)
    else:
        seqs = datasets.load_otb(root)
    tracks = []
    for s in seqs:
        visible = None
        if getattr(s, "cover", None) is not None:
            visible = np.asarray(s.cover) > 0
        if getattr(s, "absence", None) is not None:
            vis2 = np.asarray(s.absence) == 0
            visible = vis2 if visible is None else visible & vis2
        tracks.append(Track(s.name, list(map(str, s.img_files)), s.gt, visible, _image_sizes(s.img_files)))
    return tracks


def _image_sizes(files) -> np.ndarray:
    # All frames of a sequence share one size; read the first header only.
    img = cv2.imread(str(files[0]), cv2.IMREAD_REDUCED_COLOR_2)
    if img is None:
        raise ValueError(f"{files[0]}: cannot read image")
    h, w = img.shape[0] * 2, img.shape[1] * 2
    return np.tile([w, h], (len(files), 1)).astype(np.float64)


def _voc_tracks(root: Path) -> list[Track]:
    ann_dir, img_dir = root / "Annotations", root / "JPEGImages"
    if not ann_dir.is_dir() or not img_dir.is_dir():
        raise ValueError(f"{root}: not a VOC folder (needs Annotations/ and JPEGImages/)")
    tracks = []
    for xml in sorted(ann_dir.glob("*.xml")):
        try:
            tree = ET.parse(xml).getroot()
            fname = tree.findtext("filename") or (xml.stem + ".jpg")
            size = tree.find("size")
            wh = (float(size.findtext("width")), float(size.findtext("height"))) if size is not None else None
            for i, obj in enumerate(tree.iter("object")):
                bb = obj.find("bndbox")
                x1, y1, x2, y2 = (float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
                # VOC pixel indices are 1-based and inclusive.
                box = np.array([[x1 - 1, y1 - 1, x2 - x1 + 1, y2 - y1 + 1]])
                sizes = np.array([wh]) if wh and wh[0] > 0 else None
                tracks.append(Track(f"{xml.stem}#{i}", [str(img_dir / fname)], box, None, sizes))
        except (ET.ParseError, AttributeError, TypeError, ValueError) as e:
            raise ValueError(f"{xml}: malformed VOC annotation ({e})") from None
    return tracks


def _video_tracks(path: Path, n_frames: int = 50, boxes_per_frame: int = 2, seed: int = 0) -> list[Track]:
    rng = np.random.default_rng(seed)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp"))
        picks = [files[i] for i in np.linspace(0, len(files) - 1, min(n_frames, len(files))).astype(int)] if files else []
        frames = [cv2.imread(str(p)) for p in picks]
    else:
        cap = cv2.VideoCapture(str(path))
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        frames = []
        for i in np.linspace(0, max(total - 1, 0), min(n_frames, max(total, 1))).astype(int):
            cap.set(cv2.CAP_PROP_POS_FRAMES, int(i))
            ok, f = cap.read()
            if ok:
                frames.append(f)
        cap.release()
    frames = [f for f in frames if f is not None]
    if not frames:
        raise ValueError(f"{path}: no readable frames")
    tracks = []
    for j, f in enumerate(frames):
        h, w = f.shape[:2]
        for k in range(boxes_per_frame):
            bw, bh = rng.uniform(0.1, 0.4) * w, rng.uniform(0.1, 0.4) * h
            box = np.array([[rng.uniform(0, w - bw), rng.uniform(0, h - bh), bw, bh]])
            tracks.append(Track(f"{path.name}#{j}.{k}", [f], box, None, np.array([[w, h]], float)))
    return tracks


def load_tracks(specs: list[str]) -> list[Track]:
    """All tracks of the given ``KIND:PATH`` specs, in order."""
    tracks: list[Track] = []
    for spec in specs:
        kind, path = parse_spec(spec)
        if kind in ("got10k", "otb"):
            tracks += _sequence_tracks(kind, path)
        elif kind == "voc":
            tracks += _voc_tracks(path)
        else:
            tracks += _video_tracks(path)
    return tracks
