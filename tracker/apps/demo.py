"""The ``siamtrack track`` and ``siamtrack webcam`` demos: track one or several objects in a
video, image folder, stream or camera, show them in a window and/or write the results.

Outputs: ``--output`` an annotated video (boxes, confidence, fps, model and device);
``--boxes`` a text file: for one target one ``x,y,w,h,score`` line per frame (0-based pixels; the
first frame's line is the initial box with score 1); for several targets (several ``--box``, several
boxes dragged on the first frame, or ``--mot``) the MOTChallenge format
``frame,id,x,y,w,h,score,-1,-1,-1``, one line per target per frame (:mod:`tracker.io.outputs`);
``--boxes-per-target`` also one ``x,y,w,h,score`` file per target. All are finalised on a normal end,
``q``/Esc, a closed window, Ctrl-C, SIGTERM or SIGHUP, and hold every frame done; an output that cannot be
written (a full disk) is dropped, its previous file kept, and the run ends with an error naming it
(:mod:`tracker.io.outputs`). ``--boxes -`` (or a device, a FIFO) streams the box lines there; with them on
stdout the other messages go to stderr. No output may be an input, however either is spelt
(:mod:`tracker.io.files`).

Keys in the window (:mod:`tracker.apps.window`): SPACE pause/resume, ``r`` re-select the target,
``a`` add a target, ``d`` + click remove one, ``q`` or Esc quit.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence, TextIO

import numpy as np

from ..backends.onnx_net import is_export
from ..core.inputs import as_box
from ..core.multi import MultiTracker
from ..core.siamfc import (
    BACKENDS,
    HAS_TORCH,
    SiamFCTracker,
    TrackResult,
    resolve_device,
)
from ..io.files import (
    SinkError,
    check_writable,
    input_files,
    is_stdout,
    is_stream,
    refuse_clobbering,
)
from ..io.outputs import SKIPPED_LINE, RunOutputs, target_path  # noqa: F401 (SKIPPED_LINE re-exported)
from ..io.progress import ProgressBar
from ..io.video import FPSMeter, SourceError, check_source, open_source
from ..networks.weights import WeightsError
from .overlay import (  # noqa: F401
    BANNER_COLOR,
    LOST_COLOR,
    TRACKED_COLOR,
    draw_overlay,
    draw_targets,
    skipped_frame,
)
from .window import WINDOW, Window, interact  # noqa: F401 (WINDOW re-exported)

__all__ = ["DEMO_CLIP", "DEMO_OUTPUT", "DemoOptions", "DemoError", "run", "register", "parse_box",
           "draw_overlay", "has_display", "demo_clip"]

DATA_DIR = Path(__file__).resolve().parents[1] / "data"  # tracker/data
DEMO_CLIP = DATA_DIR / "demo.mp4"
DEMO_OUTPUT = "siamtrack_demo.mp4"


class DemoError(Exception):
    """A user-facing problem (bad argument, unreadable source, unwritable output)."""


@dataclass
class DemoOptions:
    """What to track and where results go. ``source=None`` means the bundled demo clip."""

    source: str | None = None
    init_boxes: list[tuple[float, float, float, float]] = field(default_factory=list)  # empty: drag them
    output: str | None = None
    boxes: str | None = None
    display: bool = True
    model: str | None = None
    device: str = "auto"
    max_frames: int | None = None
    config: dict | None = None  # tracking-parameter overrides (TrackerConfig keys)
    preset: str | None = None  # a named preset of the weights (their .json's "presets"), before config
    backend: str = "auto"  # network back-end: torch, onnxruntime (CPU) or auto (see SiamFCTracker.from_pretrained)
    mot: bool = False  # MOT-format box file even for one target (targets may be added in the window)
    per_target: bool = False  # also one x,y,w,h,score box file per target


def parse_config(text: str) -> dict:
    """``--config`` as a JSON object of tracking parameters; DemoError naming ``--config`` otherwise."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise DemoError(f"--config {text!r}: not valid JSON ({e.msg})") from None
    if not isinstance(value, dict):
        raise DemoError(f"--config {text!r}: expected a JSON object such as '{{\"long_term\": true}}'")
    return value


def parse_box(text: str) -> tuple[float, float, float, float]:
    """``"x,y,w,h"`` (0-based pixels, commas or spaces) -> floats; raises DemoError naming ``--box``."""
    parts = [p for p in text.replace(",", " ").split()]
    try:
        vals = tuple(float(p) for p in parts)
    except ValueError:
        raise DemoError(f"--box {text!r}: expected four numbers x,y,w,h") from None
    if len(vals) != 4:
        raise DemoError(f"--box {text!r}: expected four numbers x,y,w,h, got {len(vals)}")
    try:
        return as_box(vals, name=f"--box {text!r}")
    except ValueError as e:
        raise DemoError(str(e)) from None


