"""``siamtrack export``: write a model as ONNX files (:mod:`tracker.backends.export`), check them with the ONNX
checker, compare ONNX Runtime with PyTorch on the bundled clip and try OpenCV's DNN module."""
from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["register"]


def _main(args) -> int:
    try:
        import onnx
    except ImportError:
        print("siamtrack export: needs onnx, onnxruntime and onnxscript: pip install 'siamtrack[onnx]'", file=sys.stderr)
        return 2

    from ..backends.export import (
        OPSET,
        ExportFolderError,
        export_model,
        max_differences,
        opencv_check,
        write_export,
    )
    from ..backends.onnx_net import META_NAME, is_export
    from ..core.siamfc import SiamFCTracker
    from ..io.video import open_source
    from ..networks.weights import WeightsError, resolve
    from .demo import DemoError, demo_clip, parse_config

    out = Path(args.out)
    if args.model and is_export(args.model):
        print(f"siamtrack export: --model {args.model} is an export already; give weights (a name or a .pt file)",
              file=sys.stderr)
        return 2
    problem = _out_problem(out)  # before the export, which takes a while
    if problem:
        print(f"siamtrack export: --out {problem}", file=sys.stderr)
        return 2
    try:
        config = parse_config(args.config) if args.config else None
        ref = SiamFCTracker.from_pretrained(args.model, device="cpu", config=config, backend="torch")
    except DemoError as e:
        print(f"siamtrack export: {e}", file=sys.stderr)
        return 2
    except (WeightsError, ValueError) as e:
        print(f"siamtrack export: {'--config' if str(e).startswith('TrackerConfig') else '--model'}: {e}", file=sys.stderr)
        return 2
    name = args.model or ref.name
    files, meta = export_model(ref.net, ref.config, Path(str(name)).stem, resolve(name).sha256)
    for fname, data in files.items():
        onnx.checker.check_model(onnx.load_from_string(data), full_check=True)
    had = is_export(out)
    try:
        path = write_export(files, meta, out)
    except ExportFolderError as e:
        print(f"siamtrack export: --out {e}", file=sys.stderr)
        return 2
    except OSError as e:
        kept = "; the earlier export in it is unchanged" if had else "; nothing was written"
        where = "" if str(e.filename) == str(out.absolute()) else f"{e.filename}: "
        print(f"siamtrack export: --out {out}: cannot write the export ({where}{e.strerror or e}){kept}",
              file=sys.stderr)
        return 2
    print(f"wrote {', '.join(files)} and {META_NAME} to {out.resolve()} ({ref.net.arch}, opset {OPSET}, "
          f"crops {meta['exemplar_sz']}/{meta['instance_sz']} px, {ref.config.scale_num} search crop(s))")
    print("ONNX checker: every file passes")
    clip, box = demo_clip()
    with open_source(str(clip)) as src:
        frame = src.first_frame
    diffs = max_differences(ref, SiamFCTracker.from_onnx(path.parent), frame, box)
    print("ONNX Runtime vs PyTorch on the bundled clip's first frame, max abs difference: "
          + ", ".join(f"{k} {v:.2e}" for k, v in diffs.items()))
    if not args.no_opencv:
        for fname, status in opencv_check(path.parent).items():
            print(f"OpenCV DNN (cv2.dnn.readNet) {fname}: {status}")
    return 0


def _out_problem(out: Path) -> str | None:
    """Why ``--out`` cannot take an export (a file, a folder of other files, a place that cannot be written),
    as ``PATH: cause``; None when it can. Creates the parent folders."""
    from ..backends.export import ExportFolderError, check_export_folder
    from ..core.storage import unwritable_folder

    try:
        check_export_folder(out.absolute())
    except ExportFolderError as e:
        return str(e)
    # The new export is written beside the old one and swapped in: the folder above must take files too.
    problem = unwritable_folder(out) or (unwritable_folder(out.absolute().parent) if out.exists() else None)
    if problem is None:
        try:
            out.absolute().parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            problem = f"{out}: cannot write there ({e.filename}: {e.strerror or e})"
    return problem


def register(sub) -> None:
    p = sub.add_parser("export", help="export a model to ONNX (backbone and head files) for ONNX Runtime or OpenCV",
                       description="Write exemplar.onnx, backbone.onnx, head.onnx (box_head.onnx for a model with "
                                   "a box head; head_boxes.onnx and track.onnx for the NanoTrack networks) with model.json into --out, check them "
                                   "with the ONNX checker, compare ONNX Runtime with PyTorch on real crops and try "
                                   "OpenCV's DNN module. Track with it: siamtrack track --model DIR.")
    p.add_argument("--model", metavar="NAME|PATH", help="weights name or .pt file (default: nanotrack-v2)")
    p.add_argument("--config", metavar="JSON", help="tracking-parameter overrides to export for (they fix the crop "
                                                    "sizes)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write (created; an earlier export in it is replaced whole, once the new one is "
                                                          "complete)")
    p.add_argument("--no-opencv", action="store_true", help="skip the OpenCV DNN check")
    p.set_defaults(func=_main)
