"""Scale-aware response labels: the pairs' size mismatch, the soft positives, and training with them."""
import numpy as np
import pytest
import torch

from tracker import ops
from tracker.training.losses import balanced_logistic
from tracker.training.pairs import PairConfig, PairSampler, size_mismatch
from tracker.training.trainer import Trainer, TrainConfig

from .test_training import _red_box_track, _red_mask


def _seen_context(img: np.ndarray) -> float:
    """SiamFC's context size of the red target as it appears in a crop (px)."""
    ys, xs = np.nonzero(_red_mask(img))
    return float(ops.context_size(xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()))


def test_size_mismatch_is_how_much_larger_the_target_looks_in_the_search_crop():
    cfg = PairConfig(jitter=0, gray_prob=0, blur_prob=0, shift=16.0, scale_jitter=0.3)
    sampler = PairSampler([_red_box_track(8)], cfg)
    z, x, boxes, m = sampler.sample_batch(np.random.default_rng(3), 16, boxes=True, scales=True)
    assert m.shape == (16,)
    seen = np.array([np.log(_seen_context(xi) / _seen_context(zi)) for zi, xi in zip(z, x)])
    assert np.abs(seen - m).max() < 0.06, np.c_[seen, m]  # measured on the pixels, to a pixel's rounding
    assert m.std() > 0.1  # the frames' sizes and the scale jitter vary it


def test_size_mismatch_is_nan_for_negative_pairs_and_needs_boxes():
    t = _red_box_track(6)
    sampler = PairSampler([t, _red_box_track(6, seed=1)], PairConfig(negative_prob=1.0))
    _, _, boxes, m = sampler.sample_batch(np.random.default_rng(0), 4, boxes=True, scales=True)
    assert np.isnan(boxes).all() and np.isnan(m).all()
    with pytest.raises(ValueError, match="scales needs boxes"):
        sampler.sample_batch(np.random.default_rng(0), 2, scales=True)
    assert size_mismatch(np.array([10.0, 10, 40, 20]), np.array([0.0, 0, 20, 10]))[0] == pytest.approx(np.log(2))


def test_scale_aware_labels_soften_the_positives_of_mismatched_pairs():
    r = torch.full((3, 1, 17, 17), -4.0)
    r[:, 0, 7:10, 7:10] = 4.0  # confident at the centre: right for a pair at the exemplar's scale
    plain = balanced_logistic(r)
    assert balanced_logistic(r, scale_sigma=0.0, mismatch=torch.tensor([0.5, 0.5, 0.5])) == plain
    losses = [balanced_logistic(r, mismatch=torch.full((3,), m), scale_sigma=0.2).item() for m in (0.0, 0.1, 0.3)]
    assert losses[0] == pytest.approx(plain.item(), rel=1e-6)
    assert losses[0] < losses[1] < losses[2]  # the more the sizes differ, the more a confident peak costs
    # The response minimising the loss peaks lower for a mismatched pair: a softer positive.
    logit = torch.zeros(1, 1, 17, 17, requires_grad=True)
    opt = torch.optim.SGD([logit], lr=50.0)
    for _ in range(300):
        opt.zero_grad()
        balanced_logistic(logit, mismatch=torch.tensor([0.2]), scale_sigma=0.2).backward()
        opt.step()
    assert torch.sigmoid(logit[0, 0, 8, 8]).item() == pytest.approx(np.exp(-0.5), abs=0.02)
    negative = torch.tensor([float("nan")])
    assert balanced_logistic(r[:1], negatives=torch.tensor([True]), mismatch=negative, scale_sigma=0.2) == \
        balanced_logistic(r[:1], negatives=torch.tensor([True]))
    with pytest.raises(ValueError, match="needs mismatch"):
        balanced_logistic(r, scale_sigma=0.2)


def test_training_with_scale_sigma_feeds_the_mismatch_to_the_loss(tmp_path):
    sampler = PairSampler([_red_box_track(8)], PairConfig(shift=32.0, scale_jitter=0.3))
    t = Trainer(TrainConfig(steps=2, batch_size=2, checkpoint_every_s=1e9, scale_sigma=0.2), sampler, tmp_path,
                device="cpu")
    batch = t._batch(0)
    assert len(batch) == 4 and batch[3].shape == (2,) and torch.isfinite(batch[3]).all()
    with torch.no_grad():
        matched = t.model(*batch[:3], torch.zeros(2)).item()
        mismatched = t.model(*batch[:3], torch.full((2,), 0.4)).item()
    assert np.isfinite(matched) and mismatched != matched  # the mismatch reaches the loss
    losses = t.run(progress=False)
    assert len(losses) == 2 and all(np.isfinite(losses))
    off = Trainer(TrainConfig(steps=2, batch_size=2, checkpoint_every_s=1e9), sampler, tmp_path / "off", device="cpu")
    assert len(off._batch(0)) == 3  # without scale labels the batch is as before


@pytest.mark.parametrize("kwargs", [{"scale_sigma": -0.1}, {"scale_sigma": 0.2, "loss": "triplet", "batch_size": 2},
                                    {"scale_sigma": 0.2, "box_head": True, "init_weights": "x.pt", "freeze_backbone": True}])
def test_train_config_rejects_bad_scale_sigma(kwargs):
    with pytest.raises(ValueError, match="scale_sigma"):
        TrainConfig(**kwargs)
