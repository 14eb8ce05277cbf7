"""What a new user meets when installing and asking for help."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tracker.networks.weights import DEFAULT

from .helpers import siamtrack_cmd

REPO = Path(__file__).resolve().parent.parent


def test_building_the_package_gives_no_setuptools_warnings(tmp_path):
    """No deprecated `project.license` table, no data folder missing from `packages`; the wheel holds
    the shipped weights and the demo clip."""
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-v", "-w", str(tmp_path)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    log = r.stdout + r.stderr
    for warning in ("BuildBackendWarning", "SetuptoolsDeprecationWarning", "is absent from the `packages`"):
        assert warning not in log, warning
    import zipfile

    (wheel,) = tmp_path.glob("siamtrack-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"tracker/data/demo.mp4", "tracker/_weights/siamfc-effnet.pt", "tracker/_weights/siamfc-effnet.json",
            "tracker/_weights/siamfc-effnet-onnx/model.json", "tracker/_weights/siamfc-effnet-onnx/backbone.onnx"} <= names


def test_demo_output_is_ignored_by_git():
    r = subprocess.run(["git", "check-ignore", "-q", "siamtrack_demo.mp4"], cwd=REPO)
    assert r.returncode == 0


def test_readme_says_how_to_get_the_cpu_build_of_torch():
    assert "--index-url https://download.pytorch.org/whl/cpu" in (REPO / "README.md").read_text()


@pytest.mark.parametrize("cmd,must,must_not", [
    ("track", [DEFAULT], ["siamfc-alexnet on GPU"]),  # the shipped default's name, as tracker.networks.weights has it
    ("bench", ["relative to the current folder"], []),
])
def test_help_names_the_real_defaults(cmd, must, must_not):
    r = subprocess.run(siamtrack_cmd() + [cmd, "--help"], capture_output=True, text=True, timeout=120)
    text = " ".join(r.stdout.split())
    assert r.returncode == 0
    for s in must:
        assert s in text, s
    for s in must_not:
        assert s not in text, s
