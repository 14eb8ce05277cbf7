"""ONNX export and the ONNX Runtime back-end: the files, their checks, and tracking equal to torch's."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx", reason="onnx not installed (pip install -e '.[onnx]'; CI installs it)")
pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install -e '.[onnx]'; CI installs it)")

from tests.helpers import siamtrack_cmd  # noqa: E402
from tracker import SiamFCTracker, TrackerConfig  # noqa: E402
from tracker.backends.export import META_NAME, _Head, max_differences, opencv_check  # noqa: E402
from tracker.backends.onnx_net import OnnxExportError, OnnxNet, load_export  # noqa: E402
from tracker.eval.datasets import load_otb  # noqa: E402
from tracker.io.video import read_image  # noqa: E402
from tracker.networks.models import build_model  # noqa: E402
from tracker.networks.weights import DEFAULT, find_export, load_model, resolve  # noqa: E402


@pytest.fixture(scope="module")
def effnet_export():
    """The export shipped beside the default weights (weights/siamfc-effnet-onnx, from siamtrack export)."""
    folder = find_export("siamfc-effnet")
    assert folder is not None, "weights/siamfc-effnet-onnx is missing: siamtrack export --out weights/siamfc-effnet-onnx"
    return folder


@pytest.fixture(scope="module")
def david(dev_root):
    seq = load_otb(dev_root, ["David"], max_frames=100)[0]
    return [read_image(f) for f in seq.img_files], seq.init_box


@pytest.mark.parametrize("arch", ["lite", "effnet-lite0"])
def test_gather_head_equals_the_convolution(arch):
    net = build_model(arch).eval()
    z, x = torch.rand(1, 3, net.exemplar_sz, net.exemplar_sz) * 255, torch.rand(3, 3, net.instance_sz, net.instance_sz) * 255
    with torch.no_grad():
        zf, xf = net.embed_exemplar(z), net.embed(x)
        ref = net.head(zf, xf)
        got = _Head(net, zf.shape, xf.shape)(zf, xf)
    assert got.shape == ref.shape and torch.allclose(got, ref, rtol=1e-4, atol=1e-5 * float(ref.abs().max()))


def test_shipped_export_is_of_the_shipped_weights_and_matches_torch(effnet_export, david):
    meta = json.loads((effnet_export / META_NAME).read_text())
    assert set(meta["sha256"]) == {"exemplar.onnx", "backbone.onnx", "head.onnx", "heads.onnx", "box_head.onnx"}
    assert meta["source_sha256"] == resolve("siamfc-effnet").sha256, "re-export: siamtrack export --out weights/siamfc-effnet-onnx"
    load_export(effnet_export)  # every file's sha256
    _, info = load_model("siamfc-effnet")
    # The same tracking parameters (keys added to TrackerConfig since the export take their defaults).
    assert TrackerConfig.from_dict(meta["config"]) == TrackerConfig.from_dict({**info.config, "exemplar_sz": 129})
    assert meta["exemplar_sz"] == 129 and meta["instance_sz"] == 193 and meta["opset"] >= 17
    assert meta["input"]["colour"] == "BGR" and meta["config"]["lost_threshold"] == info.config["lost_threshold"] and meta["config"]["psr_score"]
    for fname in meta["sha256"]:
        onnx.checker.check_model(onnx.load(str(effnet_export / fname)), full_check=True)
    frames, box = david
    ref = SiamFCTracker.from_pretrained("siamfc-effnet", device="cpu", backend="torch")
    diffs = max_differences(ref, SiamFCTracker.from_onnx(effnet_export), frames[0], box)
    assert diffs["zf"] < 1e-4 and diffs["response"] < 1e-3 and diffs["edges"] < 1e-2, diffs


@pytest.mark.parametrize("mode", [{}, {"scale_every": 1}])
def test_onnxruntime_tracks_as_torch_does(effnet_export, david, mode):
    """Both shipped paths of the default: 100 frames of a real dev sequence, boxes within 0.5 px."""
    frames, box = david
    ours = SiamFCTracker.from_onnx(effnet_export, config=mode, threads=1)
    ref = SiamFCTracker.from_pretrained("siamfc-effnet", device="cpu", backend="torch", config=mode)
    assert ours.backend == "onnxruntime" and ref.backend == "torch"
    out = []
    for t in (ref, ours):
        t.init(frames[0], box)
        out.append(np.array([t.update(f).box for f in frames[1:]]))
    assert np.abs(out[0] - out[1]).max() <= 0.5


def test_from_pretrained_takes_the_shipped_export_by_default_on_a_cpu(effnet_export):
    """The default backend is "auto": the shipped export where onnxruntime is installed and the run is on the
    CPU; PyTorch for a config that export cannot serve (no in-memory export), for torch's pipeline or by request."""
    assert SiamFCTracker.from_pretrained(device="cpu").backend == "onnxruntime"
    # The default's export (a network with a head of its own) takes any search size; siamfc-effnet's was made for
    # 193 px search crops only, so 257 px ones run on PyTorch.
    assert SiamFCTracker.from_pretrained(device="cpu", config={"instance_sz": 287}).backend == "onnxruntime"
    assert SiamFCTracker.from_pretrained("siamfc-effnet", device="cpu", config={"instance_sz": 257}).backend == "torch"
    assert SiamFCTracker.from_pretrained(device="cpu", pipeline="torch").backend == "torch"
    assert SiamFCTracker.from_pretrained(device="cpu", backend="torch").backend == "torch"


