"""Bad inputs give clear errors (or documented handling), never a crash deep inside torch."""
import json

import numpy as np
import pytest
import torch

from tracker import SiamFCTracker, TrackerConfig, WeightsError
from tracker.core.inputs import as_bgr_frame
from tracker.networks.models import build_model
from tracker.networks.weights import load_model, save_weights

FRAME = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def tracker():
    return SiamFCTracker(build_model("lite"), device="cpu")


@pytest.mark.parametrize("box,match", [
    ((10, 10, 0, 20), "positive"),
    ((10, 10, -5, 20), "positive"),
    ((10, float("nan"), 20, 20), "NaN"),
    ((10, 10, float("inf"), 20), "NaN or infinity"),
    ((500, 10, 20, 20), "outside"),
    ((-40, -40, 20, 20), "outside"),
    ((1, 2, 3), "four numbers"),
    ("abcd", "four numbers"),
])
def test_bad_boxes(tracker, box, match):
    with pytest.raises(ValueError, match=match) as e:
        tracker.init(FRAME, box)
    assert "box" in str(e.value)


def test_partly_outside_box_is_accepted(tracker):
    tracker.init(FRAME, (-10, -10, 30, 30))
    assert len(tracker.update(FRAME).box) == 4


@pytest.mark.parametrize("frame", [FRAME[:, :, 0], FRAME[:, :, :1], np.dstack([FRAME, FRAME[:, :, :1]])],
                         ids=["gray2d", "gray3d", "bgra"])
def test_gray_and_bgra_frames_are_converted(tracker, frame):
    tracker.init(frame, (50, 40, 30, 30))
    r = tracker.update(frame)
    assert np.all(np.isfinite(r.box)) and 0 <= r.score <= 1


@pytest.mark.parametrize("frame,exc,match", [
    (FRAME.astype(np.float32), TypeError, "uint8"),
    (FRAME.astype(np.uint16) * 257, TypeError, "uint8"),
    (np.zeros((120, 160, 2), np.uint8), ValueError, "shape"),
    (np.zeros((0, 160, 3), np.uint8), ValueError, "empty"),
    ([[1, 2, 3]], TypeError, "numpy array"),
], ids=["float", "uint16", "2ch", "empty", "list"])
def test_bad_frames(tracker, frame, exc, match):
    with pytest.raises(exc, match=match):
        tracker.init(frame, (10, 10, 20, 20))
    tracker.init(FRAME, (10, 10, 20, 20))
    with pytest.raises(exc, match=match):
        tracker.update(frame)


def test_frame_size_change_mid_stream(tracker):
    tracker.init(FRAME, (10, 10, 20, 20))
    with pytest.raises(ValueError, match="size changed from 160x120 to 80x60"):
        tracker.update(FRAME[:60, :80])


def test_update_before_init():
    with pytest.raises(RuntimeError, match="init"):
        SiamFCTracker(build_model("lite"), device="cpu").update(FRAME)


def test_config_rejects_unknown_and_invalid():
    with pytest.raises(ValueError, match="unknown key.*window_influense"):
        TrackerConfig.from_dict({"window_influense": 0.2})
    with pytest.raises(ValueError, match="scale_num"):
        TrackerConfig(scale_num=4)
    with pytest.raises(ValueError, match="window_influence"):
        TrackerConfig(window_influence=1.5)
    with pytest.raises(ValueError, match="unknown preset"):
        TrackerConfig.preset("7scale")
    with pytest.raises(Exception):
        TrackerConfig().scale_num = 5  # frozen


@pytest.fixture
def lite_file(tmp_path):
    return save_weights(build_model("lite"), tmp_path / "mine.pt", config={"window_influence": 0.2})


def test_saved_weights_roundtrip(lite_file):
    net, info = load_model(lite_file)
    assert info.arch == "lite" and info.config == {"window_influence": 0.2}
    t = SiamFCTracker.from_pretrained(str(lite_file), device="cpu")
    assert t.config.window_influence == 0.2 and t.name == "mine"


