"""Does the tracker use its template? One-pass evaluation with the right template against a wrong one.

For each sequence A, the tracker runs twice over A's frames 1..N-1: once initialised on A's frame 0 with A's
init box (the right template), once initialised with the same init box on frame 0 of another sequence B (resized to
A's frame size), so that the template shows whatever B has at that place. A tracker that finds "an object" rather
than "this object" scores about the same both times; the gap of the success AUCs (pytracking protocol,
EVALUATION_FACTS.md section 1) measures how much the template matters. B is the next sequence in the given order
(cyclically), so the pairing is fixed and reproducible.

``python -m stark_ros.evaluation.template_swap --dataset ../shared/train_real --sequences A,B,...`` prints the
table (per sequence: AUC right, AUC swapped) and the mean gap.
"""
import argparse
import sys

import cv2
import numpy as np

from ..datasets.base import read_frame
from .metrics import TrackRecord
from .protocols import pytracking


def run_sequence(tracker, init_frame, sequence, max_frames=None):
    """Initialise ``tracker`` on ``init_frame`` with ``sequence``'s init box, track ``sequence``'s frames 1.. .

    Args:
        tracker: a :class:`~stark_ros.tracker.StarkTracker` (``initialize`` / ``track``).
        init_frame: (H, W, 3) uint8 RGB, resized to the size of ``sequence``'s frames when it differs.
        sequence: :class:`~stark_ros.datasets.base.Sequence`.
        max_frames: only the first N frames.
    Returns:
        (pred (N, 4) ``xywh`` pixels with row 0 the init box, scores (N,) with NaN at row 0 and where the
        network has no score head).
    """
    frames = sequence.frames[:max_frames] if max_frames else sequence.frames
    first = read_frame(frames[0])
    if init_frame.shape[:2] != first.shape[:2]:
        init_frame = cv2.resize(init_frame, (first.shape[1], first.shape[0]), interpolation=cv2.INTER_LINEAR)
    init_box = sequence.init_box
    tracker.initialize(init_frame, init_box)
    pred, scores = [list(init_box)], [np.nan]
    for path in frames[1:]:
        result = tracker.track(read_frame(path))
        pred.append(list(result.box))
        scores.append(np.nan if result.score is None else float(result.score))
    return np.array(pred, dtype=np.float64), np.array(scores, dtype=np.float64)


def template_swap(tracker, sequences, max_frames=None):
    """Success AUC with the right and with a swapped template on every sequence (module docstring).

    Args:
        tracker: a :class:`~stark_ros.tracker.StarkTracker`.
        sequences: list of at least two :class:`~stark_ros.datasets.base.Sequence`.
        max_frames: only the first N frames of each sequence.
    Returns:
        dict: ``per_sequence`` name -> (AUC right, AUC swapped), ``right``/``swapped`` the mean AUCs (fractions,
        0..1) and ``gap`` = right - swapped.
    Raises:
        ValueError: fewer than two sequences.
    """
    if len(sequences) < 2:
        raise ValueError('the template swap needs at least two sequences, got %d' % len(sequences))
    right, swapped = [], []
    for index, sequence in enumerate(sequences):
        other = sequences[(index + 1) % len(sequences)]
        gt = sequence.boxes[:max_frames] if max_frames else sequence.boxes
        for init_frame, records in ((read_frame(sequence.frames[0]), right), (read_frame(other.frames[0]), swapped)):
            pred, _ = run_sequence(tracker, init_frame, sequence, max_frames)
            records.append(TrackRecord(sequence.name, pred, np.asarray(gt, dtype=np.float64)))
    auc_right = pytracking(right).per_sequence
    auc_swapped = pytracking(swapped).per_sequence
    per_sequence = {s.name: (auc_right[s.name]['AUC'], auc_swapped[s.name]['AUC']) for s in sequences}
    mean_right = float(np.mean([v[0] for v in per_sequence.values()]))
    mean_swapped = float(np.mean([v[1] for v in per_sequence.values()]))
    return {'per_sequence': per_sequence, 'right': mean_right, 'swapped': mean_swapped,
            'gap': mean_right - mean_swapped}


def main(argv=None):
    from ..datasets.detect import open_dataset
    from ..tracker import StarkTracker
    parser = argparse.ArgumentParser(prog='python -m stark_ros.evaluation.template_swap',
                                     description=__doc__.split('\n\n')[0])
    parser.add_argument('--dataset', required=True)
    parser.add_argument('--sequences', required=True, help='comma-separated names (at least two)')
    parser.add_argument('--checkpoint', default=None, help='default: the shipped model')
    parser.add_argument('--backend', default='torch')
    parser.add_argument('--max-frames', type=int, default=None)
    args = parser.parse_args(argv)
    dataset = open_dataset(args.dataset)
    sequences = [dataset.load_sequence(name) for name in args.sequences.split(',')]
    tracker = StarkTracker.from_checkpoint(args.checkpoint, backend=args.backend)
    result = template_swap(tracker, sequences, args.max_frames)
    print('sequence          AUC right  AUC swapped')
    for name, (good, bad) in result['per_sequence'].items():
        print('%-16s  %9.3f  %11.3f' % (name, good, bad))
    print('mean              %9.3f  %11.3f   gap %.3f' % (result['right'], result['swapped'], result['gap']))
    return 0


if __name__ == '__main__':
    sys.exit(main())
