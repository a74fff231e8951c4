#!/usr/bin/env python3
"""Candidate transformer / head sizes of the ``lite0`` variant: inference and training cost against Lightning.

Usage (from the repository root)::

    python bench/bench_lite0_sizes.py [--threads 2] [--frames 20] [--train-reps 3] [--backend torch-fast]
                                      [--candidates NAME,...]

For each candidate (EfficientNet-Lite0 backbone cut at stride 16 + bottleneck + sine positions + transformer +
corner head + score head, :class:`stark_ros.model.stark.VariantSpec`) it prints, in one process:

* ``infer ms``: median over ``--frames`` of one tracking step of the network on a 320x320 search patch (search
  backbone + transformer over [template; template; search] + heads) with ``--backend`` (fp32), and the same for
  STARK-Lightning (fused, [template; search]) measured interleaved frame by frame; ``ratio`` = candidate /
  Lightning, the number to trust on a shared machine;
* ``train s``: median forward + backward of a batch of 16 (two 128x128 templates + one 320x320 search region,
  loss = sum of the outputs) in training mode with the official freezing rule (stem and blocks 0-2 of the
  backbone frozen, :meth:`stark_ros.model.Stark.backbone_trainable_prefixes`), and the same for Lightning
  (one template; stages 2 and 3 trainable), interleaved;
* parameters and float32 checkpoint size of the candidate.

Random weights (the speed does not depend on the values). Results: ``bench/README.md``, section lite0.
"""
import argparse
import copy
import os
import statistics
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import torch  # noqa: E402

from stark_ros.allocator import tune_allocator  # noqa: E402
from stark_ros.backends import build_engine  # noqa: E402
from stark_ros.model import build_network, fuse_repvgg  # noqa: E402
from stark_ros.model.stark import VARIANTS, VariantSpec, build_stark  # noqa: E402

#: name -> VariantSpec keyword arguments (hidden, heads, encoder/decoder layers, FFN width, corner-head width).
CANDIDATES = {
    'h128-e1d1-f512-c32': dict(hidden_dim=128, nheads=4, enc_layers=1, dec_layers=1, dim_feedforward=512,
                               head_channels=32),
    'h128-e1d1-f512-c64': dict(hidden_dim=128, nheads=4, enc_layers=1, dec_layers=1, dim_feedforward=512,
                               head_channels=64),
    'h128-e2d2-f512-c64': dict(hidden_dim=128, nheads=4, enc_layers=2, dec_layers=2, dim_feedforward=512,
                               head_channels=64),
    'h128-e2d1-f512-c32': dict(hidden_dim=128, nheads=4, enc_layers=2, dec_layers=1, dim_feedforward=512,
                               head_channels=32),
    'h128-e2d2-f512-c128': dict(hidden_dim=128, nheads=4, enc_layers=2, dec_layers=2, dim_feedforward=512,
                                head_channels=128),
    'h128-e3d3-f1024-c128': dict(hidden_dim=128, nheads=4, enc_layers=3, dec_layers=3, dim_feedforward=1024,
                                 head_channels=128),
    'h256-e2d2-f1024-c128': dict(hidden_dim=256, nheads=8, enc_layers=2, dec_layers=2, dim_feedforward=1024,
                                 head_channels=128),
}


def _inputs(batch, num_templates):
    gen = torch.Generator().manual_seed(0)
    templates = [torch.randn(batch, 3, 128, 128, generator=gen) for _ in range(num_templates)]
    template_masks = [torch.zeros(batch, 128, 128, dtype=torch.bool)] * num_templates
    return templates, template_masks, torch.randn(batch, 3, 320, 320, generator=gen), \
        torch.zeros(batch, 320, 320, dtype=torch.bool)


def _step(engine, template_tokens, search, search_mask):
    started = time.perf_counter()
    tokens = engine.forward_backbone(search, search_mask)
    engine.forward_head(template_tokens + [tokens])
    return time.perf_counter() - started


