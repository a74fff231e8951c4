"""The ROS-free multi-target tracker (:mod:`stark_ros.tracker.multi_tracker`) on real frames of ``../shared/eval``:
several targets tracked in one batched network call give the boxes of single-target runs of the same targets
(within 1e-4 search-region px, fp32, on the torch, openvino and onnxruntime engines; openvino bf16 within the bf16
bounds), one backbone and one head call per image, an onnxruntime export of batch-1 graphs (format 1) loops
instead of batching, an OpenVINO cache of batch-1 graphs is not reused for the batched ones, and adding /
replacing / removing targets by id with ``max_targets``.
"""
import os

import cv2
import numpy as np
import pytest
import torch

from dataset_layouts import source_sequence

from stark_ros.backends import backend_available, build_engine, cpu_supports_bf16
from stark_ros.errors import InvalidBoxError
from stark_ros.model import load_network
from stark_ros.tracker import StarkTracker, TrackerParams
from stark_ros.tracker.multi_tracker import MultiTracker, TooManyTargetsError, supports_batching

#: pixels of the network's 320-pixel search region (issue 15: 1e-4 px). In image pixels the bound is scaled by the
#: search crop's side / 320 (the crop is resized to 320 pixels): the batched kernels sum in another order, and one
#: float32 ulp of the normalised output is 6.5e-5 image pixels for a 1,085-pixel crop; the shipped model's forced
#: runs differ by up to 2.4e-4 image px there (0.63e-4 search-region px).
BOX_TOL = 1e-4
SCORE_TOL = 1e-5
FRAMES = 12


