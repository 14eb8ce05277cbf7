"""The weights in weights/: each has its .json (sha256, architecture, tracking parameters) and
matches it; the default is one of them and is what from_pretrained() loads."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tracker import SiamFCTracker
from tracker.networks.weights import DEFAULT, load_model, sha256_of

WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
SHIPPED = sorted(WEIGHTS.glob("*.pt"))


def test_the_default_is_shipped():
    assert WEIGHTS / f"{DEFAULT}.pt" in SHIPPED


@pytest.mark.parametrize("pt", SHIPPED, ids=lambda p: p.stem)
def test_shipped_weights_match_their_json(pt):
    meta = json.loads(pt.with_suffix(".json").read_text())
    assert meta["sha256"] == sha256_of(pt)
    net, info = load_model(pt)
    assert net.arch == meta["arch"] == info.arch
    assert net.has_box_head == meta.get("box_head", False)
    t = SiamFCTracker.from_pretrained(str(pt), device="cpu")
    for k, v in meta["config"].items():
        assert getattr(t.config, k) == v, k


def test_default_tracker_uses_the_default_weights():
    t = SiamFCTracker.from_pretrained(device="cpu")
    assert t.name == DEFAULT
    assert t.net.arch == json.loads((WEIGHTS / f"{DEFAULT}.json").read_text())["arch"]


@pytest.mark.parametrize("pt", SHIPPED, ids=lambda p: p.stem)
def test_model_card_lists_the_shipped_sha256(pt):
    """The model card's file table names each shipped file with the sha256 its .json records."""
    card = (WEIGHTS / "README.md").read_text()
    row = next((line for line in card.splitlines() if line.startswith(f"| `{pt.name}`")), None)
    assert row is not None, f"weights/README.md has no table row for {pt.name}"
    assert json.loads(pt.with_suffix(".json").read_text())["sha256"] in row
