"""The 8-bit backbone export (siamtrack export --int8): calibration crops, the quantised graph, tracking with it."""
from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="onnx not installed (pip install -e '.[onnx]'; CI installs it)")
pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install -e '.[onnx]'; CI installs it)")

from tests.helpers import siamtrack_cmd  # noqa: E402
from tracker import SiamFCTracker, TrackerConfig, ops  # noqa: E402
from tracker.eval.datasets import load_otb  # noqa: E402
from tracker.quantize import calibration_crops  # noqa: E402
from tracker.runtime import META_NAME, OnnxNet, load_export  # noqa: E402
from tracker.video import read_image  # noqa: E402
from tracker.weights import find_export  # noqa: E402


@pytest.fixture(scope="module")
def int8_export(training_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("int8") / "siamfc-effnet-int8-onnx"
    # --model siamfc-effnet: these tests check the int8 export of siamfc-effnet (193 px crops, its shipped export).
    r = subprocess.run([*siamtrack_cmd(), "export", "--model", "siamfc-effnet", "--int8", "--calibration",
                        f"got10k:{training_root}", "--calibration-crops", "16", "--no-opencv", "--out", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture(scope="module")
def david(dev_root):
    seq = load_otb(dev_root, ["David"], max_frames=40)[0]
    return [read_image(f) for f in seq.img_files], seq.init_box


def test_calibration_crops_are_real_search_crops_from_a_fixed_seed(training_root):
    a = calibration_crops([f"got10k:{training_root}"], 193, 129, n=6, seed=3)
    b = calibration_crops([f"got10k:{training_root}"], 193, 129, n=6, seed=3)
    assert a.shape == (6, 3, 193, 193) and a.dtype == np.float32 and a.flags["C_CONTIGUOUS"]
    assert np.array_equal(a, b)
    assert not np.array_equal(a, calibration_crops([f"got10k:{training_root}"], 193, 129, n=6, seed=4))
    assert a.min() >= 0 and a.max() <= 255 and a.std() > 20  # image content, not padding
    with pytest.raises(ValueError, match="at least one crop"):
        calibration_crops([f"got10k:{training_root}"], 193, 129, n=0)


def test_int8_export_quantises_the_backbone_only_and_records_how(int8_export):
    files, meta = load_export(int8_export)  # every file's sha256 checked against model.json
    ship, ship_meta = load_export(find_export("siamfc-effnet"))
    assert meta["name"] == "siamfc-effnet-int8" and meta["quantized"]["from"] == "siamfc-effnet"
    assert meta["quantized"]["files"] == ["backbone.onnx"] and "16 search crops of got10k:" in meta["quantized"]["calibration"]
    assert meta["source_sha256"] == ship_meta["source_sha256"]
    # The same tracking parameters as loaded (TrackerConfig.from_dict, as tracker.loading reads them): the shipped
    # model.json predates the size_bias key (87fa07c), which a fresh export writes out with its default.
    assert TrackerConfig.from_dict(meta["config"]) == TrackerConfig.from_dict(ship_meta["config"])
    ops_of = lambda data: {n.op_type for n in onnx.load_from_string(data).graph.node}  # noqa: E731
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops_of(files["backbone.onnx"])
    assert "QuantizeLinear" not in ops_of(ship["backbone.onnx"])
    assert len(files["backbone.onnx"]) < 0.7 * len(ship["backbone.onnx"])  # 8-bit weights
    for name in ("exemplar.onnx", "head.onnx"):
        assert "QuantizeLinear" not in ops_of(files[name])


def test_int8_features_and_boxes_stay_close_to_float(int8_export, david):
    frames, box = david
    q, f = OnnxNet.from_dir(int8_export), OnnxNet.from_dir(find_export("siamfc-effnet"))
    cx, cy, w, h = ops.xywh_to_cxcywh(box)
    x = ops.crop(frames[10], (cx, cy), ops.context_size(w, h) * 193 / 129, 193).transpose(2, 0, 1)[None]
    a, b = q.embed(x.astype(np.float32)), f.embed(x.astype(np.float32))
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)
    assert cos.mean() > 0.95 and not np.array_equal(a, b), cos.mean()
    boxes = []
    for net_dir in (int8_export, find_export("siamfc-effnet")):
        t = SiamFCTracker.from_onnx(net_dir)
        t.init(frames[0], box)
        boxes.append(np.array([t.update(fr).box for fr in frames[1:]]))
    assert ops.iou(boxes[0], boxes[1]).min() > 0.7


@pytest.mark.parametrize("args,named", [(["--int8"], "--calibration"), (["--calibration", "got10k:x"], "--int8"),
                                        (["--int8", "--calibration", "got10k:x", "--calibration-crops", "0"],
                                         "--calibration-crops")])
def test_int8_arguments_are_checked_before_any_work(tmp_path, args, named):
    r = subprocess.run([*siamtrack_cmd(), "export", *args, "--out", str(tmp_path / "x")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and named in r.stderr, r.stderr
    assert not (tmp_path / "x").exists()


def test_bench_counts_an_int8_export_on_the_weights_it_came_from(int8_export, dev_root):
    from tracker.bench import run_bench

    rows = run_bench(dev_root, None, ["siamfc-effnet", str(int8_export)], ["David"], 15, "cpu",
                     ("torch", "onnxruntime"), (1,))
    assert len(rows) == 3  # the export has no torch row
    assert str(int8_export) in rows[2]["tracker"] and "onnxruntime" in rows[2]["tracker"]
    assert rows[2]["gmac"] == rows[1]["gmac"] and rows[2]["params"] == rows[1]["params"]
    assert json.loads((int8_export / META_NAME).read_text())["quantized"]["from"] == "siamfc-effnet"


def test_bench_does_not_count_an_export_on_weights_that_changed_since(int8_export, tmp_path):
    import shutil

    from tracker.bench import _torch_twin

    assert _torch_twin(str(int8_export), {}).config.instance_sz == 193
    stale = tmp_path / "stale-onnx"
    shutil.copytree(int8_export, stale)
    meta = json.loads((stale / META_NAME).read_text())
    meta["source_sha256"] = "0" * 64  # made from other weights than the shipped siamfc-effnet.pt
    (stale / META_NAME).write_text(json.dumps(meta))
    assert _torch_twin(str(stale), {}) is None