def has_display() -> bool:
    """Whether a window can be opened: on Linux/BSD this needs $DISPLAY or $WAYLAND_DISPLAY."""
    if sys.platform.startswith(("win", "darwin")):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def demo_clip() -> tuple[Path, tuple[float, float, float, float]]:
    """The bundled clip and its initial box (from ``tracker/data/demo.json``)."""
    meta_path = DEMO_CLIP.with_suffix(".json")
    if not DEMO_CLIP.is_file() or not meta_path.is_file():
        raise DemoError(f"the bundled demo clip is missing ({DEMO_CLIP}); run demos/make_demo_clip.py")
    try:
        box = as_box(json.loads(meta_path.read_text())["init_box"])
    except (ValueError, KeyError, TypeError) as e:
        raise DemoError(f"{meta_path}: no valid init_box ({e})") from None
    return DEMO_CLIP, box


# -- signals and messages ------------------------------------------------------------------

def _stop_signals() -> list[int]:
    """The signals that stop a run with its outputs finalised: Ctrl-C, SIGTERM and SIGHUP (a terminal or SSH
    connection gone), each unless it is ignored (``nohup`` ignores SIGHUP: the run then goes on)."""
    sigs = [signal.SIGINT, signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    return [s for s in sigs if signal.getsignal(s) is not signal.SIG_IGN]


@contextmanager
def _signal_handlers(sigs: list[int], handler) -> Iterator[None]:
    """``handler`` for ``sigs`` during the block, the previous handlers after. Off the main thread (no signal
    handlers there): no-op."""
    try:
        old = [signal.signal(s, handler) for s in sigs]
    except ValueError:
        yield
        return
    try:
        yield
    finally:
        for s, h in zip(sigs, old):
            signal.signal(s, h)


@contextmanager
def _interrupts_held() -> Iterator[None]:
    """Hold Ctrl-C / SIGTERM / SIGHUP until the block ends, so a frame's outputs are written together
    (video frame, box line, count) or not at all; a signal that came meanwhile then raises KeyboardInterrupt."""
    caught: list[int] = []
    with _signal_handlers(_stop_signals(), lambda signum, frame: caught.append(signum)):
        yield
    if caught:
        raise KeyboardInterrupt


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM and SIGHUP like Ctrl-C while the loop runs, so outputs are finalised."""
    def handler(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt

    with _signal_handlers([s for s in _stop_signals() if s != signal.SIGINT], handler):
        yield


def _say(msg: str, progress: ProgressBar | None = None, stream: TextIO | None = None) -> None:
    """Print a message (after ending the progress bar's line); a terminal that is gone (SIGHUP) is ignored."""
    try:
        if progress is not None:
            progress.clear()
        print(msg, file=stream or sys.stdout, flush=True)
    except OSError:
        stream = stream or sys.stdout
        try:  # nothing more can be shown there: spare the interpreter's final flush
            os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())
        except (OSError, ValueError):
            pass


def _inputs(source: str | None, model: str | None, images: Sequence[str] = ()) -> list[tuple[str, str]]:
    """The files a run reads, described for the guard's messages (:func:`tracker.io.files.refuse_clobbering`)."""
    found = [(p, f"the source {source} itself") for p in input_files(source)]
    found += [(img, f"one of the source images ({img})") for img in images]
    if model and os.path.isfile(model):
        found.append((model, f"the --model file {model}"))
    return found


# -- the loop ----------------------------------------------------------------------------

def run(opts: DemoOptions) -> int:
    """Track as ``opts`` says; returns the exit code (0 done or quit, 130 interrupted: Ctrl-C, SIGTERM, SIGHUP).

    Raises :class:`DemoError` for bad input, before anything is tracked, and for an output that could not be
    written (a full disk; the others are finalised, holding the frames done).
    """
    default_clip = opts.source is None
    source, boxes = opts.source, list(opts.init_boxes)
    if default_clip:
        clip, clip_box = demo_clip()
        source, boxes = str(clip), boxes or [clip_box]
    try:
        check_source(source)  # a missing file is the first thing to say
    except SourceError as e:
        raise DemoError(str(e)) from None
    output = opts.output or (DEMO_OUTPUT if default_clip else None)
    display = opts.display
    if display and not has_display():
        if not boxes:
            raise DemoError("no display ($DISPLAY is unset), so the target cannot be drawn: give --box x,y,w,h")
        print("no display ($DISPLAY is unset): running without a window", file=sys.stderr)
        display = False
    if not display and not boxes:
        raise DemoError("--box x,y,w,h is required with --no-display (there is no window to draw it in)")
    if not display and not output and not opts.boxes:
        raise DemoError("nothing to show or write: give --output and/or --boxes with --no-display")
    if opts.max_frames is not None and opts.max_frames < 1:
        raise DemoError(f"--max-frames must be at least 1, got {opts.max_frames}")
    if opts.per_target and not opts.boxes:
        raise DemoError("--boxes-per-target names its files after --boxes: give --boxes TXT too")
    info = sys.stderr if opts.boxes and is_stdout(opts.boxes) else sys.stdout  # stdout may carry the box lines
    progress: ProgressBar | None = None

    def on_skip(msg: str) -> None:
        _say(f"warning: {msg}", progress, sys.stderr)

    named = [(output, "--output"), (opts.boxes, "--boxes")]
    try:
        refuse_clobbering(_inputs(source, opts.model), named)
        if output:
            check_writable(output, "--output", stream_ok=False)
        if opts.boxes:
            check_writable(opts.boxes, "--boxes")
        src = open_source(source, on_skip=on_skip)
    except (SinkError, SourceError) as e:
        raise DemoError(str(e)) from None
    inputs = _inputs(source, opts.model, src.image_paths)
    try:
        refuse_clobbering(inputs, named)
    except SinkError as e:
        raise DemoError(str(e)) from None

    def check_target_file(path: Path) -> None:  # a per-target box file may not be an input or an output
        refuse_clobbering(inputs, [(str(path), "--boxes-per-target file"), (output, "--output"),
                                   (opts.boxes, "--boxes")])
        check_writable(path, "--boxes-per-target file")

    with ExitStack() as stack:
        stack.enter_context(src)
        first = src.first_frame
        try:
            boxes = [as_box(b, src.size, name="--box" if opts.init_boxes else "demo box", min_inside=0.5)
                     for b in boxes]
        except ValueError as e:
            raise DemoError(f"{e} (first frame of {src.name})") from None
        # ONNX Runtime (asked for, an export folder, or no torch installed): no torch device to resolve
        cpu_only = opts.backend == "onnxruntime" or is_export(opts.model) or not HAS_TORCH
        if cpu_only and opts.device not in ("auto", "cpu"):
            raise DemoError(f"--device {opts.device}: ONNX Runtime runs on the CPU here; use --device cpu or auto")
        try:
            dev = "cpu" if cpu_only else resolve_device(opts.device)
        except (ValueError, RuntimeError, ImportError) as e:
            raise DemoError(f"--device {opts.device}: {e}") from None
        try:
            tracker = MultiTracker(SiamFCTracker.from_pretrained(opts.model, device=dev, config=opts.config,
                                                                 backend=opts.backend, preset=opts.preset))
        except ImportError as e:
            raise DemoError(str(e)) from None
        except (WeightsError, ValueError, RuntimeError) as e:
            what = "--config" if opts.config and str(e).startswith("TrackerConfig") else f"--model {opts.model}"
            raise DemoError(f"{what}: {e}" if opts.model or what == "--config" else str(e)) from None
        device = str(tracker.device) + (" (onnxruntime)" if tracker.backend == "onnxruntime" else "")
        window = Window() if display else None
        if window is not None:
            stack.callback(window.close)
        if not boxes:  # drag them on the first frame
            _say("drag a box around each target, pressing ENTER or SPACE after each; Esc when done", None, info)
            boxes = window.select_many(first)
            if not boxes:
                raise DemoError("no target selected on the first frame; nothing to track")
        mot = opts.mot or len(boxes) > 1
        try:
            if opts.per_target and not is_stream(opts.boxes):  # the first targets' files, before anything is opened
                for target_id in range(1, len(boxes) + 1):
                    check_target_file(target_path(opts.boxes, target_id))
            outs = RunOutputs(output, opts.boxes, src.fps or 30.0, mot, opts.per_target, check_target_file,
                              tracker.config.long_term)
        except SinkError as e:
            raise DemoError(str(e)) from None
        stack.callback(outs.abort)  # whatever is not finalised by the end (an unexpected error) is dropped
        for part in outs.removed_parts:
            _say(f"removed {part}, a partial output left by an earlier run that was killed", None, sys.stderr)
        what = f"{len(boxes)} targets" if len(boxes) > 1 else "one target"
        _say(f"tracking {what} in {src.name} ({src.size[0]}x{src.size[1]}) with {tracker.name} on {device}", None, info)
        if src.frame_count and src.kind in ("video", "images"):
            progress = ProgressBar(src.frame_count if not opts.max_frames else min(src.frame_count, opts.max_frames))
            stack.callback(lambda: _say_safely(progress.close))
        stack.enter_context(_sigterm_as_interrupt())
        code, n, t0, failed, written, box_files = 0, 0, time.perf_counter(), None, None, []
        meter = FPSMeter()
        frames = src.with_gaps()  # None: a frame of the source that was skipped; it still gets its lines
        last_shown = np.zeros((src.size[1], src.size[0], 3), np.uint8)

        def draw(frame: np.ndarray, results: dict[int, TrackResult], fps: float, keys: str | None = None) -> np.ndarray:
            if not mot and len(results) == 1:  # one target: its box in the tracked/lost colours
                return draw_overlay(frame, next(iter(results.values())), fps, tracker.name, device, keys)
            return draw_targets(frame, results, fps, tracker.name, device, keys)

        def emit(annotated: np.ndarray, results: dict[int, TrackResult] | None) -> None:
            nonlocal n
            with _interrupts_held():
                outs.write(n + 1, annotated, results, tracker.ids)
                n += 1

        try:
            frame = next(frames)
            while frame is None:  # unreadable frames before the first readable one
                emit(skipped_frame(last_shown, n + 1), {})
                frame = next(frames)
            results = {tracker.add(frame, b): TrackResult(tuple(float(v) for v in b), 1.0, False) for b in boxes}
            while True:
                if frame is None:
                    emit(skipped_frame(last_shown, n + 1), None)
                else:
                    fps = meter.tick()
                    last_shown = draw(frame, results, fps)
                    emit(last_shown, results)
                if progress is not None:
                    _say_safely(lambda: progress.update(n, meter.fps))
                if window is not None and frame is not None:
                    results, quit_now = interact(window, tracker, frame, results, meter.fps, n, meter, draw,
                                                 can_edit=mot or outs.log is None,
                                                 say=lambda msg: _say(msg, progress, info))
                    if quit_now:
                        break
                if opts.max_frames and n >= opts.max_frames:
                    break
                frame = next(frames, False)
                if frame is False:
                    break
                if frame is not None:
                    results = tracker.update(frame)
        except KeyboardInterrupt:
            code = 130
            _say(f"interrupted after {n} frames", progress, sys.stderr)
        except SinkError as e:  # an output cannot be written (a full disk): it is dropped, the others finalised
            code, failed = 1, e
        elapsed = time.perf_counter() - t0
        try:
            with _interrupts_held():
                written, box_files = outs.close()
        except KeyboardInterrupt:
            code = 130
    if progress is not None:
        _say_safely(progress.close)
    errors = ([failed] if failed else []) + outs.errors
    _say(f"tracked {n} frames in {elapsed:.1f} s ({n / max(elapsed, 1e-9):.1f} fps) with {tracker.name} on {device}",
         None, info)
    if written is not None:
        _say(f"wrote annotated video: {Path(written).resolve()}", None, info)
    for k, path in enumerate(box_files):
        form = "frame,id,x,y,w,h,score,-1,-1,-1 per target per frame" if mot and k == 0 else \
            "x,y,w,h,score,state per frame" if tracker.config.long_term else "x,y,w,h,score per frame"
        _say(f"wrote boxes ({form}): {path if is_stream(path) else Path(path).resolve()}", None, info)
    if errors:
        for e in errors[1:]:
            _say(f"also not written: {e}", None, sys.stderr)
        raise DemoError(f"{errors[0]} (stopped after {n} frames)" if failed else str(errors[0]))
    return code


def _say_safely(call) -> None:
    """Run a progress-bar call; a terminal that is gone (SIGHUP) is ignored."""
    try:
        call()
    except OSError:
        pass


# -- command line ------------------------------------------------------------------------

def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--box", metavar="X,Y,W,H", action="append",
                   help="initial box in 0-based pixels, at least half of it inside the first frame; repeat it "
                        "for several targets (--box A --box B); "
                        "default: drag them on the first frame (ENTER or SPACE after each, Esc when done)")
    p.add_argument("--output", "-o", metavar="VIDEO", help="write the annotated video here (.mp4 or .avi)")
    p.add_argument("--boxes", metavar="TXT",
                   help="write the boxes here ('-' for stdout; a device or FIFO is written straight to): one target, one x,y,w,h,score line per frame of the source (0-based px; "
                        "'nan,nan,nan,nan,0' for a frame that could not be decoded; with --config '{\"long_term\": true}' a 6th "
                        "field: tracking, searching or reacquired); several targets (or --mot), the "
                        "MOTChallenge format frame,id,x,y,w,h,score,-1,-1,-1, one line per target per frame (frame "
                        "1-based, box 0-based px; 'nan' box and score 0 for a frame that could not be decoded)")
    p.add_argument("--mot", action="store_true", help="write --boxes in the MOTChallenge format even for one target "
                                                      "(needed to add targets with 'a' in the window while writing it)")
    p.add_argument("--boxes-per-target", action="store_true",
                   help="also write one x,y,w,h,score file per target beside --boxes: boxes.txt -> boxes.1.txt, "
                        "boxes.2.txt, ... (from the frame the target was added to the one it was removed)")
    p.add_argument("--no-display", action="store_true", help="run without a window (needs --box)")
    p.add_argument("--model", metavar="NAME|PATH", help="weights name or .pt file (default: nanotrack-v2, "
                                                        "on CPU and GPU), or a folder made by siamtrack export")
    p.add_argument("--backend", choices=("auto", *BACKENDS), default="auto",
                   help="network back-end: torch (CPU or GPU), onnxruntime (CPU; the shipped export of the weights, "
                        "else one made in memory at start-up; needs pip install 'siamtrack[onnx]'), or auto (default: "
                        "onnxruntime on a CPU when it is installed and the weights ship an export, else torch)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (default: auto)")
    p.add_argument("--config", metavar="JSON", help="tracking-parameter overrides, e.g. '{\"long_term\": true}' "
                                                    "(keys: tracker.TrackerConfig)")
    p.add_argument("--preset", metavar="NAME", help="a named preset of the weights, before --config (nanotrack-v2: "
                                                    "fast, a smaller search region, or wide)")
    p.add_argument("--max-frames", type=int, metavar="N", help="stop after N frames")