def test_truncated_weights(lite_file):
    data = lite_file.read_bytes()
    lite_file.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match=f"{lite_file}.*sha256"):
        load_model(lite_file)
    lite_file.with_suffix(".json").unlink()  # no recorded hash: the archive itself is unreadable
    with pytest.raises(WeightsError, match=f"{lite_file}.*not a readable"):
        load_model(lite_file)


def test_altered_weights(lite_file):
    state = torch.load(lite_file, weights_only=True)
    state["bias"] += 1.0
    torch.save(state, lite_file)
    with pytest.raises(WeightsError, match="does not match"):
        load_model(lite_file)


def test_weights_of_the_other_architecture(lite_file):
    meta = json.loads(lite_file.with_suffix(".json").read_text())
    meta["arch"] = "alexnet"
    lite_file.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(WeightsError, match="holds 'lite' weights but .* says 'alexnet'"):
        load_model(lite_file)


def test_weights_of_an_unknown_network(tmp_path):
    p = tmp_path / "other.pt"
    torch.save(torch.nn.Linear(3, 4).state_dict(), p)
    with pytest.raises(WeightsError, match=f"{p}.*match no known architecture"):
        load_model(p)


def test_not_a_weights_file(tmp_path):
    p = tmp_path / "junk.pt"
    p.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(WeightsError, match=str(p)):
        load_model(p)


def test_missing_weights_names_where_it_looked(monkeypatch, tmp_path):
    monkeypatch.setenv("SIAMTRACK_WEIGHTS", str(tmp_path))
    with pytest.raises(WeightsError, match=f"'nope' not found; looked in: {tmp_path}"):
        load_model("nope")
    with pytest.raises(WeightsError, match="not found"):
        load_model(tmp_path / "missing.pt")


def test_env_var_directory_is_searched(monkeypatch, tmp_path):
    save_weights(build_model("lite"), tmp_path / "custom.pt")
    monkeypatch.setenv("SIAMTRACK_WEIGHTS", str(tmp_path))
    _, info = load_model("custom")
    assert info.path == tmp_path / "custom.pt"


def test_unknown_config_key_from_pretrained(lite_file):
    with pytest.raises(ValueError, match="unknown key"):
        SiamFCTracker.from_pretrained(str(lite_file), device="cpu", config={"bogus": 1})


def test_weights_without_json_warn_which_parameters_are_defaults(lite_file):
    lite_file.with_suffix(".json").unlink()
    with pytest.warns(UserWarning, match=r"mine\.json.*defaults TrackerConfig\(.*window_influence=0\.176"):
        SiamFCTracker.from_pretrained(str(lite_file), device="cpu")


def test_weights_env_var_naming_a_file_is_refused(monkeypatch, lite_file):
    monkeypatch.setenv("SIAMTRACK_WEIGHTS", str(lite_file))
    with pytest.raises(WeightsError, match="SIAMTRACK_WEIGHTS=.*mine.pt: not a folder.*--model"):
        load_model("siamfc-lite")


def test_pickled_module_gives_one_line_saying_what_is_expected(tmp_path):
    path = tmp_path / "whole.pt"
    torch.save(build_model("lite"), path)
    with pytest.raises(WeightsError) as e:
        load_model(path)
    msg = str(e.value)
    assert "\n" not in msg and "pickled Python objects" in msg and "state_dict" in msg and str(path) in msg


@pytest.mark.parametrize("img,hint", [(np.zeros((8, 8, 3), np.float32), r"img \* 255"),
                                      (np.zeros((8, 8, 3), np.uint16), "257")])
def test_non_uint8_frames_suggest_a_conversion_that_keeps_the_image(img, hint):
    with pytest.raises(TypeError, match=hint) as e:
        as_bgr_frame(img)
    assert "convertScaleAbs" not in str(e.value)
