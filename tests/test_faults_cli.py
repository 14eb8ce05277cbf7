"""New-user paths of the command line outside the tracker itself: a mistyped model name in ``siamtrack bench``."""
import subprocess

import pytest

from .helpers import siamtrack_cmd


def _bench(*args, dev_root):
    return subprocess.run([*siamtrack_cmd(), "bench", "--root", str(dev_root), "--sequences", "Car4", "--max-frames",
                           "14", "--rounds", "1", "--threads", "1", "--no-peer", "--backends", "torch", *args],
                          capture_output=True, text=True, timeout=300)


def test_bench_names_the_shipped_weights_for_a_mistyped_model(dev_root):
    p = _bench("--models", "siamfc-efnet", dev_root=dev_root)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert "siamfc-efnet" in p.stderr and "nanotrack-v2" in p.stderr and "siamfc-effnet" in p.stderr


@pytest.mark.slow
def test_bench_says_when_a_row_is_an_untrained_architecture(dev_root):
    p = _bench("--models", "siamfc-alexnet", dev_root=dev_root)
    assert p.returncode == 0, p.stderr
    assert "untrained 'alexnet' architecture" in p.stdout and "alexnet arch, untrained" in p.stdout


def test_the_progress_bar_never_says_0_fps_before_it_knows_the_rate():
    import io

    from tracker.io.progress import ProgressBar

    bar = ProgressBar(10, io.StringIO())
    assert "0.0 fps" not in bar.format(0, 0.0) and "-- fps" in bar.format(0, 0.0)
    assert "12.5 fps" in bar.format(3, 12.5)
