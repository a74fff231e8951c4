"""Tracker results on disk, in the layouts the standard toolkits read.

Under an output folder ``OUT``:

* ``OUT/<tracker>/<seq>.txt``: one ``x,y,w,h`` line per frame, comma separated, frame 0 = the init box
  (pytracking and the got10k toolkit's OTB experiment read it), and ``OUT/<tracker>/times/<seq>_time.txt``: one
  line per frame, seconds spent in the tracker's initialise / track call;
* for trackers with a confidence score (STARK with a score head), ``OUT/<tracker>/scores/<seq>_scores.txt``: one
  line per frame, the confidence score in [0, 1] (frame 0: ``1.0``, the given box; ``nan`` where the tracker gave
  none), the format of ``python -m stark_ros.track --scores``. Results without it (older runs, other tools) still
  load; their score ROC AUC is then unknown;
* GOT-10k datasets also get ``OUT/GOT-10k/<tracker>/<seq>/<seq>_001.txt`` (``%.3f``, comma separated) and
  ``<seq>_time.txt``: the got10k toolkit's ``ExperimentGOT10k`` layout;
* test-server archives: ``OUT/submissions/<tracker>_got10k.zip`` (``<seq>/<seq>_001.txt`` + ``<seq>_time.txt``)
  and ``OUT/submissions/<tracker>_trackingnet.zip`` (``<video>.txt``).

Files are written atomically (a temporary file renamed), so an interrupted run never leaves a partial results
file behind that a rerun would skip.
"""
import os
import zipfile

import numpy as np

from ..datasets.annotation import read_rows
from ..datasets.base import DatasetError
from .metrics import ResultsError, TrackRecord

GOT10K_FOLDER = 'GOT-10k'


def results_path(root, tracker, sequence):
    """``root/<tracker>/<sequence>.txt``."""
    return os.path.join(root, tracker, sequence + '.txt')


def times_path(root, tracker, sequence):
    """``root/<tracker>/times/<sequence>_time.txt``."""
    return os.path.join(root, tracker, 'times', sequence + '_time.txt')


def scores_path(root, tracker, sequence):
    """``root/<tracker>/scores/<sequence>_scores.txt``."""
    return os.path.join(root, tracker, 'scores', sequence + '_scores.txt')


