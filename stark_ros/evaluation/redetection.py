"""Target leaves and returns: does the tracker say ``lost`` at the right time, and does re-detection find it again?

For each sequence A (paired with the next sequence B of the list, cyclically) a spliced sequence is built from real
frames: A's frames 0..P-1 (target present), then G frames of B resized to A's size (target absent: the frames of
another video), then A's frames P..2P-1 (the target again: those frames follow frame P-1 in A's own time, so
the target comes back where it left, after G frames of something else, as when a camera looks away and back).
With ``--skip K`` A resumes at frame P+K instead: the target has moved on meanwhile, so it reappears elsewhere
(``K = G``: as much as it moved in the gap's time). The
tracker (with a :class:`~stark_ros.tracker.target_state.TargetMonitor`) runs one-pass from A's frame 0 twice: with
re-detection (the monitor's ``lost_search_growth``) and without it (growth 1: the search region never widens). Per
run it reports:

* ``auc_present``: success AUC (pytracking thresholds 0:0.05:1, IoU > t; EVALUATION_FACTS.md section 1) over the
  frames where the target is present (frame 0 excluded);
* ``lost_right``: share of the absent frames with state ``lost``; ``lost_wrong``: share of the present frames with
  state ``lost`` while the box is on the target (IoU > 0.5), a false alarm;
* ``recovery``: frames after the target's return until the first frame with IoU > 0.5 and state ``tracking``
  (None: never within P frames).

A sequence's own full occlusion is studied the same way (:func:`occluded`): ``--occlusion NAME:FIRST-LAST``
marks frames FIRST..LAST (0-based, inclusive) of that sequence as absent (ground truth replaced by NaN) and runs the
whole sequence one-pass with and without re-detection. For ``jogging1`` (OTB-2015 Jogging-1) the jogger is fully
behind the pole in frames 70-75 (0-based; hand-labelled from the frames, 2026-12-06: a foot still shows in 69, the
head reappears in 76; the OTB ground truth keeps boxes on the pole there), :data:`JOGGING1_OCCLUSION`.

``python -m stark_ros.evaluation.redetection --dataset ../shared/eval --sequences human7,surfer,... [--present 30
--absent 30] [--occlusion jogging1:70-75]`` prints the table for both runs. ``python -m stark_ros.evaluate
--trackers stark,on=stark:redetection=on,off=stark:redetection=off`` gives the plain success AUC of the same
two runs on whole sequences (:class:`~stark_ros.evaluation.trackers.StarkAdapter`).
"""
import argparse
import dataclasses
import sys

import cv2
import numpy as np

from ..datasets.base import read_frame
from ..tracker.target_state import LOST, TRACKING, MonitorParams, TargetMonitor
from .metrics import iou_xywh

#: IoU thresholds of the pytracking success curve (EVALUATION_FACTS.md section 1).
THRESHOLDS = np.arange(0.0, 1.0001, 0.05)
#: Frames (0-based, inclusive) where jogging1's jogger is fully hidden by the pole (module docstring).
JOGGING1_OCCLUSION = ('jogging1', 70, 75)


def splice(sequence, other, present, absent, skip=0):
    """Frames and ground truth of the spliced sequence (module docstring).

    Args:
        sequence, other: :class:`~stark_ros.datasets.base.Sequence` (A and B).
        present: P, frames of A before and after the gap (A needs 2P + skip frames).
        absent: G, frames of B in the gap (B needs G frames).
        skip: frames of A left out at the gap: after it A resumes at frame P + skip, so the target has moved on
            as it would have while the camera looked away (``skip = absent``: in step with the gap's duration).
    Returns:
        (frames list of (H, W, 3) uint8 RGB, gt (N, 4) xywh pixels with NaN rows where the target is absent,
        absent mask (N,) bool).
    Raises:
        ValueError: a sequence too short.
    """
    if skip < 0:
        raise ValueError('skip must be >= 0, got %d' % skip)
    if len(sequence.frames) < 2 * present + skip or len(other.frames) < absent:
        raise ValueError('%s needs %d frames and %s %d' % (sequence.name, 2 * present + skip, other.name, absent))
    kept = list(range(present)) + list(range(present + skip, 2 * present + skip))
    first = [read_frame(sequence.frames[k]) for k in kept]
    height, width = first[0].shape[:2]
    gap = [cv2.resize(read_frame(p), (width, height), interpolation=cv2.INTER_LINEAR)
           for p in other.frames[:absent]]
    boxes = np.asarray(sequence.boxes, dtype=np.float64)[kept]
    gt = np.concatenate([boxes[:present], np.full((absent, 4), np.nan), boxes[present:]])
    mask = np.zeros(len(gt), dtype=bool)
    mask[present:present + absent] = True
    return first[:present] + gap + first[present:], gt, mask


