"""benchmarks/data_scaling.py: the training subsets of the data-scaling measurement (docs/experiments.md, 2026-11-28)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _module():
    spec = importlib.util.spec_from_file_location("data_scaling", REPO / "benchmarks" / "data_scaling.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _root(tmp_path: Path, name: str, n: int) -> Path:
    root = tmp_path / name
    for i in range(n):
        (root / "train" / f"seq{i:02d}").mkdir(parents=True)
    (root / "train" / "list.txt").write_text("\n".join(f"seq{i:02d}" for i in range(n)) + "\n")
    return root


def test_subsets_are_linked_nested_sized_and_the_same_for_a_seed(tmp_path):
    ds = _module()
    roots = [_root(tmp_path, "training", 61), _root(tmp_path, "training-extra", 55)]
    shares = {}
    for pc in (25, 50, 100):
        for root, (names, order) in zip(roots, ds.orders(roots, seed=0)):
            out = tmp_path / "out" / f"{root.name}-{pc}"
            keep = ds.make_subset(names, order, root, out, pc)
            listed = (out / "train" / "list.txt").read_text().split()
            assert listed == keep == sorted(keep)
            assert all((out / "train" / k).is_symlink() and (out / "train" / k).resolve() == root / "train" / k
                       for k in keep)
            shares[root.name, pc] = set(keep)
    assert [len(shares["training", pc]) for pc in (25, 50, 100)] == [15, 30, 61]
    assert [len(shares["training-extra", pc]) for pc in (25, 50, 100)] == [14, 28, 55]
    for name in ("training", "training-extra"):
        assert shares[name, 25] < shares[name, 50] < shares[name, 100]
    again = ds.orders(roots, seed=0)
    other = ds.orders(roots, seed=1)
    assert all((a[1] == b[1]).all() for a, b in zip(again, ds.orders(roots, seed=0)))
    assert any((a[1] != b[1]).any() for a, b in zip(again, other))


def test_a_share_outside_0_100_is_refused(tmp_path):
    ds = _module()
    root = _root(tmp_path, "training", 4)
    (names, order), = ds.orders([root], seed=0)
    with pytest.raises(ValueError, match="--percent"):
        ds.make_subset(names, order, root, tmp_path / "out", 0)
