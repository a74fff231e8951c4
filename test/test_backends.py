"""Inference backends (stark_ros.backends) against the official oracles and against the fp32 reference.

* fp32 paths (torch, torch-fast fp32, openvino fp32, onnxruntime) must reproduce the oracle free and forced runs
  with the core tolerances (boxes 1e-2 px, scores 1e-4) -- ST50 and Lightning in full, S50/ST101 on the first
  forced frames (time budget).
* reduced-precision paths (torch-fast bf16, openvino bf16) run the forced sequences only (the free run is a
  closed loop: a 1-px difference moves the next crop and the runs drift apart by design) and are bounded against
  the oracle, i.e. the fp32 reference (the oracle and our fp32 run agree to < 1e-3 px):

  ============================== ========= ======== ========== ================================
  measured on this CPU            max (px)  p95 (px) mean (px)  max |score diff|
  ============================== ========= ======== ========== ================================
  torch-fast bf16, ST50 forced    1.44      0.99     0.40       0.0037
  openvino bf16, ST50 forced      1.30      1.03     0.38       0.0048
  torch-fast bf16, Lightning      1.36      0.87     0.26       --
  openvino bf16, Lightning        1.35      0.85     0.26       --
  ============================== ========= ======== ========== ================================

  Bounds enforced: max 2.0 px, p95 1.3 px, mean 0.6 px, scores 0.02, identical template-update decisions. Why:
  bf16 keeps 8 significant bits (relative rounding 2^-9); the boxes are soft-argmax expectations over a 320-px
  search patch cut from 190-255 image px, so a few 0.1 % of the crop is ~1 px. The bounds leave ~40 % headroom
  for other oneDNN/OpenVINO kernels (AMX vs avx512_bf16 accumulate in different orders). The issue's target
  "within 1 px of fp32" holds for the 95th percentile, not for the worst frame (see bench/README.md).
"""
import json
import os
import platform
import subprocess
import sys

import numpy as np
import pytest
import torch

from oracles import BOX_TOL_PX, PRED_NORM_TOL, REPO_ROOT, SCORE_TOL, oracle, oracle_params
from stark_ros.backends import (BACKENDS, CPU_ONLY_BACKENDS, available_backends, backend_available, build_engine,
                                cpu_supports_bf16, load_engine, resolve_backend, resolve_precision)
from stark_ros.backends.folding import fold_batchnorms
from stark_ros.model import load_network
from stark_ros.tracker import StarkTracker

BF16_MAX_PX, BF16_P95_PX, BF16_MEAN_PX, BF16_SCORE = 2.0, 1.3, 0.6, 0.02
#: a bf16 run closer than this to fp32 did not actually run in bf16 (measured deviations are ~1 px)
BF16_MIN_PX = 1e-2

needs_bf16 = pytest.mark.skipif(not cpu_supports_bf16(), reason='CPU without native bf16 (avx512_bf16/AMX)')


def _needs(backend):
    # requirements.txt pins every backend's packages: a missing one is a broken environment, not a skip.
    assert backend_available(backend), '%s is not installed (see requirements.txt)' % backend


@pytest.fixture(scope='module')
def networks():
    cache = {}

    def get(variant):
        if variant not in cache:
            cache[variant] = load_network('synthetic', variant, 'cpu')[0]
        return cache[variant]
    return get


def run_sequence(engine, variant, forced, frames=None):
    """Run the tracker with ``engine`` over the oracle sequence; returns (boxes, scores, updated, pred_norm)."""
    o = oracle(variant)
    tracker = StarkTracker(engine, oracle_params(variant))
    images = o['frames_rgb'][:frames]
    preds = []
    original = engine.forward_head

    def recording(tokens):
        out = original(tokens)
        preds.append(out['pred_boxes'].reshape(4).tolist())
        return out
    engine.forward_head = recording
    try:
        tracker.initialize(images[0], o['init_box'])
        results = []
        for t in range(1, len(images)):
            if forced:
                tracker.state = o['forced_state_in'][t]
            results.append(tracker.track(images[t]))
    finally:
        del engine.forward_head
    boxes = np.array([r.box for r in results])
    scores = np.array([np.nan if r.score is None else r.score for r in results])
    for r in results:
        assert isinstance(r.score, (float, type(None)))
    return boxes, scores, np.array([r.template_updated for r in results]), np.array(preds)


