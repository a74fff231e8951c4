#!/usr/bin/env python3
"""Time per image of :class:`stark_ros.tracker.multi_tracker.MultiTracker` for 1, 2, 4 and 8 targets, in one run.

Usage (from the repository root)::

    python bench/bench_multi_target.py                       # shipped lite0 model, backend auto (openvino on x86)
    python bench/bench_multi_target.py --backend torch --targets 1,2,4,8 --frames 30 --warmup 5 --threads 2
    python bench/bench_multi_target.py --backend openvino --with-loop     # batched and one after the other
    python bench/bench_multi_target.py --checkpoint synthetic --variant st50 --backend onnxruntime

What is measured: ``track(image)`` of all targets on real 480x360 frames of ``../shared/eval/bag`` (crops +
pre-processing + one batched backbone call + one batched transformer/head call + post-processing), median and
p95 ms over ``--frames`` frames after ``--warmup``, for each target count. The targets are the ground-truth bag
plus other real regions of the first frame spread over the image (each its own template). Before every timed call
every target's state is put back to its first-frame box (not timed), so every count crops the same regions on
every frame and the counts differ only in how many targets run. The counts are interleaved frame by frame (the
order rotates), so load from other processes hits them alike. ``ratio`` = median / median of 1 target;
``per target`` = median / count. ``--backend`` is resolved like the node's (default ``auto``: openvino on an x86
CPU with openvino installed, else torch; ``stark_ros.backends.resolve_backend``). With ``--no-batch`` the targets
run one after the other (a loop of single-target calls); ``--with-loop`` times both ways in the same run,
interleaved, and adds the one-after-the-other columns. An onnxruntime export of batch-1 graphs cannot batch and
always loops (stark_ros.tracker.multi_tracker.supports_batching); the header line says which way ran.
"""
import argparse
import os
import re
import sys
import time

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import cv2  # noqa: E402
import torch  # noqa: E402

from stark_ros.allocator import tune_allocator  # noqa: E402
from stark_ros.backends import resolve_backend  # noqa: E402
from stark_ros.tracker import StarkTracker  # noqa: E402
from stark_ros.tracker.multi_tracker import MultiTracker  # noqa: E402

sys.path.insert(0, os.path.join(REPO_ROOT, 'test'))
from dataset_layouts import SHARED_EVAL  # noqa: E402  (where the real evaluation sequences are)

SEQUENCE = os.path.join(SHARED_EVAL, 'bag')


def load_frames(count):
    """``(RGB frames, first ground-truth box)`` of ``../shared/eval/bag``."""
    names = sorted(os.listdir(os.path.join(SEQUENCE, 'img')))[:count]
    frames = [cv2.cvtColor(cv2.imread(os.path.join(SEQUENCE, 'img', n)), cv2.COLOR_BGR2RGB) for n in names]
    with open(os.path.join(SEQUENCE, 'groundtruth_rect.txt')) as handle:
        box = tuple(float(v) for v in re.split(r'[,\s]+', handle.readline().strip()))
    return frames, box


def target_boxes(box, shape, count):
    """The ground-truth box and ``count - 1`` other boxes of the first frame on a grid over the image (pixels)."""
    height, width = shape[:2]
    boxes = [box]
    side_w, side_h = 60.0, 50.0
    grid = [(fx, fy) for fy in (0.1, 0.45, 0.8) for fx in (0.05, 0.3, 0.55, 0.8)]
    for fx, fy in grid[:count - 1]:
        boxes.append((fx * (width - side_w), fy * (height - side_h), side_w, side_h))
    return boxes


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--checkpoint', default='', help="'' = the shipped lite0 model, 'synthetic', or a file")
    parser.add_argument('--variant', default='auto')
    parser.add_argument('--backend', default='auto', help='auto (the node default), torch, torch-fast, openvino or '
                                                          'onnxruntime')
    parser.add_argument('--precision', default=None, help='fp32 (default), bf16, fp16 or auto')
    parser.add_argument('--targets', default='1,2,4,8')
    parser.add_argument('--frames', type=int, default=30)
    parser.add_argument('--warmup', type=int, default=5)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--no-batch', action='store_true', help='track the targets one after the other')
    parser.add_argument('--with-loop', action='store_true',
                        help='also time the targets one after the other, interleaved with the batched calls')
    args = parser.parse_args()

    tune_allocator()
    torch.set_num_threads(args.threads)
    counts = [int(c) for c in args.targets.split(',')]
    frames, box = load_frames(args.frames + args.warmup + 1)
    backend = resolve_backend(args.backend, 'cpu', args.precision)
    options = {'threads': args.threads} if backend in ('openvino', 'onnxruntime') else {}
    single = StarkTracker.from_checkpoint(args.checkpoint, args.variant, 'cpu', backend=backend,
                                          precision=args.precision, **options)
    modes = [False] if args.no_batch else ([True, False] if args.with_loop else [True])
    trackers = {}
    for count in counts:
        boxes = target_boxes(box, frames[0].shape, count)
        for batch in modes:
            multi = MultiTracker(single, max_targets=max(counts), batch=batch)
            for i, b in enumerate(boxes):
                multi.add('t%d' % i, frames[0], b)
            trackers[count, batch] = (multi, boxes)
    keys = list(trackers)
    times = {key: [] for key in keys}
    for t, frame in enumerate(frames[1:]):
        for key in keys[t % len(keys):] + keys[:t % len(keys)]:
            multi, boxes = trackers[key]
            for i, b in enumerate(boxes):
                multi.target('t%d' % i).state = b
            started = time.perf_counter()
            multi.track(frame)
            if t >= args.warmup:
                times[key].append(1000.0 * (time.perf_counter() - started))
    batched = trackers[keys[0]][0].batch
    print('STARK %s, backend %s (%s requested), %s, %s, %d threads, %d frames of bag (480x360) after %d warm-up'
          % (single.variant, single.info.get('backend', backend), args.backend, single.info.get('precision', 'fp32'),
             'batched' if batched else 'one after the other', args.threads, args.frames, args.warmup))
    header = '%8s %10s %8s %8s %12s' % ('targets', 'median ms', 'p95 ms', 'ratio', 'per target')
    if len(modes) == 2:
        header += '   %14s %8s %10s' % ('loop median ms', 'ratio', 'batch/loop')
    print(header)
    base = {mode: float(np.median(times[counts[0], mode])) for mode in modes}
    for count in counts:
        mode = modes[0]
        median = float(np.median(times[count, mode]))
        line = '%8d %10.1f %8.1f %8.2f %12.1f' % (count, median, float(np.percentile(times[count, mode], 95)),
                                                  median / base[mode], median / count)
        if len(modes) == 2:
            loop = float(np.median(times[count, False]))
            line += '   %14.1f %8.2f %10.2f' % (loop, loop / base[False], median / loop)
        print(line)


if __name__ == '__main__':
    main()