def _write_atomic(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temporary = '%s.%d.tmp' % (path, os.getpid())
    try:
        with open(temporary, 'w') as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def _box_lines(boxes, fmt):
    return ''.join(','.join(fmt % v for v in row) + '\n' for row in np.asarray(boxes, dtype=np.float64))


def write_results(root, tracker, sequence, boxes, times, got10k_layout=False, scores=None):
    """Write one run: ``boxes`` (N, 4) xywh pixels, ``times`` (N,) seconds, ``scores`` (N,) confidence scores (NaN
    where unknown) or None for a tracker without them; also the GOT-10k layout if asked.

    The times and scores files are written first and the boxes last, so an existing boxes file means a complete
    run. Without ``scores`` a scores file of an earlier run under the same label is removed (it would describe
    another run).
    """
    times_text = ''.join('%.8f\n' % t for t in times)
    score_file = scores_path(root, tracker, sequence)
    if scores is not None:
        _write_atomic(score_file, ''.join('%r\n' % float(v) for v in scores))
    elif os.path.exists(score_file):
        os.remove(score_file)
    if got10k_layout:
        folder = os.path.join(root, GOT10K_FOLDER, tracker, sequence)
        _write_atomic(os.path.join(folder, sequence + '_time.txt'), times_text)
        _write_atomic(os.path.join(folder, sequence + '_001.txt'), _box_lines(boxes, '%.3f'))
    _write_atomic(times_path(root, tracker, sequence), times_text)
    _write_atomic(results_path(root, tracker, sequence), _box_lines(boxes, '%.4f'))


def has_results(root, tracker, sequence, frames):
    """True when ``root/<tracker>/<sequence>.txt`` exists with one row per frame (a complete earlier run)."""
    path = results_path(root, tracker, sequence)
    if not os.path.isfile(path):
        return False
    with open(path) as handle:
        return sum(1 for line in handle if line.strip()) == frames


def read_boxes(path):
    """(N, 4) float64 boxes of a results file (comma, tab or space separated).

    Raises:
        ResultsError: missing file, or a line that is not 4 numbers (the message names the file and the line).
    """
    try:
        return read_rows(path)
    except DatasetError as error:
        raise ResultsError('results %s' % error) from None


def read_times(path):
    """(N,) seconds from a times file (first column: the GOT-10k layout has one column per run), or None if the
    file does not exist.

    Raises:
        ResultsError: a line that is not a number (file and line named).
    """
    if not os.path.isfile(path):
        return None
    try:
        return read_rows(path, widths=tuple(range(1, 10)))[:, 0]
    except DatasetError as error:
        raise ResultsError('times %s' % error) from None


def read_scores(path, frames):
    """(N,) confidence scores of a scores file (``nan`` allowed), or None if the file does not exist.

    Raises:
        ResultsError: a line that is not one number, or a row count other than ``frames`` (file named).
    """
    if not os.path.isfile(path):
        return None
    try:
        values = read_rows(path, widths=(1,))[:, 0]
    except DatasetError as error:
        raise ResultsError('scores %s' % error) from None
    if len(values) != frames:
        raise ResultsError('scores %s: %d rows for %d result rows' % (path, len(values), frames))
    return values


def find_run(roots, tracker, sequence):
    """``(boxes path, times path)`` of a tracker's run on a sequence in the first of ``roots`` that has it,
    reading both ``<tracker>/<seq>.txt`` and the GOT-10k layout ``[GOT-10k/]<tracker>/<seq>/<seq>_001.txt``; None
    when no root has it."""
    for root in roots:
        candidates = [(results_path(root, tracker, sequence), times_path(root, tracker, sequence))]
        for base in (os.path.join(root, GOT10K_FOLDER, tracker, sequence), os.path.join(root, tracker, sequence)):
            candidates.append((os.path.join(base, sequence + '_001.txt'), os.path.join(base, sequence + '_time.txt')))
        for boxes, times in candidates:
            if os.path.isfile(boxes):
                return boxes, times
    return None


def trackers_in(roots, sequence_names):
    """Names of the tracker folders under ``roots`` that hold a result of at least one of the sequences (plain
    or GOT-10k layout), in first-seen order. A root that itself holds results counts as a tracker folder, named
    after the folder (its parent is then searched for it)."""
    found = []
    names = set(sequence_names)

    def holds(folder):
        return os.path.isdir(folder) and any(
            entry[:-4] in names if entry.endswith('.txt') else
            (entry in names and os.path.isfile(os.path.join(folder, entry, entry + '_001.txt')))
            for entry in os.listdir(folder))

    for root in roots:
        if not os.path.isdir(root):
            raise ResultsError('results folder %s does not exist' % root)
        if holds(root):
            candidates = [os.path.basename(os.path.normpath(root))]
        else:
            candidates = [n for n in sorted(os.listdir(root)) if holds(os.path.join(root, n))]
            got10k = os.path.join(root, GOT10K_FOLDER)
            candidates += [n for n in sorted(os.listdir(got10k)) if holds(os.path.join(got10k, n))] \
                if os.path.isdir(got10k) else []
        found += [c for c in candidates if c not in found]
    return found


def search_roots(roots):
    """The folders :func:`find_run` must search: each root, and the parent of each root that is itself a tracker
    folder (so ``--results-only OUT/csrt`` works like ``--results-only OUT``)."""
    out = []
    for root in roots:
        for folder in (root, os.path.dirname(os.path.normpath(root)) or '.'):
            if folder not in out:
                out.append(folder)
    return out


def write_submission(root, tracker, server, sequences):
    """Zip a tracker's results for a test server; returns the archive path.

    Args:
        server: ``'got10k'`` (``<seq>/<seq>_001.txt`` and ``<seq>/<seq>_time.txt``, from the GOT-10k layout) or
            ``'trackingnet'`` (``<video>.txt``, x,y,w,h per line).
        sequences: the sequence names to include (all must have results).
    Raises:
        ResultsError: a sequence without results.
    """
    archive = os.path.join(root, 'submissions', '%s_%s.zip' % (tracker, server))
    os.makedirs(os.path.dirname(archive), exist_ok=True)
    with zipfile.ZipFile(archive + '.tmp', 'w', zipfile.ZIP_DEFLATED) as zipped:
        for name in sequences:
            if server == 'got10k':
                folder = os.path.join(root, GOT10K_FOLDER, tracker, name)
                members = [(os.path.join(folder, name + suffix), '%s/%s%s' % (name, name, suffix))
                           for suffix in ('_001.txt', '_time.txt')]
            else:
                members = [(results_path(root, tracker, name), name + '.txt')]
            for path, arcname in members:
                if not os.path.isfile(path):
                    raise ResultsError('cannot build the %s submission: %s is missing' % (server, path))
                zipped.write(path, arcname)
    os.replace(archive + '.tmp', archive)
    return archive


def frame_size(path):
    """``(width, height)`` of an image file.

    Raises:
        MissingFrameError: missing or undecodable (the file is named).
    """
    from ..datasets import read_frame
    height, width = read_frame(path).shape[:2]
    return width, height


def load_records(roots, tracker, sequences, image_size=False):
    """The :class:`~.metrics.TrackRecord` of a tracker on each sequence, from results under ``roots`` (searched in
    order; shards of one run may sit in different roots), with its per-frame confidence scores when a scores file
    sits beside the boxes (:func:`scores_path`).

    Args:
        image_size: read each sequence's frame size (the got10k protocol clips boxes to the image).
    Raises:
        ResultsError: a sequence without results (all are named), or a malformed results or scores file.
    """
    records, missing = [], []
    for sequence in sequences:
        run = find_run(roots, tracker, sequence.name)
        if run is None:
            missing.append(sequence.name)
            continue
        size = frame_size(sequence.frames[0]) if image_size else None
        boxes = read_boxes(run[0])
        # scores sit beside the plain layout's boxes only (root/<tracker>/scores/)
        root = os.path.dirname(os.path.dirname(run[0]))
        scores = read_scores(scores_path(root, tracker, sequence.name), len(boxes)) \
            if run[0] == results_path(root, tracker, sequence.name) else None
        records.append(TrackRecord(sequence.name, boxes, sequence.boxes, read_times(run[1]), size,
                                   sequence.extra, source=run[0], scores=scores))
    if missing:
        shown = ', '.join(missing[:8]) + (', ...' if len(missing) > 8 else '')
        raise ResultsError('tracker %s has no results for %d of %d sequences in %s: %s (run them, or choose '
                           'sequences with --sequences)' % (tracker, len(missing), len(sequences), ', '.join(roots),
                                                            shown))
    return records
