"""The reduced-precision emulation of bench/precision_sensitivity.py: exact when nothing is emulated, rounding
where asked.

The study's conclusions (bench/README.md) rest on two properties checked here: with no part in bf16 the emulating
copy computes the fp32 network (so every deviation it reports comes from the emulated rounding), and each part
switch really rounds that part.
"""
import os
import sys

import numpy as np
import pytest
import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'bench'))
import precision_sensitivity as study  # noqa: E402
import bench_tracker  # noqa: E402

from stark_ros.backends import build_engine  # noqa: E402
from stark_ros.model import load_network  # noqa: E402


def test_emulated_attention_equals_multihead_attention_when_exact():
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(64, 8).eval()
    state = study.ReducedParts()
    emulated = study.EmulatedAttention(mha, 'encoder.attention', state)
    query, key = torch.randn(5, 2, 64), torch.randn(9, 2, 64)
    value = torch.randn(9, 2, 64)
    mask = torch.zeros(2, 9, dtype=torch.bool)
    mask[1, -3:] = True
    with torch.no_grad():
        expected = mha(query, key, value, key_padding_mask=mask, need_weights=False)[0]
        exact = emulated(query, key, value, key_padding_mask=mask)[0]
        state.set(['encoder.attention'])
        rounded = emulated(query, key, value, key_padding_mask=mask)[0]
        half_state = study.ReducedParts('fp16')
        half = study.EmulatedAttention(mha, 'encoder.attention', half_state)
        half_state.set(['encoder.attention'])
        rounded_fp16 = half(query, key, value, key_padding_mask=mask)[0]
    assert torch.allclose(exact, expected, atol=1e-5)
    difference = (rounded - expected).abs().max().item()
    assert 1e-4 < difference < 5e-2      # bf16 operands: relative error about 2**-8, not garbage
    difference_fp16 = (rounded_fp16 - expected).abs().max().item()
    assert 0 < difference_fp16 < difference / 3      # fp16 keeps 3 more significand bits than bf16


def test_unknown_part_or_dtype_is_rejected():
    with pytest.raises(ValueError, match='unknown parts'):
        study.ReducedParts().set(['backbone', 'transformer'])
    with pytest.raises(ValueError, match='dtype'):
        study.ReducedParts('fp8')


def test_fp16_rounding_overflows_like_fp16():
    state = study.ReducedParts('fp16')
    rounded = state.round(torch.tensor([1.0 + 2.0 ** -12, 70000.0]))
    assert rounded[0].item() == 1.0 and torch.isinf(rounded[1])


@pytest.mark.skipif(not os.path.isfile(os.path.join(bench_tracker.REFERENCE, bench_tracker.ORACLES['lightning'])),
                    reason='oracle fixture missing')
def test_forced_run_deviation_is_zero_without_parts_and_grows_with_them():
    network, _ = load_network('synthetic', 'lightning', 'cpu')
    reference = bench_tracker.oracle_forced_boxes(build_engine(network, 'torch', precision='fp32'), 'lightning')
    emulated, state = study.emulating_copy(network)
    engine = build_engine(emulated, 'torch', precision='fp32')
    parts = {getattr(m, 'part', None) for m in emulated.modules()} - {None}
    assert parts == {'backbone', 'encoder.attention', 'encoder.ffn', 'box_head'}   # Lightning: no decoder

    exact = study.deviation(bench_tracker.oracle_forced_boxes(engine, 'lightning'), reference)
    assert exact[0] < 1e-2                      # folding only: the core tolerance
    state.set(['backbone'])
    backbone = study.deviation(bench_tracker.oracle_forced_boxes(engine, 'lightning'), reference)
    assert backbone[0] > 1e-2
    assert np.isfinite(backbone).all() and backbone[0] < 10.0


@pytest.mark.skipif(not os.path.isfile(os.path.join(bench_tracker.REFERENCE, bench_tracker.ORACLES['lightning'])),
                    reason='oracle fixture missing')
def test_fp16_numerics_of_the_cuda_path_stay_finite_and_close():
    # the fp16 path (CUDA autocast) cannot run here; its rounding and range can: everything in fp16, including
    # the stored activations, must neither overflow nor move a box by 1 px on the oracle forced run
    network, _ = load_network('synthetic', 'lightning', 'cpu')
    reference = bench_tracker.oracle_forced_boxes(build_engine(network, 'torch', precision='fp32'), 'lightning')
    emulated, state = study.emulating_copy(network, 'fp16')
    state.set(list(study.PARTS))
    worst, p95, mean = study.deviation(
        bench_tracker.oracle_forced_boxes(build_engine(emulated, 'torch', precision='fp32'), 'lightning'), reference)
    assert np.isfinite([worst, p95, mean]).all()
    assert 1e-3 < worst < 1.0
