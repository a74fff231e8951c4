"""The five scoring protocols (``--protocol``), each as its toolkit computes it (EVALUATION_FACTS.md).

========== ============================================ ========================================================
protocol   toolkit                                      differences that matter
========== ============================================ ========================================================
pytracking visionml/pytracking ``analysis`` (default)   zero-size boxes -> previous box; NaN / negative sizes
                                                        raise; wrong length truncated / zero-padded; invalid
                                                        ground truth: IoU -1, centre error inf, but normalized
                                                        error -1 (a success) outside LaSOT
got10k-otb got10k toolkit ``ExperimentOTB``             IoU ``inter / (union + eps)``; NaN counts as failure;
                                                        no normalized precision
got10k     got10k toolkit ``ExperimentGOT10k`` (val)    frame 0 dropped, boxes clipped to the image, frames
                                                        with ``cover == 0`` dropped, frames of all sequences
                                                        pooled (frame-weighted)
lasot      LaSOT toolkit (MATLAB)                       invisible frames are failures; no zero-size fix
trackingnet TrackingNet devkit                          boxes rounded, IoU ``>=``, scores are trapezoid areas
========== ============================================ ========================================================

FPS: ``got10k-otb`` and ``got10k`` as their toolkit (mean of 1 / t over frames with t > 0; ``got10k-otb``
averages the sequences' speeds); the others total frames / total seconds (per sequence: frames / seconds).

Every protocol's scores also get ``ScoreAUROC`` (:func:`~.metrics.score_roc_auc`, the same definition for all) when
the tracker's records carry confidence scores.
"""
import numpy as np

from .metrics import (NORMALIZED_51, OVERLAP_21, OVERLAP_ARANGE, PIXELS_51, ResultsError, Scores, _check_finite_sizes,
                      _check_lengths, _curve_scores, _mean_speed, _overall_fps, _require_gt, _success, _summaries,
                      _with_fps, _within, center_error, frames_per_second, iou_xywh, score_roc_auc, toolkit_iou)

CURVES = ('success', 'precision', 'norm_precision')
THRESHOLDS = {'success': OVERLAP_21, 'precision': PIXELS_51, 'norm_precision': NORMALIZED_51}


def _one_pass_scores(protocol, records, per_sequence_curves, thresholds=THRESHOLDS, auc='mean', fps=None):
    """Per-sequence and overall scores of curve protocols: curves averaged over sequences."""
    per_seq, all_curves = {}, []
    for record in records:
        curves = per_sequence_curves(record)
        all_curves.append(curves)
        per_seq[record.name] = _with_fps(
            _summaries({k: (thresholds[k], v) for k, v in curves.items()}, auc), frames_per_second(record.times))
    names = list(all_curves[0]) if all_curves else []
    curves = _curve_scores(all_curves, names, thresholds)
    overall = _with_fps(_summaries(curves, auc), _overall_fps(records) if fps is None else fps)
    return Scores(protocol, overall, per_seq, curves)


def _require_records(records):
    if not records:
        raise ResultsError('no sequence to score')


# --------------------------------------------------------------------------------------------- pytracking


def pytracking_curves(record, exclude_invalid_frames=False):
    """pytracking's ``calc_seq_err_robust`` + ``extract_results`` for one sequence (visionml/pytracking @7eb9e74,
    ``pytracking/analysis/extract_results.py``; EVALUATION_FACTS.md section 1).

    Raises:
        ResultsError: NaN or negative predicted sizes, or ground truth with NaN (pytracking raises on both).
    """
    _check_finite_sizes(record)
    _require_gt(record, 'pytracking')
    gt = np.asarray(record.gt, dtype=np.float64)
    raw = np.array(record.pred, dtype=np.float64)
    rows = min(len(gt), len(raw))
    for i in range(1, rows):                             # a zero-size box stands for the previous one
        if (raw[i, 2:] == 0).any():
            raw[i] = raw[i - 1]
    pred = np.zeros_like(gt)
    pred[:rows] = raw[:rows]                             # then truncated or zero-padded to the ground truth
    pred[0] = gt[0]
    lasot = 'full_occlusion' in record.extra or 'out_of_view' in record.extra
    visible = ~(record.extra.get('full_occlusion', False) | record.extra.get('out_of_view', False)) if lasot \
        else np.ones(len(gt), dtype=bool)
    valid = (gt > 0).all(axis=1) & visible               # facts: any of x, y, w, h not > 0 is invalid
    ious = iou_xywh(pred, gt)
    errors = center_error(pred, gt)
    normalized = center_error(pred, gt, normalize_by=gt[:, 2:])
    ious[~valid], errors[~valid], normalized[~valid] = -1.0, np.inf, -1.0
    if lasot:
        errors[~visible], normalized[~visible] = np.inf, np.inf
    length = int(valid.sum()) if exclude_invalid_frames else len(gt)
    if length <= 0:
        raise ResultsError('sequence %s: no valid frame to score' % record.name)
    return {'success': _success(ious, OVERLAP_ARANGE, length), 'precision': _within(errors, PIXELS_51, length),
            'norm_precision': _within(normalized, NORMALIZED_51, length)}


