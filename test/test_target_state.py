"""Target state machine (:mod:`stark_ros.tracker.target_state`): the rules on explicit score sequences, then the
tracker side on real frames: a sequence of ``../shared/eval/bag`` frames, then frames of another sequence
(``david``, the bag absent), then the bag's frames again.

The real-frame test does not take the state from the model's scores alone (the shipped model loses the bag itself
on some of these frames, README, Target state): it sets the thresholds from the scores it observes on the
same frames (above all of them while the bag is absent, below all of them while it is present, as an operator
changing ``uncertain_threshold`` / ``lost_threshold`` would) and checks what the tracker does with the state: lost
after exactly ``lost_after_frames`` frames, the search area factor growing x``lost_search_growth`` per lost frame up
to a search region covering the whole image, no dynamic-template update unless tracking, recovery after
``recover_after_frames`` confident frames and the normal factor back on the first confident frame.
"""
import cv2
import pytest

from dataset_layouts import source_sequence

from stark_ros.tracker import StarkTracker, TrackerParams
from stark_ros.tracker.target_state import LOST, TRACKING, UNCERTAIN, MonitorParams, TargetMonitor


def _run(monitor, scores):
    return [monitor.observe(s) for s in scores]


def test_rules_on_score_sequences():
    p = MonitorParams(uncertain_threshold=0.6, lost_threshold=0.3, lost_after_frames=3, recover_after_frames=2,
                      lost_search_growth=2.0)
    m = TargetMonitor(p)
    assert m.state == TRACKING and m.search_scale == 1.0
    # confident frames keep tracking; one middling frame -> uncertain at once
    assert _run(m, [0.9, 0.7, 0.5]) == [TRACKING, TRACKING, UNCERTAIN]
    assert m.frames_since_confident == 1 and not m.allows_template_update
    # two low frames: still uncertain (3 needed), the middling frame in between restarts the count
    assert _run(m, [0.1, 0.1, 0.4, 0.1, 0.1]) == [UNCERTAIN] * 5
    assert m.search_scale == 1.0
    # third consecutive low frame -> lost; the search grows x2 per lost frame
    assert _run(m, [0.1]) == [LOST]
    assert m.search_scale == 2.0 and m.lost_frames == 1
    assert _run(m, [0.2, 0.5]) == [LOST, LOST]        # a middling frame does not bring a lost target back
    assert m.search_scale == 8.0 and m.frames_since_confident == 9
    # one confident frame: still lost (2 needed) but the normal search factor is back at once
    assert _run(m, [0.8]) == [LOST]
    assert m.search_scale == 1.0 and m.frames_since_confident == 0 and not m.allows_template_update
    # a low frame breaks the recovery; then two confident frames -> tracking
    assert _run(m, [0.1, 0.8, 0.8]) == [LOST, LOST, TRACKING]
    assert m.allows_template_update and m.search_scale == 1.0
    # uncertain -> tracking needs recover_after_frames too
    assert _run(m, [0.5, 0.9, 0.9]) == [UNCERTAIN, UNCERTAIN, TRACKING]
    # no score head: always tracking
    assert _run(m, [0.1, None]) == [UNCERTAIN, TRACKING]
    m.reset()
    assert (m.state, m.frames_since_confident, m.lost_frames) == (TRACKING, 0, 0)


def test_parameter_checks():
    with pytest.raises(ValueError, match='lost_threshold'):
        MonitorParams(uncertain_threshold=0.3, lost_threshold=0.4)
    with pytest.raises(ValueError, match='lost_after_frames'):
        MonitorParams(lost_after_frames=0)
    with pytest.raises(ValueError, match='lost_search_growth'):
        MonitorParams(lost_search_growth=0.5)