def check_against_oracle(variant, result, forced):
    o = oracle(variant)
    prefix = 'forced_' if forced else ''
    boxes, scores, updated, preds = result
    n = len(boxes)
    np.testing.assert_allclose(boxes, o[prefix + 'boxes'][1:n + 1], atol=BOX_TOL_PX, rtol=0)
    np.testing.assert_allclose(preds, o[prefix + 'pred_boxes_norm'][1:n + 1], atol=PRED_NORM_TOL, rtol=0)
    if prefix + 'scores' in o and not np.isnan(o[prefix + 'scores'][1]):
        np.testing.assert_allclose(scores, o[prefix + 'scores'][1:n + 1], atol=SCORE_TOL, rtol=0)
        np.testing.assert_array_equal(updated, o[prefix + 'template_updated'][1:n + 1])
    else:
        assert np.isnan(scores).all()


def bf16_deviation(variant, result):
    """(max, p95, mean) box deviation in px and max score deviation of a forced run from the fp32 oracle."""
    o = oracle(variant)
    boxes, scores, updated, _ = result
    dev = np.abs(boxes - o['forced_boxes'][1:len(boxes) + 1])
    score_dev = np.nanmax(np.abs(scores - o['forced_scores'][1:len(boxes) + 1])) if 'forced_scores' in o else 0.0
    if 'forced_template_updated' in o:
        np.testing.assert_array_equal(updated, o['forced_template_updated'][1:len(boxes) + 1])
    return float(dev.max()), float(np.percentile(dev, 95)), float(dev.mean()), float(score_dev)


# ------------------------------------------------------------------------------------------ unit tests


def test_backend_registry():
    assert BACKENDS == ('torch', 'torch-fast', 'openvino', 'onnxruntime')
    assert set(available_backends()) >= {'torch', 'torch-fast'}
    with pytest.raises(ValueError, match='unknown backend'):
        build_engine(None, 'tensorrt')
    with pytest.raises(ValueError, match='unknown backend'):
        load_engine('synthetic', 'st50', backend='nope')


X86 = platform.machine().lower() in ('x86_64', 'amd64')
#: run Python with the openvino package made unimportable: ``sys.modules['openvino'] = None`` is Python's own
#: marker of a blocked module (``import openvino`` raises ImportError, ``importlib.util.find_spec`` returns None),
#: so everything below the blocker sees an environment without openvino.
WITHOUT_OPENVINO = "import sys; sys.modules['openvino'] = None; "


