"""The network against the official key lists and the frame-1 intermediates of the ST50 oracle."""
import numpy as np
import pytest
import torch

from oracles import KEY_FILES, frame1_intermediates, oracle, read_keys_tsv
from stark_ros.model import build_network, build_stark, fuse_repvgg, load_network
from stark_ros.model.position_encoding import PositionEmbeddingSine
from stark_ros.model.synthetic import state_dict_digest, synthetic_state_dict

# STARK_FACTS.md section 1 (Lightning: section 14b, training-time form)
PARAMETER_COUNTS = {'s50': 28_095_554, 'st50': 28_227_395, 'st101': 47_167_299, 'lightning': 2_349_986}


@pytest.mark.parametrize('variant', ['s50', 'st50', 'st101', 'lightning'])
def test_state_dict_equals_official_key_list(variant):
    model = build_network(variant)
    rows = read_keys_tsv(KEY_FILES[variant])
    sd = model.state_dict()
    assert list(sd) == [r[0] for r in rows]
    assert [tuple(t.shape) for t in sd.values()] == [r[1] for r in rows]
    assert [str(t.dtype).replace('torch.', '') for t in sd.values()] == [r[2] for r in rows]
    assert sum(p.numel() for p in model.parameters()) == PARAMETER_COUNTS[variant]


@pytest.mark.parametrize('variant', ['s50', 'st50', 'st101', 'lightning'])
def test_synthetic_weights_are_the_oracle_weights(variant):
    sd = synthetic_state_dict(build_network(variant).state_dict(), seed=0)
    assert state_dict_digest(sd) == oracle(variant)['meta']['weights']['sha256_digest']


def test_synthetic_weights_depend_on_seed():
    template = build_stark('s50').state_dict()
    assert state_dict_digest(synthetic_state_dict(template, 1)) != state_dict_digest(
        synthetic_state_dict(template, 0))


@pytest.fixture(scope='module')
def st50():
    network, _ = load_network('synthetic', 'st50', 'cpu')
    return network


def _tokens(network, image, mask):
    with torch.inference_mode():
        return network.forward_backbone(torch.from_numpy(image), torch.from_numpy(mask))


def test_frame1_backbone_tokens(st50):
    o, f1 = oracle('st50'), frame1_intermediates()
    for part in ('template', 'search'):
        tokens = _tokens(st50, o['f1_%s_input' % part], o['f1_%s_mask' % part])
        np.testing.assert_array_equal(tokens['mask'].numpy(), f1['f1_%s_mask_vec' % part])
        np.testing.assert_allclose(tokens['pos'].numpy(), f1['f1_%s_pos' % part], atol=1e-6)
        np.testing.assert_allclose(tokens['feat'].numpy(), f1['f1_%s_feat' % part], atol=2e-4, rtol=1e-4)