def _rgb(paths, size=None):
    frames = [cv2.cvtColor(cv2.imread(p, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) for p in paths]
    return [cv2.resize(f, size) for f in frames] if size else frames


PRESENT, ABSENT, BACK = 10, 12, 10


@pytest.fixture(scope='module')
def sequence():
    """(frames, bag's first box): bag frames 0..PRESENT, david frames (resized to the bag's 480x360), bag again."""
    paths, boxes = source_sequence('bag', PRESENT + 1 + BACK)
    bag = _rgb(paths)
    height, width = bag[0].shape[:2]
    david = _rgb(source_sequence('david', ABSENT)[0], (width, height))
    return bag[:PRESENT + 1] + david + bag[PRESENT + 1:], tuple(float(v) for v in boxes[0])


def test_lost_while_the_target_is_absent_then_tracking_when_it_returns(sequence):
    frames, box = sequence
    height, width = frames[0].shape[:2]
    params = TrackerParams(update_interval=1, score_threshold=0.0)     # refresh the template whenever allowed
    tracker = StarkTracker.from_checkpoint('', 'auto', 'cpu', params=params)
    # the model's scores on these frames (no monitor), to put the thresholds outside them
    tracker.initialize(frames[0], box)
    scores = [tracker.track(f).score for f in frames[1:]]
    low, high = max(0.0, min(scores) - 0.01), min(1.0, max(scores) + 0.01)
    confident = MonitorParams(uncertain_threshold=low, lost_threshold=low, lost_after_frames=4,
                              recover_after_frames=3, lost_search_growth=1.5)
    absent = MonitorParams(uncertain_threshold=high, lost_threshold=high, lost_after_frames=4,
                           recover_after_frames=3, lost_search_growth=1.5)
    tracker.monitor = TargetMonitor(confident)
    tracker.initialize(frames[0], box)
    results = []
    for t, frame in enumerate(frames[1:], start=1):
        tracker.monitor.params = absent if PRESENT < t <= PRESENT + ABSENT else confident
        results.append(tracker.track(frame))
    states = [r.target_state for r in results]
    present, gone, back = results[:PRESENT], results[PRESENT:PRESENT + ABSENT], results[PRESENT + ABSENT:]
    assert [r.target_state for r in present] == [TRACKING] * PRESENT
    assert all(r.template_updated and r.search_factor == 5.0 for r in present)
    # absent: uncertain, then lost from the 4th low frame on; no template update; the search factor grows
    assert [r.target_state for r in gone] == [UNCERTAIN] * 3 + [LOST] * (ABSENT - 3), states
    assert not any(r.template_updated for r in gone)
    assert [r.frames_since_confident for r in gone] == list(range(1, ABSENT + 1))
    factors = [r.search_factor for r in gone]
    assert factors[:4] == [5.0] * 4                   # the first lost frame's search was cropped before it was lost
    cover = None
    for k, factor in enumerate(factors[4:], start=1):
        x1, y1, side, _ = gone[3 + k].search_region
        w, h = tracker_box = gone[3 + k - 1].box[2:]
        cap = 2.0 * max(width, height) / (w * h) ** 0.5
        assert factor == pytest.approx(max(5.0, min(5.0 * 1.5 ** k, cap))), (k, factor, cap, tracker_box)
        if factor == pytest.approx(max(5.0, cap)):
            cover = (x1, y1, side)
    assert max(factors) > 5.0 and cover is not None, factors     # it grew, and reached the whole image
    print('search factors while absent:', ['%.2f' % f for f in factors])
    x1, y1, side = cover
    assert x1 <= 0 and y1 <= 0 and x1 + side >= width and y1 + side >= height
    # back: the first confident frame restores the normal factor for the next one; tracking after 3 confident
    assert [r.target_state for r in back] == [LOST, LOST] + [TRACKING] * (BACK - 2), states
    x1, y1, side, _ = back[0].search_region          # cropped while still lost: the whole image
    assert x1 <= 0 and y1 <= 0 and x1 + side >= width and y1 + side >= height
    assert all(r.search_factor == 5.0 for r in back[1:])
    assert not any(r.template_updated for r in back[:2]) and all(r.template_updated for r in back[2:])
    assert [r.frames_since_confident for r in back] == [0] * BACK
