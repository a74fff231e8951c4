"""The tracker against the official tracker's outputs (free and teacher-forced runs, all variants)."""
import numpy as np
import pytest

from oracles import BOX_TOL_PX, PRED_NORM_TOL, SCORE_TOL, frame1_intermediates, oracle, oracle_params
from stark_ros.model import load_network
from stark_ros.tracker import StarkTracker
from stark_ros.tracker.crop import Preprocessor, sample_target


@pytest.fixture(scope='module', params=['st50', 's50', 'st101', 'lightning', 'lightning-unfused'])
def variant_tracker(request):
    """(oracle name, tracker with the oracle's weights); Lightning runs fused (as shipped) and un-fused (official)."""
    variant = request.param.split('-')[0]
    network, info = load_network('synthetic', variant, 'cpu', fuse=not request.param.endswith('-unfused'))
    return variant, StarkTracker(network, oracle_params(variant), info)


def _capture_network_outputs(tracker):
    """Record the network's raw predictions of each track() call (the oracle stores them too)."""
    records = []
    original = tracker.network.forward_head

    def recording(tokens):
        out = original(tokens)
        records.append(out)
        return out
    tracker.network.forward_head = recording
    return records


def _run(tracker, o, forced):
    prefix = 'forced_' if forced else ''
    frames = o['frames_rgb']
    tracker.initialize(frames[0], o['init_box'])
    records = _capture_network_outputs(tracker)
    try:
        results = []
        for t in range(1, len(frames)):
            if forced:
                tracker.state = o['forced_state_in'][t]
            assert np.allclose(tracker.state, o[prefix + 'search_state'][t], atol=BOX_TOL_PX)
            results.append(tracker.track(frames[t]))
    finally:
        del tracker.network.forward_head
    boxes = np.array([r.box for r in results])
    np.testing.assert_allclose(boxes, o[prefix + 'boxes'][1:], atol=BOX_TOL_PX, rtol=0)
    pred = np.array([rec['pred_boxes'].reshape(4).tolist() for rec in records])
    np.testing.assert_allclose(pred, o[prefix + 'pred_boxes_norm'][1:], atol=PRED_NORM_TOL, rtol=0)
    updated = np.array([r.template_updated for r in results])
    np.testing.assert_array_equal(updated, o.get(prefix + 'template_updated', np.zeros(len(frames), bool))[1:])
    assert [r.frame_id for r in results] == list(range(1, len(frames)))
    if tracker.has_score_head:
        scores = np.array([r.score for r in results])
        np.testing.assert_allclose(scores, o[prefix + 'scores'][1:], atol=SCORE_TOL, rtol=0)
    else:
        assert all(r.score is None for r in results)
        assert np.isnan(o.get(prefix + 'scores', np.full(len(frames), np.nan))[1:]).all()
    return results


def test_free_run(variant_tracker):
    variant, tracker = variant_tracker
    _run(tracker, oracle(variant), forced=False)


def test_teacher_forced_run(variant_tracker):
    variant, tracker = variant_tracker
    o = oracle(variant)
    np.testing.assert_array_equal(o['forced_state_in'][1:], o['object_boxes'][:-1])
    _run(tracker, o, forced=True)


def test_oracle_runs_exercise_updates_and_padding():
    """Guard against a fixture that would make the tests above vacuous."""
    o = oracle('st50')
    assert o['template_updated'].sum() == 3 and o['forced_template_updated'].sum() == 3
    assert len(set(o['forced_search_crop_sz'][1:].tolist())) > 10


def test_frame1_crops_are_bit_exact():
    o = oracle('st50')
    frame0, frame1 = o['frames_rgb'][0], o['frames_rgb'][1]
    template = sample_target(frame0, o['init_box'], 2.0, 128)
    search = sample_target(frame1, o['search_state'][1], 5.0, 320)
    np.testing.assert_array_equal(template.patch, o['f1_template_patch_rgb'])
    np.testing.assert_array_equal(template.mask, o['f1_template_amask'])
    np.testing.assert_array_equal(search.patch, o['f1_search_patch_rgb'])
    np.testing.assert_array_equal(search.mask, o['f1_search_amask'])
    assert search.resize_factor == o['f1_search_resize_factor']
    preprocess = Preprocessor('cpu')
    for crop, part in ((template, 'template'), (search, 'search')):
        image, mask = preprocess(crop)
        np.testing.assert_allclose(image.numpy(), o['f1_%s_input' % part], atol=1e-5, rtol=0)
        np.testing.assert_array_equal(mask.numpy(), o['f1_%s_mask' % part])


@pytest.mark.parametrize('forced', [False, True])
def test_dynamic_template_inputs(forced):
    """The tracker's own dynamic-template inputs (what it feeds the backbone when it updates the template) equal the
    official ones, on the frames where the official tracker updated."""
    o, f1 = oracle('st50'), frame1_intermediates()
    prefix = 'forced_' if forced else ''
    network, info = load_network('synthetic', 'st50', 'cpu')
    tracker = StarkTracker(network, oracle_params('st50'), info)
    frames = o['frames_rgb']
    tracker.initialize(frames[0], o['init_box'])
    inputs = []                                        # every preprocessed crop of this frame, in call order
    preprocess = tracker.preprocess

    def recording(crop):
        image, mask = preprocess(crop)
        inputs.append(image.clone())
        return image, mask
    tracker.preprocess = recording
    updates = {}
    for t in range(1, len(frames)):
        if forced:
            tracker.state = o['forced_state_in'][t]
        inputs.clear()
        result = tracker.track(frames[t])
        if result.template_updated:
            assert len(inputs) == 2 and inputs[1].shape[-1] == 128      # search crop, then the new template
            updates[t] = inputs[1].numpy()
    assert sorted(updates) == [int(t) for t in f1[prefix + 'update_frames']]
    for index, t in enumerate(f1[prefix + 'update_frames']):
        np.testing.assert_allclose(updates[int(t)], f1[prefix + 'update_template_input'][index], atol=1e-5)