def test_frame1_transformer_heads_and_outputs(st50):
    o, f1 = oracle('st50'), frame1_intermediates()
    template = _tokens(st50, o['f1_template_input'], o['f1_template_mask'])
    search = _tokens(st50, o['f1_search_input'], o['f1_search_mask'])
    tokens = [template, template, search]
    with torch.inference_mode():
        feat = torch.cat([d['feat'] for d in tokens])
        mask = torch.cat([d['mask'] for d in tokens], dim=1)
        pos = torch.cat([d['pos'] for d in tokens])
        hs, memory = st50.transformer(feat, mask, st50.query_embed.weight, pos)
        out = st50.forward_head(tokens)
    np.testing.assert_allclose(memory.numpy(), f1['f1_enc_memory'], atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(hs.numpy(), f1['f1_dec_hs'], atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(out['pred_boxes'].numpy(), o['f1_pred_boxes'], atol=1e-5)
    np.testing.assert_allclose(out['pred_logits'].numpy(), o['f1_pred_logits'], atol=1e-5)


def test_corner_score_maps(st50):
    """The head's raw maps and the soft-argmax over them (grid = 16 * index, no half-cell offset)."""
    o, f1 = oracle('st50'), frame1_intermediates()
    template = _tokens(st50, o['f1_template_input'], o['f1_template_mask'])
    search = _tokens(st50, o['f1_search_input'], o['f1_search_mask'])
    captured = {}
    handle = st50.box_head.register_forward_hook(lambda m, inputs, out: captured.update(x=inputs[0]))
    try:
        with torch.inference_mode():
            st50.forward_head([template, template, search])
            tl, br = st50.box_head.score_maps(captured['x'])
    finally:
        handle.remove()
    np.testing.assert_allclose(tl.numpy(), f1['f1_score_map_tl'], atol=1e-3, rtol=1e-4)
    np.testing.assert_allclose(br.numpy(), f1['f1_score_map_br'], atol=1e-3, rtol=1e-4)
    # Soft-argmax by hand from the oracle's maps: expectation of (k mod 20, k div 20) * 16, over 320.
    prob = torch.softmax(torch.from_numpy(f1['f1_score_map_tl']).reshape(-1).double(), 0).numpy()
    k = np.arange(400)
    x_tl, y_tl = (prob * (k % 20) * 16).sum() / 320, (prob * (k // 20) * 16).sum() / 320
    with torch.inference_mode():
        got = st50.box_head.soft_argmax(torch.from_numpy(f1['f1_score_map_tl']))
    assert abs(got[0].item() / 320 - x_tl) < 1e-6 and abs(got[1].item() / 320 - y_tl) < 1e-6


def test_sine_encoding_formula_with_padding():
    """Padding changes the encoding: cumsum of not-mask, normalised by the last row/column (y part first)."""
    mask = torch.zeros(1, 4, 5, dtype=torch.bool)
    mask[:, :, 3:] = True       # two padded columns on the right
    mask[:, 3:, :] = True       # one padded row at the bottom
    pos = PositionEmbeddingSine(num_pos_feats=4)(mask)[0].numpy()
    assert pos.shape == (8, 4, 5)
    nm = (~mask[0]).numpy().astype(np.float64)
    ey = np.cumsum(nm, 0)
    ex = np.cumsum(nm, 1)
    ey = ey / (ey[-1:, :] + 1e-6) * 2 * np.pi
    ex = ex / (ex[:, -1:] + 1e-6) * 2 * np.pi
    d = 10000 ** (2 * (np.arange(4) // 2) / 4)
    for j in range(4):
        fn = np.sin if j % 2 == 0 else np.cos
        np.testing.assert_allclose(pos[j], fn(ey / d[j]), atol=1e-5)
        np.testing.assert_allclose(pos[4 + j], fn(ex / d[j]), atol=1e-5)


def test_lightning_frame1_intermediates():
    o = oracle('lightning')
    network, _ = load_network('synthetic', 'lightning', 'cpu', fuse=False)
    captured = {}
    network.backbone.body.register_forward_hook(lambda m, i, out: captured.setdefault('backbone', []).append(out))
    network.box_head.conv_tower.register_forward_hook(lambda m, i, out: captured.update(maps=out))
    tokens = {part: _tokens(network, o['f1_%s_input' % part], o['f1_%s_mask' % part])
              for part in ('template', 'search')}
    for index, part in enumerate(('template', 'search')):
        np.testing.assert_allclose(captured['backbone'][index].numpy(), o['f1_%s_backbone_out' % part],
                                   atol=1e-3, rtol=1e-4)
        np.testing.assert_allclose(tokens[part]['feat'].numpy(), o['f1_%s_feat' % part], atol=1e-3, rtol=1e-4)
        np.testing.assert_array_equal(tokens[part]['pos'].numpy(), o['f1_%s_pos' % part])
        np.testing.assert_array_equal(tokens[part]['mask'].numpy(), o['f1_%s_mask_vec' % part])
    with torch.inference_mode():
        t, x = tokens['template'], tokens['search']
        enc = network.transformer.encoder(x['feat'], x['pos'], torch.cat((t['feat'], x['feat'])),
                                          torch.cat((t['pos'], x['pos'])), torch.cat((t['mask'], x['mask']), 1))
        out = network.forward_head([t, x])
    np.testing.assert_allclose(enc.numpy(), o['f1_enc_out'], atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(captured['maps'].numpy(), o['f1_score_maps'], atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(out['pred_boxes'].numpy(), o['f1_pred_boxes'], atol=1e-5)


def test_repvgg_fusion_is_equivalent_and_deploy_shaped():
    """Train -> deploy re-parameterisation (STARK_FACTS.md 14b): 46 entries, 2,151,202 values, same outputs."""
    network, _ = load_network('synthetic', 'lightning', 'cpu', fuse=False)
    fused, _ = load_network('synthetic', 'lightning', 'cpu', fuse=True)
    sd = fused.state_dict()
    persistent = [k for k in sd if not k.endswith('num_batches_tracked')]
    assert len(persistent) == 46 and sum(sd[k].numel() for k in persistent) == 2_151_202
    images = torch.randn(2, 3, 128, 128)
    masks = torch.zeros(2, 128, 128, dtype=torch.bool)
    with torch.inference_mode():
        a, b = network.forward_backbone(images, masks)['feat'], fused.forward_backbone(images, masks)['feat']
    np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-4, atol=1e-3 * float(a.abs().max()))
    assert fuse_repvgg(fused) is fused   # idempotent
