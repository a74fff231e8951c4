"""Tracking evaluation of a training checkpoint with :mod:`stark_ros.evaluate` (one-pass evaluation of the STARK
tracker loading the checkpoint as the node does), every ``eval.interval`` epochs, on the main process.

Results go to ``<run>/eval/ep%04d/`` (the evaluation's own layout and table); the overall scores are appended to
``<run>/eval.csv``.
"""
import csv
import io
import os


def evaluate_checkpoint(checkpoint, eval_config, out_dir, device='cpu'):
    """Run ``stark_ros.evaluate`` with one ``stark`` tracker on ``checkpoint``.

    Args:
        checkpoint: checkpoint file (as the trainer wrote it).
        eval_config: the config's ``eval`` section (``dataset``, ``protocol``, ``max_frames``, ``sequences``).
        out_dir: results folder of this evaluation.
        device: torch device string for the tracker.
    Returns:
        ``(overall, table)``: dict metric -> value (the protocol's keys, e.g. ``AUC``, ``P``, ``NP``, ``FPS``) and the
        printed table text.
    Raises:
        StarkError, ValueError, OSError: as ``stark_ros.evaluate`` raises them (bad dataset, missing frame, ...).
    """
    from ..evaluate import build_parser, run
    argv = ['--dataset', str(eval_config['dataset']), '--trackers', 'stark', '--checkpoint', checkpoint,
            '--output', out_dir, '--protocol', eval_config['protocol'], '--device', device, '--quiet', '--no-plots']
    if eval_config['max_frames']:
        argv += ['--max-frames', str(eval_config['max_frames'])]
    if eval_config['sequences']:
        argv += ['--sequences', str(eval_config['sequences'])]
    table, messages = io.StringIO(), io.StringIO()
    results = run(build_parser().parse_args(argv), stdout=table, stderr=messages)
    if 'stark' not in results:
        raise ValueError('evaluation of %s gave no scores: %s' % (checkpoint, messages.getvalue().strip()))
    return dict(results['stark'].overall), table.getvalue()


def append_scores(path, epoch, overall):
    """Append ``epoch`` and the overall scores as one row of the CSV file ``path`` (header on creation)."""
    fresh = not os.path.isfile(path)
    with open(path, 'a', newline='') as stream:
        writer = csv.DictWriter(stream, ['epoch'] + sorted(overall))
        if fresh:
            writer.writeheader()
        writer.writerow(dict(overall, epoch=epoch))
