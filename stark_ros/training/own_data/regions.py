"""Object-like regions in an unlabelled image: the targets made from photos and video frames without labels.

Method (OpenCV core only, deterministic): the image, shrunk to at most ``work_size`` pixels on its long side
and smoothed, is clustered in (L, a, b, x, y) space with k-means at three granularities (a SLIC-like
over-segmentation whose segments follow colour edges). Each connected component of a cluster is a candidate.
Candidates are kept if their area is 0.2-25 % of the image, the box side is at least ``min_side`` pixels,
the aspect ratio is within 1:4..4:1 and the segment fills at least 35 % of its box. They are ranked by
colour contrast against a ring around them (mean Lab distance, times the square root of the fill ratio:
a compact segment that differs from its surroundings looks like an object; halved for segments touching
the image border, which are mostly background), and a greedy non-maximum
suppression at IoU 0.5 keeps the best ``max_regions``.

Boxes are ``(x, y, w, h)`` in pixels of the input image (0-based, top-left corner); masks are boolean
arrays of the box's size at the input resolution.
"""
from dataclasses import dataclass

import cv2
import numpy as np

#: (number of clusters, weight of the x/y features relative to colour) of the two k-means passes.
_PASSES = ((4, 0.3), (8, 0.6), (16, 0.9))


@dataclass(frozen=True)
class Region:
    """One object-like region.

    Attributes:
        box: ``(x, y, w, h)`` float pixels in the input image.
        mask: (round(h), round(w)) bool, the segment inside the box (None for labelled boxes without masks).
        score: contrast score (higher is more object-like; Lab units).
    """

    box: tuple
    mask: object
    score: float


def box_iou(a, b):
    """IoU of two ``(x, y, w, h)`` boxes (0 when either is empty)."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def acceptable_box(w, h, image_w, image_h, min_side=12.0, min_area=0.002, max_area=0.25, max_aspect=4.0):
    """Size and aspect filter shared by proposals and labelled boxes (sizes in pixels, areas as image fractions)."""
    if min(w, h) < min_side:
        return False
    area = w * h / float(image_w * image_h)
    return min_area <= area <= max_area and max(w / h, h / w) <= max_aspect


def propose_regions(image, max_regions=20, seed=0, work_size=512, min_side=12.0):
    """Object-like regions of one image (method in the module docstring).

    Args:
        image: (H, W, 3) uint8 BGR image.
        max_regions: at most this many regions are returned, best first.
        seed: seed of OpenCV's k-means initialisation (the result is deterministic for a given seed).
        work_size: long side, pixels, of the image the segmentation runs on.
        min_side: smallest box side kept, pixels of the input image.
    Returns:
        list of :class:`Region`, best first.
    """
    h, w = image.shape[:2]
    scale = min(1.0, work_size / float(max(h, w)))
    small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (5, 5), 0)
    lab = cv2.cvtColor(small, cv2.COLOR_BGR2LAB).astype(np.float32)
    sh, sw = lab.shape[:2]
    ys, xs = np.mgrid[0:sh, 0:sw].astype(np.float32)
    candidates = []
    for k, xy_weight in _PASSES:
        norm = 100.0 / max(sh, sw) * xy_weight
        feats = np.concatenate([lab.reshape(-1, 3), (xs * norm).reshape(-1, 1), (ys * norm).reshape(-1, 1)], axis=1)
        cv2.setRNGSeed(seed)
        _, labels, _ = cv2.kmeans(feats, k, None, (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 10, 1.0),
                                  1, cv2.KMEANS_PP_CENTERS)
        labels = labels.reshape(sh, sw)
        for c in range(k):
            candidates.extend(_components(labels == c, lab, scale, (w, h), min_side))
    candidates.sort(key=lambda r: -r.score)
    kept = []
    for region in candidates:
        if all(box_iou(region.box, other.box) < 0.5 for other in kept):
            kept.append(region)
            if len(kept) == max_regions:
                break
    return kept


def _components(cluster, lab, scale, size, min_side):
    """Candidate regions from the connected components of one cluster's mask (small-image coordinates)."""
    w, h = size
    cluster = cv2.morphologyEx(cluster.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    count, comp, stats, _ = cv2.connectedComponentsWithStats(cluster, connectivity=8)
    out = []
    for i in range(1, count):
        x, y, bw, bh, area = (int(v) for v in stats[i])
        box = (x / scale, y / scale, bw / scale, bh / scale)
        fill = area / float(bw * bh)
        if fill < 0.35 or not acceptable_box(box[2], box[3], w, h, min_side=min_side):
            continue
        mask = comp[y:y + bh, x:x + bw] == i
        pad = max(2, int(0.3 * np.sqrt(area)))
        x0, y0 = max(0, x - pad), max(0, y - pad)
        x1, y1 = min(comp.shape[1], x + bw + pad), min(comp.shape[0], y + bh + pad)
        inside = np.zeros((y1 - y0, x1 - x0), np.uint8)
        inside[y - y0:y - y0 + bh, x - x0:x - x0 + bw] = mask
        ring = cv2.dilate(inside, np.ones((2 * pad + 1, 2 * pad + 1), np.uint8)) & (1 - inside)
        if ring.sum() == 0:
            continue
        patch = lab[y0:y1, x0:x1]
        contrast = float(np.linalg.norm(patch[inside > 0].mean(0) - patch[ring > 0].mean(0)))
        full_mask = cv2.resize(mask.astype(np.uint8), (max(1, round(box[2])), max(1, round(box[3]))),
                               interpolation=cv2.INTER_NEAREST) > 0
        touches = x == 0 or y == 0 or x + bw == comp.shape[1] or y + bh == comp.shape[0]
        out.append(Region(box, full_mask, contrast * np.sqrt(fill) * (0.5 if touches else 1.0)))
    return out
