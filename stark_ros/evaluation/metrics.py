"""One-pass-evaluation metrics, one function per toolkit protocol. Pure NumPy: metrics never read files.

Every protocol takes a list of :class:`TrackRecord` (one tracker on one sequence each) and returns
:class:`Scores`. The rules are the toolkits' own, read from their sources (``EVALUATION_FACTS.md``, commits named
there); where they differ the function says so. Boxes are ``(x, y, w, h)`` in pixels everywhere.

Metric keys (fractions in [0, 1] except FPS):

``AUC``  success AUC (mean of the success curve; TrackingNet: trapezoid area)
``OP50`` / ``OP75``  success curve at IoU 0.5 / 0.75
``P``    precision (centre error <= 20 px; TrackingNet: area under the precision curve)
``NP``   normalized precision (normalized centre error <= 0.20; TrackingNet: area)
``AO`` / ``SR50`` / ``SR75``  GOT-10k average overlap and success rates
``FPS``  frames per second (protocol-specific average, see each function)
``ScoreAUROC``  area under the ROC curve of the per-frame confidence score for the event "IoU with the ground truth
         > 0.5" (:func:`score_roc_auc`); the same for every protocol, present only for trackers with scores
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..errors import StarkError


class ResultsError(StarkError):
    """Tracker results that a protocol refuses (NaN or negative sizes, wrong length); the message names them."""


@dataclass(frozen=True)
class TrackRecord:
    """One tracker's one-pass run on one sequence, with what the protocols need of the sequence.

    Attributes:
        name: sequence name.
        pred: (N, 4) float predicted ``(x, y, w, h)``; row 0 is the init box.
        gt: (N, 4) float ground truth; NaN rows where unknown.
        times: (N,) seconds per frame (frame 0: initialisation) or None.
        image_size: ``(width, height)`` in pixels (GOT-10k clips boxes to the image), or None.
        extra: per-frame arrays of the dataset (``'cover'``, ``'full_occlusion'``, ``'out_of_view'``).
        source: where ``pred`` came from (a results file), for error messages.
        scores: (N,) float confidence score per frame in [0, 1] (NaN where unknown; row 0 is the init frame), or
            None for a tracker without one.
    """

    name: str
    pred: np.ndarray
    gt: np.ndarray
    times: Optional[np.ndarray] = None
    image_size: Optional[Tuple[int, int]] = None
    extra: Dict[str, np.ndarray] = field(default_factory=dict)
    source: str = ''
    scores: Optional[np.ndarray] = None


@dataclass
class Scores:
    """A protocol's scores for one tracker.

    Attributes:
        protocol: the protocol name.
        overall: metric key -> value (keys as in the module docstring; only the protocol's own metrics).
        per_sequence: sequence name -> {metric key -> value}.
        curves: curve name (``'success'``, ``'precision'``, ``'norm_precision'``) -> ``(thresholds, values)``,
            the dataset-level curves the plots draw.
    """

    protocol: str
    overall: Dict[str, float]
    per_sequence: Dict[str, Dict[str, float]]
    curves: Dict[str, Tuple[np.ndarray, np.ndarray]]


# ----------------------------------------------------------------------------------------------- geometry


def iou_xywh(a, b):
    """IoU of (N, 4) ``(x, y, w, h)`` boxes with continuous areas: intersection / union (no epsilon; 0/0 is NaN).

    The pytracking (``calc_iou_overlap``: ``x + w - 1`` corners, ``+ 1`` sizes) and LaSOT (``calcRectInt``)
    forms reduce to exactly this.
    """
    tl = np.maximum(a[:, :2], b[:, :2])
    br = np.minimum(a[:, :2] + a[:, 2:], b[:, :2] + b[:, 2:])
    inter = np.prod(np.clip(br - tl, 0, None), axis=1)
    union = np.prod(a[:, 2:], axis=1) + np.prod(b[:, 2:], axis=1) - inter
    with np.errstate(invalid='ignore', divide='ignore'):
        return inter / union


def toolkit_iou(a, b, bound=None):
    """The got10k toolkit's ``rect_iou``: continuous areas, ``inter / (union + eps)`` clipped to [0, 1]; with
    ``bound = (W, H)`` both boxes are first clipped to the image (x into [0, W], w into [0, W - x]; same for y, h).
    (got-10k/toolkit ``got10k/utils/metrics.py``, EVALUATION_FACTS.md section 2.)"""
    if bound is not None:
        a, b = _clip_to_image(a, bound), _clip_to_image(b, bound)
    tl = np.maximum(a[:, :2], b[:, :2])
    br = np.minimum(a[:, :2] + a[:, 2:], b[:, :2] + b[:, 2:])
    inter = np.prod(np.clip(br - tl, 0, None), axis=1)
    union = np.prod(a[:, 2:], axis=1) + np.prod(b[:, 2:], axis=1) - inter
    return np.clip(inter / (union + np.finfo(float).eps), 0.0, 1.0)


def _clip_to_image(boxes, bound):
    boxes = np.array(boxes, dtype=np.float64)
    for axis, limit in enumerate(bound):
        boxes[:, axis] = np.clip(boxes[:, axis], 0, limit)
        boxes[:, axis + 2] = np.clip(boxes[:, axis + 2], 0, limit - boxes[:, axis])
    return boxes


def centers(boxes, offset):
    """Box centres ``xy + (wh + offset) / 2``: offset -1 in the got10k toolkit, pytracking and LaSOT, +1 in the
    TrackingNet devkit. (The offset cancels in a centre error between two boxes.)"""
    return boxes[:, :2] + (boxes[:, 2:] + offset) / 2.0


def center_error(a, b, offset=-1.0, normalize_by=None):
    """Euclidean distance of the centres, in pixels; with ``normalize_by`` (N, 2) sizes each axis is divided
    first (normalized precision)."""
    delta = centers(a, offset) - centers(b, offset)
    if normalize_by is not None:
        with np.errstate(invalid='ignore', divide='ignore'):
            delta = delta / normalize_by
    return np.sqrt(np.sum(delta ** 2, axis=1))


# ----------------------------------------------------------------------------------------------- helpers

#: IoU thresholds: the got10k toolkit's ``linspace(0, 1, 21)``; pytracking's ``torch.arange(0, 1.05, 0.05)``
#: (``i * 0.05``) is one ulp above it at 0.65 and 0.75, which decides an IoU of exactly 0.75 (OP75).
OVERLAP_21 = np.linspace(0.0, 1.0, 21)
OVERLAP_ARANGE = np.linspace(0.0, 1.0, 21)
OVERLAP_ARANGE[[13, 15]] = np.nextafter(OVERLAP_ARANGE[[13, 15]], 1.0)
PIXELS_51 = np.arange(0, 51, dtype=np.float64)
NORMALIZED_51 = np.arange(0, 51, dtype=np.float64) / 100.0


def _success(ious, thresholds, length, inclusive=False):
    """Fraction of ``length`` frames whose IoU is ``>`` (or ``>=``) each threshold; NaN never succeeds."""
    compare = np.greater_equal if inclusive else np.greater
    with np.errstate(invalid='ignore'):
        return compare(ious[:, None], thresholds[None, :]).sum(axis=0) / float(length)


def _within(errors, thresholds, length):
    """Fraction of ``length`` frames whose error is ``<=`` each threshold; NaN never succeeds."""
    with np.errstate(invalid='ignore'):
        return np.less_equal(errors[:, None], thresholds[None, :]).sum(axis=0) / float(length)


def _index(thresholds, value):
    return int(np.argmin(np.abs(thresholds - value)))


def _check_lengths(record):
    if record.pred.shape != record.gt.shape:
        raise ResultsError('%s: %d result rows for %d ground-truth frames'
                           % (record.source or record.name, len(record.pred), len(record.gt)))


def _check_finite_sizes(record):
    """pytracking raises on NaN or negative sizes; name the first offending row (1-based line)."""
    bad = np.isnan(record.pred).any(axis=1) | (record.pred[:, 2:] < 0).any(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ResultsError('%s line %d: invalid box %s (NaN or negative size)'
                           % (record.source or record.name, row + 1, record.pred[row].tolist()))


def _require_gt(record, protocol):
    if np.isnan(record.gt).any():
        row = int(np.flatnonzero(np.isnan(record.gt).any(axis=1))[0])
        raise ResultsError('sequence %s: ground truth unknown from frame %d (a test split?); the %s protocol '
                           'needs it on every frame: score such results on the benchmark server'
                           % (record.name, row, protocol))


def frames_per_second(times):
    """Frames / total seconds of one run (None without times)."""
    if times is None or len(times) == 0 or np.nansum(times) <= 0:
        return None
    return float(len(times) / np.nansum(times))


def _mean_speed(times):
    """got10k toolkit: mean of 1 / t over the frames with a positive, non-NaN time (-1 when none)."""
    if times is None:
        return -1.0
    times = np.asarray(times, dtype=np.float64)
    times = times[~np.isnan(times)]
    times = times[times > 0]
    return float(np.mean(1.0 / times)) if len(times) else -1.0


def _curve_scores(per_seq_curves, names, thresholds):
    """Sequence-averaged curves (each sequence weighs the same)."""
    return {key: (thresholds[key], np.mean([curves[key] for curves in per_seq_curves], axis=0))
            for key in names}


def _summaries(curves, auc='mean'):
    """Scores of sequence-level or dataset-level curves: ``auc='mean'`` gives AUC (curve mean), OP50, OP75, P and NP
    read at index 20 (20 px, 0.20); ``auc='trapezoid'`` gives each score as the area under its curve over
    ``linspace(0, 1, n)`` (TrackingNet)."""
    if auc == 'trapezoid':
        keys = {'success': 'AUC', 'precision': 'P', 'norm_precision': 'NP'}
        return {keys[k]: float(np.trapezoid(v, np.linspace(0, 1, len(v)))) for k, (_, v) in curves.items()}
    thresholds, success = curves['success']
    out = {'AUC': float(np.mean(success)), 'OP50': float(success[_index(thresholds, 0.5)]),
           'OP75': float(success[_index(thresholds, 0.75)])}
    if 'precision' in curves:
        out['P'] = float(curves['precision'][1][20])
    if 'norm_precision' in curves:
        out['NP'] = float(curves['norm_precision'][1][20])
    return out


def _overall_fps(records):
    """Total frames / total seconds over every sequence with times (None when none has them)."""
    timed = [r.times for r in records if r.times is not None and len(r.times)]
    total = sum(float(np.nansum(t)) for t in timed)
    return float(sum(len(t) for t in timed) / total) if timed and total > 0 else None


def _with_fps(values, fps):
    if fps is not None:
        values['FPS'] = fps
    return values


# ----------------------------------------------------------------------------------------------- confidence score

#: the event whose prediction by the confidence score :func:`score_roc_auc` measures: IoU > this
SCORE_IOU_THRESHOLD = 0.5


def roc_auc(scores, labels):
    """Area under the ROC curve of ``scores`` as a predictor of the binary ``labels``, rank-based.

    The Mann-Whitney U statistic of the positives' scores against the negatives' divided by the number of pairs,
    i.e. the probability that a random positive scores higher than a random negative, a tie counting 1/2
    (Hanley & McNeil 1982, "The meaning and use of the area under a receiver operating characteristic (ROC)
    curve", Radiology 143(1): 29-36; Mann & Whitney 1947)::

        AUC = (R_pos - n_pos (n_pos + 1) / 2) / (n_pos * n_neg)

    with ``R_pos`` the sum of the positives' ranks among all scores (ascending, 1-based; tied scores all get the
    mean of the ranks they span). Equal to the trapezoid area under the empirical ROC curve.

    Args:
        scores: (N,) finite floats.
        labels: (N,) bools (or 0 / 1), True = positive.
    Returns:
        the AUC in [0, 1] as a float; NaN when one class is empty (no positive or no negative).
    Raises:
        ValueError: shapes differ, or a score is not finite.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).astype(bool).ravel()
    if scores.shape != labels.shape:
        raise ValueError('roc_auc: %d scores for %d labels' % (len(scores), len(labels)))
    if not np.isfinite(scores).all():
        raise ValueError('roc_auc: scores must be finite (drop the NaN frames first)')
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return float('nan')
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    mid_ranks = np.cumsum(counts) - (counts - 1) / 2.0          # mean rank of each group of equal scores
    rank_sum = float(mid_ranks[inverse][labels].sum())
    return (rank_sum - positives * (positives + 1) / 2.0) / (positives * float(negatives))


