"""Access to the acceptance fixtures in ``test/fixtures`` (copies of the project's reference facts, see
``test/fixtures/README.md``), so the suite runs from the repository alone (``colcon test`` in a robot workspace).

A missing fixture fails the test: the oracles are the acceptance criterion, never optional.
"""
import functools
import hashlib
import json
import os
import subprocess
import sys

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFERENCE = os.path.join(REPO_ROOT, 'test', 'fixtures')

#: Tolerances suggested by the fixtures' own float64 re-runs (STARK_FACTS.md section 16).
BOX_TOL_PX = 1e-2
SCORE_TOL = 1e-4
PRED_NORM_TOL = 1e-4

ORACLE_FILES = {'st50': 'oracle_st50_seed0.npz', 's50': 'oracle_s50_seed0.npz', 'st101': 'oracle_st101_seed0.npz',
                'lightning': 'oracle_lightning_seed0.npz'}
KEY_FILES = {'st50': 'stark_st50_keys.tsv', 's50': 'stark_s50_keys.tsv', 'st101': 'stark_st101_keys.tsv',
             'lightning': 'stark_lightning_keys.tsv'}


def reference_path(name):
    """Absolute path of a fixture file; AssertionError if it is missing."""
    path = os.path.join(REFERENCE, name)
    assert os.path.isfile(path), 'acceptance fixture %s is missing' % path
    return path


@functools.lru_cache(maxsize=None)
def oracle(variant):
    """The oracle of a variant as a dict of arrays, plus 'meta' (parsed meta_json) and 'frames_rgb'."""
    with np.load(reference_path(ORACLE_FILES[variant])) as data:
        out = {k: data[k] for k in data.files}
    out['meta'] = json.loads(str(out.pop('meta_json')))
    if 'frames_bgr' not in out:   # the Lightning oracle stores its frames by reference to the ST50 one
        out['frames_bgr'] = oracle('st50')['frames_bgr']
        assert hashlib.sha256(out['frames_bgr'].tobytes()).hexdigest() == out['meta']['frames_bgr_sha256']
    out['frames_rgb'] = np.ascontiguousarray(out['frames_bgr'][..., ::-1])
    return out


@functools.lru_cache(maxsize=None)
def frame1_intermediates():
    with np.load(reference_path('oracle_st50_seed0_frame1_intermediates.npz')) as data:
        return {k: data[k] for k in data.files}


def oracle_params(variant):
    """TrackerParams the oracle run used (update interval 10 and threshold 0.30 for ST, see its meta_json)."""
    from stark_ros.tracker import TrackerParams
    meta = oracle(variant)['meta']
    kwargs = dict(template_factor=meta['template_factor'], template_size=meta['template_size'],
                  search_factor=meta['search_factor'], search_size=meta['search_size'])
    if meta.get('update_intervals'):
        kwargs.update(update_interval=meta['update_intervals'][0], score_threshold=meta['update_threshold_used'])
    return TrackerParams(**kwargs)


def read_keys_tsv(name):
    """[(key, shape tuple, dtype)] from a keys TSV (header: key, shape, dtype)."""
    rows = []
    with open(reference_path(name), encoding='utf-8') as f:
        next(f)
        for line in f:
            parts = line.rstrip('\n').split('\t')
            if parts[0]:
                rows.append((parts[0], tuple(int(s) for s in parts[1].split(',') if s), parts[2]))
    return rows


def make_official_checkpoint(variant, out_path, seed=0):
    """Write an official-format checkpoint with the shared generator script (a real, independent file)."""
    extra = ['--net-type', 'STARKLightningXtrt', '--epoch', '500'] if variant == 'lightning' else []
    subprocess.run([sys.executable, reference_path('make_checkpoint.py'), reference_path(KEY_FILES[variant]),
                    str(out_path), '--seed', str(seed)] + extra, check=True, capture_output=True)
    return str(out_path)
