"""``siamtrack bench``: end-to-end speed of each model on real frames, with OpenCV's
TrackerNano timed in the same run as the reference, and the network's share of it.

End to end means what :meth:`SiamFCTracker.update` does per frame (validation, crops,
network, post-processing, box update) on frames already decoded, as a tracker receives
them from a camera or a decoder; JPEG decoding is excluded for every tracker alike.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch

from ..core.config import parse_model_spec  # noqa: F401 (re-exported)
from ..core.siamfc import BACKENDS
from ..networks.weights import expand_preset
from .timing import (  # noqa: F401
    each_tracker,
    hardware,
    load_average,
    load_clips,
    set_threads,
    update_latencies,
)

__all__ = ["hardware", "load_average", "conv_gmacs", "update_gmacs", "stage_ms", "time_tracker", "parse_model_spec", "run_bench",
           "register"]


def conv_gmacs(convs: Iterable[torch.nn.Module], run: Callable[[], object]) -> float:
    """Multiply-adds (G) of the ``Conv2d`` layers among ``convs`` while ``run()`` runs."""
    macs = 0

    def hook(m, inp, out):
        nonlocal macs
        macs += out.numel() * m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)

    hs = [m.register_forward_hook(hook) for m in convs if isinstance(m, torch.nn.Conv2d)]
    try:
        run()
    finally:
        for h in hs:
            h.remove()
    return macs / 1e9


def update_gmacs(tracker, frame: np.ndarray, box) -> float:
    """Multiply-adds (G) of the network's convolution layers in one ``update`` as the tracker is
    configured (its scales, search size and mode), after ``init(frame, box)``, averaged over
    ``scale_every`` updates; the correlations themselves are left out (a few M)."""
    tracker.init(frame, box)
    updates = lambda: [tracker.update(frame) for _ in range(tracker.scale_every)]  # noqa: E731
    return conv_gmacs(tracker.net.modules(), updates) / tracker.scale_every


def _timed(fn, repeats: int, cuda: bool) -> float:
    for _ in range(5):
        fn()
    if cuda:
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(repeats):
        fn()
    if cuda:
        torch.cuda.synchronize()
    return (time.perf_counter() - t) / repeats * 1e3


def stage_ms(tracker, frame: np.ndarray, box, repeats: int = 50) -> tuple[float, float]:
    """Mean ms of the crops (cut, resize, to tensor) and of the network alone on one frame's
    search crops, as the tracker's mode makes them (:meth:`SiamFCTracker.search_sizes`,
    :meth:`SiamFCTracker.network`), after ``init(frame, box)``; with ``scale_every`` > 1, the mean
    over that many frames (one with every scale, the others with one)."""
    cfg = tracker.config
    cuda = tracker.device.type == "cuda"
    tracker.init(frame, box)
    crop = net = 0.0
    for _ in range(tracker.scale_every):
        tracker._begin_frame()
        sizes = tracker.search_sizes()
        with torch.inference_mode():
            img = tracker._to_device(frame) if tracker.pipeline == "torch" else None
            crop += _timed(lambda: tracker._crops(frame, img, sizes, cfg.instance_sz), repeats, cuda)
            x = tracker._crops(frame, img, sizes, cfg.instance_sz)
            net += _timed(lambda: tracker.network(x), repeats, cuda)
    return crop / tracker.scale_every, net / tracker.scale_every


def time_tracker(make, clips, warmup: int = 10) -> tuple[float, float]:
    """Median and mean per-frame update latency in ms over all clips (first ``warmup`` updates of each clip excluded)."""
    a = np.array(latencies(make, clips, warmup)) * 1e3
    return float(np.median(a)), float(a.mean())


def latencies(make, clips, warmup: int = 10) -> list[float]:
    """Per-frame update latencies (s) of a fresh tracker from ``make()`` on each clip (first ``warmup`` excluded)."""
    lat = []
    for frames, box in clips:
        t = make()
        t.init(frames[0], box)
        lat += update_latencies(t, frames[1:], warmup)
    return lat


def _torch_twin(model: str, overrides: dict):
    """The PyTorch network a model's ONNX Runtime row is counted on (multiply-adds, parameters): its own
    weights, or for an export folder the weights it was made from where its model.json names them
    and they are still those (``source_sha256``), with the export's tracking parameters; None where there
    are none."""
    from ..backends.onnx_net import META_NAME, is_export
    from ..core.config import without_removed
    from ..core.siamfc import SiamFCTracker
    from ..networks.weights import WeightsError, resolve

    if is_export(model):
        meta = json.loads((Path(model) / META_NAME).read_text())
        model = meta.get("name")
        try:
            if model is None or resolve(model).sha256 != meta.get("source_sha256"):
                return None
        except WeightsError:
            return None
        overrides = {**without_removed(meta["config"], str(model)), **overrides}
    try:
        return SiamFCTracker.from_pretrained(model, device="cpu", config=overrides or None, backend="torch")
    except (WeightsError, ValueError):
        return None


def run_bench(root: Path, peers: Path | None, models: list[str], sequences: list[str], max_frames: int,
              device: str, backends: tuple[str, ...] = ("torch",), threads: tuple[int | None, ...] = (None,),
              rounds: int = 1) -> list[dict]:
    """Time TrackerNano (when ``peers`` is given) and each model on each back-end, once per thread count
    (torch, OpenCV and ONNX Runtime alike), in one run; print and return the rows. A model whose weights
    are not installed is timed with untrained weights of its architecture. With ``rounds`` > 1 the rows of a
    thread count are timed in turn that many times and their latencies pooled, so a change in the machine's
    load during the run weighs on every row alike."""
    from ..backends.onnx_net import is_export
    from ..core.siamfc import SiamFCTracker
    from ..eval.trackers import OpenCVTracker
    from ..networks.models import build_model, known_architectures
    from ..networks.weights import WeightsError, available

    clips = load_clips(root, sequences, max_frames)
    n = sum(len(f) - 1 for f, _ in clips)
    print(hardware())
    print(f"{len(clips)} sequences from {root}, {n} updates per tracker, frames pre-decoded")
    rows = []

    def add(name, make, nthreads, torch_net=None):
        lat = latencies(make, clips)
        t = make()
        ours = isinstance(t, SiamFCTracker)
        crop, net = stage_ms(t, clips[0][0][0], clips[0][1]) if ours else (None, None)
        # Multiply-adds and parameters are the network's, whichever back-end runs it.
        ref = torch_net or t
        counted = ours and isinstance(ref.net, torch.nn.Module)  # an export without its weights: not counted
        gmacs = update_gmacs(ref, clips[0][0][0], clips[0][1]) if counted else None
        params = sum(p.numel() for p in ref.net.parameters()) if counted else None
        rows.append({"tracker": name, "threads": nthreads, "lat": lat, "make": make,
                     "crop_ms": crop, "network_ms": net, "gmac": gmacs, "params": params})

    if peers is not None:
        OpenCVTracker("nano", peers)  # fails here, with the missing file named, if the models are absent
    for nthreads in threads:
        set_threads(nthreads)
        shown = nthreads or torch.get_num_threads()  # ONNX Runtime runs at this count too (its default: one per core)
        start = len(rows)
        if peers is not None:
            add("cv2.TrackerNano", lambda: OpenCVTracker("nano", peers), shown)
        for spec in models:
            m, overrides = parse_model_spec(spec)
            overrides = expand_preset(m, overrides)
            for backend in backends:
                make = lambda m=m, o=overrides, b=backend: SiamFCTracker.from_pretrained(  # noqa: E731
                    m, device="cpu" if b == "onnxruntime" else device, config=o, backend=b, threads=shown)
                if backend == "torch" and is_export(m):
                    continue  # an export runs on ONNX Runtime: its onnxruntime row is the one
                try:
                    t = make()
                except WeightsError:
                    # Speed does not depend on the weights' values: time the architecture itself, saying so.
                    arch = m.replace("siamfc-", "")
                    if arch not in known_architectures():
                        raise ValueError(f"--models {spec}: no weights of that name (installed: "
                                         f"{', '.join(available())}) and no architecture {arch!r} (untrained, for "
                                         f"speed alone: {', '.join(known_architectures())})") from None
                    if backend != "torch":
                        continue
                    print(f"{spec}: no weights of that name; timing the untrained {arch!r} architecture (speed does "
                          "not depend on the weights' values)")
                    add(f"{arch} arch, untrained ({device})", lambda a=arch: SiamFCTracker(build_model(a), device=device),
                        shown)
                    continue
                mode = "box head" if t.uses_box_head else "image pyramid"
                if t.scale_every > 1:
                    mode += f" every {t.scale_every} frames"
                desc = f"{t.config.scale_num} scale{'s' if t.config.scale_num > 1 else ''}, {mode}, {t.config.instance_sz} px"
                where = f"{t.device}" if backend == "torch" else "onnxruntime, cpu"
                torch_net = None if backend == "torch" else _torch_twin(m, overrides)
                add(f"{spec} ({desc}, {where})", lambda t=t: t, shown, torch_net)
        for _ in range(rounds - 1):  # the same rows again, in turn
            for r in rows[start:]:
                r["lat"] += latencies(r["make"], clips)
        for r in rows[start:]:
            a = np.array(r.pop("lat")) * 1e3
            del r["make"]
            r.update(median_ms=float(np.median(a)), mean_ms=float(a.mean()), fps=1000.0 / float(a.mean()))
        ref = rows[start]["mean_ms"] if peers is not None else None
        for r in rows[start:]:
            r["vs_nano"] = ref / r["mean_ms"] if ref else None
    width = max(44, *(len(r["tracker"]) for r in rows))
    print(f"{'tracker':{width}s} {'threads':>7s} {'median ms':>10s} {'mean ms':>9s} {'fps':>8s} {'vs Nano':>8s} "
          f"{'crops ms':>9s} {'network ms':>11s} {'GMAC':>6s} {'params':>10s}")
    fmt = lambda v, f: "-" if v is None else format(v, f)  # noqa: E731
    for r in rows:
        ratio = f"{r['vs_nano']:.2f}x" if r["vs_nano"] else "-"
        print(f"{r['tracker']:{width}s} {r['threads']:7d} {r['median_ms']:10.2f} {r['mean_ms']:9.2f} {r['fps']:8.1f} "
              f"{ratio:>8s} {fmt(r['crop_ms'], '.2f'):>9s} {fmt(r['network_ms'], '.2f'):>11s} "
              f"{fmt(r['gmac'], '.2f'):>6s} {fmt(r['params'], ','):>10s}")
    print("vs Nano: TrackerNano's mean ms / the row's, same thread count, same run"
          + (f"; {rounds} rounds, the rows timed in turn in each" if rounds > 1 else ""))
    print(f"after the run: {load_average()}")
    return rows


LOST_SIZES = ((640, 480), (1280, 720))  # frame sizes the whole-frame search is timed at
LOST_TARGETS = ((64, 48), (32, 24))  # target sizes (px): the search's tiles follow the target's scale


def run_lost_bench(models: list[str], device: str, backends: tuple[str, ...], threads: tuple[int | None, ...],
                   repeats: int = 10) -> list[dict]:
    """Time a lost frame in long-term mode, the exemplar searched over the whole frame (tracker.core.redetect),
    at each of :data:`LOST_SIZES` for targets of :data:`LOST_TARGETS`, against a local-tracking frame of
    the same tracker; print and return the rows. Frames: a random texture (timing only)."""
    from ..core.redetect import tile_centers
    from ..eval.synthetic import texture

    print(hardware())
    rows = []
    for shown, label, t in each_tracker(models, backends, threads, device, {"long_term": True}):
        cuda = t.device.type == "cuda" if t.backend == "torch" else False

        def search(r):
            """The whole-frame search after the lost local step ``r``, as update() runs it."""
            with t._inference():
                return t._search_frame(frame, t._to_device(frame) if t.pipeline == "torch" else None, r)

        for (w, h) in LOST_SIZES:
            frame = texture(h, w, np.random.default_rng(0), blobs=200)
            for tw, th in LOST_TARGETS:
                box = ((w - tw) / 2, (h - th) / 2, tw, th)
                t.init(frame, box)
                local = _timed(lambda: t.update(frame), repeats, cuda)
                t.init(frame, box)
                r = t.update(frame)
                # A lost frame in the searching state: its local step, then the whole-frame search (all
                # tiles), and with search_tiles=4 (four tiles a frame, in turn; only the search reads it).
                lost = local + _timed(lambda: search(r), repeats, cuda)
                t.config = t.config.replace(search_tiles=4)
                lost4 = local + _timed(lambda: search(r), repeats, cuda)
                t.config = t.config.replace(search_tiles=0)
                tiles = len(tile_centers((w, h), t.x_sz, t.config.instance_sz, t.upscale_sz // t.config.response_up))
                rows.append({"tracker": label, "threads": shown, "frame": f"{w}x{h}", "target": f"{tw}x{th}",
                             "tiles": tiles, "local_ms": local, "lost_ms": lost, "lost4_ms": lost4})
    width = max(30, *(len(r["tracker"]) for r in rows))
    print(f"{'tracker':{width}s} {'threads':>7s} {'frame':>9s} {'target':>7s} {'tiles':>5s} {'local ms':>9s} "
          f"{'lost ms':>8s} {'lost/local':>10s} {'lost ms, 4 tiles':>16s}")
    for r in rows:
        print(f"{r['tracker']:{width}s} {r['threads']:7d} {r['frame']:>9s} {r['target']:>7s} {r['tiles']:5d} "
              f"{r['local_ms']:9.2f} {r['lost_ms']:8.2f} {r['lost_ms'] / r['local_ms']:9.1f}x {r['lost4_ms']:16.2f}")
    print("local: a frame tracked as usual; lost: a lost frame in long_term's searching state (its local step and "
          "the whole-frame search; with search_tiles=4 four tiles of it a frame), mean of "
          f"{repeats} after 5 warm-ups; {load_average()}")
    return rows


def _main(args: argparse.Namespace) -> int:
    root = Path(args.root)
    if not root.is_dir():
        print(f"siamtrack bench: --root {root}: not a directory of OTB-layout sequences", file=sys.stderr)
        return 2
    peers = None if args.no_peer else Path(args.peers)
    backends = tuple(args.backends or (["torch", "onnxruntime"] if importlib.util.find_spec("onnxruntime") else ["torch"]))
    if args.targets and min(args.targets) < 1:
        print(f"siamtrack bench: --targets must be counts >= 1, got {args.targets}", file=sys.stderr)
        return 2
    try:
        if args.lost_frames:
            run_lost_bench(args.models, args.device, backends, tuple(args.threads or [None]))
        elif args.targets:
            from .bench_multi import run_multi_bench

            run_multi_bench(root, peers, args.models, args.sequences, args.max_frames, args.device, backends,
                            tuple(args.threads or [None]), tuple(args.targets))
        else:
            if args.rounds < 1:
                raise ValueError(f"--rounds must be >= 1, got {args.rounds}")
            run_bench(root, peers, args.models, args.sequences, args.max_frames, args.device, backends,
                      tuple(args.threads or [None]), args.rounds)
    except ValueError as e:  # a bad --models spec or tracking parameter, a missing peer model
        print(f"siamtrack bench: {e}", file=sys.stderr)
        return 2
    return 0


def register(sub) -> None:
    p = sub.add_parser("bench", help="time each model end to end on real frames, with TrackerNano as reference")
    p.add_argument("--root", default=os.environ.get("SIAMTRACK_DEV", "../shared/data/dev"),
                   help="OTB-layout sequences (default: $SIAMTRACK_DEV, else ../shared/data/dev relative to the current folder)")
    p.add_argument("--peers", default=os.environ.get("SIAMTRACK_PEERS", "../shared/peers"),
                   help="folder with nanotrack_v2/ ONNX models (default: $SIAMTRACK_PEERS, else ../shared/peers relative "
                        "to the current folder)")
    p.add_argument("--no-peer", action="store_true", help="skip the TrackerNano reference")
    p.add_argument("--models", nargs="+", default=["nanotrack-v2", "siamfc-effnet"],
                   help="weights names or paths, each optionally NAME:key=value,... with tracking-parameter overrides "
                        "(e.g. siamfc-effnet:instance_sz=257); a name not installed is timed as its untrained architecture")
    p.add_argument("--sequences", nargs="+", default=["Car4", "David", "Woman"])
    p.add_argument("--max-frames", type=int, default=200)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, nargs="+", default=None, metavar="N",
                   help="CPU threads for torch, OpenCV and ONNX Runtime; several (e.g. 1 2) time every row at each "
                        "(default: theirs)")
    p.add_argument("--backends", nargs="+", choices=BACKENDS, metavar="BACKEND",
                   help=f"network back-ends to time each model on: {', '.join(BACKENDS)} (default: both where "
                        "onnxruntime is installed, pip install 'siamtrack[onnx]'; else torch)")
    p.add_argument("--targets", type=int, nargs="+", metavar="N",
                   help="time N targets per frame instead (e.g. 1 4 16): batched (MultiTracker), one after another, "
                        "and TrackerNano x N, per model and back-end (tracker.apps.bench_multi)")
    p.add_argument("--rounds", type=int, default=3, metavar="N",
                   help="time the rows in turn N times and pool them, so a change of load weighs on all alike "
                        "(default 3)")
    p.add_argument("--lost-frames", action="store_true",
                   help="time a lost frame in long-term mode (the whole-frame search) at 640x480 and 1280x720 "
                        "instead, against a frame tracked as usual")
    p.set_defaults(func=_main)
