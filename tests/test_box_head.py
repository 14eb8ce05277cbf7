"""The box head: depthwise correlation, edge-distance targets, the GIoU loss, box-aware
pairs, box-head training and the tracker reading size and aspect at the peak."""
import numpy as np
import pytest
import torch
import torch.nn as nn

from tracker import SiamFCTracker, TrackerConfig, ops
from tracker.core.postprocess import find_box
from tracker.networks.models import (
    BoxHead,
    build_model,
    prepare_for_inference,
    response_positions,
    xcorr_depthwise,
)
from tracker.networks.weights import load_model, save_weights
from tracker.training.losses import balanced_logistic, box_giou, box_targets
from tracker.training.pairs import PairConfig, PairSampler, Track
from tracker.training.trainer import CheckpointError, TrainConfig, Trainer

from .test_training import _red_box_track, _red_mask


def test_depthwise_xcorr_equals_per_channel_correlation():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(2, 3, 3, 3, generator=g)
    x = torch.randn(4, 3, 8, 9, generator=g)  # two searches per exemplar
    out = xcorr_depthwise(z, x)
    assert out.shape == (4, 3, 6, 7)
    for n in range(4):
        for c in range(3):
            ref = torch.nn.functional.conv2d(x[n:n + 1, c:c + 1], z[n // 2:n // 2 + 1, c:c + 1])[0, 0]
            assert torch.allclose(out[n, c], ref, atol=1e-5)


def test_response_positions_put_the_centre_cell_at_the_crop_centre():
    pos = response_positions(17, 255)
    assert pos[:, 8, 8].tolist() == [127.5, 127.5]
    assert pos[0, 8, 9] - pos[0, 8, 8] == 8 and pos[1, 9, 8] - pos[1, 8, 8] == 8
    assert pos[0, 3, 0] == 127.5 - 64 and pos[1, 0, 3] == 127.5 - 64  # x varies along columns, y along rows


@torch.no_grad()
def test_box_head_shapes_and_bn_folding():
    torch.manual_seed(0)
    net = build_model("lite", box_head=True)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    nn.init.normal_(net.box_head.features[-1].weight, std=0.2)
    net.eval()
    z, x = torch.rand(1, 3, 127, 127) * 255, torch.rand(3, 3, 255, 255) * 255
    net.template(z)
    r, e = net.track_boxes(x)
    assert r.shape == (3, 1, 17, 17) and e.shape == (3, 4, 17, 17) and bool((e > 0).all())
    assert torch.allclose(r, net.track(x))
    fused = prepare_for_inference(net)
    fused.template(z)
    r2, e2 = fused.track_boxes(x)
    assert e.std() > 1.0  # non-trivial outputs, so the comparison means something
    assert torch.allclose(e2, e, rtol=1e-4, atol=1e-3) and torch.allclose(r2, r, atol=1e-4)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())


def test_track_boxes_needs_a_box_head():
    net = build_model("lite").eval()
    with torch.no_grad():
        net.template(torch.zeros(1, 3, 127, 127))
        with pytest.raises(RuntimeError, match="no box head"):
            net.track_boxes(torch.zeros(1, 3, 255, 255))


def test_box_targets_mark_cells_near_the_box_centre():
    boxes = torch.tensor([[100.0, 90.0, 60.0, 40.0]])  # centre (130, 110)
    target, mask = box_targets(boxes, 17, radius=24.0)
    assert target.shape == (1, 4, 17, 17) and mask.shape == (1, 17, 17)
    pos = response_positions(17)
    ys, xs = np.nonzero(mask[0].numpy())
    for yy, xx in zip(ys, xs):
        px, py = pos[0, yy, xx].item(), pos[1, yy, xx].item()
        assert (px - 130) ** 2 + (py - 110) ** 2 <= 24 ** 2
        assert target[0, :, yy, xx].tolist() == pytest.approx([px - 100, py - 90, 160 - px, 130 - py])
    assert 4 <= len(ys) <= 30
    # A tiny box still gets the cell nearest its centre.
    _, small = box_targets(torch.tensor([[126.0, 126.0, 4.0, 4.0]]), 17, radius=1.0)
    assert small[0].sum() == 1 and small[0, 8, 8]


def test_giou_loss_is_zero_for_exact_edges_and_grows_with_error():
    boxes = torch.tensor([[100.0, 90.0, 60.0, 40.0]])
    target, _ = box_targets(boxes, 17)
    assert box_giou(target.clamp(min=1e-3), boxes).item() == pytest.approx(0.0, abs=1e-5)
    worse = [box_giou(target.clamp(min=1e-3) * s, boxes).item() for s in (1.1, 1.5, 3.0)]
    assert 0 < worse[0] < worse[1] < worse[2]


def test_logistic_loss_with_boxes_moves_the_positives():
    centred = torch.tensor([[127.5 - 20, 127.5 - 15, 40.0, 30.0]])
    r = torch.randn(1, 1, 17, 17)
    assert balanced_logistic(r, boxes=centred).item() == pytest.approx(balanced_logistic(r).item(), rel=1e-5)
    # A response peaked where the (shifted) target is scores better with the shifted labels.
    r = torch.full((1, 1, 17, 17), -3.0)
    r[0, 0, 8, 12] = 3.0
    shifted = centred + torch.tensor([[32.0, 0, 0, 0]])
    assert balanced_logistic(r, boxes=shifted) < balanced_logistic(r)


def test_box_head_learns_a_toy_problem():
    """Random features with the box's size written into the exemplar's and the cell position
    into the search's: the GIoU loss falls and the predicted widths follow the true ones."""
    torch.manual_seed(0)
    head = BoxHead(8, hidden=16)
    opt = torch.optim.SGD(head.parameters(), lr=0.05, momentum=0.9)
    ramp = torch.linspace(-1, 1, 22)

    def batch(n=16):
        size = torch.rand(n, 2) * 60 + 20
        zf = 0.1 * torch.randn(n, 8, 6, 6)
        zf[:, 0], zf[:, 1] = size[:, 0, None, None] / 40, size[:, 1, None, None] / 40
        zf[:, 2:4] = 1.0
        xf = torch.ones(n, 8, 22, 22)
        xf[:, 2], xf[:, 3] = ramp[None, None, :], ramp[None, :, None]
        return zf, xf, torch.cat([127.5 - size / 2, size], 1)

    def loss_of(zf, xf, boxes):
        return box_giou(head(head.kernel(zf), xf), boxes)

    zf, xf, boxes = batch(64)
    head.eval()
    first = loss_of(zf, xf, boxes).item()
    head.train()
    for _ in range(400):
        loss = loss_of(*batch())
        opt.zero_grad()
        loss.backward()
        opt.step()
    head.eval()
    with torch.no_grad():
        last = loss_of(zf, xf, boxes).item()
        e = head(head.kernel(zf), xf)[:, :, 8, 8]
    assert last < 0.5 * first, (first, last)
    assert np.corrcoef((e[:, 0] + e[:, 2]).numpy(), boxes[:, 2].numpy())[0, 1] > 0.9
    assert np.corrcoef((e[:, 1] + e[:, 3]).numpy(), boxes[:, 3].numpy())[0, 1] > 0.9


def test_sampler_reports_the_box_it_cropped():
    cfg = PairConfig(jitter=0, gray_prob=0, blur_prob=0, shift=32.0, scale_jitter=0.3)
    sampler = PairSampler([_red_box_track()], cfg)
    rng = np.random.default_rng(2)
    sizes = []
    for _ in range(20):
        z, x, box = sampler.sample_with_box(rng)
        ys, xs = np.nonzero(_red_mask(x))
        seen = np.array([xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()], float)
        assert ops.iou(seen, box) > 0.85, (seen, box)
        sizes.append(np.sqrt(box[2] * box[3]))
    assert np.std(np.log(sizes)) > 0.1  # scale jitter varies the target's size in the crop


def test_sampler_with_new_options_off_draws_the_same_random_numbers_as_before():
    """With box output, negatives and distractors all off, a batch consumes the random stream
    exactly as before they existed (values recorded with commit d2f1e19), so runs started
    then still resume exactly."""
    t = _red_box_track(8)
    sampler = PairSampler([t, Track("b", t.frames[::-1], t.boxes[::-1], image_sizes=t.image_sizes)])
    after = []
    for seed in range(3):
        rng = np.random.default_rng([0, 0, seed])
        sampler.sample_batch(rng, 4, boxes=True)
        after.append(int(rng.integers(1 << 30)))
    assert after == [956056251, 842475680, 314473336]


@pytest.fixture(scope="module")
def backbone_weights(tmp_path_factory):
    torch.manual_seed(1)
    return save_weights(build_model("lite"), tmp_path_factory.mktemp("w") / "plain.pt")


def _box_trainer(out, init, **kw):
    cfg = TrainConfig(arch="lite", steps=4, batch_size=2, lr_start=1e-2, lr_end=1e-3, box_head=True,
                      init_weights=str(init), checkpoint_every_s=1e9, **kw)
    sampler = PairSampler([_red_box_track(8)], PairConfig(shift=16.0, scale_jitter=0.2))
    return Trainer(cfg, sampler, out, device="cpu")


def test_frozen_backbone_training_changes_only_the_box_head(tmp_path, backbone_weights):
    t = _box_trainer(tmp_path / "run", backbone_weights, freeze_backbone=True)
    before = {k: v.clone() for k, v in t.net.state_dict().items()}
    t.run(progress=False)
    after = t.net.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("box_head.") for k in changed), changed
    net, _ = load_model(tmp_path / "run" / "lite.pt")
    assert net.has_box_head