def _frames(name='bag', count=FRAMES):
    paths, boxes = source_sequence(name, count)
    return [cv2.cvtColor(cv2.imread(p, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) for p in paths], boxes


def _targets(box0, image):
    """The ground-truth target plus three other real image regions of the first frame (as a user might click)."""
    x, y, w, h = (float(v) for v in box0)
    height, width = image.shape[:2]
    return {'gt': (x, y, w, h),
            'left': (10.0, 20.0, 60.0, 50.0),
            'right': (width - 90.0, height - 100.0, 70.0, 80.0),
            'small': (width / 2.0, 30.0, 25.0, 35.0)}


class CountingEngine:
    """The real network, with a count of its forward calls (everything else forwarded unchanged)."""

    def __init__(self, network):
        self._network = network
        self.calls = {'backbone': 0, 'head': 0, 'max_batch': 0}

    def __getattr__(self, name):
        return getattr(self._network, name)

    def forward_backbone(self, images, masks):
        self.calls['backbone'] += 1
        self.calls['max_batch'] = max(self.calls['max_batch'], images.shape[0])
        return self._network.forward_backbone(images, masks)

    def forward_head(self, token_dicts):
        self.calls['head'] += 1
        return self._network.forward_head(token_dicts)


def _single_runs(tracker, frames, targets):
    """``({id: [TrackResult per frame 1..]}, {id: [box the search was centred on, per frame 1..]})``."""
    out, centres = {}, {}
    for target_id, box in targets.items():
        tracker.initialize(frames[0], box)
        out[target_id], centres[target_id] = [], []
        for frame in frames[1:]:
            centres[target_id].append(tracker.state)
            out[target_id].append(tracker.track(frame))
    return out, centres


def _compare(multi_results, single_results, tol=BOX_TOL):
    worst = 0.0
    for target_id, results in single_results.items():
        for t, single in enumerate(results):
            batched = multi_results[t][target_id]
            # image pixels per search-region pixel: the crop side (search factor 5 x sqrt(area)) over 320
            scale = max(1.0, 5.0 * float(np.sqrt(single.box[2] * single.box[3])) / 320.0)
            diff = np.abs(np.array(batched.box) - np.array(single.box)).max() / scale
            worst = max(worst, diff)
            assert diff <= tol, (target_id, t, batched.box, single.box, scale)
            assert batched.frame_id == single.frame_id
            assert batched.template_updated == single.template_updated
            if single.score is None:
                assert batched.score is None
            else:
                assert abs(batched.score - single.score) <= SCORE_TOL, (target_id, t, batched.score, single.score)
    return worst


def _search_px(batched, single):
    """Largest box difference in search-region pixels (image pixels x 320 / crop side, as :func:`_compare`)."""
    scale = max(1.0, 5.0 * float(np.sqrt(single.box[2] * single.box[3])) / 320.0)
    return np.abs(np.array(batched.box) - np.array(single.box)).max() / scale


def _needs(backend):
    # requirements.txt pins every backend's packages: a missing one is a broken environment, not a skip
    assert backend_available(backend), '%s is not installed (see requirements.txt)' % backend


def _engine_options(backend):
    """One inference thread for the exported-graph engines (the tests share the machine), as torch below."""
    return {'threads': 1} if backend in ('openvino', 'onnxruntime') else {}


#: template updates every 3rd frame: the dynamic template slot differs from the first one (re-cropped per target)
UPDATING = TrackerParams(update_interval=3, score_threshold=0.0)


@pytest.mark.parametrize('backend,checkpoint,variant,params,count', [
    ('torch', '', 'auto', TrackerParams(), FRAMES),                         # the shipped lite0 model
    ('torch', 'synthetic', 'st50', TrackerParams(update_interval=2, score_threshold=0.0), 5),   # two template slots
    ('openvino', '', 'auto', UPDATING, FRAMES),       # 'auto' on an x86 CPU: dynamic-batch graphs, batch 1 static
    ('openvino', 'synthetic', 'st50', TrackerParams(update_interval=2, score_threshold=0.0), 5),
    ('onnxruntime', '', 'auto', UPDATING, FRAMES),
], ids=['torch-lite0', 'torch-st50', 'openvino-lite0', 'openvino-st50', 'onnxruntime-lite0'])
def test_batched_equals_single_target_runs(backend, checkpoint, variant, params, count):
    _needs(backend)
    torch.set_num_threads(1)
    frames, boxes = _frames(count=count)
    single = StarkTracker.from_checkpoint(checkpoint, variant, 'cpu', params=params, backend=backend,
                                          **_engine_options(backend))
    assert single.info['backend'] == backend
    targets = _targets(boxes[0], frames[0])
    expected, centres = _single_runs(single, frames, targets)

    engine = CountingEngine(single.network)
    multi = MultiTracker(StarkTracker(engine, params, single.info), max_targets=8)
    assert multi.batch and supports_batching(single.network)
    for target_id, box in targets.items():
        multi.add(target_id, frames[0], box)
    engine.calls.update(backbone=0, head=0)
    # forced: every frame's search regions centred where the single-target runs centred them, so each frame's
    # boxes are compared without the drift a free run accumulates from float32 rounding (batched kernels sum in
    # another order)
    results = []
    for t, frame in enumerate(frames[1:]):
        for target_id in targets:
            multi.target(target_id).state = centres[target_id][t]
        results.append(multi.track(frame))
    # one backbone call on the stack of 4 search regions and one head call per image (template updates re-crop
    # templates: one more backbone call each)
    updates = sum(r.template_updated for frame in results for r in frame.values())
    assert engine.calls['head'] == count - 1
    assert engine.calls['backbone'] == count - 1 + updates
    assert engine.calls['max_batch'] == len(targets)
    if params.update_interval < 200:
        assert updates > 0          # the dynamic template slot was exercised
    worst = _compare(results, expected)
    assert [list(r) for r in results] == [list(targets)] * (count - 1)
    # free run: the rounding differences feed back through the boxes, still far below a pixel
    for target_id, box in targets.items():
        multi.add(target_id, frames[0], box)
    free_worst = _compare([multi.track(frame) for frame in frames[1:]], expected, tol=1e-2)
    print('%s: batched vs single, worst box difference in search-region px: forced %.2e, free run %.2e'
          % (backend, worst, free_worst))


#: bf16 bounds, search-region px (test/test_backends.py holds bf16 to fp32 with max 2.0, p95 1.3, mean 0.6 px and
#: scores 0.02). Here batched bf16 against batch-1 bf16: measured max 1.43, p95 1.03, mean 0.35 px, scores 0.017
#: (the batch runs other bf16 kernels, so it rounds differently); the score bound has the same ~40 % headroom.
BF16_BATCH_MAX_PX, BF16_BATCH_P95_PX, BF16_BATCH_MEAN_PX, BF16_BATCH_SCORE = 2.0, 1.3, 0.6, 0.03


@pytest.mark.skipif(not cpu_supports_bf16(), reason='CPU without native bf16 (avx512_bf16/AMX)')
def test_openvino_bf16_batched_stays_within_bf16_bounds():
    """openvino bf16 batches too: a bf16 batch runs other kernels than bf16 batch 1, so it rounds like bf16, not like
    float32: the batched boxes are held to the bf16 bounds against the batch-1 bf16 runs of the same targets
    (forced, search-region px), and are no further from the fp32 runs than the batch-1 bf16 runs are (on the shipped
    lite0 model bf16 itself moves the boxes by up to ~11 search-region px from fp32 on these frames)."""
    _needs('openvino')
    frames, boxes = _frames()
    targets = _targets(boxes[0], frames[0])
    fp32 = StarkTracker.from_checkpoint('', 'auto', 'cpu', backend='openvino', precision='fp32', threads=1)
    exact, centres = _single_runs(fp32, frames, targets)
    bf16 = StarkTracker.from_checkpoint('', 'auto', 'cpu', backend='openvino', precision='bf16', threads=1)
    assert bf16.info['precision'] == 'bf16'
    expected = {}
    for target_id, box in targets.items():         # batch-1 bf16 runs, centred like the fp32 runs
        bf16.initialize(frames[0], box)
        expected[target_id] = []
        for t, frame in enumerate(frames[1:]):
            bf16.state = centres[target_id][t]
            expected[target_id].append(bf16.track(frame))
    multi = MultiTracker(bf16)
    assert multi.batch
    for target_id, box in targets.items():
        multi.add(target_id, frames[0], box)
    deviations, scores, from_fp32, single_from_fp32 = [], [], [], []
    for t, frame in enumerate(frames[1:]):
        for target_id in targets:
            multi.target(target_id).state = centres[target_id][t]
        for target_id, result in multi.track(frame).items():
            deviations.append(_search_px(result, expected[target_id][t]))
            scores.append(abs(result.score - expected[target_id][t].score))
            from_fp32.append(_search_px(result, exact[target_id][t]))
            single_from_fp32.append(_search_px(expected[target_id][t], exact[target_id][t]))
    deviations = np.array(deviations)
    print('openvino bf16 batched vs bf16 batch 1, search-region px: max %.3f, p95 %.3f, mean %.3f, score %.4f; '
          'from fp32: batched mean %.3f, batch 1 mean %.3f'
          % (deviations.max(), np.percentile(deviations, 95), deviations.mean(), max(scores), np.mean(from_fp32),
             np.mean(single_from_fp32)))
    assert deviations.max() <= BF16_BATCH_MAX_PX and np.percentile(deviations, 95) <= BF16_BATCH_P95_PX
    assert deviations.mean() <= BF16_BATCH_MEAN_PX and max(scores) <= BF16_BATCH_SCORE
    assert np.mean(from_fp32) <= np.mean(single_from_fp32) + BF16_BATCH_MEAN_PX
    assert max(from_fp32) >= 1e-2, 'the bf16 engine gave fp32 results: it did not run in bf16'


def test_loop_fallback_is_exact():
    frames, boxes = _frames(count=6)
    single = StarkTracker.from_checkpoint('', 'auto', 'cpu')
    targets = _targets(boxes[0], frames[0])
    expected, _ = _single_runs(single, frames, targets)
    engine = CountingEngine(single.network)
    multi = MultiTracker(StarkTracker(engine, single.params, single.info), batch=False)
    for target_id, box in targets.items():
        multi.add(target_id, frames[0], box)
    results = [multi.track(frame) for frame in frames[1:]]
    assert engine.calls['max_batch'] == 1
    for target_id, runs in expected.items():
        assert [r[target_id].box for r in results] == [r.box for r in runs]


def test_add_replace_remove_and_max_targets():
    frames, boxes = _frames(count=4)
    multi = MultiTracker.from_checkpoint('', 'auto', 'cpu', max_targets=2)
    box = tuple(float(v) for v in boxes[0])
    multi.add('a', frames[0], box)
    multi.add('b', frames[0], (10.0, 20.0, 60.0, 50.0))
    with pytest.raises(TooManyTargetsError, match='max_targets=2'):
        multi.add('c', frames[0], box)
    assert multi.ids == ['a', 'b']
    first = multi.track(frames[1])
    assert first['a'].frame_id == 1 and first['b'].frame_id == 1
    # replacing an existing id is allowed at the limit and restarts that target only
    multi.add('b', frames[1], box)
    second = multi.track(frames[2])
    assert second['a'].frame_id == 2 and second['b'].frame_id == 1
    # a bad box changes nothing
    with pytest.raises(InvalidBoxError):
        multi.add('a', frames[2], (0.0, 0.0, -5.0, 3.0))
    assert multi.target('a').state == second['a'].box
    assert multi.remove('a') and not multi.remove('a')
    assert multi.ids == ['b'] and len(multi) == 1
    assert set(multi.track(frames[3])) == {'b'}
    assert multi.clear() == 1 and multi.track(frames[3]) == {}
    with pytest.raises(ValueError, match='max_targets'):
        MultiTracker(multi.prototype, max_targets=0)


def test_batch1_export_directory_loops_with_same_results(tmp_path):
    """An ONNX export directory of batch-1 graphs (format 1, or ``--fixed-batch``) is not fed a batch: the engine
    reads the batch axis from the graphs, so the multi tracker loops over the targets and matches torch's boxes to
    the backend's own tolerance (boxes 1e-2 px, stark_ros/backends/onnxruntime_backend.py); a batch given to it
    directly is refused with a clear error. A directory written now (dynamic batch) batches."""
    _needs('onnxruntime')
    from stark_ros.backends.export_onnx import export_onnx, read_sidecar
    network, info = load_network('', 'auto', 'cpu')
    export_onnx(network, str(tmp_path / 'batch1'), dynamic_batch=False)
    export_onnx(network, str(tmp_path / 'dynamic'))
    assert not read_sidecar(str(tmp_path / 'batch1'))['dynamic_batch']
    assert read_sidecar(str(tmp_path / 'dynamic'))['dynamic_batch']
    assert build_engine(network, 'onnxruntime', model_dir=str(tmp_path / 'dynamic'), threads=1).batching
    engine = build_engine(network, 'onnxruntime', model_dir=str(tmp_path / 'batch1'), threads=1)
    assert not engine.batching and not supports_batching(engine)
    with pytest.raises(ValueError, match=r'\(1, 3, S, S\) search regions'):
        engine.forward_backbone(torch.zeros(2, 3, 320, 320), torch.zeros(2, 320, 320, dtype=torch.bool))
    frames, boxes = _frames(count=5)
    targets = _targets(boxes[0], frames[0])
    reference = MultiTracker.from_checkpoint('', 'auto', 'cpu')
    ort = MultiTracker(StarkTracker(engine, reference.params, dict(info, backend='onnxruntime')))
    assert reference.batch and not ort.batch
    for multi in (reference, ort):
        for target_id, box in targets.items():
            multi.add(target_id, frames[0], box)
    for frame in frames[1:]:
        want, got = reference.track(frame), ort.track(frame)
        assert list(got) == list(want)
        for target_id in want:
            assert np.abs(np.array(got[target_id].box) - np.array(want[target_id].box)).max() <= 1e-2


def test_openvino_cache_of_batch1_graphs_is_not_reused_for_batches(tmp_path):
    """OpenVINO's CACHE_DIR names a compiled model by a hash of the model, shapes included: a cache written by the
    batch-1 graphs of before (compiled as the engine compiled them then) leaves the dynamic-batch graphs to be
    compiled and cached anew, and the batched boxes equal the single-target ones."""
    _needs('openvino')
    import openvino
    from stark_ros.backends.export_onnx import export_graphs
    network, info = load_network('', 'auto', 'cpu')
    cache = tmp_path / 'ov_cache'
    config = {'PERFORMANCE_HINT': 'LATENCY', 'INFERENCE_NUM_THREADS': 1, 'INFERENCE_PRECISION_HINT': 'f32',
              'CACHE_DIR': str(cache)}
    core = openvino.Core()
    for data in export_graphs(network, dynamic_batch=False)[0].values():     # the old engine's three models
        core.compile_model(core.read_model(model=data), 'CPU', config)
    old_blobs = set(os.listdir(cache))
    assert len(old_blobs) == 3
    engine = build_engine(network, 'openvino', threads=1, cache_dir=str(cache))
    frames, boxes = _frames(count=4)
    targets = _targets(boxes[0], frames[0])
    single = StarkTracker(engine, TrackerParams(), info)
    expected, centres = _single_runs(single, frames, targets)
    multi = MultiTracker(single)
    for target_id, box in targets.items():
        multi.add(target_id, frames[0], box)
    results = []
    for t, frame in enumerate(frames[1:]):
        for target_id in targets:
            multi.target(target_id).state = centres[target_id][t]
        results.append(multi.track(frame))
    _compare(results, expected)
    # the batch-1 copies of the search backbone and the head, and their dynamic models: four new entries (the
    # template backbone is the same model as before and comes from the cache)
    new_blobs = set(os.listdir(cache)) - old_blobs
    assert len(new_blobs) == 4, sorted(os.listdir(cache))


def test_torch_fast_batches_too():
    """torch-fast (folded, oneDNN kernels) takes any batch: batched equals its own one-by-one run (free run, float32
    rounding of the batched kernels only)."""
    frames, boxes = _frames(count=6)
    single = StarkTracker.from_checkpoint('', 'auto', 'cpu', backend='torch-fast', precision='fp32')
    batched, looped = MultiTracker(single), MultiTracker(single, batch=False)
    assert batched.batch and not looped.batch
    targets = _targets(boxes[0], frames[0])
    for multi in (batched, looped):
        for target_id, box in targets.items():
            multi.add(target_id, frames[0], box)
    for frame in frames[1:]:
        got, want = batched.track(frame), looped.track(frame)
        for target_id in targets:
            assert np.abs(np.array(got[target_id].box) - np.array(want[target_id].box)).max() <= 1e-3


def test_warm_up_batch_runs_a_batch_and_leaves_the_targets_alone():
    """The node's start-up warm-up of the batched path runs one batched network call (openvino compiles its
    dynamic-batch model there) and leaves the tracked targets as they were: the next real image gives exactly the
    boxes of a tracker that was never warmed up. Without batching it does nothing."""
    from stark_ros.tracker.multi_tracker import MultiTracker
    frames, boxes = _frames(count=2)
    targets = dict(list(_targets(boxes[0], frames[0]).items())[:2])
    single = StarkTracker.from_checkpoint('', 'auto', 'cpu', backend='torch')
    engine = CountingEngine(single.network)
    warmed = MultiTracker(StarkTracker(engine, single.params, single.info), 4)
    cold = MultiTracker(single, 4)
    for tracker in (warmed, cold):
        for target_id, box in targets.items():
            tracker.add(target_id, frames[0], box)
    engine.calls.update(backbone=0, head=0, max_batch=0)
    assert warmed.warm_up_batch() > 0.0
    assert engine.calls['head'] == 1 and engine.calls['max_batch'] == 2, engine.calls
    assert warmed.ids == cold.ids == list(targets)
    after, reference = warmed.track(frames[1]), cold.track(frames[1])
    for target_id in targets:
        assert after[target_id].box == reference[target_id].box, target_id
        assert after[target_id].score == reference[target_id].score, target_id
    engine.calls.update(head=0)
    assert MultiTracker(StarkTracker(engine, single.params, single.info), 4, batch=False).warm_up_batch() == 0.0
    assert engine.calls['head'] == 0


@pytest.mark.parametrize('chunk', [2, 3])
def test_eager_torch_runs_the_backbone_in_chunks_and_equals_single_target_runs(chunk):
    """The eager torch network on the CPU runs its backbone on pairs of search regions (larger batches cost more per
    region there, :data:`EAGER_CPU_BACKBONE_CHUNK`), transformer + heads once per image; chunks of 2 or 3 regions
    (4 targets: 2 + 2, 3 + 1) give the single-target results within the same 1e-4 search-region px."""
    from stark_ros.tracker.multi_tracker import EAGER_CPU_BACKBONE_CHUNK, default_backbone_chunk
    torch.set_num_threads(1)
    frames, boxes = _frames(count=4)
    single = StarkTracker.from_checkpoint('', 'auto', 'cpu', backend='torch')
    assert default_backbone_chunk(single.network) == EAGER_CPU_BACKBONE_CHUNK == 2
    assert MultiTracker(single).backbone_chunk == 2
    targets = _targets(boxes[0], frames[0])
    assert len(targets) == 4
    expected, centres = _single_runs(single, frames, targets)
    engine = CountingEngine(single.network)
    multi = MultiTracker(StarkTracker(engine, single.params, single.info), backbone_chunk=chunk)
    for target_id, box in targets.items():
        multi.add(target_id, frames[0], box)
    engine.calls.update(backbone=0, head=0, max_batch=0)
    results = []
    for t, frame in enumerate(frames[1:]):
        for target_id in targets:
            multi.target(target_id).state = centres[target_id][t]
        results.append(multi.track(frame))
    assert engine.calls['head'] == 3 and engine.calls['backbone'] == 3 * 2 and engine.calls['max_batch'] == chunk
    _compare(results, expected)


def test_engines_take_every_search_region_in_one_backbone_call():
    """openvino / onnxruntime / torch-fast engines are not chunked (they batch well: bench_multi_target)."""
    from stark_ros.tracker.multi_tracker import default_backbone_chunk
    _needs('openvino')
    engine = StarkTracker.from_checkpoint('', 'auto', 'cpu', backend='openvino', threads=1).network
    assert default_backbone_chunk(engine) is None
