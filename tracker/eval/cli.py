"""``siamtrack eval otb|got10k|report|stress|tre``: run trackers over a benchmark and score them; make a
long-term stress set (:mod:`tracker.eval.stress`) or a temporal-robustness set (:mod:`tracker.eval.tre`) from an OTB-layout one.

Output folder layout (``--out DIR``): ``DIR/results/`` holds the official result files
(see :mod:`tracker.eval.runner`), ``DIR/report/`` the table, JSON, CSV and plots
(see :mod:`tracker.eval.report`), and for the GOT-10k test split ``DIR/report/<tracker>.zip``.
Each ``DIR/results/<tracker>/manifest.json`` records what produced those results; a run with other settings
(weights, tracking parameters, back-end, ``--max-frames``) into the same folder is refused
(:mod:`tracker.eval.provenance`): use another ``--out`` or ``LABEL=SPEC``.

Errors are one line on stderr: bad input (arguments, files, an ``--out`` that is not a writable folder,
results made with other settings) exits 2, checked before anything runs; a write that fails (a full disk)
exits 1, naming the file, with no partial file left under its name and earlier results untouched.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .datasets import AnnotationError, Sequence, load_got10k, load_otb
from .report import found_trackers, pack_got10k_test, score, write_reports
from .runner import Layout, check_out_folder, parse_shard, run_benchmark, shard
from .stress import KINDS, make_stress_set
from .trackers import TrackerSpecError, default_peers_dir, label_of
from .tre import make_tre_set

__all__ = ["register"]

_TRACKERS_HELP = ("trackers, comma or space separated: our weights by name or path (e.g. siamfc-effnet, "
                  "path/to/x.pt), NAME@onnxruntime, NAME:key=value,... with tracking-parameter overrides (e.g. "
                  "siamfc-effnet:long_term=true; its own argument), and OpenCV's csrt, kcf, mil, nano, vit; "
                  "LABEL=SPEC names the results folder")


def _names(values: list[str] | None) -> list[str] | None:
    """Names from arguments, each comma or space separated; an argument with tracking-parameter
    overrides (``NAME:key=value,key=value``) is one spec, its commas its own."""
    if not values:
        return None
    return [n for v in values for n in ([v] if ":" in v and "=" in v.split(":")[-1] else v.split(",")) if n.strip()]


def _common(p: argparse.ArgumentParser, run: bool) -> None:
    p.add_argument("--root", required=True, type=Path, help="benchmark folder")
    p.add_argument("--out", required=True, type=Path, help="output folder (results/ and report/ inside)")
    p.add_argument("--trackers", nargs="+", required=run, help=_TRACKERS_HELP if run else
                   "results folders to score (default: all found under OUT/results)")
    p.add_argument("--sequences", nargs="+", help="only these sequences (default: all)")
    p.add_argument("--max-frames", type=int, default=None,
                   help="truncate every sequence (smoke tests only: such scores are not benchmark figures)")
    if run:
        p.add_argument("--workers", type=int, default=1, help="parallel processes (default 1); with --ray and no "
                                                                  "address, the CPUs of the local Ray instance")
        p.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                       help="run each (tracker, sequence) as a Ray task: alone, on a Ray instance started here; "
                            "'auto' or ray://HOST:10001 on that cluster (needs pip install 'siamtrack[ray]')")
        p.add_argument("--shard", default=None, help="i/n: run only every n-th sequence from the i-th (0-based)")
        p.add_argument("--peers", type=Path, default=None,
                       help="folder of the OpenCV peer models (default: $SIAMTRACK_PEERS, else ../shared/peers "
                            "relative to the current folder)")
        p.add_argument("--device", default="auto", help="device for our trackers: auto, cpu, cuda (default auto)")
        p.add_argument("--no-progress", action="store_true", help="no progress bar")


def register(subparsers) -> None:
    """Add ``eval`` with its ``otb``, ``got10k`` and ``report`` subcommands."""
    ev = subparsers.add_parser("eval", help="run and score trackers on OTB / GOT-10k benchmarks",
                               description="Run trackers one-pass over a benchmark, write official result files, "
                                           "and report success/precision (OTB) or AO/SR (GOT-10k).")
    sub = ev.add_subparsers(dest="eval_command", metavar="BENCHMARK")
    otb = sub.add_parser("otb", help="OTB-2013/2015 or any folder in OTB layout (<Seq>/img, groundtruth_rect.txt)")
    _common(otb, run=True)
    otb.set_defaults(func=_run, benchmark="otb", split=None)
    got = sub.add_parser("got10k", help="GOT-10k val or test split")
    _common(got, run=True)
    got.add_argument("--split", choices=["val", "test", "train"], default="val", help="split (default val)")
    got.set_defaults(func=_run, benchmark="got10k")
    rep = sub.add_parser("report", help="re-score saved results without running anything")
    rep.add_argument("--benchmark", choices=["otb", "got10k"], required=True)
    rep.add_argument("--split", choices=["val", "test", "train"], default="val", help="GOT-10k split (default val)")
    _common(rep, run=False)
    rep.set_defaults(func=_report)
    st = sub.add_parser("stress", help="make a long-term stress set (occlusion, out of view) from an OTB-layout set or a GOT-10k root",
                        description="Write an OTB-layout set where the target disappears and comes back: painted-over "
                                    "spans (<seq>-occ) and a virtual camera that pans away and back (<seq>-oov); NaN "
                                    "ground truth where it is absent. Score trackers on it with `siamtrack eval otb`: "
                                    "the report adds the long-term F-score.")
    _derived(st, "folder for the stress set")
    st.add_argument("--seed", type=int, default=0, help="random seed (default 0): same seed, same set")
    st.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS, help="which kinds (default both)")
    st.set_defaults(func=_stress)
    tre = sub.add_parser("tre", help="make a temporal-robustness set (each sequence from several starting frames)",
                         description="Write an OTB-layout set whose sequences are segments of the source's: <seq>-tre<k> "
                                     "starts at frame k N / K (the first valid box from there) and runs to the end; "
                                     "<seq>-tre0 is the whole sequence (OTB's TRE). Score trackers on it with "
                                     "`siamtrack eval otb`: more, shorter trajectories from the same frames, so one "
                                     "drift weighs less.")
    _derived(tre, "folder for the segments")
    tre.add_argument("--segments", type=int, default=5, help="starting frames per sequence (default 5; OTB uses 20)")
    tre.set_defaults(func=_tre)
    ev.set_defaults(func=lambda args: (ev.print_help(), 2)[1])


def _derived(p: argparse.ArgumentParser, out_help: str) -> None:
    """The arguments of a command that derives an OTB-layout set from another (stress, tre)."""
    p.add_argument("--root", required=True, type=Path, help="source OTB-layout set")
    p.add_argument("--out", required=True, type=Path, help=out_help)
    p.add_argument("--sequences", nargs="+", help="only these source sequences (default: all)")


def _load(args) -> list[Sequence]:
    names = _names(args.sequences)
    if args.max_frames is not None and args.max_frames < 2:
        raise ValueError(f"--max-frames must be at least 2, got {args.max_frames}")
    if args.benchmark == "otb":
        return load_otb(args.root, names, args.max_frames)
    return load_got10k(args.root, args.split, names, args.max_frames)


def _title(args) -> str:
    t = Path(args.root).resolve().name
    return f"{t} ({args.split})" if args.benchmark == "got10k" else t


def _finish(args, sequences: list[Sequence], layout: Layout, trackers: list[str]) -> int:
    report_dir = Path(args.out) / "report"
    if args.benchmark == "got10k" and any(not s.full_gt for s in sequences):
        for t in trackers:
            z = pack_got10k_test(sequences, layout, t, report_dir / f"{t}.zip")
            print(f"{t}: submission archive {z} (upload it to the GOT-10k evaluation server)")
        return 0
    results = score(args.benchmark, sequences, layout, trackers)
    title = _title(args) + (f", first {args.max_frames} frames" if args.max_frames else "")
    paths = write_reports(results, args.benchmark, report_dir, title)
    print(paths[0].read_text(), end="")
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def _oneline(e: BaseException) -> str:
    if isinstance(e, OSError) and e.filename and e.strerror:
        return f"{e.filename}: {e.strerror}"
    return " ".join(str(e).split()) or type(e).__name__


def _guard(fn):
    def wrapped(args) -> int:
        try:
            return fn(args)
        except (AnnotationError, TrackerSpecError, ValueError, FileNotFoundError) as e:
            print(f"siamtrack eval: error: {_oneline(e)}", file=sys.stderr)
            return 2
        except OSError as e:  # a write that failed: a full disk, a folder made read-only meanwhile
            print(f"siamtrack eval: error: {_oneline(e)}", file=sys.stderr)
            return 1
    return wrapped


@_guard
def _run(args) -> int:
    check_out_folder(args.out, ("results", "report"))
    sequences = _load(args)
    if args.shard:
        sequences = shard(sequences, *parse_shard(args.shard))
    layout = Layout(args.benchmark, Path(args.out) / "results")
    specs = _names(args.trackers) or []
    summary = run_benchmark(sequences, specs, layout, workers=args.workers,
                            peers=args.peers if args.peers is not None else default_peers_dir(),
                            device=args.device, progress=not args.no_progress, max_frames=args.max_frames,
                            ray=args.ray)
    print(f"ran {len(summary.ran)} tracker-sequence runs, skipped {len(summary.skipped)} already finished; "
          f"results in {layout.root}")
    if args.shard:
        print(f"shard {args.shard} done; score all shards together with `siamtrack eval report`")
        return 0
    return _finish(args, sequences, layout, [label_of(s) for s in specs])


@_guard
def _report(args) -> int:
    check_out_folder(args.out, ("report",))
    sequences = _load(args)
    layout = Layout(args.benchmark, Path(args.out) / "results")
    trackers = _names(args.trackers) or found_trackers(layout)
    if not trackers:
        raise ValueError(f"{layout.root}: no tracker results found")
    return _finish(args, sequences, layout, trackers)


@_guard
def _stress(args) -> int:
    check_out_folder(args.out)
    manifest = make_stress_set(args.root, args.out, args.seed, tuple(args.kinds), _names(args.sequences))
    seqs = manifest["sequences"].values()
    print(f"wrote {len(manifest['sequences'])} sequences ({sum(v['frames'] for v in seqs)} frames, target absent on "
          f"{sum(v['absent_frames'] for v in seqs)}) to {args.out}; score with: siamtrack eval otb --root {args.out} ...")
    return 0


@_guard
def _tre(args) -> int:
    check_out_folder(args.out)
    manifest = make_tre_set(args.root, args.out, args.segments, _names(args.sequences))
    seqs = manifest["sequences"].values()
    print(f"wrote {len(manifest['sequences'])} segments ({sum(v['frames'] for v in seqs)} frames) to {args.out}; "
          f"score with: siamtrack eval otb --root {args.out} ...")
    return 0
