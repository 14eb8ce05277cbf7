"""NanoTrack v3 in our code: the release's weights load strictly, the network reproduces the released
ONNX graphs on real crops, its inference form and ONNX export give the same boxes, the shipped file is
the release's with its licence, and it follows the bundled clip's rabbit and a growing target."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from tracker import SiamFCTracker, ops
from tracker.eval.synthetic import make_sequence
from tracker.io.video import open_source
from tracker.networks.models import build_model, prepare_for_inference
from tracker.networks.nanotrack import NanoTrackNet

REPO = Path(__file__).resolve().parent.parent
WEIGHTS = REPO / "weights"
RELEASE_SHA256 = "1055810b308fa549b5bda2ad6bdf3b2c5a689d2b87cfed749f9c7bbcc7a8124b"  # peers/nanotrack_v3/README.md


def _release(peers_dir: Path) -> dict:
    return torch.load(peers_dir / "nanotrack_v3" / "nanotrackv3.pt", map_location="cpu", weights_only=True)


def _net(peers_dir: Path) -> NanoTrackNet:
    net = build_model("nanotrack-v3")
    net.load_state_dict(_release(peers_dir), strict=True)
    return net.eval()


def _crops(dev_root: Path, seq: str = "Car4") -> tuple[torch.Tensor, torch.Tensor]:
    """The first frame's exemplar (127 px) and a search crop (255 px) around the ground truth, NCHW float."""
    img = cv2.imread(str(sorted((dev_root / seq / "img").glob("*.jpg"))[0]))
    line = (dev_root / seq / "groundtruth_rect.txt").read_text().splitlines()[0]
    x, y, w, h = ops.one_based_to_zero_based(np.array([[float(v) for v in line.replace("\t", ",").split(",")]]))[0]
    centre, side, avg = np.array([x + w / 2, y + h / 2]), ops.context_size(w, h, 0.5), np.array(cv2.mean(img)[:3])
    z = ops.crop_multi(img, centre, [side], 127, avg)
    xc = ops.crop_multi(img, centre + [6.0, -4.0], [side * 255 / 127], 255, avg)
    return tuple(torch.from_numpy(np.ascontiguousarray(c.transpose(0, 3, 1, 2), dtype=np.float32)) for c in (z, xc))


def test_release_loads_strictly_every_key_used(peers_dir):
    state = _release(peers_dir)
    net = build_model("nanotrack-v3")
    assert set(net.state_dict()) == set(state)  # no key of the file left out, no parameter left unset
    net.load_state_dict(state, strict=True)
    assert sum(v.numel() for k, v in state.items() if "num_batches" not in k and "running" not in k) == \
        sum(p.numel() for p in net.parameters())


