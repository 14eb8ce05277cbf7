"""Weight averaging of fine-tuned runs (tracker.training.soup)."""
import json

import pytest
import torch

from tracker.models import build_model
from tracker.training.soup import average_weights, main
from tracker.weights import load_model, save_weights, sha256_of


def _saved(tmp_path, name, seed, arch="lite"):
    torch.manual_seed(seed)
    net = build_model(arch)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.num_batches_tracked.fill_(seed)
    return save_weights(net, tmp_path / f"{name}.pt")


def test_the_soup_is_the_mean_of_every_float_tensor(tmp_path):
    paths = [_saved(tmp_path, f"r{i}", i) for i in range(3)]
    soup = average_weights(paths).state_dict()
    states = [load_model(p)[0].state_dict() for p in paths]
    for k, v in soup.items():
        if v.is_floating_point():
            assert torch.allclose(v, sum(s[k] for s in states) / 3, atol=1e-6), k
        else:
            assert torch.equal(v, states[0][k]), k  # batch counts: the first file's
    assert not torch.allclose(soup["backbone.features.0.weight"], states[0]["backbone.features.0.weight"])


def test_a_soup_needs_one_architecture_and_two_files(tmp_path):
    a, b = _saved(tmp_path, "a", 0), _saved(tmp_path, "b", 1, arch="alexnet")
    with pytest.raises(ValueError, match="b.pt: not the same network"):
        average_weights([a, b])
    with pytest.raises(ValueError, match="at least two"):
        average_weights([a])


def test_cli_writes_the_soup_with_its_json_and_never_over_an_input(tmp_path, capsys):
    a, b = _saved(tmp_path, "a", 0), _saved(tmp_path, "b", 1)
    assert main([str(a), str(b), "--out", str(a)]) == 2 and "one of the inputs" in capsys.readouterr().err
    out = tmp_path / "soup" / "s.pt"
    assert main([str(a), str(b), "--out", str(out)]) == 0
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["sha256"] == sha256_of(out) and meta["soup_of"] == [str(a), str(b)] and meta["arch"] == "lite"
    assert meta["config"] == {} and "no tracking parameters" in capsys.readouterr().out  # the inputs have none
    load_model(out)  # loads, sha256 checked


def test_the_soup_keeps_the_tracking_parameters_its_inputs_share(tmp_path, capsys):
    nets = []
    for i in range(2):
        torch.manual_seed(i)
        nets.append(save_weights(build_model("lite"), tmp_path / f"n{i}.pt", {"window_influence": 0.1}))
    assert main([*map(str, nets), "--out", str(tmp_path / "s.pt")]) == 0
    assert json.loads((tmp_path / "s.json").read_text())["config"] == {"window_influence": 0.1}
    other = save_weights(build_model("lite"), tmp_path / "n2.pt", {"window_influence": 0.2})
    assert main([str(nets[0]), str(other), "--out", str(tmp_path / "t.pt")]) == 0
    assert json.loads((tmp_path / "t.json").read_text())["config"] == {}
