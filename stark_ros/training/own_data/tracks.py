"""Pseudo-labelled tracks in unlabelled videos: Median Flow with forward-backward checks.

Box propagation is Median Flow (Kalal, Mikolajczyk & Matas, "Forward-Backward Error: Automatic Detection of
Tracking Failures", ICPR 2010): points on a grid inside the box (plus Shi-Tomasi corners) are tracked to
the next frame with pyramidal Lucas-Kanade and back again; the forward-backward (FB) error of a point is the
distance between its start and its back-tracked position. Points with an FB error above the median (and
above ``fb_point_max``) are dropped; the box moves by the median displacement of the rest and scales by
the median ratio of their pairwise distances.

Reliability (frames where it fails end the track; they are never written as "invisible", because in the
GOT-10k layout an invisible frame means the target is absent and stage 2 draws its negatives from them):
* a frame fails when fewer than ``min_points`` points survive, the median FB error exceeds ``fb_frame_max``
  pixels, the scale changes by more than 10 % in one frame, the box leaves the image, or the box's content
  no longer resembles the track's first box (normalised cross-correlation of the grayscale patches below
  ``ncc_min``): a box pinned to static background has a tiny FB error in both directions, so the FB checks
  alone cannot see that the object left it;
* a whole track is kept only if tracking it back from its last frame to its first (the same Median Flow,
  in reverse time) ends within IoU ``loop_iou_min`` of its first box: a drift of the forward track shows up
  as a closed-loop error, which bounds the accumulated drift, not just the per-frame error.

Boxes are ``(x, y, w, h)`` float pixels (0-based top-left corner) of the frames given.
"""
import cv2
import numpy as np

from .regions import box_iou

_LK = dict(winSize=(15, 15), maxLevel=3, criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03))


def _points(gray, box, grid=10):
    """Grid points plus corners inside ``box``, (N, 1, 2) float32."""
    x, y, w, h = box
    gx, gy = np.meshgrid(np.linspace(x + 0.1 * w, x + 0.9 * w, grid), np.linspace(y + 0.1 * h, y + 0.9 * h, grid))
    pts = [np.stack([gx.ravel(), gy.ravel()], 1)]
    x0, y0 = int(max(0, x)), int(max(0, y))
    x1, y1 = int(min(gray.shape[1], x + w)), int(min(gray.shape[0], y + h))
    if x1 - x0 >= 8 and y1 - y0 >= 8:
        corners = cv2.goodFeaturesToTrack(gray[y0:y1, x0:x1], 50, 0.01, 3)
        if corners is not None:
            pts.append(corners.reshape(-1, 2) + (x0, y0))
    return np.concatenate(pts).astype(np.float32).reshape(-1, 1, 2)


def median_flow_step(prev, curr, box, min_points=10, fb_point_max=2.0, mask=None):
    """Move ``box`` from grayscale frame ``prev`` to ``curr``.

    ``mask`` (same shape as ``prev``, bool) restricts the points to the object's pixels in ``prev`` (the
    foreground of a static camera): without it the box's background points, whose FB error is smallest,
    can pin a box to the background while the object walks away.

    Returns:
        (new box, median FB error in pixels, number of surviving points); the box is None when fewer than
        ``min_points`` points survive.
    """
    p0 = _points(prev, box)
    if mask is not None:
        xy = np.round(p0.reshape(-1, 2)).astype(int)
        xy[:, 0] = np.clip(xy[:, 0], 0, mask.shape[1] - 1)
        xy[:, 1] = np.clip(xy[:, 1], 0, mask.shape[0] - 1)
        p0 = p0[mask[xy[:, 1], xy[:, 0]]]
        if len(p0) < min_points:
            return None, float('inf'), len(p0)
    p1, st1, _ = cv2.calcOpticalFlowPyrLK(prev, curr, p0, None, **_LK)
    p0b, st2, _ = cv2.calcOpticalFlowPyrLK(curr, prev, p1, None, **_LK)
    ok = (st1.ravel() == 1) & (st2.ravel() == 1)
    fb = np.linalg.norm((p0 - p0b).reshape(-1, 2), axis=1)
    if ok.sum() < min_points:
        return None, float('inf'), int(ok.sum())
    fb_all = float(np.median(fb[ok]))
    keep = ok & (fb <= max(np.median(fb[ok]), 1e-3)) & (fb <= fb_point_max)
    if keep.sum() < min_points:
        return None, fb_all, int(keep.sum())
    a, b = p0.reshape(-1, 2)[keep], p1.reshape(-1, 2)[keep]
    dx, dy = np.median(b - a, axis=0)
    i, j = np.triu_indices(len(a), 1)
    da = np.linalg.norm(a[i] - a[j], axis=1)
    db = np.linalg.norm(b[i] - b[j], axis=1)
    valid = da > 1.0
    scale = float(np.median(db[valid] / da[valid])) if valid.any() else 1.0
    x, y, w, h = box
    cx, cy = x + w / 2 + dx, y + h / 2 + dy
    return (cx - w * scale / 2, cy - h * scale / 2, w * scale, h * scale), fb_all, int(keep.sum())