def test_network_reproduces_the_released_graphs_on_real_crops(peers_dir, dev_root):
    """Measured on this crop: trunk 1.8e-4 (features up to ~12), score logits 2e-6, edges 1e-4 (up to ~60 px)."""
    ort = pytest.importorskip("onnxruntime")
    net = _net(peers_dir)
    z, x = _crops(dev_root)
    folder = peers_dir / "nanotrack_v3"
    backbone = ort.InferenceSession(str(folder / "nanotrack_backbone.onnx"), providers=["CPUExecutionProvider"])
    head = ort.InferenceSession(str(folder / "nanotrack_head.onnx"), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        xf, zf = net.embed(x), net.embed_exemplar(z)
        cls, loc = net.ban_head(zf, xf)
    xf_graph = backbone.run(None, {"input": x.numpy()})[0]
    np.testing.assert_allclose(xf.numpy(), xf_graph, atol=1e-3)
    cls_graph, loc_graph = head.run(None, {"input1": zf.numpy(), "input2": xf_graph})
    np.testing.assert_allclose(cls.numpy(), cls_graph, atol=1e-3)
    np.testing.assert_allclose(loc.numpy(), loc_graph, rtol=1e-4, atol=1e-3)
    # The first frame's target: probability near 1 at the cell nearest the target's centre.
    p = torch.softmax(cls, 1)[0, 1]
    assert float(p.max()) > 0.95 and abs(int(p.argmax()) // 15 - 7) <= 1


def test_inference_form_matches_the_network(peers_dir, dev_root):
    """prepare_for_inference folds BatchNorm and stacks the two branches: same responses and edges, for a
    batch of search crops too."""
    net = _net(peers_dir)
    fused = prepare_for_inference(net)
    z, x = _crops(dev_root)
    x = torch.cat([x, x.flip(-1)])
    with torch.no_grad():
        r0, e0 = net.respond(net.embed(x), net.embed_exemplar(z), boxes=True)
        r1, e1 = fused.respond(fused.embed(x), fused.embed_exemplar(z), boxes=True)
        r2, _ = fused.respond(fused.embed(x[1:]), fused.embed_exemplar(z))
    assert r0.shape == (2, 1, 15, 15) and e0.shape == (2, 4, 15, 15)
    np.testing.assert_allclose(r1.numpy(), r0.numpy(), atol=1e-4)
    np.testing.assert_allclose(e1.numpy(), e0.numpy(), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(r2.numpy(), r1[1:].numpy(), atol=1e-4)


def test_shipped_file_is_the_release_with_its_licence(peers_dir):
    pt = WEIGHTS / "nanotrack-v3.pt"
    digest = hashlib.sha256(pt.read_bytes()).hexdigest()
    assert digest == RELEASE_SHA256 == json.loads(pt.with_suffix(".json").read_text())["sha256"]
    assert (WEIGHTS / "LICENSE-nanotrack").read_bytes() == (peers_dir / "nanotrack_v3" / "LICENSE").read_bytes()
    assert "Apache License" in (WEIGHTS / "LICENSE-nanotrack").read_text()
    export = json.loads((WEIGHTS / "nanotrack-v3-onnx" / "model.json").read_text())
    assert export["source_sha256"] == RELEASE_SHA256 and export["arch"] == "nanotrack-v3"


@pytest.mark.parametrize("name", ["nanotrack-v2", "nanotrack-v3"])
def test_onnx_runtime_boxes_match_torch_on_a_dev_sequence(dev_root, name):
    """The shipped export on ONNX Runtime and the network in PyTorch, from the same state on every frame of a dev
    sequence (Woman, 150 frames): boxes within 0.5 px. (Run apart for a whole sequence they separate by up to a
    few px: OpenCV's warp places crops to 1/32 px, and the frame loop amplifies float-rounding differences in
    the crop position from frame to frame.)"""
    pytest.importorskip("onnxruntime")
    frames = sorted((dev_root / "Woman" / "img").glob("*.jpg"))[:150]
    line = (dev_root / "Woman" / "groundtruth_rect.txt").read_text().splitlines()[0]
    box = ops.one_based_to_zero_based(np.array([[float(v) for v in line.replace("\t", ",").split(",")]]))[0]
    ref, ort = (SiamFCTracker.from_pretrained(name, device="cpu", backend=b) for b in ("torch", "onnxruntime"))
    assert (ref.backend, ort.backend) == ("torch", "onnxruntime")
    worst = 0.0
    for i, f in enumerate(frames):
        img = cv2.imread(str(f))
        if i == 0:
            ref.init(img, box)
            ort.init(img, box)
            continue
        ort.center, ort.target_sz, ort.x_sz = ref.center.copy(), ref.target_sz.copy(), ref.x_sz  # the same state
        worst = max(worst, float(np.abs(np.subtract(ref.update(img).box, ort.update(img).box)).max()))
    assert worst <= 0.5, worst


@pytest.mark.parametrize("name", ["nanotrack-v2", "nanotrack-v3"])
def test_follows_the_rabbit_on_the_bundled_clip(name):
    """The first run a user makes: IoU >= 0.5 with the hand-drawn extent at every annotated frame as the rabbit
    stands up and nearly doubles in size, and no frame flagged lost (figures: python benchmarks/demo_clip.py)."""
    meta = json.loads((REPO / "tracker" / "data" / "demo.json").read_text())
    checkpoints = {int(k): v for k, v in meta["checkpoints"].items()}
    t = SiamFCTracker.from_pretrained(name, device="cpu")
    got = {}
    with open_source(str(REPO / "tracker" / "data" / meta["video"])) as src:
        for i, frame in enumerate(src):
            if i == 0:
                t.init(frame, meta["init_box"])
                continue
            r = t.update(frame)
            assert not r.lost, (i, r)
            if i in checkpoints:
                got[i] = float(ops.iou(np.array([r.box]), np.array([checkpoints[i]]))[0])
    assert len(got) == len(checkpoints) >= 4
    assert min(got.values()) >= 0.5, got


def test_a_growing_target_is_followed_in_size():
    """A synthetic target that doubles its side over 60 frames (1.2% a frame): the box grows with it (at least
    1.8x) and its side stays within 15% of the target's on every frame."""
    frames, gt = make_sequence(n_frames=120, size=(480, 360), target=(48, 36), scale_range=(0.8, 1.6), seed=11)
    frames, gt = frames[:61], gt[:61]  # the growing half of the sequence
    t = SiamFCTracker.from_pretrained("nanotrack-v3", device="cpu")
    t.init(frames[0], gt[0])
    boxes = np.array([gt[0]] + [t.update(f).box for f in frames[1:]])
    side = np.sqrt(boxes[:, 2] * boxes[:, 3] / (gt[:, 2] * gt[:, 3]))
    growth = np.sqrt(np.prod(gt[-1, 2:]) / np.prod(gt[0, 2:]))
    assert growth > 1.9  # the target does double in size
    assert np.sqrt(np.prod(boxes[-1, 2:]) / np.prod(boxes[0, 2:])) >= 1.8
    assert ops.iou(boxes, gt).mean() > 0.75
    assert 0.85 < side.min() and side.max() < 1.15, (side.min(), side.max())


def test_presets_of_the_default_and_an_unknown_one():
    """The default's presets are its .json's overrides, applied before config, served by the shipped export
    (any search size), and an unknown preset is an error that names the ones there are."""
    from tracker.networks.weights import DEFAULT, WeightsError

    pytest.importorskip("onnxruntime")
    presets = json.loads((WEIGHTS / f"{DEFAULT}.json").read_text())["presets"]
    assert set(presets) >= {"fast"}
    for name, overrides in presets.items():
        t = SiamFCTracker.from_pretrained(preset=name, device="cpu")
        assert t.backend == "onnxruntime"  # the shipped export serves every preset
        for k, v in overrides.items():
            assert getattr(t.config, k) == v
    t = SiamFCTracker.from_pretrained(preset="fast", device="cpu", config={"instance_sz": 239})
    assert t.config.instance_sz == 239  # config on top of the preset
    with pytest.raises(WeightsError, match="no preset 'nope'.*fast"):
        SiamFCTracker.from_pretrained(preset="nope", device="cpu")


@pytest.mark.parametrize("name", ["nanotrack-v2", "nanotrack-v3"])
def test_shipped_export_carries_the_weights_json_settings(name):
    """The export beside the weights is of these weights and carries their .json's tracking parameters (the
    ONNX Runtime back-end reads them from there): a .json changed without exporting again fails here."""
    from tracker.backends.onnx_net import load_export
    from tracker.core.config import TrackerConfig
    from tracker.networks.weights import resolve

    files, meta = load_export(WEIGHTS / f"{name}-onnx")  # every file's sha256 checked
    info = resolve(name)
    assert meta["source_sha256"] == info.sha256, f"re-export: siamtrack export --model {name} --out weights/{name}-onnx"
    assert TrackerConfig.from_dict(meta["config"]) == TrackerConfig.from_dict(
        {"exemplar_sz": 127, "instance_sz": 255, **info.config}), f"re-export: siamtrack export --model {name} ..."
    assert {"track.onnx", "head_boxes.onnx", "head.onnx"} <= set(files) and meta["any_instance_size"]


def test_the_scale_pyramid_options_are_refused_with_a_pointer():
    """box_head=False would run NanoTrack's response through the scale pyramid's geometry (half a cell off on
    its even grids): refused, naming the network to use instead."""
    with pytest.raises(ValueError, match="box_head=False.*siamfc-effnet"):
        SiamFCTracker.from_pretrained("nanotrack-v2", device="cpu", config={"box_head": False})
    with pytest.raises(ValueError, match="removed from siamtrack.*docs/experiments.md"):
        SiamFCTracker.from_pretrained("nanotrack-v2", device="cpu", config={"dcf_weight": 0.2})


def test_a_bad_spec_value_is_an_error_naming_it():
    from tracker.core.config import parse_model_spec

    assert parse_model_spec("nanotrack-v2:preset=fast,lost_threshold=0.7") == \
        ("nanotrack-v2", {"preset": "fast", "lost_threshold": 0.7})
    with pytest.raises(ValueError, match="lost_threshold=0.8x is not a JSON value"):
        parse_model_spec("nanotrack-v2:lost_threshold=0.8x")


def test_an_edited_json_is_not_overridden_by_a_stale_export(tmp_path, monkeypatch):
    """Weights whose .json changed after their export was made: the export is not used (it would track with the
    old parameters); the .json's parameters apply."""
    import shutil

    for f in ("nanotrack-v2.pt", "nanotrack-v2-onnx"):
        (shutil.copytree if (WEIGHTS / f).is_dir() else shutil.copy)(WEIGHTS / f, tmp_path / f)
    meta = json.loads((WEIGHTS / "nanotrack-v2.json").read_text())
    meta["config"]["lost_threshold"] = 0.6
    (tmp_path / "nanotrack-v2.json").write_text(json.dumps(meta))
    monkeypatch.setenv("SIAMTRACK_WEIGHTS", str(tmp_path))
    t = SiamFCTracker.from_pretrained("nanotrack-v2", device="cpu")
    assert t.config.lost_threshold == 0.6 and t.backend == "torch"
