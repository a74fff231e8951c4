"""One-pass evaluation runs: trackers x sequences -> results files (:mod:`.results` layouts).

Each run initialises the tracker with the frame-0 ground truth and tracks every later frame once; the init box
is the frame-0 result. Trackers with a confidence score also get a per-frame scores file. Per-frame time is the seconds spent inside the tracker's initialise / track call (image
decoding excluded). Runs whose results already exist are skipped unless ``overwrite``; sequences can be spread
over worker processes (``workers``) and machines (:func:`shard`).
"""
import dataclasses
import multiprocessing
import os
import time

import cv2
import numpy as np

from ..backends.common import default_threads
from ..datasets import read_frame
from ..errors import StarkError
from .results import has_results, write_results


def shard(names, spec):
    """The ``i``-th of ``n`` interleaved parts of ``names`` for ``spec = 'i/n'`` (1 <= i <= n).

    Raises:
        ValueError: a malformed spec.
    """
    try:
        index, count = (int(v) for v in spec.split('/'))
    except ValueError:
        raise ValueError('--shard must be i/n with integers, e.g. 1/4; got %r' % (spec,)) from None
    if not 1 <= index <= count:
        raise ValueError('--shard %s: i must be in 1..n' % spec)
    return list(names)[index - 1::count]


def truncate(sequence, frames):
    """The first ``frames`` frames of a sequence (for quick runs; scores are then not comparable)."""
    if frames is None or frames >= len(sequence):
        return sequence
    return dataclasses.replace(sequence, frames=sequence.frames[:frames], boxes=sequence.boxes[:frames],
                               visible=sequence.visible[:frames],
                               extra={k: v[:frames] for k, v in sequence.extra.items()})


def track_sequence(adapter, sequence, progress=None):
    """One-pass run of ``adapter`` over ``sequence``.

    Args:
        adapter: see :mod:`.trackers` (``initialize``, ``track``, ``bgr``).
        progress: optional tqdm bar, advanced per frame with the running FPS.
    Returns:
        ``(boxes (N, 4) float64 xywh pixels, times (N,) float64 seconds, scores)``: ``scores`` is the (N,) float64
        confidence score per frame (frame 0: 1.0, the given box; NaN where the tracker gave none), or None when the
        adapter gave no score on any frame (OpenCV, ``static``, STARK without a score head).
    Raises:
        MissingFrameError: a frame is missing or unreadable (the file is named).
        StarkError: the tracker refuses the init box (the sequence is named).
    """
    boxes, times, scores = [], [], []
    for index, path in enumerate(sequence.frames):
        image = read_frame(path)
        if adapter.bgr:
            image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        started = time.perf_counter()
        if index == 0:
            try:
                adapter.initialize(image, sequence.init_box)
            except StarkError as error:
                raise type(error)('sequence %s, frame %s: %s' % (sequence.name, path, error)) from None
            box, score = sequence.init_box, 1.0
        else:
            box = adapter.track(image)
            score = getattr(adapter, 'score', None)
        times.append(time.perf_counter() - started)
        boxes.append(box)
        scores.append(np.nan if score is None else float(score))
        if progress is not None:
            progress.update(1)
            progress.set_postfix_str('%.1f FPS' % (len(times) / max(sum(times), 1e-9)), refresh=False)
    scores = np.asarray(scores, dtype=np.float64)
    return (np.asarray(boxes, dtype=np.float64), np.asarray(times, dtype=np.float64),
            scores if np.isfinite(scores[1:]).any() else None)


def pending_runs(specs, sequences, output, overwrite=False):
    """``[(spec, sequence)]`` still to run: all with ``overwrite``, else those without complete results."""
    return [(spec, seq) for spec in specs for seq in sequences
            if overwrite or not has_results(output, spec.label, seq.name, len(seq))]


def run_trackers(specs, sequences, output, overwrite=False, workers=1, threads=0, got10k_layout=False,
                 progress=True, log=print):
    """Run every tracker on every sequence and write the results under ``output``.

    Args:
        specs: :class:`~.trackers.TrackerSpec` list.
        sequences: :class:`~stark_ros.datasets.Sequence` list.
        workers: processes; 1 runs in this process with a progress bar per sequence.
        threads: CPU threads of each worker (torch intra-op, OpenCV); 0 = the cores divided among the workers.
        got10k_layout: also write the GOT-10k toolkit layout.
        log: where one line per finished run goes.
    Returns:
        the number of runs made (skipped ones not counted).
    """
    jobs = pending_runs(specs, sequences, output, overwrite)
    skipped = len(specs) * len(sequences) - len(jobs)
    if skipped:
        log('%d run(s) skipped: results exist in %s (--overwrite to redo)' % (skipped, output))
    if not jobs:
        return 0
    if workers <= 1:
        set_threads(threads or default_threads())
        adapters = {}
        for spec, sequence in jobs:
            if spec.label not in adapters:
                adapters[spec.label] = spec.build()
                log('%s: %s' % (spec.label, adapters[spec.label].description))
            _run_one(adapters[spec.label], spec.label, sequence, output, got10k_layout, progress, log)
        return len(jobs)
    context = multiprocessing.get_context('spawn')
    with context.Pool(workers, initializer=set_threads, initargs=(threads or max(1, default_threads() // workers),)) \
            as pool:
        tasks = [(spec, seq, output, got10k_layout) for spec, seq in jobs]
        for line in pool.imap_unordered(_worker_run, tasks):
            log(line)
    return len(jobs)


def _run_one(adapter, label, sequence, output, got10k_layout, progress, log):
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(sequence), desc='%s %s' % (label, sequence.name), unit='frame', leave=False)
    try:
        boxes, times, scores = track_sequence(adapter, sequence, bar)
    finally:
        if bar is not None:
            bar.close()
    write_results(output, label, sequence.name, boxes, times, got10k_layout, scores)
    line = _summary(label, sequence, times)
    log(line)
    return line


def _summary(label, sequence, times):
    return '%s %s: %d frames, %.1f FPS' % (label, sequence.name, len(times), len(times) / max(times.sum(), 1e-9))


_ADAPTERS = {}


def set_threads(threads):
    """Use ``threads`` CPU threads in this process: torch's intra-op pool and OpenCV's. More threads than free
    cores make torch's spinning workers wait on each other (a 2-core machine under load ran Lightning 20x slower
    with 2 threads than with 1)."""
    import torch
    torch.set_num_threads(int(threads))
    cv2.setNumThreads(int(threads))


def _worker_run(task):
    spec, sequence, output, got10k_layout = task
    if spec.label not in _ADAPTERS:
        _ADAPTERS[spec.label] = spec.build()
    boxes, times, scores = track_sequence(_ADAPTERS[spec.label], sequence)
    write_results(output, spec.label, sequence.name, boxes, times, got10k_layout, scores)
    return '[pid %d] %s' % (os.getpid(), _summary(spec.label, sequence, times))
