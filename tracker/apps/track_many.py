"""``siamtrack track-many MANIFEST --out DIR``: track objects in many videos, as ``siamtrack track`` would in each.

The manifest lists one item per line: a video file or an image folder/glob, its first box or boxes, and optionally
the name of its outputs. CSV (a header naming ``source``, ``boxes`` and optionally ``name``; boxes ``x,y,w,h`` in
pixels, 0-based, several separated by ``;``) or JSON (a list of objects with ``source``, ``boxes`` as a list of
``[x, y, w, h]`` or ``box`` as one, and optionally ``name``). Relative sources are relative to the manifest's folder.

For each item ``DIR/NAME.txt`` holds the boxes in ``siamtrack track``'s format (``x,y,w,h,score`` per frame for one
target, the MOTChallenge format for several), ``DIR/NAME.mp4`` the annotated video with ``--video``, and
``DIR/NAME.done.json`` what made them. An item whose ``.done.json`` matches it (source, boxes, model, settings) is
skipped; one whose outputs were made otherwise is reported and left alone. An item that fails (a missing file, a
box outside the frame, a corrupt video) is reported with its manifest line and the others go on; the exit status
is 1 if any failed. Items run in ``--workers`` processes, or as Ray tasks with ``--ray [ADDRESS]``
(:mod:`tracker.eval.distributed`); on a cluster, sources and ``--out`` must be at the same paths on every node.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

from ..core.storage import write_atomic

__all__ = ["Item", "read_manifest", "track_item", "register"]


@dataclass(frozen=True)
class Item:
    """One manifest line: ``source`` (a path), first ``boxes`` ``[(x, y, w, h), ...]`` (0-based px), output ``name``."""

    line: int
    source: str
    boxes: tuple[tuple[float, float, float, float], ...]
    name: str


class ManifestError(ValueError):
    """The manifest cannot be read as a whole (its items' own problems are reported per item)."""


def _box(value, where: str) -> tuple[float, float, float, float]:
    try:
        box = tuple(float(v) for v in (value.split(",") if isinstance(value, str) else value))
    except (TypeError, ValueError):
        raise ValueError(f"{where}: a box is x,y,w,h numbers, got {value!r}") from None
    if len(box) != 4:
        raise ValueError(f"{where}: a box is 4 numbers x,y,w,h, got {value!r}")
    return box  # type: ignore[return-value]


def read_manifest(path: str | Path) -> tuple[list[Item], list[tuple[int, str]]]:
    """The items of a CSV or JSON manifest, and ``(line, problem)`` for the lines that are not items (counted from 1:
    the CSV's line, the JSON list's position). An unreadable file, or one of neither form, is a :class:`ManifestError`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ManifestError(f"{path}: cannot read the manifest ({e})") from None
    rows: list[tuple[int, dict]] = []
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ManifestError(f"{path}: not valid JSON ({e})") from None
        if not isinstance(data, list):
            raise ManifestError(f"{path}: a JSON manifest is a list of items, got {type(data).__name__}")
        rows = [(k, row) for k, row in enumerate(data, 1)]
    else:
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames or not {"source", "boxes"} <= {f.strip() for f in reader.fieldnames}:
            raise ManifestError(f"{path}: a CSV manifest needs a header with source and boxes (and optionally name), "
                                f"got {reader.fieldnames}")
        rows = [(reader.line_num, {k.strip(): v for k, v in row.items() if k}) for row in reader]
    items, problems, names = [], [], {}
    for line, row in rows:
        where = f"{path.name} line {line}"
        try:
            if not isinstance(row, dict) or not row.get("source"):
                raise ValueError(f"{where}: no source")
            raw = row.get("boxes", row.get("box"))
            if isinstance(raw, str):
                boxes = tuple(_box(b, where) for b in raw.split(";") if b.strip())
            elif isinstance(raw, list) and raw and not isinstance(raw[0], (list, tuple)):
                boxes = (_box(raw, where),)
            else:
                boxes = tuple(_box(b, where) for b in (raw or []))
            if not boxes:
                raise ValueError(f"{where}: no first box")
            source = Path(str(row["source"])).expanduser()
            source = source if source.is_absolute() else path.parent / source
            given = Path(str(row["source"]).rstrip("/"))
            # an image glob (clips/a/*.jpg) is named after its folder
            name = str(row.get("name") or "").strip() or (given.parent.name if any(c in given.name for c in "*?[")
                                                          else given.stem)
            if "/" in name or name in ("", ".", ".."):
                raise ValueError(f"{where}: {name!r} is not a file name")
            if name in names:
                raise ValueError(f"{where}: name {name!r} is also line {names[name]}'s; give a name column")
            names[name] = line
            items.append(Item(line, str(source), boxes, name))
        except ValueError as e:
            problems.append((line, str(e)))
    return items, problems


def _key(item: Item, model: str | None, config: dict | None, video: bool) -> dict:
    return {"source": str(Path(item.source).resolve()), "boxes": [list(b) for b in item.boxes], "model": model,
            "config": config or {}, "video": video}


def track_item(item: Item, out: str, model: str | None, config: dict | None, video: bool) -> dict:
    """Track one item as ``siamtrack track`` would (no window), writing ``out/NAME.*``; returns
    ``{"line", "name", "status": "done" | "skipped" | "failed", "message"}``. Never raises for the item's own faults."""
    from .demo import DemoError, DemoOptions, run

    folder = Path(out)
    marker = folder / f"{item.name}.done.json"
    key = _key(item, model, config, video)
    result = {"line": item.line, "name": item.name, "status": "done", "message": ""}
    if marker.is_file():
        try:
            saved = json.loads(marker.read_text())
        except (OSError, json.JSONDecodeError):
            saved = None
        if saved == key:
            return {**result, "status": "skipped", "message": "already done"}
        return {**result, "status": "failed", "message": f"{marker} records other inputs or settings; delete it and "
                                                         f"{item.name}'s outputs, or use another --out"}
    opts = DemoOptions(source=item.source, init_boxes=list(item.boxes), boxes=str(folder / f"{item.name}.txt"),
                       output=str(folder / f"{item.name}.mp4") if video else None, display=False, model=model,
                       config=config)
    log = io.StringIO()
    try:
        with redirect_stdout(log), redirect_stderr(log):
            code = run(opts)
    except DemoError as e:
        return {**result, "status": "failed", "message": str(e)}
    except Exception as e:  # an unexpected fault of this item must not stop the others
        return {**result, "status": "failed", "message": f"{type(e).__name__}: {e}"}
    if code != 0:
        return {**result, "status": "failed", "message": f"interrupted (exit {code}); its outputs hold the frames done"}
    write_atomic(marker, json.dumps(key, indent=1) + "\n")
    return result


def _local(items: list[Item], args: argparse.Namespace, config: dict | None, report) -> None:
    call = (str(args.out), args.model, config, args.video)
    if args.workers <= 1:
        for item in items:
            report(track_item(item, *call))
        return
    import multiprocessing as mp

    from ..eval.runner import worker_init

    with ProcessPoolExecutor(args.workers, mp_context=mp.get_context("spawn"), initializer=worker_init,
                             initargs=(os.getpid(),)) as pool:
        for fut in as_completed([pool.submit(track_item, item, *call) for item in items]):
            report(fut.result())


def _cmd(args: argparse.Namespace) -> int:
    from ..core.storage import unwritable_folder
    from ..eval import distributed
    from .demo import DemoError, parse_config

    try:
        config = parse_config(args.config) if args.config else None
        items, problems = read_manifest(args.manifest)
    except (ManifestError, DemoError) as e:
        print(f"siamtrack track-many: error: {e}", file=sys.stderr)
        return 2
    problem = unwritable_folder(args.out)
    if problem:
        print(f"siamtrack track-many: error: --out {problem}", file=sys.stderr)
        return 2
    Path(args.out).mkdir(parents=True, exist_ok=True)
    counts = {"done": 0, "skipped": 0, "failed": len(problems)}
    for line, msg in problems:
        print(f"line {line}: failed: {msg}", file=sys.stderr)

    def report(r: dict) -> None:
        counts[r["status"]] += 1
        stream = sys.stderr if r["status"] == "failed" else sys.stdout
        print(f"line {r['line']} ({r['name']}): {r['status']}{': ' + r['message'] if r['message'] else ''}",
              file=stream, flush=True)

    try:
        if args.ray is not None:
            ray = distributed.connect(args.ray, num_cpus=args.workers if args.workers > 1 else None)
            call = (str(args.out), args.model, config, args.video)
            distributed.run_tasks(ray, [(track_item, (item, *call), {"num_cpus": 1}) for item in items], report)
        else:
            _local(items, args, config, report)
    except distributed.RayError as e:
        print(f"siamtrack track-many: error: {e}", file=sys.stderr)
        return 2
    print(f"{counts['done']} done, {counts['skipped']} skipped (already done), {counts['failed']} failed; "
          f"outputs in {args.out}")
    return 1 if counts["failed"] else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``track-many`` subcommand."""
    p = subparsers.add_parser("track-many", help="track objects in many videos listed in a manifest",
                              description=__doc__.split("\n\n", 1)[1].split("\n\n")[0])
    p.add_argument("manifest", help="CSV (source,boxes[,name]) or JSON list of items")
    p.add_argument("--out", required=True, type=Path, help="folder for every item's outputs")
    p.add_argument("--video", action="store_true", help="also write each item's annotated video (NAME.mp4)")
    p.add_argument("--model", metavar="NAME|PATH", help="weights name, .pt file or export folder (default: nanotrack-v2)")
    p.add_argument("--config", metavar="JSON", help="tracking-parameter overrides, as for siamtrack track")
    p.add_argument("--workers", type=int, default=1, help="parallel processes (default 1); with --ray and no "
                                                          "address, the CPUs of the local Ray instance")
    p.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="run each item as a Ray task: alone, on a Ray instance started here; 'auto' or "
                        "ray://HOST:10001 on that cluster (needs pip install 'siamtrack[ray]')")
    p.set_defaults(func=_cmd)