def occluded(sequence, first, last):
    """A whole sequence with frames ``first..last`` (0-based, inclusive) marked absent (its own full occlusion).

    Returns:
        (frames list of (H, W, 3) uint8 RGB, gt (N, 4) xywh pixels with NaN rows in the occlusion, absent mask (N,)
        bool), as :func:`splice`.
    Raises:
        ValueError: an empty range, one starting at frame 0 (the init frame) or reaching the last frame (no
        frame left to recover on).
    """
    count = len(sequence.frames)
    if not 0 < first <= last < count - 1:
        raise ValueError('%s: occlusion %d-%d must lie within frames 1..%d' % (sequence.name, first, last, count - 2))
    gt = np.asarray(sequence.boxes, dtype=np.float64).copy()
    gt[first:last + 1] = np.nan
    mask = np.zeros(count, dtype=bool)
    mask[first:last + 1] = True
    return [read_frame(p) for p in sequence.frames], gt, mask


def parse_occlusion(text):
    """``'NAME:FIRST-LAST'`` -> (name, first, last) (0-based frame indices). Raises ValueError when malformed."""
    name, sep, span = text.rpartition(':')
    first, dash, last = span.partition('-')
    try:
        if not (sep and dash and name):
            raise ValueError
        return name, int(first), int(last)
    except ValueError:
        raise ValueError('--occlusion %r: expected NAME:FIRST-LAST, e.g. jogging1:70-75' % text) from None


def run_spliced(tracker, frames, gt, absent_mask, monitor_params):
    """One-pass run with a monitor; returns the per-run figures of the module docstring as a dict."""
    tracker.monitor = TargetMonitor(monitor_params)
    tracker.initialize(frames[0], tuple(float(v) for v in gt[0]))
    states, ious = [], []
    for index, frame in enumerate(frames[1:], start=1):
        result = tracker.track(frame)
        states.append(result.target_state)
        ious.append(np.nan if absent_mask[index] else float(iou_xywh(np.array([result.box]), gt[index:index + 1])[0]))
    states, ious = np.array(states), np.array(ious)
    absent = absent_mask[1:]
    present_ious = ious[~absent]
    success = [(present_ious > t).mean() for t in THRESHOLDS]
    lost = states == LOST
    on_target = ~absent & (np.nan_to_num(ious, nan=0.0) > 0.5)
    back = int(np.flatnonzero(absent)[-1]) + 1
    found = [k for k in range(back, len(states)) if states[k] == TRACKING and ious[k] > 0.5]
    return {'auc_present': float(np.mean(success)), 'lost_right': float(lost[absent].mean()),
            'lost_wrong': float(lost[on_target].mean()) if on_target.any() else float('nan'),
            'recovery': (found[0] - back) if found else None}