def pytracking(records, exclude_invalid_frames=False):
    """pytracking protocol (the default): success AUC (mean of the 21-point curve, IoU ``>``), OP50, OP75,
    precision at 20 px and normalized precision at 0.20 (``<=``), sequence-averaged; FPS = frames / seconds."""
    _require_records(records)
    return _one_pass_scores('pytracking', records, lambda r: pytracking_curves(r, exclude_invalid_frames),
                            dict(THRESHOLDS, success=OVERLAP_ARANGE))


# --------------------------------------------------------------------------------------------- got10k toolkit


def got10k_otb_curves(record):
    """got10k toolkit ``ExperimentOTB`` for one sequence (got-10k/toolkit ``experiments/otb.py``): frame 0 = GT,
    ``rect_iou`` without bound, centres ``xy + (wh - 1) / 2``, 21 IoU thresholds ``>``, 51 pixel thresholds ``<=``.
    NaN boxes never succeed (the toolkit's behaviour).

    Raises:
        ResultsError: the row count differs from the ground truth (the toolkit asserts it).
    """
    _check_lengths(record)
    pred = np.array(record.pred, dtype=np.float64)
    pred[0] = record.gt[0]
    ious = toolkit_iou(pred, record.gt)
    errors = center_error(pred, record.gt)
    return {'success': _success(ious, OVERLAP_21, len(pred)), 'precision': _within(errors, PIXELS_51, len(pred))}


def got10k_otb(records):
    """The got10k toolkit's OTB experiment: success score (mean of the curve), success rate at IoU 0.5 (OP50), OP75,
    precision score (curve at 20 px); speed = mean over sequences of each sequence's mean(1 / t)."""
    _require_records(records)
    speeds = np.array([max(_mean_speed(r.times), 0.0) for r in records])
    fps = float(speeds.sum() / np.count_nonzero(speeds)) if np.count_nonzero(speeds) else None
    scores = _one_pass_scores('got10k-otb', records, got10k_otb_curves, fps=fps)
    for record in records:
        speed = _mean_speed(record.times)
        scores.per_sequence[record.name].pop('FPS', None)
        if speed > 0:
            scores.per_sequence[record.name]['FPS'] = speed
    return scores


GOT10K_THRESHOLDS = np.linspace(0.0, 1.0, 101)


def got10k_ious(record):
    """IoUs of one sequence as ``ExperimentGOT10k`` scores them: frames 1.. only, both boxes clipped to the image,
    frames with ``cover == 0`` removed (all frames kept when the dataset has no cover labels).

    Raises:
        ResultsError: wrong row count, unknown image size, or ground truth unknown (test split).
    """
    _check_lengths(record)
    _require_gt(record, 'got10k')
    if record.image_size is None:
        raise ResultsError('sequence %s: the got10k protocol needs the image size' % record.name)
    ious = toolkit_iou(np.asarray(record.pred, np.float64)[1:], np.asarray(record.gt, np.float64)[1:],
                       bound=record.image_size)
    cover = record.extra.get('cover')
    return ious if cover is None else ious[np.asarray(cover)[1:] > 0]


def _got10k_values(ious, times):
    curve = _success(ious, GOT10K_THRESHOLDS, max(len(ious), 1))
    values = {'AO': float(np.mean(ious)) if len(ious) else float('nan'),
              'SR50': float(np.mean(ious > 0.5)) if len(ious) else float('nan'), 'SR75': float(curve[75])}
    speed = _mean_speed(times)
    if speed > 0:
        values['FPS'] = speed
    return values, curve


def got10k(records):
    """GOT-10k protocol (got10k toolkit ``ExperimentGOT10k``, validation split; EVALUATION_FACTS.md section 2):
    IoUs of every sequence pooled (frame-weighted), AO = mean IoU, SR0.5 = mean(IoU > 0.5), SR0.75 from the
    101-point curve; speed = mean(1 / t) over all frames with t > 0. One run per sequence."""
    _require_records(records)
    per_seq, pooled, times = {}, [], []
    for record in records:
        ious = got10k_ious(record)
        per_seq[record.name] = _got10k_values(ious, record.times)[0]
        pooled.append(ious)
        if record.times is not None:
            times.append(np.asarray(record.times, np.float64))
    overall, curve = _got10k_values(np.concatenate(pooled), np.concatenate(times) if times else None)
    return Scores('got10k', overall, per_seq, {'success': (GOT10K_THRESHOLDS, curve)})


