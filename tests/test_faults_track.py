"""``siamtrack track`` under faults: outputs spelt as another name of an input, outputs onto devices, FIFOs and
standard output, a full disk, damaged JPEGs, a dropped terminal (SIGHUP), boxes larger than the frame, and
the first messages a new user sees. Devices and FIFOs are made inside the test's folder, never /dev's own."""
from __future__ import annotations

import os
import re
import select
import stat
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from tracker.eval.synthetic import make_sequence

from .helpers import encode, fill, read_video, siamtrack_cmd, write_frames
from .test_demo_headless import assert_clean_error, box_arg, read_boxes, siamtrack

MODEL = ("--model", "siamfc-lite")  # the quickest to load


@pytest.fixture(scope="module")
def clip_and_box(tmp_path_factory) -> tuple[Path, str]:
    """A 20-frame 360x240 clip and its first box."""
    frames, gt = make_sequence(20, (360, 240), target=(32, 24), seed=3)
    return encode(frames, tmp_path_factory.mktemp("clip") / "v.mp4"), box_arg(gt[0])


def cli(capsys, monkeypatch, *args) -> tuple[int, str, str]:
    """``siamtrack ARGS`` in this process, with no display: (exit code, stdout, stderr)."""
    from tracker.apps.cli import main

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def one_error(err: str, *words: str) -> None:
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and "Traceback" not in err, err
    for w in words:
        assert w in errors[0], f"{w!r} not in {errors[0]!r}"


# -- 1. an output that is the source under another spelling -----------------------------------------

@pytest.mark.parametrize("spelling", ["file-url", "localhost-url", "percent-url", "hard-link", "symlink-relative"])
@pytest.mark.parametrize("option", ["--boxes", "--output"])
def test_an_output_is_never_the_source_however_it_is_spelt(clip_and_box, tmp_path, capsys, monkeypatch, spelling,
                                                           option):
    clip, box = clip_and_box
    src = tmp_path / "my clip.mp4"
    src.write_bytes(clip.read_bytes())
    before = src.read_bytes()
    source = {"file-url": f"file://{src}", "localhost-url": f"file://localhost{src}",
              "percent-url": f"file://{str(src).replace(' ', '%20')}", "hard-link": f"file://{src}",
              "symlink-relative": f"file://{tmp_path / 'link.mp4'}"}[spelling]
    target = src
    if spelling == "hard-link":  # the output is another name of the source's file
        target = tmp_path / "hard.mp4"
        os.link(src, target)
    if spelling == "symlink-relative":  # the source through a symlink, the output relative to the folder
        (tmp_path / "link.mp4").symlink_to(src)
        target = Path("./my clip.mp4")
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(capsys, monkeypatch, "track", source, "--box", box, "--no-display", *MODEL, option, target)
    assert code == 1, out + err
    one_error(err, option, "the source")
    assert src.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({"my clip.mp4", target.name} |
                                                                ({"link.mp4"} if spelling == "symlink-relative" else set()))


def test_a_per_target_file_is_never_the_source_given_as_a_url(clip_and_box, tmp_path, capsys, monkeypatch):
    clip, box = clip_and_box
    src = tmp_path / "b.1.mp4"  # what --boxes b.mp4 --boxes-per-target names target 1's file
    src.write_bytes(clip.read_bytes())
    code, out, err = cli(capsys, monkeypatch, "track", f"file://{src}", "--box", box, "--no-display", *MODEL,
                         "--boxes", tmp_path / "b.mp4", "--boxes-per-target")
    assert code == 1, out + err
    one_error(err, "--boxes-per-target file", "the source")
    assert src.read_bytes() == clip.read_bytes() and not (tmp_path / "b.mp4").exists()


# -- 2. outputs onto devices, FIFOs and standard output: streamed, never replaced ---------------------