def test_joint_training_resumes_exactly(tmp_path, backbone_weights):
    full = _box_trainer(tmp_path / "a", backbone_weights)
    full.run(progress=False)
    half = _box_trainer(tmp_path / "b", backbone_weights)
    half.run(steps=2, progress=False)
    resumed = _box_trainer(tmp_path / "b", backbone_weights)
    resumed.resume()
    resumed.run(progress=False)
    for k, v in full.net.state_dict().items():
        assert torch.allclose(v, resumed.net.state_dict()[k], atol=1e-6), k
    with pytest.raises(CheckpointError, match="box_head"):
        Trainer(TrainConfig(arch="lite", steps=4, batch_size=2), PairSampler([_red_box_track(8)]), tmp_path / "b",
                device="cpu").resume()


def test_init_weights_must_fit(tmp_path):
    alex = save_weights(build_model("alexnet"), tmp_path / "alex.pt")
    with pytest.raises(ValueError, match="alex.pt"):
        _box_trainer(tmp_path / "run", alex)
    with pytest.raises(ValueError, match="--freeze-backbone. needs"):
        TrainConfig(freeze_backbone=True)


def _edges(r, box_at, cell):
    """Edge maps (1, 4, r, r) whose cell ``cell`` (row, col) proposes ``box_at`` = (cx, cy, w, h) in crop px
    from the crop centre; every other cell proposes a 20x20 box on itself."""
    e = np.full((1, 4, r, r), 10.0)
    cx, cy, w, h = box_at
    px, py = (cell[1] - (r - 1) / 2) * 8, (cell[0] - (r - 1) / 2) * 8
    e[0, :, cell[0], cell[1]] = [px - (cx - w / 2), py - (cy - h / 2), cx + w / 2 - px, cy + h / 2 - py]
    return e