@pytest.mark.slow
def test_lite_in_memory_export_tracks_as_torch_does(david):
    frames, box = david
    ours = SiamFCTracker.from_pretrained("siamfc-lite", backend="onnxruntime")
    ref = SiamFCTracker.from_pretrained("siamfc-lite", device="cpu", backend="torch")
    out = []
    for t in (ref, ours):
        t.init(frames[0], box)
        out.append(np.array([t.update(f).box for f in frames[1:40]]))
    assert np.abs(out[0] - out[1]).max() <= 0.5


def test_opencv_dnn_loads_every_file(effnet_export):
    report = opencv_check(effnet_export)
    assert set(report) == set(json.loads((effnet_export / META_NAME).read_text())["sha256"])
    assert all(v.startswith("ok") for v in report.values()), report


def _copy(src, dst):
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def test_altered_or_missing_file_is_refused(effnet_export, tmp_path):
    bad = _copy(effnet_export, tmp_path / "altered")
    data = bytearray((bad / "head.onnx").read_bytes())
    data[-1] ^= 0xFF
    (bad / "head.onnx").write_bytes(bytes(data))
    with pytest.raises(OnnxExportError, match=r"head\.onnx: sha256 .* does not match"):
        load_export(bad)
    (bad / "head.onnx").unlink()
    with pytest.raises(OnnxExportError, match=r"head\.onnx: missing"):
        SiamFCTracker.from_onnx(bad)
    with pytest.raises(OnnxExportError, match="no model.json"):
        load_export(tmp_path)


def test_mismatched_json_is_refused(effnet_export, tmp_path):
    bad = _copy(effnet_export, tmp_path / "sizes")
    meta = json.loads((bad / META_NAME).read_text())
    meta["instance_sz"] = 257
    (bad / META_NAME).write_text(json.dumps(meta))
    with pytest.raises(OnnxExportError, match=r"backbone\.onnx gives .* features for 257 px crops but model\.json says"):
        OnnxNet.from_dir(bad)
    meta["format"] = "something-else"
    (bad / META_NAME).write_text(json.dumps(meta))
    with pytest.raises(OnnxExportError, match="not a siamtrack-onnx"):
        OnnxNet.from_dir(bad)


def test_config_the_export_cannot_serve_is_refused(effnet_export, tmp_path):
    with pytest.raises(ValueError, match="exported for 129/193 px crops"):
        SiamFCTracker.from_onnx(effnet_export, config={"instance_sz": 257})
    with pytest.raises(ValueError, match="runs on the CPU"):
        SiamFCTracker.from_pretrained(str(effnet_export), device="cuda")