def _inside(box, shape, margin=0.0):
    x, y, w, h = box
    return x >= -margin and y >= -margin and x + w <= shape[1] + margin and y + h <= shape[0] + margin


def appearance_ncc(gray, template, box):
    """Normalised cross-correlation of ``template`` (resized to the box) with the box's patch of ``gray``."""
    x, y, w, h = (int(round(v)) for v in box)
    x0, y0, x1, y1 = max(0, x), max(0, y), min(gray.shape[1], x + w), min(gray.shape[0], y + h)
    if x1 - x0 < 4 or y1 - y0 < 4 or min(template.shape) < 2:
        return -1.0
    resized = cv2.resize(template, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
    return float(cv2.matchTemplate(gray[y0:y1, x0:x1], resized, cv2.TM_CCOEFF_NORMED)[0, 0])


def _patch(gray, box):
    x, y, w, h = (int(round(v)) for v in box)
    return gray[max(0, y):max(0, y + h), max(0, x):max(0, x + w)]


def follow(grays, start, box, max_len, step=1, min_points=10, fb_frame_max=1.0, ncc_min=0.5, masks=None):
    """Track ``box`` from frame ``start`` in direction ``step`` (+1 / -1) for at most ``max_len`` frames.

    ``masks``: optional per-frame object masks (see :func:`median_flow_step`).

    Returns:
        (boxes, fb_errors): boxes of the frames start, start+step, ... while tracking is reliable (the first
        is ``box``); fb_errors[k] is the median FB error (pixels) of the step into frame k (0 for the first).
    """
    boxes, errors = [tuple(box)], [0.0]
    template = _patch(grays[start], box)
    t = start
    while len(boxes) < max_len and 0 <= t + step < len(grays):
        new, fb, _ = median_flow_step(grays[t], grays[t + step], boxes[-1], min_points,
                                      mask=None if masks is None else masks[t])
        if new is None or fb > fb_frame_max or not _inside(new, grays[0].shape, margin=2.0):
            break
        if abs(new[2] / boxes[-1][2] - 1.0) > 0.1 or min(new[2], new[3]) < 8:
            break
        if appearance_ncc(grays[t + step], template, new) < ncc_min:
            break
        boxes.append(new)
        errors.append(fb)
        t += step
    return boxes, errors


def pseudo_track(grays, start, box, max_len=150, min_len=20, loop_iou_min=0.6, masks=None):
    """One checked track (method in the module docstring); ``masks`` as in :func:`follow`.

    Returns:
        dict with ``start`` (frame index), ``boxes`` (N, 4) float64, ``fb`` (N,) median FB errors, ``loop_iou``
        (IoU of the back-tracked first box with the real one), or None when the track is shorter than
        ``min_len`` or fails the closed-loop check.
    """
    boxes, errors = follow(grays, start, box, max_len, masks=masks)
    if len(boxes) < min_len:
        return None
    back, _ = follow(grays, start + len(boxes) - 1, boxes[-1], len(boxes), step=-1, ncc_min=-1.0, masks=masks)
    loop_iou = box_iou(back[-1], boxes[0]) if len(back) == len(boxes) else 0.0
    if loop_iou < loop_iou_min:
        return None
    return {'start': start, 'boxes': np.array(boxes, np.float64), 'fb': np.array(errors), 'loop_iou': loop_iou}


def moving_regions(frames, static_history=50, min_area=0.002, max_area=0.2):
    """Boxes of moving objects per frame for a static camera (MOG2 background subtraction).

    Args:
        frames: list of (H, W) uint8 grayscale frames.
    Returns:
        (boxes, masks): boxes[t] is a list of ``(x, y, w, h)`` (empty for the first ``static_history``
        frames), masks[t] the (H, W) bool foreground of frame t (dilated, so object borders keep points).
    """
    subtractor = cv2.createBackgroundSubtractorMOG2(history=static_history * 4, detectShadows=False)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    h, w = frames[0].shape
    out, masks = [], []
    for t, gray in enumerate(frames):
        fg = subtractor.apply(gray)
        fg = cv2.morphologyEx(cv2.morphologyEx(fg, cv2.MORPH_OPEN, kernel), cv2.MORPH_CLOSE, kernel, iterations=2)
        masks.append(cv2.dilate(fg, kernel) > 0)
        if t < static_history:
            out.append([])
            continue
        count, _, stats, _ = cv2.connectedComponentsWithStats((fg > 0).astype(np.uint8))
        boxes = []
        for i in range(1, count):
            x, y, bw, bh, area = (int(v) for v in stats[i])
            if min_area <= area / float(w * h) <= max_area and min(bw, bh) >= 12 and area / float(bw * bh) > 0.3:
                boxes.append((float(x), float(y), float(bw), float(bh)))
        out.append(boxes)
    return out, masks