@pytest.mark.parametrize("target", ["-", "/dev/fd/1"])
def test_boxes_on_standard_output_are_the_only_thing_printed_there(clip_and_box, tmp_path, target):
    clip, box = clip_and_box
    p = siamtrack("track", clip, "--box", box, "--no-display", *MODEL, "--boxes", target, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    rows = [line.split(",") for line in p.stdout.splitlines()]
    assert len(rows) == 20 and all(len(r) == 5 for r in rows), p.stdout  # nothing else on stdout
    np.testing.assert_allclose(np.array(rows[0], float)[:4], [float(v) for v in box.split(",")], atol=0.01)
    assert "tracking one target" in p.stderr and "tracked 20 frames" in p.stderr
    assert list(tmp_path.iterdir()) == []  # no file named "-", no part file


def test_boxes_onto_a_device_write_through_it(clip_and_box, tmp_path):
    clip, box = clip_and_box
    dev = tmp_path / "null"
    try:
        os.mknod(dev, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a null device of our own, not /dev/null
        with open(dev, "w") as f:
            f.write("x")
    except OSError as e:
        pytest.skip(f"cannot make or use a device node here ({e.strerror})")
    p = siamtrack("track", clip, "--box", box, "--no-display", *MODEL, "--boxes", dev, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert stat.S_ISCHR(os.stat(dev).st_mode)  # still the device, not a regular file in its place
    assert sorted(f.name for f in tmp_path.iterdir()) == ["null"]


def test_boxes_into_a_fifo_reach_its_reader(clip_and_box, tmp_path):
    clip, box = clip_and_box
    fifo = tmp_path / "boxes.fifo"
    os.mkfifo(fifo)
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # the reader, there before the writer
    got = b""
    try:
        proc = subprocess.Popen(siamtrack_cmd() + ["track", str(clip), "--box", box, "--no-display", *MODEL,
                                                   "--boxes", str(fifo)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.2)
            chunk = os.read(fd, 65536) if ready else b""
            got += chunk
            if not chunk and proc.poll() is not None:
                break
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        os.close(fd)
    assert proc.returncode == 0, stderr
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert len(got.decode().splitlines()) == 20


def test_an_output_video_onto_a_non_regular_file_is_refused(clip_and_box, tmp_path, capsys, monkeypatch):
    clip, box = clip_and_box
    fifo = tmp_path / "v.mp4"
    os.mkfifo(fifo)
    code, out, err = cli(capsys, monkeypatch, "track", clip, "--box", box, "--no-display", *MODEL, "--output", fifo)
    assert code == 1
    one_error(err, f"--output {fifo}", "not a regular file")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and sorted(f.name for f in tmp_path.iterdir()) == ["v.mp4"]


# -- 3. a full disk -----------------------------------------------------------------------------------

def test_full_disk_keeps_the_previous_video_and_says_so(small_disk, tmp_path):
    frames, gt = make_sequence(60, (360, 240), target=(32, 24), seed=5)
    imgs = write_frames(frames, tmp_path / "imgs")
    disk = small_disk(1024)
    good = encode(frames[:10], disk / "good.mp4")
    before = good.read_bytes()
    (disk / "good.txt").write_text("1,2,3,4,1.0\n")  # an earlier box file: the failed run leaves it too
    fill(disk, 40)  # room for a part of the new video only
    p = siamtrack("track", imgs, "--box", box_arg(gt[0]), "--no-display", *MODEL, "-o", good,
                  "--boxes", disk / "good.txt")
    assert_clean_error(p, str(good), "No space left on device")
    assert "wrote annotated video" not in p.stdout and "wrote boxes" not in p.stdout
    assert good.read_bytes() == before and read_video(good) == (10, (360, 240))
    assert (disk / "good.txt").read_text() == "1,2,3,4,1.0\n"  # not replaced by the failed run's prefix
    assert sorted(f.name for f in disk.iterdir()) == [".filler", "good.mp4", "good.txt"]  # the part files are gone


def test_full_disk_keeps_the_previous_box_file(small_disk, clip_and_box, tmp_path):
    clip, box = clip_and_box
    disk = small_disk(256)
    boxes = disk / "b.txt"
    boxes.write_text("1,2,3,4,1.0\n")
    fill(disk, 0)
    p = siamtrack("track", clip, "--box", box, "--no-display", *MODEL, "--boxes", boxes)
    assert_clean_error(p, f"--boxes {boxes}", "No space left on device")
    assert boxes.read_text() == "1,2,3,4,1.0\n"
    assert sorted(f.name for f in disk.iterdir()) == [".filler", "b.txt"]


# -- 10. a damaged JPEG that keeps its end marker -----------------------------------------------------

@pytest.mark.parametrize("damage", ["second-half-zeroed", "400-zeros-mid", "400-bytes-mid"])
def test_a_damaged_jpeg_is_named_and_skipped(tmp_path, capfd, damage):
    from tracker.io.video import open_source

    frames, _ = make_sequence(6, (360, 240), target=(32, 24), seed=6)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(frames, 1):
        cv2.imwrite(str(folder / f"{i:04d}.jpg"), f)
    bad = folder / "0004.jpg"
    data = bytearray(bad.read_bytes())
    mid = len(data) // 2
    if damage == "second-half-zeroed":
        data[mid:-2] = bytes(len(data) - 2 - mid)
    else:
        data[mid:mid + 400] = bytes(400) if damage == "400-zeros-mid" else \
            np.random.default_rng(1).integers(0, 256, 400, dtype=np.uint8).tobytes()
    bad.write_bytes(bytes(data))
    assert data[-2:] == b"\xff\xd9" and cv2.imread(str(bad)) is not None  # OpenCV alone would take it
    capfd.readouterr()
    said: list[str] = []
    with open_source(folder, on_skip=said.append) as src:
        got = list(src.with_gaps())
    assert [f is None for f in got] == [False, False, False, True, False, False]
    assert len(said) == 1 and str(bad) in said[0] and "damaged JPEG" in said[0], said
    err = capfd.readouterr().err
    assert "Corrupt JPEG data" not in err, err  # no bare libjpeg warning naming no file


# -- 12. a dropped terminal: SIGHUP finalises outputs as Ctrl-C does (tests/test_demo_headless.py,
# test_a_stopping_signal_finalises_outputs[SIGHUP]) --------------------------------------------------------------

# -- 14. boxes larger than the frame; per-target files replaced only at the end ----------------------

def test_a_box_mostly_outside_the_frame_is_refused(clip_and_box, tmp_path, capsys, monkeypatch):
    clip, _ = clip_and_box
    code, out, err = cli(capsys, monkeypatch, "track", clip, "--box", "0,0,5000,5000", "--no-display", *MODEL,
                         "--boxes", tmp_path / "b.txt")
    assert code == 1
    one_error(err, "--box", "360x240", "at least 50%", "0,0,360,240")
    assert not (tmp_path / "b.txt").exists()
    code, out, err = cli(capsys, monkeypatch, "track", clip, "--box=-10,100,40,30", "--no-display", *MODEL,
                         "--boxes", tmp_path / "b.txt")  # a quarter outside: tracked
    assert code == 0, err
    assert len(read_boxes(tmp_path / "b.txt")) == 20


def test_a_removed_targets_file_replaces_the_previous_one_only_at_the_end(tmp_path):
    from tracker.core.siamfc import TrackResult
    from tracker.io.outputs import ResultFiles

    previous = {i: f"previous run, target {i}\n" for i in (1, 2)}
    for i, text in previous.items():
        (tmp_path / f"b.{i}.txt").write_text(text)
    r = TrackResult((1.0, 2.0, 3.0, 4.0), 0.9, False)
    files = ResultFiles(tmp_path / "b.txt", mot=True, per_target=True)
    files.write(1, {1: r, 2: r}, [1, 2])
    files.write(2, {1: r}, [1])  # target 2 removed: its file is complete ...
    files.write(3, {1: r}, [1])
    assert {i: (tmp_path / f"b.{i}.txt").read_text() for i in (1, 2)} == previous  # ... but not yet renamed
    assert sorted(files.close()) == sorted(tmp_path / f for f in ("b.txt", "b.1.txt", "b.2.txt"))
    assert len((tmp_path / "b.1.txt").read_text().splitlines()) == 3
    assert len((tmp_path / "b.2.txt").read_text().splitlines()) == 1
    assert sorted(f.name for f in tmp_path.iterdir()) == ["b.1.txt", "b.2.txt", "b.txt"]


# -- new users -----------------------------------------------------------------------------------------

def test_a_missing_source_is_said_first(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(capsys, monkeypatch, "track", "nosuch.mp4", "--box", "1,1,10,10")
    assert code == 1
    one_error(err, "nosuch.mp4", "no such file")
    assert "nothing to show" not in err


def test_the_overlay_header_is_one_line_of_stable_height():
    from tracker.apps.overlay import BANNER_COLOR, _metrics, draw_overlay, draw_targets
    from tracker.core.siamfc import TrackResult

    for w, h in ((160, 120), (320, 240), (640, 360), (1280, 720)):
        frame = np.full((h, w, 3), 128, np.uint8)
        line = _metrics(frame)[3]
        r = TrackResult((w * 0.6, h * 0.6, w * 0.2, h * 0.2), 0.05, False)  # low and right: clear of the header
        for fps in (0.0, 9.5, 99.9, 123.4, 1234.5):
            for img in (draw_overlay(frame, r, fps, "nanotrack-v2", "cpu (onnxruntime)"),
                        draw_targets(frame, {1: r, 2: r}, fps, "nanotrack-v2", "cpu (onnxruntime)")):
                assert (img[:line, :4] == BANNER_COLOR).all()  # the header's first line ...
                assert (img[line:2 * line, : w // 2] == 128).all(), (w, fps)  # ... and no second one


def test_the_overlay_header_keeps_the_confidence_and_never_says_0_fps():
    from tracker.apps.overlay import _metrics, banner_text, header_choices

    for w in (160, 320, 640, 1280):
        scale = _metrics(np.zeros((120, w, 3), np.uint8))[0]
        shown = set()
        for fps in (0.0, 9.5, 123.4):
            info, x = banner_text(header_choices("nanotrack-v2", "cpu", fps, 0.05), "tracking", w, scale)
            assert "conf 0.05" in info and "0.0 fps" not in info
            assert cv2.getTextSize(info + "   tracking", cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] + 6 <= w
            if "fps" in info:
                assert ("-- fps" in info) == (fps == 0.0)
            shown.add(re.sub(r"[\d.-]+ fps", "N fps", info))
        assert len(shown) == 1, shown  # the same parts whatever the fps
