"""Shared fixtures. Data from ../shared is read in place, never copied.

When ``../shared`` (or ``$SIAMTRACK_SHARED``) is missing, tests that need it are skipped
with a reason; ``.ci/run`` sets ``SIAMTRACK_REQUIRE_SHARED=1`` to make that a failure.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("SIAMTRACK_SHARED", REPO.parent / "shared"))


def _need(path: Path) -> Path:
    if not path.exists():
        msg = f"{path} missing: the ../shared data is not beside this checkout"
        if os.environ.get("SIAMTRACK_REQUIRE_SHARED") == "1":
            pytest.fail(msg + " (SIAMTRACK_REQUIRE_SHARED=1)")
        pytest.skip(msg)
    return path


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return _need(SHARED)


@pytest.fixture(scope="session")
def dev_root() -> Path:
    """OTB-layout development sequences (../shared/data/dev)."""
    return _need(SHARED / "data" / "dev")


@pytest.fixture(scope="session")
def training_root() -> Path:
    """GOT-10k-layout training sequences (../shared/data/training)."""
    return _need(SHARED / "data" / "training")


@pytest.fixture(scope="session")
def peers_dir() -> Path:
    """ONNX models for cv2.TrackerNano / TrackerVit (../shared/peers)."""
    return _need(SHARED / "peers")