def score_events(record):
    """``(scores, labels)`` of the frames of one record whose confidence score can be judged: frames 1.. (frame 0
    is the init frame) with a finite score and a ground truth box with finite values and a positive width and
    height; ``labels`` is ``IoU(pred, gt) > 0.5`` (:func:`iou_xywh`, continuous areas; a NaN or empty predicted
    box is a negative). Empty arrays when the record has no scores.

    Raises:
        ResultsError: the score, box and ground-truth row counts differ.
    """
    if record.scores is None:
        return np.zeros(0), np.zeros(0, dtype=bool)
    scores = np.asarray(record.scores, dtype=np.float64)
    pred, gt = np.asarray(record.pred, np.float64), np.asarray(record.gt, np.float64)
    if not len(scores) == len(pred) == len(gt):
        raise ResultsError('%s: %d scores, %d result rows, %d ground-truth frames'
                           % (record.source or record.name, len(scores), len(pred), len(gt)))
    with np.errstate(invalid='ignore'):
        keep = np.isfinite(scores) & np.isfinite(gt).all(axis=1) & (gt[:, 2:] > 0).all(axis=1)
        keep[:1] = False
        labels = iou_xywh(pred[keep], gt[keep]) > SCORE_IOU_THRESHOLD
    return scores[keep], labels


def score_roc_auc(records):
    """Score ROC AUC of one tracker: :func:`roc_auc` of the confidence score for "IoU > 0.5" over the frames of
    :func:`score_events`.

    Args:
        records: the tracker's :class:`TrackRecord` list.
    Returns:
        ``(overall, per_sequence)``: ``overall`` pools the frames of all sequences (None unless every record has
        scores: a subset would not be comparable); ``per_sequence`` maps the names of the records with scores to
        their own AUC. NaN where one class is empty (e.g. every frame above IoU 0.5).
    """
    events = {record.name: score_events(record) for record in records if record.scores is not None}
    per_sequence = {name: roc_auc(*pair) for name, pair in events.items()}
    overall = None
    if records and len(events) == len(records):
        overall = roc_auc(np.concatenate([s for s, _ in events.values()]),
                          np.concatenate([l for _, l in events.values()]))
    return overall, per_sequence