def test_find_box_reads_the_winning_cells_box_in_image_px():
    r = 9
    resp = np.full((1, r, r), -5.0)
    resp[0, 2, 6] = 5.0
    edges = _edges(r, (21.0, -30.0, 40.0, 24.0), (2, 6))
    c = find_box(resp, edges, np.array([2.0]), np.array([80.0, 48.0]), np.ones((r, r)), 0.0, 0.04, 8)
    assert (c.dx, c.dy, c.w, c.h) == pytest.approx((42.0, -60.0, 80.0, 48.0))  # 2 image px per crop px
    assert c.logit == 5.0 and c.weight == pytest.approx(1 / (1 + np.exp(-5.0)))  # same size: no penalty


def test_find_box_penalises_size_changes_and_trusts_them_less():
    r = 9
    resp = np.full((1, r, r), -5.0)
    resp[0, 4, 2] = resp[0, 4, 6] = 2.0  # two equally good cells
    edges = _edges(r, (-16.0, 0.0, 60.0, 60.0), (4, 2))  # proposes 3x the current size
    edges[0, :, 4, 6] = [10.0, 10.0, 10.0, 10.0]  # proposes the current size (20x20)
    c = find_box(resp, edges, np.array([1.0]), np.array([20.0, 20.0]), np.ones((r, r)), 0.0, 0.1, 8)
    assert c.dx == pytest.approx(16.0) and c.w == pytest.approx(20.0)
    resp[0, 4, 6] = -5.0  # only the big proposal left: chosen, but with a lower weight than its score
    c = find_box(resp, edges, np.array([1.0]), np.array([20.0, 20.0]), np.ones((r, r)), 0.0, 0.5, 8)
    # Context sizes 120 vs 40 px: a 3x change, penalty exp(-(3 - 1) * 0.5).
    assert c.w == pytest.approx(60.0) and c.weight == pytest.approx(np.exp(-1.0) / (1 + np.exp(-2.0)))


