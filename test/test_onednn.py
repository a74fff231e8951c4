"""The oneDNN kernels of torch-fast fp32 (stark_ros.backends.onednn) against the stock PyTorch modules.

Each replacement must compute the same function as the module it replaces, to fp32 rounding; the whole engine
is checked against the oracles in test_backends.py (test_fp32_backend_reproduces_oracle[torch-fast-*]).
"""
import copy
import platform

import pytest
import torch
from torch import nn

from stark_ros.backends import build_engine
from stark_ros.backends.folding import fold_batchnorms
from stark_ros.backends.onednn import (SMALL_BATCH, OneDnnBottleneck, OneDnnConv, OneDnnLinear, PackedAttention,
                                       onednn_linear_available, use_onednn_convolutions, use_onednn_products)
from stark_ros.model import load_network
from stark_ros.model.backbone import ResNetBody
from stark_ros.model.transformer import build_transformer

X86 = platform.machine().lower() in ('x86_64', 'amd64')
pytestmark = pytest.mark.skipif(not onednn_linear_available('cpu') and not X86,
                                reason='no oneDNN inner product in this torch build (not x86)')


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _close(a, b, rel=1e-5):
    scale = max(1.0, b.abs().max().item())
    assert (a - b).abs().max().item() <= rel * scale, ((a - b).abs().max().item(), scale)


def test_available_on_this_machine():
    # the machines this project runs on are x86 CPUs with a mkldnn build of torch: the fast path must be on
    assert onednn_linear_available('cpu')
    assert not onednn_linear_available('meta')


@pytest.mark.parametrize('rows', [1, SMALL_BATCH - 1, SMALL_BATCH, 528])
@pytest.mark.parametrize('relu', [False, True])
def test_linear_matches_nn_linear(rows, relu):
    torch.manual_seed(0)
    linear = nn.Linear(256, 512)
    fast = OneDnnLinear.from_linear(linear, relu=relu)
    x = torch.randn(rows, 1, 256, generator=_gen())
    with torch.inference_mode():
        ref = linear(x)
        ref = torch.relu(ref) if relu else ref
        _close(fast(x), ref)
        _close(fast(x), ref)  # second call: the re-laid-out weight


def _mha_pair(seed=0):
    torch.manual_seed(seed)
    mha = nn.MultiheadAttention(256, 8, dropout=0.1).eval()
    with torch.no_grad():
        mha.in_proj_bias.normal_()        # non-zero biases: the key bias must cancel, the value bias must not
        mha.out_proj.bias.normal_()
    return mha, PackedAttention(mha)


def _padding_mask(length, padded):
    mask = torch.zeros(1, length, dtype=torch.bool)
    mask[0, :padded] = True
    return mask


@pytest.mark.parametrize('padded', [0, 37])
def test_attention_self(padded):
    mha, fast = _mha_pair()
    x = torch.randn(528, 1, 256, generator=_gen(1))
    pos = torch.randn(528, 1, 256, generator=_gen(2))
    mask = _padding_mask(528, padded)
    q = x + pos
    with torch.inference_mode():
        ref = mha(q, q, x, key_padding_mask=mask, need_weights=False)[0]
        out, weights = fast(q, q, x, key_padding_mask=mask)
    assert weights is None and out.shape == ref.shape
    _close(out, ref)


@pytest.mark.parametrize('queries', [1, 4, 400])
@pytest.mark.parametrize('padded', [0, 37])
def test_attention_cross(queries, padded):
    # 1 and 4 queries take the path that never projects the keys and values; 400 the projected one
    mha, fast = _mha_pair(3)
    query = torch.randn(queries, 1, 256, generator=_gen(4))
    memory = torch.randn(528, 1, 256, generator=_gen(5))
    key = memory + torch.randn(528, 1, 256, generator=_gen(6))
    mask = _padding_mask(528, padded)
    with torch.inference_mode():
        ref = mha(query, key, memory, key_padding_mask=mask, need_weights=False)[0]
        out = fast(query, key, memory, key_padding_mask=mask)[0]
    _close(out, ref)


def test_attention_rejects_weights_request():
    _, fast = _mha_pair()
    x = torch.randn(4, 1, 256)
    with pytest.raises(ValueError, match='weights'):
        fast(x, x, x, need_weights=True)


