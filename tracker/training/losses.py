"""Similarity-learning losses for Siamese training.

* :func:`balanced_logistic` — SiamFC's loss on the response map: positives within
  ``r_pos`` pixels of the centre, weights balanced so positives and negatives each
  contribute half.
* :func:`contrastive` and :func:`triplet` — margin losses on L2-normalised embeddings:
  the exemplar embedding is the anchor, the central window of its own search region's
  embedding is the positive, and another pair's search centre is the negative.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["response_labels", "balanced_logistic", "center_window", "contrastive", "triplet", "LOSSES"]


def response_labels(size: int, r_pos: float = 16.0, stride: int = 8, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Labels (1 inside ``r_pos`` px of the centre, else 0) and balanced weights, both (size, size)."""
    c = (size - 1) / 2
    ys, xs = torch.meshgrid(torch.arange(size, device=device), torch.arange(size, device=device), indexing="ij")
    dist = torch.sqrt((xs - c) ** 2 + (ys - c) ** 2) * stride
    labels = (dist <= r_pos).float()
    n_pos, n_neg = labels.sum(), (1 - labels).sum()
    weights = torch.where(labels > 0, 0.5 / n_pos, 0.5 / n_neg)
    return labels, weights


def balanced_logistic(responses: torch.Tensor, r_pos: float = 16.0, stride: int = 8) -> torch.Tensor:
    """Mean over the batch of the weighted logistic loss on (B, 1, S, S) responses whose target is centred."""
    labels, weights = response_labels(responses.shape[-1], r_pos, stride, responses.device)
    loss = F.binary_cross_entropy_with_logits(responses.float(), labels.expand_as(responses), weight=weights.expand_as(responses), reduction="sum")
    return loss / responses.shape[0]


def center_window(x_emb: torch.Tensor, size: int) -> torch.Tensor:
    """The central ``size`` x ``size`` window of search embeddings (B, C, H, W), where a centred target lies."""
    h, w = x_emb.shape[-2:]
    t, l = (h - size) // 2, (w - size) // 2
    return x_emb[..., t:t + size, l:l + size]


def _norm_flat(e: torch.Tensor) -> torch.Tensor:
    return F.normalize(e.float().flatten(1), dim=1)


def contrastive(z_emb: torch.Tensor, x_emb: torch.Tensor, margin: float = 0.5) -> torch.Tensor:
    """Contrastive loss: pull the exemplar towards its own search centre (``d^2``), push it at
    least ``margin`` away from the next pair's (``max(0, margin - d)^2``). Needs batch >= 2."""
    if z_emb.shape[0] < 2:
        raise ValueError("contrastive loss needs at least 2 pairs per batch (negatives come from other pairs)")
    a = _norm_flat(z_emb)
    p = _norm_flat(center_window(x_emb, z_emb.shape[-1]))
    n = p.roll(1, dims=0)
    d_pos = (a - p).norm(dim=1)
    d_neg = (a - n).norm(dim=1)
    return (d_pos.pow(2) + F.relu(margin - d_neg).pow(2)).mean() / 2


def triplet(z_emb: torch.Tensor, x_emb: torch.Tensor, margin: float = 0.3) -> torch.Tensor:
    """Triplet loss ``max(0, d(a, p) - d(a, n) + margin)`` with anchor = exemplar, positive =
    its own search centre, negative = another pair's search centre. Needs batch >= 2."""
    if z_emb.shape[0] < 2:
        raise ValueError("triplet loss needs at least 2 pairs per batch (negatives come from other pairs)")
    a = _norm_flat(z_emb)
    p = _norm_flat(center_window(x_emb, z_emb.shape[-1]))
    n = p.roll(1, dims=0)
    return F.relu((a - p).norm(dim=1) - (a - n).norm(dim=1) + margin).mean()


LOSSES = ("logistic", "contrastive", "triplet")
