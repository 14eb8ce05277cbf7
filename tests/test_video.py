"""tracker.io.video: sources, the atomic writer, the FPS meter and the progress bar."""
from __future__ import annotations

import io
import os
import time

import cv2
import numpy as np
import pytest

from tracker.eval.synthetic import make_sequence
from tracker.io.progress import ProgressBar
from tracker.io.video import (
    FPSMeter,
    SinkError,
    SourceError,
    VideoSink,
    check_writable,
    frames,
    natural_key,
    open_source,
)


@pytest.fixture(scope="module")
def seq():
    return make_sequence(8, (96, 64), target=(24, 16), seed=1)[0]


def _count(path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    return n


def test_natural_sort():
    names = ["f10.png", "f2.png", "F1.png", "f100.png"]
    assert sorted(names, key=natural_key) == ["F1.png", "f2.png", "f10.png", "f100.png"]


def test_folder_and_glob_are_sorted_naturally(tmp_path, seq):
    for i, f in enumerate(seq):
        g = f.copy()
        g[0, 0] = (i, i, i)  # tag each frame with its index
        cv2.imwrite(str(tmp_path / f"{i}.png"), g)
    (tmp_path / "notes.txt").write_text("not an image")
    for source in (tmp_path, str(tmp_path / "*.png")):
        with open_source(source) as src:
            assert src.kind == "images" and src.frame_count == 8 and src.size == (96, 64)
            assert [int(f[0, 0, 0]) for f in src] == list(range(8))


def test_video_file_and_generator(tmp_path, seq):
    path = tmp_path / "v.avi"
    with VideoSink(path, fps=10) as sink:
        for f in seq:
            sink.write(f)
    with open_source(path) as src:
        assert (src.kind, src.frame_count, src.size, src.fps) == ("video", 8, (96, 64), 10.0)
    got = list(frames(str(path)))
    assert len(got) == 8 and got[0].shape == (64, 96, 3) and got[0].dtype == np.uint8


def test_frames_of_another_size_are_skipped(tmp_path, seq):
    for i, f in enumerate(seq[:4]):
        cv2.imwrite(str(tmp_path / f"{i}.png"), f if i != 2 else cv2.resize(f, (50, 40)))
    msgs = []
    with open_source(tmp_path, on_skip=msgs.append) as src:
        assert len(list(src)) == 3
    assert len(msgs) == 1 and "50x40" in msgs[0] and "96x64" in msgs[0]


def test_source_errors_name_the_source(tmp_path):
    cases = {
        str(tmp_path / "missing.mp4"): "no such file",
        str(tmp_path / "empty.mp4"): "empty file",
        str(tmp_path / "junk.mp4"): "not a readable video",
        str(tmp_path / "nothing_here"): "holds no images",
        str(tmp_path / "*.jpg"): "matches no files",
        str(tmp_path / "bad.png"): "none of its 1 image(s)",
        "98": "camera 98",
    }
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "junk.mp4").write_bytes(b"junk" * 1000)
    (tmp_path / "nothing_here").mkdir()
    (tmp_path / "bad.png").write_bytes(b"not png")
    for source, why in cases.items():
        with pytest.raises(SourceError) as e:
            open_source(source)
        assert source in str(e.value) or source == "98", str(e.value)
        assert why in str(e.value), str(e.value)


def test_sink_is_atomic_and_finalised_on_interrupt(tmp_path, seq):
    path = tmp_path / "out.mp4"
    with pytest.raises(KeyboardInterrupt):
        with VideoSink(path, fps=25) as sink:
            for i, f in enumerate(seq):
                if i == 5:
                    raise KeyboardInterrupt
                sink.write(f)
                assert not path.exists()  # only the temporary file exists while writing
    assert _count(path) == 5
    assert os.listdir(tmp_path) == ["out.mp4"]


def test_sink_without_frames_leaves_nothing(tmp_path):
    with VideoSink(tmp_path / "none.mp4") as sink:
        pass
    assert sink.close() is None and os.listdir(tmp_path) == []


def test_sink_errors_name_the_path(tmp_path, seq):
    for bad, why in [(tmp_path / "no_dir" / "x.mp4", "does not exist"), (tmp_path, "is a directory"),
                     (tmp_path / "x.gif", "unsupported extension")]:
        with pytest.raises(SinkError) as e:
            VideoSink(bad)
        assert str(bad) in str(e.value) and why in str(e.value)
    with VideoSink(tmp_path / "y.mp4") as sink:
        sink.write(seq[0])
        with pytest.raises(SinkError, match="96x64"):
            sink.write(cv2.resize(seq[1], (48, 32)))
    with pytest.raises(SinkError, match="does not exist"):
        check_writable(tmp_path / "a" / "b.txt", "box file")


def test_fps_meter():
    m = FPSMeter(window=5)
    assert m.fps == 0.0
    for _ in range(5):
        m.tick()
        time.sleep(0.02)
    assert 10 < m.fps < 60
    m.reset()
    assert m.fps == 0.0


def test_progress_bar_on_a_pipe():
    out = io.StringIO()
    bar = ProgressBar(100, stream=out, pipe_interval=0.0)
    bar.update(25, rate=10.0)
    bar.update(100, rate=10.0)
    bar.close()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith(" 25/100 [######------") and "25%" in lines[0] and "ETA 0:07" in lines[0]
    assert lines[-1].startswith("100/100 [########################]") and "ETA 0:00" in lines[-1]
    assert "\r" not in out.getvalue()