def _shipped_box_net():
    """The shipped default network, which has a box head."""
    from tracker.networks.weights import DEFAULT

    net, _ = load_model(DEFAULT)
    assert net.has_box_head
    return net


def test_box_head_pipelines_agree_and_change_aspect():
    """numpy and torch pipelines (OpenCV vs on-device crops, then the same proposal choice) give the
    same box up to one response cell (8 crop px: the crops differ slightly, so near-ties between
    neighbouring cells can go either way); the box's aspect ratio follows the head (the scale
    pyramid alone keeps it fixed)."""
    from tracker.eval.synthetic import make_sequence

    frames, gt = make_sequence(20, seed=4)
    cfg = TrackerConfig(scale_num=1, scale_lr=0.5)
    net = _shipped_box_net()
    a = SiamFCTracker(net, cfg, device="cpu", pipeline="numpy")
    b = SiamFCTracker(net, cfg, device="cpu", pipeline="torch")
    a.init(frames[0], gt[0])
    b.init(frames[0], gt[0])
    aspects = []
    for f in frames[1:]:
        b.center, b.target_sz, b.x_sz = a.center.copy(), a.target_sz.copy(), a.x_sz
        ra, rb = a.update(f), b.update(f)
        cell = 8 * a.x_sz / a.config.instance_sz  # image px
        assert np.abs(np.subtract(ra.box, rb.box)).max() <= cell + 1e-6, (ra.box, rb.box)
        aspects.append(ra.box[2] / ra.box[3])
    assert np.ptp(aspects) > 0.02
    x, y, w, h = a.box
    assert w >= 0.2 * gt[0, 2] and h >= 0.2 * gt[0, 3]


def test_box_head_weights_without_settings_track_one_scale(tmp_path):
    path = save_weights(build_model("lite", box_head=True), tmp_path / "fresh-box.pt")
    t = SiamFCTracker.from_pretrained(str(path), device="cpu")
    assert t.net.has_box_head and t.config.scale_num == 1
    assert SiamFCTracker.from_pretrained(str(path), device="cpu", config={"scale_num": 3}).config.scale_num == 3


@pytest.mark.parametrize("field,value", [("negative_prob", 1.5), ("shift", -1.0),
                                         ("scale_jitter", -0.2)])
def test_pair_config_rejects_bad_values(field, value):
    with pytest.raises(ValueError, match=field):
        PairConfig(**{field: value})


def test_large_shift_moves_the_logistic_labels_with_the_target(tmp_path):
    sampler = PairSampler([_red_box_track(8)], PairConfig(shift=32.0))
    t = Trainer(TrainConfig(steps=2, batch_size=2, checkpoint_every_s=1e9), sampler, tmp_path, device="cpu")
    assert t.with_boxes and t.model.box_labels
    z, x, boxes = t._batch(0)
    assert boxes.dtype == torch.float32 and boxes.shape == (2, 4)
    assert not Trainer(TrainConfig(steps=2, batch_size=2), PairSampler([_red_box_track(8)]), tmp_path / "d",
                       device="cpu").model.box_labels