def test_transformer_conversion_replaces_everything_and_fuses_relu():
    torch.manual_seed(0)
    ref = build_transformer().eval()
    fast = copy.deepcopy(ref)
    assert use_onednn_products(fast) == 6 * (1 + 2) + 6 * (2 + 2)
    assert not any(isinstance(m, (nn.Linear, nn.MultiheadAttention)) for m in fast.modules())
    layers = list(fast.encoder.layers) + list(fast.decoder.layers)
    assert all(layer.linear1.attr == 'relu' and isinstance(layer.activation, nn.Identity) for layer in layers)
    src = torch.randn(528, 1, 256, generator=_gen(7))
    pos = torch.randn(528, 1, 256, generator=_gen(8))
    query = torch.randn(1, 256, generator=_gen(9))
    mask = _padding_mask(528, 20)
    with torch.inference_mode():
        for a, b in zip(fast(src, mask, query, pos), ref(src, mask, query, pos)):
            _close(a, b)


class _Body(nn.Module):
    def __init__(self, body):
        super().__init__()
        self.body = body

    def forward(self, x):
        return self.body(x)


def test_backbone_conversion_matches_folded_backbone():
    torch.manual_seed(0)
    net = load_network('synthetic', 'st50', 'cpu')[0]
    folded = _Body(copy.deepcopy(net.backbone[0].body))
    fold_batchnorms(folded)
    fast = copy.deepcopy(folded)
    assert use_onednn_convolutions(fast) == 1 + 13 * 3 + 3
    assert sum(isinstance(m, OneDnnBottleneck) for m in fast.modules()) == 13
    assert not any(isinstance(m, nn.Conv2d) for m in fast.modules())
    assert isinstance(fast.body.relu, nn.Identity) and fast.body.conv1.attr == 'relu'
    with torch.inference_mode():
        for size in (128, 320, 128):  # a weight layout per input shape, re-used
            x = torch.randn(1, 3, size, size, generator=_gen(size))
            _close(fast(x), folded(x))
    assert len(fast.body.conv1._packed) == 2


def test_conv_fuses_relu_of_a_sequential_and_refuses_odd_padding():
    torch.manual_seed(0)
    seq = nn.Sequential(nn.Conv2d(8, 16, 3, padding=1), nn.Identity(), nn.ReLU(inplace=True), nn.Conv2d(16, 1, 1))
    ref = copy.deepcopy(seq)
    assert use_onednn_convolutions(seq) == 2
    assert isinstance(seq[0], OneDnnConv) and seq[0].attr == 'relu' and isinstance(seq[2], nn.Identity)
    assert isinstance(seq[3], OneDnnConv) and seq[3].attr == 'none'
    x = torch.randn(2, 8, 20, 20, generator=_gen())
    with torch.inference_mode():
        _close(seq(x), ref(x))
    with pytest.raises(ValueError, match='padding'):
        OneDnnConv(nn.Conv2d(3, 3, 3, padding=1, padding_mode='reflect'))


def test_unfolded_bottleneck_is_refused():
    body = ResNetBody(50)
    with pytest.raises(ValueError, match='fold'):
        OneDnnBottleneck(body.layer1[0])


@pytest.mark.parametrize('precision,onednn,expected', [('fp32', True, True), ('fp32', False, False),
                                                       ('bf16', True, False)])
def test_engine_uses_onednn_for_fp32_only(precision, onednn, expected):
    from stark_ros.backends import cpu_supports_bf16
    if precision == 'bf16' and not cpu_supports_bf16():
        pytest.skip('CPU without native bf16')
    net = load_network('synthetic', 'lightning', 'cpu')[0]
    engine = build_engine(net, 'torch-fast', precision=precision, onednn=onednn)
    assert engine.describe()['onednn_products'] is expected
    kernels = any(isinstance(m, (OneDnnLinear, OneDnnConv)) for m in engine.network.modules())
    assert kernels is expected
    if expected:    # every convolution and product of the network was converted, the bottleneck included
        assert not any(isinstance(m, (nn.Conv2d, nn.Linear, nn.MultiheadAttention))
                       for m in engine.network.modules())


def test_a_bare_convolution_is_refused():
    with pytest.raises(TypeError, match='parent'):
        use_onednn_convolutions(nn.Conv2d(3, 3, 1))
