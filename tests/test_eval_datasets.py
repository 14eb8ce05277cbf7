"""Benchmark loaders: OTB quirks on small fixtures made here, GOT-10k on ../shared/data/training."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from tracker.eval.datasets import AnnotationError, load_got10k, load_otb, read_boxes


def _images(folder: Path, n: int, first: int = 1, digits: int = 4) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    img = np.full((8, 8, 3), 127, np.uint8)
    for i in range(first, first + n):
        cv2.imwrite(str(folder / f"{i:0{digits}d}.jpg"), img)


def _gt(path: Path, n: int, sep: str = ",", start: float = 10.0) -> np.ndarray:
    rows = np.array([[start + i, 20 + i, 30, 40] for i in range(n)], dtype=float)
    path.write_text("".join(sep.join(f"{v:g}" for v in r) + "\n" for r in rows))
    return rows


def _otb_seq(root: Path, name: str, n_img: int, annos: dict[str, int], sep: str = ",") -> dict[str, np.ndarray]:
    _images(root / name / "img", n_img)
    return {suffix: _gt(root / name / f"groundtruth_rect{suffix}.txt", n, sep) for suffix, n in annos.items()}


def test_otb_two_targets_quirk_ranges_and_separators(tmp_path: Path) -> None:
    root = tmp_path / "OTB"
    jog = _otb_seq(root, "Jogging", 5, {".1": 5, ".2": 5}, sep="\t")
    (root / "Human4").mkdir(parents=True)
    _images(root / "Human4" / "img", 4)
    (root / "Human4" / "groundtruth_rect.1.txt").write_text("")  # as distributed: empty
    h4 = _gt(root / "Human4" / "groundtruth_rect.2.txt", 4, sep=" ")
    david = _otb_seq(root, "David", 770, {"": 471})  # official folder: 770 images, frames 300-770 annotated
    _otb_seq(root, "Football1", 80, {"": 74})
    _otb_seq(root, "Plain", 3, {"": 3}, sep=", ")
    (root / "not_a_sequence").mkdir()

    seqs = {s.name: s for s in load_otb(root)}
    assert sorted(seqs) == ["David", "Football1", "Human4-2", "Jogging-1", "Jogging-2", "Plain"]
    # 1-based files -> 0-based boxes
    np.testing.assert_allclose(seqs["Jogging-2"].gt, jog[".2"] - [1, 1, 0, 0])
    np.testing.assert_allclose(seqs["Human4-2"].gt, h4 - [1, 1, 0, 0])
    assert len(seqs["Human4-2"]) == 4
    assert [p.name for p in seqs["David"].img_files[:1] + seqs["David"].img_files[-1:]] == ["0300.jpg", "0770.jpg"]
    assert len(seqs["David"]) == 471
    np.testing.assert_allclose(seqs["David"].init_box, david[""][0] - [1, 1, 0, 0])
    assert seqs["Football1"].img_files[-1].name == "0074.jpg"
    assert len(seqs["Plain"]) == 3
    assert [s.name for s in load_otb(root, names=["Plain"], max_frames=2)] == ["Plain"]
    assert len(load_otb(root, names=["David"], max_frames=10)[0]) == 10


def test_otb_already_trimmed_folder_is_not_cut_again(tmp_path: Path) -> None:
    _otb_seq(tmp_path, "David", 471, {"": 471})  # as in ../shared/data/dev: frames renumbered 1..471
    (seq,) = load_otb(tmp_path)
    assert len(seq) == 471 and seq.img_files[0].name == "0001.jpg"


def test_otb_nan_rows_are_kept_as_nan(tmp_path: Path) -> None:
    _images(tmp_path / "S" / "img", 3)
    (tmp_path / "S" / "groundtruth_rect.txt").write_text("1,2,3,4\nNaN,NaN,NaN,NaN\n5,6,7,8\n\n")
    (seq,) = load_otb(tmp_path)
    assert np.isnan(seq.gt[1]).all() and seq.gt[2].tolist() == [4, 5, 7, 8]


@pytest.mark.parametrize("text, line, what", [
    ("1,2,3,4\n1,2,3\n1,2,3,4\n", 2, "expected 4 values, got 3"),
    ("1,2,3,4\n1,2,3,4\nx,2,3,4\n", 3, "not a number"),
    ("1,2,3,4\n1,2,3,4,5\n1,2,3,4\n", 2, "expected 4 values, got 5"),
    ("1,2,3,4\n\n1,2,3,4\n", 2, "empty line"),
])
def test_malformed_annotation_names_file_and_line(tmp_path: Path, text: str, line: int, what: str) -> None:
    _images(tmp_path / "Bad" / "img", 3)
    anno = tmp_path / "Bad" / "groundtruth_rect.txt"
    anno.write_text(text)
    with pytest.raises(AnnotationError) as e:
        load_otb(tmp_path)
    assert str(anno) in str(e.value) and f"line {line}" in str(e.value) and what in str(e.value)


def test_frame_count_mismatch_names_file(tmp_path: Path) -> None:
    _otb_seq(tmp_path, "Short", 5, {"": 4})
    with pytest.raises(AnnotationError, match=r"groundtruth_rect\.txt: 4 boxes but .* holds 5 images"):
        load_otb(tmp_path)


def test_unknown_sequence_and_missing_root(tmp_path: Path) -> None:
    _otb_seq(tmp_path, "A", 2, {"": 2})
    with pytest.raises(AnnotationError, match="no sequence named Nope"):
        load_otb(tmp_path, names=["Nope"])
    with pytest.raises(AnnotationError, match="not found"):
        load_otb(tmp_path / "missing")


def test_got10k_training_layout_without_cover_or_meta(training_root: Path) -> None:
    seqs = load_got10k(training_root, "train")
    listed = (training_root / "train" / "list.txt").read_text().split()
    assert [s.name for s in seqs] == listed
    by_name = {s.name: s for s in seqs}
    s = by_name["car_tld"]  # has absent frames
    raw = np.loadtxt(training_root / "train" / "car_tld" / "groundtruth.txt", delimiter=",")
    np.testing.assert_allclose(s.gt, raw - [1, 1, 0, 0])
    absent = np.isnan(raw).any(axis=1)
    assert absent.any()
    assert np.array_equal(s.absence > 0, absent)
    assert np.array_equal(s.cover == 0, absent) and (s.cover[~absent] == 8).all()  # no cover.label: "visible"
    assert s.meta == {} and s.cut_by_image is None and s.resolution is None and s.full_gt
    assert all(len(q) == len(q.gt) == len(q.cover) for q in seqs)
    assert all(p.suffix == ".jpg" for p in s.img_files) and s.img_files == tuple(sorted(s.img_files))


def test_got10k_full_labels_meta_and_test_split(tmp_path: Path) -> None:
    for split, n_gt in (("val", 3), ("test", 1)):
        d = tmp_path / split / "GOT-10k_X_000001"
        _images(d, 3, digits=8)
        _gt(d / "groundtruth.txt", n_gt)
        (tmp_path / split / "list.txt").write_text("GOT-10k_X_000001\n")
        if split == "val":
            (d / "cover.label").write_text("8\n0\n5\n")
            (d / "absence.label").write_text("0\n1\n0\n")
            (d / "cut_by_image.label").write_text("0\n0\n1\n")
            (d / "meta_info.ini").write_text("[METAINFO]\nresolution: (640, 360)\nobject_class: car\n")
    (val,) = load_got10k(tmp_path, "val")
    assert val.cover.tolist() == [8, 0, 5] and val.cut_by_image.tolist() == [0, 0, 1]
    assert val.resolution == (640, 360) and val.meta["object_class"] == "car"
    (test,) = load_got10k(tmp_path, "test")
    assert not test.full_gt and np.isfinite(test.gt[0]).all() and np.isnan(test.gt[1:]).all()
    (tmp_path / "val" / "GOT-10k_X_000001" / "cover.label").write_text("8\n0\n")
    with pytest.raises(AnnotationError, match=r"cover\.label: 2 lines but the sequence has 3 frames"):
        load_got10k(tmp_path, "val")
    for text, bad in (("8\n9\n5\n", "line 2: expected an integer 0-8, got 9"), ("8\n0\n2.5\n", "line 3:.* got 2.5")):
        (tmp_path / "val" / "GOT-10k_X_000001" / "cover.label").write_text(text)
        with pytest.raises(AnnotationError, match=r"cover\.label, " + bad):
            load_got10k(tmp_path, "val")


def test_non_utf8_annotation_names_the_file_and_line(tmp_path: Path) -> None:
    _images(tmp_path / "S" / "img", 2)
    anno = tmp_path / "S" / "groundtruth_rect.txt"
    anno.write_bytes(b"1,2,3,4\n5,6,\xff7,8\n")
    with pytest.raises(AnnotationError, match=r"groundtruth_rect\.txt, line 2: not a text file in UTF-8.*0xff"):
        load_otb(tmp_path)


def test_read_boxes_accepts_tabs_and_spaces(tmp_path: Path) -> None:
    f = tmp_path / "g.txt"
    f.write_text("1\t2\t3\t4\n5 6  7 8\n9,10,11,12\n")
    assert read_boxes(f).tolist() == [[0, 1, 3, 4], [4, 5, 7, 8], [8, 9, 11, 12]]