def redetection_study(tracker, sequences, present=30, absent=30, monitor_params=MonitorParams(), skip=0):
    """Both runs (with and without re-detection) on every spliced sequence (``skip``: :func:`splice`).

    Returns:
        dict name -> {'with': figures, 'without': figures} (:func:`run_spliced`).
    Raises:
        ValueError: fewer than two sequences, or a sequence too short.
    """
    if len(sequences) < 2:
        raise ValueError('the study needs at least two sequences, got %d' % len(sequences))
    table = {}
    for index, sequence in enumerate(sequences):
        frames, gt, mask = splice(sequence, sequences[(index + 1) % len(sequences)], present, absent, skip)
        table[sequence.name] = {
            'with': run_spliced(tracker, frames, gt, mask, monitor_params),
            'without': run_spliced(tracker, frames, gt, mask,
                                   dataclasses.replace(monitor_params, lost_search_growth=1.0))}
    return table


def occlusion_study(tracker, sequence, first, last, monitor_params=MonitorParams()):
    """Both runs (with and without re-detection) over ``sequence`` with frames ``first..last`` absent
    (:func:`occluded`). Returns {'with': figures, 'without': figures} (:func:`run_spliced`)."""
    frames, gt, mask = occluded(sequence, first, last)
    return {'with': run_spliced(tracker, frames, gt, mask, monitor_params),
            'without': run_spliced(tracker, frames, gt, mask,
                                   dataclasses.replace(monitor_params, lost_search_growth=1.0))}


def _print_table(title, table):
    print(title)
    print('sequence       run      AUC present  lost right  lost wrong  recovery (frames)')
    for name, runs in table.items():
        for label, row in runs.items():
            print('%-14s %-8s %11.3f  %10.2f  %10.2f  %s' % (name, label, row['auc_present'], row['lost_right'],
                                                              row['lost_wrong'], row['recovery']))
    for label in ('with', 'without'):
        rows = [runs[label] for runs in table.values()]
        print('mean %-8s AUC present %.3f, lost right %.2f, recovered %d of %d'
              % (label, np.mean([r['auc_present'] for r in rows]), np.mean([r['lost_right'] for r in rows]),
                 sum(r['recovery'] is not None for r in rows), len(rows)))


def main(argv=None):
    from ..datasets.detect import open_dataset
    from ..tracker import StarkTracker
    parser = argparse.ArgumentParser(prog='python -m stark_ros.evaluation.redetection',
                                     description=__doc__.split('\n\n')[0])
    parser.add_argument('--dataset', required=True)
    parser.add_argument('--sequences', default='', help='comma-separated names to splice (at least two)')
    parser.add_argument('--occlusion', action='append', default=[], metavar='NAME:FIRST-LAST',
                        help='a sequence\'s own full occlusion, frames FIRST..LAST 0-based (repeatable), e.g. '
                             'jogging1:70-75')
    parser.add_argument('--checkpoint', default=None, help='default: the shipped model')
    parser.add_argument('--backend', default='auto')
    parser.add_argument('--present', type=int, default=30)
    parser.add_argument('--absent', type=int, default=30)
    parser.add_argument('--skip', type=int, default=0, help='frames of the sequence left out at the gap: the target '
                        'moved on meanwhile (default 0: it returns where it left; --skip 30 with --absent 30: in '
                        'step with the gap)')
    args = parser.parse_args(argv)
    try:
        occlusions = [parse_occlusion(text) for text in args.occlusion]
    except ValueError as err:
        parser.error(str(err))
    names = [name for name in args.sequences.split(',') if name]
    if not names and not occlusions:
        parser.error('give --sequences (at least two) and/or --occlusion')
    dataset = open_dataset(args.dataset)
    sequences = [dataset.load_sequence(name) for name in names]
    tracker = StarkTracker.from_checkpoint(args.checkpoint, backend=args.backend)
    if sequences:
        _print_table('target leaves: %d frames present, %d absent (frames of the next sequence), %d present, %d '
                     'of its own frames skipped' % (args.present, args.absent, args.present, args.skip),
                     redetection_study(tracker, sequences, args.present, args.absent, skip=args.skip))
    if occlusions:
        table = {'%s:%d-%d' % o: occlusion_study(tracker, dataset.load_sequence(o[0]), o[1], o[2]) for o in occlusions}
        _print_table('full occlusion within the sequence (frames absent, 0-based)', table)
    return 0


if __name__ == '__main__':
    sys.exit(main())
