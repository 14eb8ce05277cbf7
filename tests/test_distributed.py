"""Ray: ``siamtrack eval ... --ray`` and ``siamtrack track-many`` (local processes and Ray), on a Ray instance
started here with 2 CPUs."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tracker.apps.track_many import read_manifest
from tracker.eval import distributed
from tracker.eval.datasets import load_otb
from tracker.eval.runner import Layout, run_benchmark

from .helpers import siamtrack_cmd

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'siamtrack[ray]')")

SEQUENCES = ["Car4", "Deer", "bag"]
FRAMES = 30


@pytest.fixture(scope="module")
def ray_local():
    engine = distributed.connect("local", num_cpus=2)
    yield engine
    engine.shutdown()


def _results(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((folder / "nanotrack-v2").glob("*.txt"))}


@pytest.fixture(scope="module")
def local_results(dev_root, tmp_path_factory):
    """The local runner's result files (2 worker processes: one thread each, as a Ray task has)."""
    out = tmp_path_factory.mktemp("local")
    seqs = load_otb(dev_root, SEQUENCES, FRAMES)
    run_benchmark(seqs, ["nanotrack-v2"], Layout("otb", out), workers=2, progress=False, max_frames=FRAMES)
    return _results(out)


def test_eval_on_ray_writes_the_local_runners_files(ray_local, dev_root, local_results, tmp_path):
    seqs = load_otb(dev_root, SEQUENCES, FRAMES)
    summary = run_benchmark(seqs, ["nanotrack-v2"], Layout("otb", tmp_path), ray="local", progress=False,
                            max_frames=FRAMES)
    assert len(summary.ran) == 3
    assert _results(tmp_path) == local_results and len(local_results) == 3  # boxes byte for byte
    again = run_benchmark(seqs, ["nanotrack-v2"], Layout("otb", tmp_path), ray="local", progress=False,
                          max_frames=FRAMES)
    assert not again.ran and len(again.skipped) == 3  # finished results are skipped


def test_a_worker_killed_mid_task_is_retried_and_leaves_complete_results(ray_local, dev_root, local_results,
                                                                         tmp_path):
    """The first task's worker process exits after 3 frames (the test hook); Ray runs the task again in another,
    and the driver writes the files only from finished tasks."""
    from tracker.eval.runner import ray_calls, write_runs

    marker = tmp_path / "killed"
    layout = Layout("otb", tmp_path / "results")
    jobs = [("nanotrack-v2", seq, [1]) for seq in load_otb(dev_root, SEQUENCES, FRAMES)]
    calls = [(fn, args, {**opts, "runtime_env": {"env_vars": {distributed.FAULT_ENV: str(marker)}}})
             for fn, args, opts in ray_calls(jobs, None, "cpu")]
    done = []
    distributed.run_tasks(ray_local, calls, lambda r: (write_runs(layout, r[0], r[1], r[2]), done.append(r[1].name)))
    assert marker.exists()  # a worker was killed mid-task...
    assert sorted(done) == sorted(SEQUENCES)  # ...its task ran again...
    assert _results(layout.root) == local_results  # ...and every result file is whole
    assert not list(layout.root.rglob("*.tmp*"))


def _manifest(tmp_path: Path, dev_root: Path) -> Path:
    rows = ["source,boxes,name"]
    for name in SEQUENCES:
        folder = tmp_path / "clips" / name
        folder.mkdir(parents=True)
        for k, img in enumerate(sorted((dev_root / name / "img").glob("*.jpg"))[:FRAMES], 1):
            (folder / f"{k:04d}.jpg").symlink_to(img)
        x, y, w, h = (float(v) for v in (dev_root / name / "groundtruth_rect.txt").read_text().split("\n")[0]
                      .replace("\t", ",").split(","))
        rows.append(f'clips/{name},"{x - 1},{y - 1},{w},{h}",')
    rows.append('clips/missing.mp4,"10,10,40,40",gone')
    path = tmp_path / "manifest.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize("engine", [["--workers", "2"], ["--ray", "--workers", "2"]], ids=["processes", "ray"])
def test_track_many_writes_every_item_and_reports_the_one_that_fails(dev_root, tmp_path, engine):
    manifest = _manifest(tmp_path, dev_root)
    out = tmp_path / "out"
    p = subprocess.run([*siamtrack_cmd(), "track-many", str(manifest), "--out", str(out), *engine], capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 1, p.stderr  # one item failed
    assert "line 5 (gone): failed" in p.stderr and "missing.mp4" in p.stderr
    assert "3 done, 0 skipped (already done), 1 failed" in p.stdout
    for name in SEQUENCES:
        lines = (out / f"{name}.txt").read_text().splitlines()
        assert len(lines) == FRAMES and all(len(line.split(",")) == 5 for line in lines)
        assert json.loads((out / f"{name}.done.json").read_text())["boxes"]
    assert not (out / "gone.txt").exists()
    again = subprocess.run([*siamtrack_cmd(), "track-many", str(manifest), "--out", str(out)], capture_output=True,
                           text=True, timeout=300)
    assert "0 done, 3 skipped (already done), 1 failed" in again.stdout  # finished items are not run again


def test_track_many_matches_siamtrack_track_and_reads_json_manifests(dev_root, tmp_path):
    manifest = _manifest(tmp_path, dev_root)
    items, problems = read_manifest(manifest)
    assert [i.name for i in items] == [*SEQUENCES, "gone"] and not problems
    globbed = tmp_path / "g.csv"
    globbed.write_text('source,boxes\nclips/Car4/*.jpg,"1,2,3,4"\nclips/Car4,"1,2,3,4"\n')
    items_g, problems_g = read_manifest(globbed)
    assert [i.name for i in items_g] == ["Car4"] and "also line 2's" in problems_g[0][1]  # one name, twice
    car = items[0]
    json_manifest = tmp_path / "m.json"
    json_manifest.write_text(json.dumps([{"source": car.source, "box": list(car.boxes[0]), "name": "car"},
                                         {"source": car.source, "boxes": [[1, 2, 3]]}]))
    out = tmp_path / "out"
    p = subprocess.run([*siamtrack_cmd(), "track-many", str(json_manifest), "--out", str(out)], capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 1 and "line 2: failed" in p.stderr and "4 numbers" in p.stderr
    single = tmp_path / "single.txt"
    box = ",".join(str(v) for v in car.boxes[0])
    t = subprocess.run([*siamtrack_cmd(), "track", car.source, "--no-display", "--box", box, "--boxes", str(single)],
                       capture_output=True, text=True, timeout=300)
    assert t.returncode == 0, t.stderr
    assert (out / "car.txt").read_bytes() == single.read_bytes()


def test_an_unreachable_cluster_is_a_clear_error(dev_root, tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("source,boxes\nx.mp4,\"1,2,3,4\"\n")
    p = subprocess.run([*siamtrack_cmd(), "track-many", str(manifest), "--out", str(tmp_path / "o"), "--ray",
                                     "127.0.0.1:1"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "cannot reach the Ray cluster at '127.0.0.1:1'" in p.stderr
    e = subprocess.run([*siamtrack_cmd(), "eval", "otb", "--root", str(dev_root), "--sequences", "Car4", "--max-frames",
                                     "5", "--out", str(tmp_path / "e"), "--trackers", "nanotrack-v2", "--ray",
                                     "ray://127.0.0.1:1"], capture_output=True, text=True, timeout=120)
    assert e.returncode == 2 and "cannot reach the Ray cluster at 'ray://127.0.0.1:1'" in e.stderr