def run_without_openvino(code):
    done = subprocess.run([sys.executable, '-c', WITHOUT_OPENVINO + code], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_auto_backend_picks_openvino_where_installed():
    """requirements.txt pins openvino, so on this x86 CPU 'auto' is openvino for every precision; an explicit name is
    kept; an unknown one is refused."""
    with open(os.path.join(REPO_ROOT, 'requirements.txt')) as handle:
        assert any(line.startswith('openvino==') for line in handle)
    _needs('openvino')
    assert X86, 'these tests expect the project machines\' x86 CPU (got %s)' % platform.machine()
    for precision in (None, 'fp32', 'bf16', 'auto'):
        assert resolve_backend('auto', 'cpu', precision) == 'openvino'
    assert resolve_backend(' AUTO ', 'auto', cuda_available=False) == 'openvino'
    assert resolve_backend('auto', 'cpu', 'fp16') == 'torch-fast'      # no CPU engine runs fp16; torch-fast says so
    for name in BACKENDS:
        assert resolve_backend(name, 'cpu') == name and resolve_backend(name, 'cuda') == name
    with pytest.raises(ValueError, match='unknown backend'):
        resolve_backend('tensorrt', 'cpu')
    # OpenVINO is x86-tuned: elsewhere 'auto' is the torch engines
    assert resolve_backend('auto', 'cpu', 'fp32', machine='aarch64') == 'torch'
    assert resolve_backend('auto', 'cpu', 'bf16', machine='aarch64') == 'torch-fast'


def test_auto_backend_picks_torch_where_openvino_is_not_installed():
    out = run_without_openvino(
        "from stark_ros.backends import backend_available, resolve_backend\n"
        "print(backend_available('openvino'), resolve_backend('auto', 'cpu'), resolve_backend('auto', 'cpu', 'fp32'),"
        " resolve_backend('auto', 'cpu', 'bf16'), resolve_backend('auto', 'auto', cuda_available=False))")
    assert out.split() == ['False', 'torch', 'torch', 'torch-fast', 'torch']


def test_auto_backend_never_picks_a_cpu_only_backend_on_cuda():
    """A CUDA device string (or 'auto' where CUDA is available) gives a torch engine whatever the precision: eager
    torch for fp32, torch-fast only when a reduced precision is asked for. (No CUDA here: only the choice is
    checked; resolve_device checks the device itself.)"""
    for device in ('cuda', 'cuda:0', 'cuda:1', ' CUDA:0 ', torch.device('cuda', 0)):
        for precision in (None, 'fp32', 'bf16', 'fp16', 'auto'):
            chosen = resolve_backend('auto', device, precision)
            assert chosen not in CPU_ONLY_BACKENDS and chosen in BACKENDS, (device, precision, chosen)
            assert chosen == ('torch' if precision in (None, 'fp32') else 'torch-fast')
    assert resolve_backend('auto', 'auto', 'fp32', cuda_available=True) == 'torch'


def test_load_engine_resolves_auto():
    engine, info = load_engine('synthetic', 'lightning', 'cpu', backend='auto')
    assert info['backend'] == engine.backend == ('openvino' if X86 else 'torch')
    assert info['requested_backend'] == 'auto' and info['precision'] == 'fp32'
    tracker = StarkTracker.from_checkpoint('synthetic', 'lightning', 'cpu', backend='torch')
    assert tracker.info['backend'] == 'torch' and tracker.info['requested_backend'] == 'torch'


def test_precision_resolution():
    assert resolve_precision(None, 'cpu') == 'fp32'
    assert resolve_precision('fp32', 'cpu') == 'fp32'
    assert resolve_precision('auto', 'cpu') == ('bf16' if cpu_supports_bf16() else 'fp32')
    assert resolve_precision('auto', 'cpu', supported=('fp32',)) == 'fp32'
    with pytest.raises(ValueError, match='CUDA'):
        resolve_precision('fp16', 'cpu')
    with pytest.raises(ValueError, match='unknown precision'):
        resolve_precision('int8', 'cpu')
    with pytest.raises(ValueError, match='not supported'):
        resolve_precision('bf16', 'cpu', supported=('fp32',))


def test_fold_batchnorms_is_exact_in_fp32(networks):
    """Folding changes only rounding; every batch norm is gone afterwards; the input network is untouched."""
    import copy
    o = oracle('st50')
    net = networks('st50')
    folded = copy.deepcopy(net)
    count = fold_batchnorms(folded)
    # stem 1 + bottlenecks (3+4+6) * 3 + 3 downsamples + corner head 2 * 4
    assert count == 1 + 13 * 3 + 3 + 8
    image, mask = torch.from_numpy(o['f1_search_input']), torch.from_numpy(o['f1_search_mask'])
    with torch.no_grad():
        ref, out = net.forward_backbone(image, mask), folded.forward_backbone(image, mask)
        x = torch.randn(1, 256, 20, 20, generator=torch.Generator().manual_seed(0))
        head_ref, head_out = net.box_head(x), folded.box_head(x)
    scale = ref['feat'].abs().max()
    assert (out['feat'] - ref['feat']).abs().max() <= 1e-5 * scale
    assert torch.equal(out['mask'], ref['mask']) and torch.equal(out['pos'], ref['pos'])
    assert (head_out - head_ref).abs().max() <= 1e-6
    assert any(type(m).__name__ == 'FrozenBatchNorm2d' for m in net.modules())


def test_torch_fast_does_not_modify_the_network(networks):
    net = networks('lightning')
    before = {k: v.clone() for k, v in net.state_dict().items()}
    engine = build_engine(net, 'torch-fast', precision='fp32')
    assert engine.describe()['folded_batchnorms'] == 0      # Lightning's are folded by fuse_repvgg
    after = net.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    for attr in ('variant', 'num_templates', 'has_score_head', 'feat_sz'):
        assert getattr(engine, attr) == getattr(net, attr)
    assert engine.device == torch.device('cpu')


def test_load_engine_returns_info():
    engine, info = load_engine('synthetic', 'lightning', 'cpu', backend='torch-fast', precision='fp32')
    assert info['backend'] == 'torch-fast' and info['precision'] == 'fp32' and info['variant'] == 'lightning'
    assert info['format'] == 'synthetic'
    tracker = StarkTracker(engine, oracle_params('lightning'), info)
    assert tracker.synthetic_weights and tracker.variant == 'lightning'


# --------------------------------------------------------------------------------- fp32: core tolerances

FP32_CASES = [('torch', None), ('torch-fast', 'fp32'), ('openvino', 'fp32'), ('onnxruntime', None)]


@pytest.mark.parametrize('variant', ['st50', 'lightning'])
@pytest.mark.parametrize('backend,precision', FP32_CASES, ids=[b for b, _ in FP32_CASES])
def test_fp32_backend_reproduces_oracle(networks, variant, backend, precision):
    _needs(backend)
    engine = build_engine(networks(variant), backend, precision=precision)
    assert engine.precision == 'fp32'
    for forced in (False, True):
        check_against_oracle(variant, run_sequence(engine, variant, forced), forced)


@pytest.mark.parametrize('variant', ['s50', 'st101'])
@pytest.mark.parametrize('backend', ['torch-fast', 'openvino'])
def test_fp32_backend_other_variants_first_frames(networks, variant, backend):
    """S50 (no score head, one template) and ST101 on the first 4 forced frames (time budget; openvino goes
    through the same ONNX export as the onnxruntime backend)."""
    _needs(backend)
    engine = build_engine(networks(variant), backend, precision='fp32')
    check_against_oracle(variant, run_sequence(engine, variant, True, frames=5), True)


# --------------------------------------------------------------------------------- bf16: measured bounds


@needs_bf16
@pytest.mark.parametrize('variant', ['st50', 'lightning'])
@pytest.mark.parametrize('backend', ['torch-fast', 'openvino'])
def test_bf16_backend_stays_close_to_fp32(networks, variant, backend):
    _needs(backend)
    engine = build_engine(networks(variant), backend, precision='bf16')
    assert engine.precision == 'bf16'
    worst, p95, mean, score = bf16_deviation(variant, run_sequence(engine, variant, True))
    print('%s bf16 %s forced: max %.3f px, p95 %.3f px, mean %.3f px, score %.4f'
          % (backend, variant, worst, p95, mean, score))
    assert worst <= BF16_MAX_PX and p95 <= BF16_P95_PX and mean <= BF16_MEAN_PX and score <= BF16_SCORE
    assert worst >= BF16_MIN_PX, 'the bf16 engine gave fp32 results: it did not run in bf16'


def test_openvino_precision_property_is_set(networks):
    _needs('openvino')
    engine = build_engine(networks('lightning'), 'openvino', precision='fp32')
    # a batch of two search regions compiles the dynamic-batch models (on first use), with the same hint
    search = engine.forward_backbone(torch.zeros(2, 3, 320, 320), torch.zeros(2, 320, 320, dtype=torch.bool))
    template = engine.forward_backbone(torch.zeros(1, 3, 128, 128), torch.zeros(1, 128, 128, dtype=torch.bool))
    template = {k: (v.expand(-1, 2, -1) if k != 'mask' else v.expand(2, -1)).contiguous() for k, v in template.items()}
    assert engine.forward_head([template, search])['pred_boxes'].shape == (2, 4)
    compiled_models = list(engine.compiled.values()) + [compiled for compiled, _ in engine._batched.values()]
    assert len(compiled_models) == 5
    for compiled in compiled_models:
        assert str(compiled.get_property('INFERENCE_PRECISION_HINT')) in ('f32', '<Type: \'float32\'>', 'float32')
    with pytest.raises(ValueError, match='CPU only'):
        build_engine(networks('lightning'), 'openvino', device='cuda')


def test_torch_fast_bf16_outputs_are_float32(networks):
    engine = build_engine(networks('st50'), 'torch-fast', precision='bf16')
    o = oracle('st50')
    z = engine.forward_backbone(torch.from_numpy(o['f1_template_input']), torch.from_numpy(o['f1_template_mask']))
    x = engine.forward_backbone(torch.from_numpy(o['f1_search_input']), torch.from_numpy(o['f1_search_mask']))
    assert z['feat'].dtype == torch.float32 and z['pos'].dtype == torch.float32 and z['mask'].dtype == torch.bool
    out = engine.forward_head([z, z, x])
    assert out['pred_boxes'].dtype == torch.float32 and out['pred_logits'].dtype == torch.float32
    assert out['pred_boxes'].shape == (1, 1, 4) and out['pred_logits'].shape == (1, 1, 1)


# ------------------------------------------------------------------------------------------ ONNX export


@pytest.mark.parametrize('variant', ['st50', 'lightning'])
def test_onnx_export_matches_torch_on_oracle_frame1(networks, variant, tmp_path):
    _needs('onnxruntime')
    import onnxruntime
    from stark_ros.backends import export_onnx
    out_dir = tmp_path / variant
    assert export_onnx.main(['--checkpoint', 'synthetic', '--variant', variant, '--output-dir', str(out_dir)]) == 0
    sidecar = json.loads((out_dir / 'stark_onnx.json').read_text())
    assert sidecar['variant'] == variant and sidecar['template_size'] == 128 and sidecar['search_size'] == 320
    assert sorted(os.listdir(out_dir)) == ['backbone_search.onnx', 'backbone_template.onnx', 'head.onnx',
                                           'stark_onnx.json']
    head_outputs = [o['name'] for o in sidecar['models']['head']['outputs']]
    assert head_outputs == (['pred_boxes', 'pred_logits'] if variant == 'st50' else ['pred_boxes'])
    assert sidecar['models']['head']['inputs'][0]['shape'] == [sidecar['num_templates'] * 64 + 400, 'batch',
                                                               sidecar['hidden_dim']]
    assert sidecar['format_version'] == 2 and sidecar['dynamic_batch']
    assert sidecar['models']['backbone_search']['inputs'][0]['shape'] == ['batch', 3, 320, 320]
    assert sidecar['models']['backbone_template']['inputs'][0]['shape'] == [1, 3, 128, 128]
    o = oracle(variant)
    net = networks(variant)
    sessions = {key: onnxruntime.InferenceSession(str(out_dir / spec['file']), providers=['CPUExecutionProvider'])
                for key, spec in sidecar['models'].items()}
    tokens = []
    for part in ('template', 'search'):
        image, mask = o['f1_%s_input' % part], o['f1_%s_mask' % part]
        feat, feat_mask, pos = sessions['backbone_' + part].run(None, {'image': image, 'mask': mask})
        with torch.no_grad():
            ref = net.forward_backbone(torch.from_numpy(image), torch.from_numpy(mask))
        np.testing.assert_allclose(feat, ref['feat'].numpy(), atol=1e-4 * float(ref['feat'].abs().max()), rtol=0)
        np.testing.assert_array_equal(feat_mask, ref['mask'].numpy())
        np.testing.assert_allclose(pos, ref['pos'].numpy(), atol=1e-5, rtol=0)
        tokens.append((feat, feat_mask, pos))
    seq = [tokens[0]] * sidecar['num_templates'] + [tokens[1]]
    feeds = {'feat': np.concatenate([t[0] for t in seq]), 'mask': np.concatenate([t[1] for t in seq], axis=1),
             'pos': np.concatenate([t[2] for t in seq])}
    outs = sessions['head'].run(None, feeds)
    np.testing.assert_allclose(outs[0].reshape(-1), o['f1_pred_boxes'].reshape(-1), atol=PRED_NORM_TOL, rtol=0)
    if variant == 'st50':
        np.testing.assert_allclose(outs[1].reshape(-1), o['f1_pred_logits'].reshape(-1), atol=1e-4, rtol=0)
    # the search backbone and the head take a batch: each row as batch 1 gives it
    batch = {'image': np.concatenate([o['f1_search_input'], o['f1_search_input'][..., ::-1]]),
             'mask': np.concatenate([o['f1_search_mask'], o['f1_search_mask'][..., ::-1]])}
    stacked = sessions['backbone_search'].run(None, batch)
    single = sessions['backbone_search'].run(None, {k: np.ascontiguousarray(v[1:]) for k, v in batch.items()})
    np.testing.assert_allclose(stacked[0][:, 1:], single[0], atol=1e-4 * float(np.abs(single[0]).max()), rtol=0)
    heads = sessions['head'].run(None, {'feat': np.concatenate([feeds['feat']] * 3, axis=1),
                                        'mask': np.concatenate([feeds['mask']] * 3),
                                        'pos': np.concatenate([feeds['pos']] * 3, axis=1)})
    assert heads[0].shape[0] == 3
    for row in range(3):
        np.testing.assert_allclose(heads[0][row], outs[0][0], atol=1e-6, rtol=0)
    # the engine loads the directory; a mismatching network is refused
    engine = build_engine(net, 'onnxruntime', model_dir=str(out_dir))
    assert engine.batching
    boxes, _, _, _ = run_sequence(engine, variant, True, frames=4)
    np.testing.assert_allclose(boxes, o['forced_boxes'][1:4], atol=BOX_TOL_PX, rtol=0)
    other = networks('s50' if variant == 'st50' else 'st50')
    with pytest.raises(ValueError, match='does not match'):
        build_engine(other, 'onnxruntime', model_dir=str(out_dir))


def test_export_batch_axes_and_no_ops_openvino_misreads(tmp_path):
    """The search backbone and the head have one dynamic axis, the batch (the template backbone none);
    ``--fixed-batch`` writes batch-1 graphs. The shipped lite0 model's graphs hold no ReduceL1 / ReduceLogSum /
    ReduceLogSumExp, whose ``axes`` attribute OpenVINO's ONNX frontend ignores at opsets 13-17
    (openvinotoolkit/openvino#38238; stark_ros.model.heads.CornerPeakScoreHead.peak_log_probs)."""
    import onnx
    from stark_ros.backends import export_onnx
    network = load_network('', 'auto', 'cpu')[0]
    models, sidecar = export_onnx.export_graphs(network)
    misread = {'ReduceL1', 'ReduceLogSum', 'ReduceLogSumExp'}
    for key, data in models.items():
        graph = onnx.load_from_string(data).graph
        assert not misread & {node.op_type for node in graph.node}, key
        # the inputs' sizes are what a runtime is given (the exporter may name any output size symbolically)
        symbolic = {(arg.name, axis) for arg in graph.input
                    for axis, size in enumerate(arg.type.tensor_type.shape.dim) if size.dim_param}
        expected = {(name, axis) for name, axis in export_onnx.BATCH_AXES.get(key, {}).items()
                    if name in {arg.name for arg in graph.input}}
        assert symbolic == expected, (key, symbolic)
        assert all(size.dim_value > 0 or size.dim_param == export_onnx.BATCH for arg in graph.input
                   for size in arg.type.tensor_type.shape.dim)
    out_dir = tmp_path / 'fixed'
    assert export_onnx.main(['--output-dir', str(out_dir), '--fixed-batch']) == 0
    fixed = export_onnx.read_sidecar(str(out_dir))
    assert not fixed['dynamic_batch'] and fixed['models']['head']['inputs'][0]['shape'][1] == 1
    for name in export_onnx.FILES.values():
        graph = onnx.load(str(out_dir / name)).graph
        assert all(size.dim_value > 0 for arg in graph.input for size in arg.type.tensor_type.shape.dim), name


def test_export_leaves_the_network_untouched(networks):
    """The exporter switches train/eval on the module it traces; the network must come back unchanged."""
    from stark_ros.backends.export_onnx import export_graphs
    net = networks('st50')
    before = {k: v.clone() for k, v in net.state_dict().items()}
    models, sidecar = export_graphs(net)
    assert set(models) == {'backbone_template', 'backbone_search', 'head'} and sidecar['num_templates'] == 2
    assert not any(m.training for m in net.modules())
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_export_cli_reports_bad_checkpoint(tmp_path, capsys):
    from stark_ros.backends import export_onnx
    assert export_onnx.main(['--checkpoint', str(tmp_path / 'missing.pth'), '--output-dir', str(tmp_path)]) == 2
    assert 'not found' in capsys.readouterr().err


def test_torch_fast_compile_reproduces_oracle_first_frames(networks):
    # compile=True replaces the oneDNN modules by inductor's own lowering (which could not lower them);
    # Lightning keeps the compile time of this test at ~15 s.
    engine = build_engine(networks('lightning'), 'torch-fast', precision='fp32', compile=True)
    assert engine.describe()['compiled'] and not engine.describe()['onednn_products']
    check_against_oracle('lightning', run_sequence(engine, 'lightning', True, frames=4), True)
