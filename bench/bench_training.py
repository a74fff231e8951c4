"""Stage-1 training throughput: today's loop (crops + whole network every step) against the cached-feature loop,
in one run, with the project's Trainer on the same real sequences.

    python bench/bench_training.py --data ../shared/train_real [--samples 320] [--threads 2]

Baseline: the ``lite0_stage1`` recipe (the loop the previous shipped model was trained with: a DataLoader worker
decodes frames and makes crops, the network runs backbone + transformer + heads forward and backward, batch 16,
channels-last). New: the ``lite0_real_stage1`` recipe (pairs drawn from cached backbone features,
:mod:`stark_ros.training.feature_cache`, batch 32, dropout 0). Both train one epoch of ``--samples`` samples on
the sequences of ``train_real_train.txt`` (the cache with every 10th frame, to keep its build short). It prints
samples per second of each (the epoch's wall time after the first logged window, i.e. without start-up), their
ratio, and the cache build time with the number of samples after which it has paid for itself.
"""
import argparse
import csv
import os
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from stark_ros.training.config import load_config  # noqa: E402
from stark_ros.training.data_setup import build_datasets  # noqa: E402
from stark_ros.training.distributed import init_distributed  # noqa: E402
from stark_ros.training.trainer import Trainer  # noqa: E402


def steady_rate(log_path):
    """Samples per second over the logged training windows after the first one (start-up excluded)."""
    with open(log_path) as stream:
        rows = [r for r in csv.DictReader(stream) if r['phase'] == 'train']
    if len(rows) < 2:
        raise RuntimeError('%s has fewer than two training rows: raise --samples' % log_path)
    samples = float(rows[-1]['samples']) - float(rows[0]['samples'])
    return samples / (float(rows[-1]['elapsed_s']) - float(rows[0]['elapsed_s']))


def run(recipe, overrides, out):
    config = load_config(recipe, overrides)
    started = time.perf_counter()
    train_set, _ = build_datasets(config)
    data_s = time.perf_counter() - started
    trainer = Trainer(config, out, init_distributed('cpu', None, 600), train_set, progress=False, log=lambda m: None)
    trainer.run()
    return steady_rate(os.path.join(out, 'log.csv')), data_s


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--data', required=True, help='the train_real folder (../shared/train_real here)')
    parser.add_argument('--samples', type=int, default=320)
    parser.add_argument('--threads', type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = os.path.abspath(args.data)
    entries = '[{type: sequences, root: %s, split: train_real_train.txt}]' % data
    with tempfile.TemporaryDirectory() as tmp:
        common = ['data.train=' + entries, 'data.val=[]', 'train.epochs=1', 'train.val_interval=0', 'eval.interval=0',
                  'log.interval=2']
        baseline, _ = run('lite0_stage1', common + ['data.samples_per_epoch=%d' % (args.samples // 4)],
                          os.path.join(tmp, 'baseline'))
        cached, build_s = run('lite0_real_stage1', common + [
            'data.samples_per_epoch=%d' % (args.samples * 4), 'data.feature_cache.frame_step=10',
            'data.feature_cache.folder=%s' % os.path.join(tmp, 'cache')], os.path.join(tmp, 'cached'))
    print('loop                         samples/s   ratio')
    print('today (lite0_stage1)         %9.1f    1.00' % baseline)
    print('cached (lite0_real_stage1)   %9.1f   %5.2f' % (cached, cached / baseline))
    print('cache build (every 10th frame): %.0f s, paid back after %.0f samples'
          % (build_s, build_s / max(1.0 / baseline - 1.0 / cached, 1e-9)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