def _train_step(network, inputs):
    templates, template_masks, search, search_mask = inputs
    started = time.perf_counter()
    tokens = [network.forward_backbone(t, m) for t, m in zip(templates, template_masks)]
    tokens.append(network.forward_backbone(search, search_mask))
    out = network.forward_head(tokens)
    loss = out['pred_boxes'].sum() + (0 if out['pred_logits'] is None else out['pred_logits'].sum())
    loss.backward()
    network.zero_grad(set_to_none=True)
    return time.perf_counter() - started


def _for_training(network):
    network.train()
    prefixes = network.backbone_trainable_prefixes() if hasattr(network, 'backbone_trainable_prefixes') else \
        ('backbone.body.stage2.', 'backbone.body.stage3.')
    for name, param in network.named_parameters():
        param.requires_grad_(not name.startswith('backbone.') or name.startswith(prefixes))
    return network


def measure(spec, backend, frames, train_reps, baseline, threads):
    """Returns a dict of medians for one candidate and the interleaved Lightning baseline."""
    network = build_stark(spec=spec).eval()
    name, _, precision = backend.partition(':')
    options = {'threads': threads} if name in ('openvino', 'onnxruntime') else {}
    engines = {'cand': build_engine(copy.deepcopy(network), name, precision=precision or None, **options),
               'light': build_engine(baseline, name, precision=precision or None, **options)}
    times = {'cand': [], 'light': []}
    with torch.inference_mode():
        tokens = {}
        for key, engine in engines.items():
            templates, masks, search, search_mask = _inputs(1, engine.num_templates)
            tokens[key] = ([engine.forward_backbone(t, m) for t, m in zip(templates, masks)], search, search_mask)
        for index in range(frames + 3):
            for key in (('cand', 'light') if index % 2 else ('light', 'cand')):
                elapsed = _step(engines[key], *tokens[key])
                if index >= 3:
                    times[key].append(elapsed)
    train = {'cand': [float('nan')], 'light': [float('nan')]} if train_reps == 0 else {'cand': [], 'light': []}
    nets = {'cand': _for_training(build_stark(spec=spec)), 'light': _for_training(build_network('lightning'))}
    data = {key: _inputs(16, 2 if key == 'cand' else 1) for key in nets}
    for index in range(train_reps + 1 if train_reps else 0):
        for key in nets:
            elapsed = _train_step(nets[key], data[key])
            if index:
                train[key].append(elapsed)
    state = network.state_dict()
    return {'params': sum(p.numel() for p in network.parameters()),
            'mb': sum(v.numel() * v.element_size() for v in state.values()) / 2 ** 20,
            'infer': statistics.median(times['cand']) * 1e3, 'infer_light': statistics.median(times['light']) * 1e3,
            'train': statistics.median(train['cand']), 'train_light': statistics.median(train['light'])}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--frames', type=int, default=20)
    parser.add_argument('--train-reps', type=int, default=3, help='0: no training measurement')
    parser.add_argument('--backend', default='torch-fast', help='name[:precision], e.g. openvino:bf16')
    parser.add_argument('--candidates', default=','.join(CANDIDATES), help="names, or 'lite0' for the variant's")
    args = parser.parse_args(argv)
    tune_allocator()
    torch.set_num_threads(args.threads)
    baseline = fuse_repvgg(build_network('lightning').eval())
    print('%-22s %8s %7s %9s %9s %6s %8s %8s %6s' % ('candidate', 'params', 'MB', 'infer ms', 'Light ms', 'ratio',
                                                     'train s', 'Light s', 'ratio'))
    for name in args.candidates.split(','):
        spec = VARIANTS['lite0'] if name == 'lite0' else VariantSpec('lite0', 'efficientnet_lite0', 2, True,
                                                                     **CANDIDATES[name])
        r = measure(spec, args.backend, args.frames, args.train_reps, baseline, args.threads)
        print('%-22s %7.2fM %7.1f %9.1f %9.1f %6.2f %8.2f %8.2f %6.2f'
              % (name, r['params'] / 1e6, r['mb'], r['infer'], r['infer_light'], r['infer'] / r['infer_light'],
                 r['train'], r['train_light'], r['train'] / r['train_light']), flush=True)


if __name__ == '__main__':
    main()
