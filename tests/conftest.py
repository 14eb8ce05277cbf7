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


@pytest.fixture
def small_disk(tmp_path):
    """A factory of small real file systems: ``small_disk(kb)`` mounts a tmpfs of ``kb`` KiB at a fresh folder
    under ``tmp_path`` and returns it (unmounted at teardown), for full-disk tests. Skips with a reason where this
    machine cannot mount one (not root, or no mount permission in the container)."""
    import subprocess

    mounted: list[Path] = []

    def mount(kb: int) -> Path:
        where = tmp_path / f"disk{len(mounted)}"
        where.mkdir()
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kb}k", "tmpfs", str(where)],
                           capture_output=True, text=True)
        if p.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here for a full-disk test ({p.stderr.strip() or 'mount failed'})")
        mounted.append(where)
        return where

    yield mount
    for where in reversed(mounted):
        subprocess.run(["umount", "-l", str(where)], capture_output=True)