def test_onnxruntime_backend_uses_the_shipped_export_when_it_serves_the_config():
    t = SiamFCTracker.from_pretrained("siamfc-effnet", backend="onnxruntime", config={"scale_num": 5})
    assert t.net.source == str(find_export("siamfc-effnet")) and t.config.scale_num == 5
    lite = SiamFCTracker.from_pretrained("siamfc-lite", backend="onnxruntime")  # none shipped: exported in memory
    assert "in memory" in lite.net.source


def test_missing_onnxruntime_names_the_extra(monkeypatch, effnet_export):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ImportError, match=r"pip install 'siamtrack\[onnx\]'"):
        SiamFCTracker.from_onnx(effnet_export)


@pytest.mark.slow
def test_cli_export_then_track_with_the_folder(tmp_path):
    out = tmp_path / "lite"
    r = subprocess.run([*siamtrack_cmd(), "export", "--model", "siamfc-lite", "--out", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "ONNX checker: every file passes" in r.stdout and "max abs difference" in r.stdout
    assert "head.onnx: ok" in r.stdout
    boxes = {}
    for label, args in (("onnx", ["--model", str(out)]), ("torch", ["--model", "siamfc-lite"])):
        path = tmp_path / f"{label}.txt"
        r = subprocess.run([*siamtrack_cmd(), "track", "--no-display", "--max-frames", "40", "--boxes", str(path),
                            *args], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        assert ("on cpu (onnxruntime)" in r.stdout) == (label == "onnx"), r.stdout
        boxes[label] = np.loadtxt(path, delimiter=",")
    assert boxes["onnx"].shape == (40, 5)
    assert np.abs(boxes["onnx"][:, :4] - boxes["torch"][:, :4]).max() <= 0.5


def test_bench_times_both_backends(dev_root):
    from tracker.apps.bench import run_bench

    rows = run_bench(dev_root, None, ["siamfc-lite"], ["David"], 15, "cpu", ("torch", "onnxruntime"), (1,))
    assert [r["threads"] for r in rows] == [1, 1]
    assert "onnxruntime" in rows[1]["tracker"] and rows[1]["gmac"] == rows[0]["gmac"]
    assert all(r["fps"] > 0 and r["network_ms"] > 0 for r in rows)


def test_an_export_tracks_without_torch(effnet_export, tmp_path):
    """The deployment install: numpy, OpenCV and ONNX Runtime. torch is made unimportable in a fresh
    interpreter; tracking with the default (its shipped export) must not need it, and torch-only
    commands say so."""
    from tracker.apps.demo import demo_clip

    clip, box = demo_clip()
    out = tmp_path / "boxes.txt"
    code = ("import sys; sys.modules['torch'] = None\n"
            "from tracker.apps.cli import main\n"
            f"rc = main(['track', {str(clip)!r}, '--box', {','.join(map(str, box))!r},"
            f" '--no-display', '--boxes', {str(out)!r}, '--max-frames', '20'])\n"
            "assert main(['bench', '--threads', '1']) == 2 and main(['export', '--out', 'x']) == 2\n"
            "sys.exit(rc)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"with {DEFAULT} on cpu (onnxruntime)" in r.stdout
    assert "siamtrack bench: needs PyTorch" in r.stderr and "siamtrack export: needs PyTorch" in r.stderr
    assert np.loadtxt(out, delimiter=",").shape == (20, 5)


def test_demo_default_backend_is_onnxruntime_on_cpu_with_the_same_boxes(tmp_path):
    """`siamtrack track` picks ONNX Runtime (the shipped export) on a CPU; torch gives the same boxes, frame by
    frame from the same state. Over a whole run the two drift apart on the default (box head): 1e-4 px between
    the back-ends on a frame, carried by OpenCV's crops (sub-pixel positions on a 1/32 px grid) and the head's
    continuous boxes, become px within 60 frames of the bundled clip (7.8 px at most, box ~230 x 295 px)."""
    import itertools

    from tracker.apps.demo import demo_clip
    from tracker.io.video import frames as read_frames

    out = {}
    for backend in ("auto", "torch"):
        path = tmp_path / f"{backend}.txt"
        r = subprocess.run([*siamtrack_cmd(), "track", "--no-display", "--max-frames", "60", "--boxes", str(path),
                            "--backend", backend, "--device", "cpu"], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        assert ("on cpu (onnxruntime)" in r.stdout) == (backend == "auto"), r.stdout
        out[backend] = np.loadtxt(path, delimiter=",")
    assert out["auto"].shape == out["torch"].shape == (60, 5)
    clip, box = demo_clip()
    frames = list(itertools.islice(read_frames(clip), 60))
    auto, torch_ = SiamFCTracker.from_pretrained(device="cpu"), SiamFCTracker.from_pretrained(device="cpu", backend="torch")
    assert auto.backend == "onnxruntime" and auto.name == DEFAULT
    auto.init(frames[0], box)
    torch_.init(frames[0], box)
    held = [auto.box]
    for f in frames[1:]:
        torch_.center, torch_.target_sz, torch_.x_sz = auto.center.copy(), auto.target_sz.copy(), auto.x_sz
        a, b = auto.update(f), torch_.update(f)
        assert np.abs(np.subtract(a.box, b.box)).max() <= 0.5 and abs(a.score - b.score) <= 1e-4
        held.append(a.box)
    assert np.abs(out["auto"][:, :4] - np.array(held)).max() <= 0.01  # the command's boxes are these (2 decimals)


def test_several_targets_share_one_head_call_and_an_older_export_runs_one_per_target(effnet_export, tmp_path, david):
    """heads.onnx: B kernels at once equal B calls of head.onnx; an export without it (made before 2026-11-27)
    still tracks several targets, one head call each, with the same boxes."""
    from tracker import MultiTracker

    net = OnnxNet.from_dir(effnet_export)
    rng = np.random.default_rng(0)
    zf = rng.normal(size=(3, *json.loads((effnet_export / META_NAME).read_text())["kernel_shape"][1:])).astype(np.float32)
    xf = rng.normal(size=(9, *net.meta["feature_shape"])).astype(np.float32)
    one = np.concatenate([net.respond(xf[3 * i:3 * i + 3], zf[i:i + 1])[0] for i in range(3)])
    assert net.many_kernels and np.allclose(net.respond(xf, zf)[0], one, atol=1e-5)
    old = _copy(effnet_export, tmp_path / "old")
    (old / "heads.onnx").unlink()
    meta = json.loads((old / META_NAME).read_text())
    del meta["sha256"]["heads.onnx"]
    (old / META_NAME).write_text(json.dumps(meta))
    frames, box = david
    boxes = []
    for folder in (effnet_export, old):
        multi = MultiTracker(SiamFCTracker.from_onnx(folder))
        assert multi._proto.net.many_kernels == (folder == effnet_export)
        ids = [multi.add(frames[0], box), multi.add(frames[0], np.asarray(box) + np.array([30.0, 10.0, 0, 0]))]
        boxes.append(np.array([[multi.update(f)[i].box for i in ids] for f in frames[1:10]]))
    assert np.abs(boxes[0] - boxes[1]).max() <= 1e-3


@pytest.mark.slow
def test_an_in_memory_export_is_made_once_per_weights_and_config(monkeypatch):
    """An evaluation builds one tracker per sequence: a config the shipped export cannot serve is exported
    once, not once per sequence; other settings or other weights get their own export."""
    import tracker.backends.export
    import tracker.backends.loading

    calls = []
    real = tracker.backends.export.export_model
    monkeypatch.setattr(tracker.backends.export, "export_model", lambda *a, **k: calls.append(a[1]) or real(*a, **k))
    monkeypatch.setattr(tracker.backends.loading, "_EXPORTS", {})
    make = lambda name, **cfg: SiamFCTracker.from_pretrained(name, backend="onnxruntime", config=cfg)  # noqa: E731
    a, b = make("siamfc-effnet", instance_sz=225), make("siamfc-effnet", instance_sz=225)
    assert len(calls) == 1 and a.net is not b.net and a.config == b.config
    make("siamfc-effnet", instance_sz=257)
    make("siamfc-lite")
    assert [c.instance_sz for c in calls] == [225, 257, 255]
