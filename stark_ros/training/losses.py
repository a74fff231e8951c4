"""Training losses of STARK: GIoU and L1 on the box (stage 1), binary cross-entropy on the score (stage 2).

Source: STARK_FACTS.md section 12 (official ``lib/train/actors/stark_s.py`` / ``stark_st.py``): the predicted box
(cxcywh, normalised to the search region) and the ground truth (xywh, normalised, then clamped to [0, 1] as
corners) are compared as corners (xyxy); ``L = 2.0 * mean(1 - GIoU) + 5.0 * mean|pred - gt|`` (the L1 mean runs over
the 4 coordinates of every box); stage 2: ``BCE-with-logits(score logit, label)`` with weight 1. GIoU is
Rezatofighi et al., "Generalized Intersection over Union", CVPR 2019.

Unlike the official actor, a degenerate predicted box (x2 < x1 or y2 < y1, which the corner head produces early in
training) does not zero the GIoU loss of its batch: its area counts as 0, the enclosing box spans all corners of
both boxes, so the loss stays finite, lies in [1, 2) and still pulls the corners towards the ground truth; the L1
term restores the corner order.
"""
import torch
import torch.nn.functional as F

#: Loss weights of the official recipe (``TRAIN.GIOU_WEIGHT``, ``TRAIN.L1_WEIGHT``, stage-2 cls weight).
DEFAULT_WEIGHTS = {'giou': 2.0, 'l1': 5.0, 'cls': 1.0}


def cxcywh_to_xyxy(boxes):
    """(..., 4) ``(cx, cy, w, h)`` -> ``(x1, y1, x2, y2)``; negative sizes give x2 < x1 (kept, not fixed)."""
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack((cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h), dim=-1)


def xywh_to_xyxy(boxes):
    """(..., 4) ``(x, y, w, h)`` (top-left corner + size) -> ``(x1, y1, x2, y2)``."""
    x, y, w, h = boxes.unbind(-1)
    return torch.stack((x, y, x + w, y + h), dim=-1)


def generalized_iou(pred, target, eps=1e-7):
    """Element-wise GIoU of matching box pairs, defined for degenerate predicted boxes too.

    Args:
        pred: (N, 4) xyxy; x2 < x1 or y2 < y1 allowed (area counted as 0).
        target: (N, 4) xyxy with x2 >= x1, y2 >= y1.
        eps: lower bound of the union and enclosing areas (only reached when both boxes have zero area).
    Returns:
        ``(giou, iou)``, each (N,), giou in [-1, 1]. For proper boxes both equal the textbook values
        (Rezatofighi et al. 2019): ``giou = iou - (C - U) / C`` with C the enclosing box area and U the union.
    """
    pw = (pred[:, 2] - pred[:, 0]).clamp(min=0)
    ph = (pred[:, 3] - pred[:, 1]).clamp(min=0)
    tw = (target[:, 2] - target[:, 0]).clamp(min=0)
    th = (target[:, 3] - target[:, 1]).clamp(min=0)
    iw = (torch.minimum(pred[:, 2], target[:, 2]) - torch.maximum(pred[:, 0], target[:, 0])).clamp(min=0)
    ih = (torch.minimum(pred[:, 3], target[:, 3]) - torch.maximum(pred[:, 1], target[:, 1])).clamp(min=0)
    inter = iw * ih
    union = (pw * ph + tw * th - inter).clamp(min=eps)
    iou = inter / union
    # Enclosing box of all four x and all four y coordinates: equal to the usual one for proper boxes.
    xs = torch.stack((pred[:, 0], pred[:, 2], target[:, 0], target[:, 2]), dim=1)
    ys = torch.stack((pred[:, 1], pred[:, 3], target[:, 1], target[:, 3]), dim=1)
    enclosing = ((xs.amax(1) - xs.amin(1)) * (ys.amax(1) - ys.amin(1))).clamp(min=eps)
    return iou - (enclosing - union) / enclosing, iou


def box_losses(pred_boxes, gt_boxes):
    """GIoU and L1 losses of predicted boxes against ground truth, both normalised to the search region.

    Args:
        pred_boxes: (B, 4) or (B, 1, 4) cxcywh, normalised (network output).
        gt_boxes: (B, 4) xywh normalised to the search crop (sampler output); its corners are clamped to [0, 1].
    Returns:
        dict of 0-d tensors: ``giou`` = mean(1 - GIoU), ``l1`` = mean absolute corner difference, ``iou`` = mean
        IoU (detached, for logging).
    Raises:
        ValueError: a batch-size mismatch.
    """
    pred = cxcywh_to_xyxy(pred_boxes.reshape(-1, 4))
    target = xywh_to_xyxy(gt_boxes.reshape(-1, 4).to(pred.dtype)).clamp(min=0.0, max=1.0)
    if pred.shape[0] != target.shape[0]:
        raise ValueError('%d predicted boxes for %d ground-truth boxes' % (pred.shape[0], target.shape[0]))
    giou, iou = generalized_iou(pred, target)
    return {'giou': (1.0 - giou).mean(), 'l1': F.l1_loss(pred, target), 'iou': iou.detach().mean()}


def score_loss(pred_logits, labels):
    """Stage-2 loss: binary cross-entropy with logits of the confidence score (STARK_FACTS.md section 12).

    Args:
        pred_logits: (B, 1, 1) or (B,) raw score logits.
        labels: (B,) 1 = the search region holds the target, 0 = it does not.
    Returns:
        0-d tensor, the mean over the batch.
    """
    logits = pred_logits.reshape(-1)
    return F.binary_cross_entropy_with_logits(logits, labels.reshape(-1).to(logits.dtype))