# --------------------------------------------------------------------------------------------- LaSOT, TrackingNet


def lasot_curves(record):
    """LaSOT toolkit for one sequence (HengLan/LaSOT_Evaluation_Toolkit ``utils/eval_tracker.m``,
    ``calc_seq_err_robust.m``): frame 0 = GT; fully occluded / out-of-view frames and ground truth with any
    value <= 0 are failures but stay in the denominator; no zero-size fix; NaN boxes never succeed.

    Raises:
        ResultsError: the row count differs from the ground truth.
    """
    _check_lengths(record)
    gt = np.asarray(record.gt, dtype=np.float64)
    pred = np.array(record.pred, dtype=np.float64)
    pred[0] = gt[0]
    absent = np.zeros(len(gt), dtype=bool)
    for key in ('full_occlusion', 'out_of_view'):
        if key in record.extra:
            absent |= np.asarray(record.extra[key], dtype=bool)
    with np.errstate(invalid='ignore'):
        failed = absent | ~(gt > 0).all(axis=1)
    ious = iou_xywh(pred, gt)
    errors = center_error(pred, gt)
    normalized = center_error(pred, gt, normalize_by=gt[:, 2:])
    ious[failed], errors[failed], normalized[failed] = -1.0, np.inf, np.inf
    return {'success': _success(ious, OVERLAP_ARANGE, len(gt)), 'precision': _within(errors, PIXELS_51, len(gt)),
            'norm_precision': _within(normalized, NORMALIZED_51, len(gt))}


def lasot(records):
    """LaSOT protocol: success AUC (mean of the curve), precision and normalized precision at index 21 of the
    MATLAB curves (20 px, 0.20), sequence-averaged."""
    _require_records(records)
    return _one_pass_scores('lasot', records, lasot_curves, dict(THRESHOLDS, success=OVERLAP_ARANGE))


TRACKINGNET_THRESHOLDS = {'success': OVERLAP_21, 'precision': np.linspace(0.0, 50.0, 21),
                          'norm_precision': np.linspace(0.0, 0.5, 21)}


def trackingnet_curves(record):
    """TrackingNet devkit for one sequence (SilvioGiancola/TrackingNet-devkit ``metrics.py``): boxes rounded to
    integers, frame 0 = GT, IoU ``>=`` each of 21 thresholds, centres ``xy + (wh + 1) / 2``, 21 centre-error
    thresholds over 0..50 px and 0..0.5 (normalized), ``<=``.

    Raises:
        ResultsError: the row count differs, or the ground truth is unknown (TEST split: use the server).
    """
    _check_lengths(record)
    _require_gt(record, 'trackingnet')
    gt = np.round(np.asarray(record.gt, dtype=np.float64))
    pred = np.round(np.asarray(record.pred, dtype=np.float64))
    pred[0] = gt[0]
    ious = iou_xywh(pred, gt)
    errors = center_error(pred, gt, offset=1.0)
    normalized = center_error(pred, gt, offset=1.0, normalize_by=gt[:, 2:])
    t = TRACKINGNET_THRESHOLDS
    return {'success': _success(ious, t['success'], len(gt), inclusive=True),
            'precision': _within(errors, t['precision'], len(gt)),
            'norm_precision': _within(normalized, t['norm_precision'], len(gt))}


def trackingnet(records):
    """TrackingNet protocol: success, precision and normalized precision are each the trapezoid area
    ``np.trapezoid(curve, linspace(0, 1, 21))`` (reported as fractions, the server shows them x 100)."""
    _require_records(records)
    return _one_pass_scores('trackingnet', records, trackingnet_curves, TRACKINGNET_THRESHOLDS, auc='trapezoid')


PROTOCOLS = {'pytracking': pytracking, 'got10k-otb': got10k_otb, 'got10k': got10k, 'lasot': lasot,
             'trackingnet': trackingnet}


def score(protocol, records):
    """Score ``records`` (a list of :class:`~.metrics.TrackRecord` of one tracker) with a protocol by name, plus the
    score ROC AUC (``ScoreAUROC``, overall and per sequence) where the records carry confidence scores.

    Raises:
        ValueError: unknown protocol. ResultsError: results or ground truth the protocol refuses.
    """
    if protocol not in PROTOCOLS:
        raise ValueError('unknown protocol %r (known: %s)' % (protocol, ', '.join(PROTOCOLS)))
    scores = PROTOCOLS[protocol](records)
    overall, per_sequence = score_roc_auc(records)
    if overall is not None:
        scores.overall['ScoreAUROC'] = overall
    for name, value in per_sequence.items():
        scores.per_sequence.setdefault(name, {})['ScoreAUROC'] = value
    return scores
