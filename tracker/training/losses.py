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

from ..networks.models import response_positions

__all__ = ["response_labels", "balanced_logistic", "center_window", "contrastive", "triplet", "box_targets", "box_giou",
           "LOSSES"]


def _disc_labels(offsets: torch.Tensor, size: int, r_pos: float, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Labels (1 within ``r_pos`` px of each target centre, else 0) and balanced weights, both
    (B, 1, size, size). ``offsets`` (B, 2): target centres as (x, y) px from the crop centre;
    a NaN row (negative pair) has no positives. Positives and negatives each weigh 1/2."""
    cells = (torch.arange(size, device=offsets.device, dtype=torch.float32) - (size - 1) / 2) * stride
    dx = cells.view(1, 1, size) - offsets[:, 0, None, None].float()
    dy = cells.view(1, size, 1) - offsets[:, 1, None, None].float()
    labels = (torch.sqrt(dx ** 2 + dy ** 2) <= r_pos).float()[:, None]  # NaN distance: negative
    n_pos = labels.sum((2, 3), keepdim=True).clamp(min=1)
    n_neg = (1 - labels).sum((2, 3), keepdim=True).clamp(min=1)
    return labels, torch.where(labels > 0, 0.5 / n_pos, 0.5 / n_neg)


def response_labels(size: int, r_pos: float = 16.0, stride: int = 8, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Labels (1 inside ``r_pos`` px of the centre, else 0) and balanced weights, both (size, size)."""
    labels, weights = _disc_labels(torch.zeros(1, 2, device=device), size, r_pos, stride)
    return labels[0, 0], weights[0, 0]


def balanced_logistic(responses: torch.Tensor, r_pos: float = 16.0, stride: int = 8,
                      boxes: torch.Tensor | None = None, instance_sz: int = 255,
                      negatives: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over the batch of the weighted logistic loss on (B, 1, S, S) responses.

    The target is centred in the search crop, or, given ``boxes`` (B, 4) ``(x, y, w, h)`` in
    search-crop px, positives lie within ``r_pos`` px of each box's centre (a NaN box: none).
    ``negatives`` (B,) bool marks negative pairs (no positives; every cell a negative)."""
    if boxes is None:
        offsets = torch.zeros(responses.shape[0], 2, device=responses.device)
    else:
        offsets = (boxes[:, :2] + boxes[:, 2:] / 2).float().to(responses.device) - instance_sz / 2
    if negatives is not None:
        offsets[negatives.to(responses.device)] = float("nan")
    labels, weights = _disc_labels(offsets, responses.shape[-1], r_pos, stride)
    loss = F.binary_cross_entropy_with_logits(responses.float(), labels, weight=weights, reduction="sum")
    return loss / responses.shape[0]


def box_targets(boxes: torch.Tensor, size: int, radius: float = 24.0, instance_sz: int = 255) -> tuple[torch.Tensor, torch.Tensor]:
    """Edge-distance targets (B, 4, S, S) and the mask (B, S, S) of cells that learn them.

    ``boxes`` (B, 4) are ``(x, y, w, h)`` in search-crop px. A cell learns its box when its
    centre lies inside the box and within ``radius`` px of the box centre (where the
    response peak falls when tracking); so does the cell nearest the centre whenever that
    cell lies inside the box."""
    pos = response_positions(size, instance_sz, boxes.device)  # (2, S, S) x, y
    b = boxes.float()
    x1, y1 = b[:, 0, None, None], b[:, 1, None, None]
    x2, y2 = x1 + b[:, 2, None, None], y1 + b[:, 3, None, None]
    px, py = pos[0][None], pos[1][None]
    target = torch.stack([px - x1, py - y1, x2 - px, y2 - py], dim=1)
    inside = target.min(dim=1).values > 0
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    dist = torch.sqrt((px - cx) ** 2 + (py - cy) ** 2)
    nearest = dist.flatten(1).argmin(1)
    mask = inside & (dist <= radius)
    mask.view(len(b), -1)[torch.arange(len(b), device=b.device), nearest] |= inside.view(len(b), -1)[
        torch.arange(len(b), device=b.device), nearest]
    return target, mask


def box_giou(pred: torch.Tensor, boxes: torch.Tensor, radius: float = 24.0, instance_sz: int = 255) -> torch.Tensor:
    """Mean ``1 - GIoU`` between predicted edge distances (B, 4, S, S) and the true box at the
    cells chosen by :func:`box_targets`; 0 when no cell qualifies (target outside the crop)."""
    target, mask = box_targets(boxes, pred.shape[-1], radius, instance_sz)
    p = pred.float().permute(0, 2, 3, 1)[mask]  # (M, 4) l, t, r, b
    t = target.permute(0, 2, 3, 1)[mask]
    if len(p) == 0:
        return pred.sum() * 0.0
    area_p = (p[:, 0] + p[:, 2]) * (p[:, 1] + p[:, 3])
    area_t = (t[:, 0] + t[:, 2]) * (t[:, 1] + t[:, 3])
    inter = (torch.minimum(p[:, 0], t[:, 0]) + torch.minimum(p[:, 2], t[:, 2])) * \
            (torch.minimum(p[:, 1], t[:, 1]) + torch.minimum(p[:, 3], t[:, 3]))
    union = area_p + area_t - inter
    enclose = (torch.maximum(p[:, 0], t[:, 0]) + torch.maximum(p[:, 2], t[:, 2])) * \
              (torch.maximum(p[:, 1], t[:, 1]) + torch.maximum(p[:, 3], t[:, 3]))
    giou = inter / union - (enclose - union) / enclose
    return (1 - giou).mean()


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