def _options(args: argparse.Namespace, source: str | None) -> DemoOptions:
    return DemoOptions(source=source, init_boxes=[parse_box(b) for b in args.box or []], output=args.output,
                       boxes=args.boxes, display=not args.no_display, model=args.model, device=args.device,
                       max_frames=args.max_frames, config=parse_config(args.config) if args.config else None,
                       preset=args.preset,
                       backend=args.backend, mot=args.mot, per_target=args.boxes_per_target)


def _guard(cmd: str, args: argparse.Namespace, source: str | None) -> int:
    try:
        return run(_options(args, source))
    except DemoError as e:
        print(f"siamtrack {cmd}: error: {e}", file=sys.stderr)
        return 1


def _cmd_track(args: argparse.Namespace) -> int:
    return _guard("track", args, args.source)


def _cmd_webcam(args: argparse.Namespace) -> int:
    return _guard("webcam", args, str(args.camera))


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``track`` and ``webcam`` subcommands."""
    p = subparsers.add_parser(
        "track", help="track one or several objects in a video, image folder/glob, stream or camera",
        description="Track one object, or several (--box A --box B ..., or drag several boxes): one batched "
                    "network pass per frame for all of them. With no SOURCE, runs on the bundled demo clip and writes "
                    f"./{DEMO_OUTPUT}. Keys: SPACE pause, r re-select, a add a target, d + click remove one, q/Esc quit.")
    p.add_argument("source", nargs="?", help="video file, image folder or glob, stream URL or camera index "
                                             "(default: the bundled demo clip)")
    _common(p)
    p.set_defaults(func=_cmd_track)
    w = subparsers.add_parser(
        "webcam", help="track an object live from a camera",
        description="Live tracking from a camera: drag a box around each target, ENTER or SPACE after each, "
                    "Esc when done. Keys: SPACE pause, r re-select, a add a target, d + click remove one, q/Esc quit.")
    w.add_argument("camera", nargs="?", default="0", help="camera index or stream URL (default: 0)")
    _common(w)
    w.set_defaults(func=_cmd_webcam)


def main(argv: Sequence[str] | None = None, command: str = "track") -> int:
    """Entry point for the scripts in ``demos/``: same as ``siamtrack <command> argv...``."""
    parser = argparse.ArgumentParser(prog="siamtrack", add_help=False)
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args([command, *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
