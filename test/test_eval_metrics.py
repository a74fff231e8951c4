"""Metrics: equal to the got10k toolkit (PyPI 0.1.3) on the same results files, and hand-computed cases for the
rules that differ between protocols (first frame, invalid ground truth, zero-size boxes, > versus >=)."""
import os

import numpy as np
import pytest

from dataset_layouts import write_got10k
from stark_ros.datasets import Sequence, open_dataset
from stark_ros.evaluation import ResultsError, TrackRecord, score
from stark_ros.evaluation.metrics import roc_auc, score_roc_auc
from stark_ros.evaluation.protocols import pytracking
from stark_ros.evaluation.results import frame_size, load_records, write_results

got10k_experiments = pytest.importorskip('got10k.experiments')


class ToolkitSequences:
    """What the toolkit's experiments iterate over (``seq_names``; items ``(img_files, anno)``), for sequences
    that are not one of the toolkit's own benchmarks (its OTB class insists on the 100 OTB sequences)."""

    def __init__(self, sequences):
        self.seq_names = [s.name for s in sequences]
        self._annos = [s.boxes for s in sequences]

    def __len__(self):
        return len(self._annos)

    def __getitem__(self, index):
        return list(self._annos[index]), self._annos[index]


def toolkit_otb_report(result_dir, tracker, sequences, report_dir):
    """The got10k toolkit's ``ExperimentOTB.report`` on results in ``result_dir/<tracker>/<seq>.txt``."""
    experiment = got10k_experiments.ExperimentOTB.__new__(got10k_experiments.ExperimentOTB)
    experiment.dataset = ToolkitSequences(sequences)
    experiment.result_dir, experiment.report_dir = result_dir, report_dir
    experiment.nbins_iou, experiment.nbins_ce = 21, 51
    return experiment.report([tracker])[tracker]


def assert_matches_otb_toolkit(ours, theirs):
    overall = theirs['overall']
    assert ours.overall['AUC'] == pytest.approx(overall['success_score'], abs=1e-6)
    assert ours.overall['P'] == pytest.approx(overall['precision_score'], abs=1e-6)
    assert ours.overall['OP50'] == pytest.approx(overall['success_rate'], abs=1e-6)
    assert ours.overall['FPS'] == pytest.approx(overall['speed_fps'], rel=1e-6)
    np.testing.assert_allclose(ours.curves['success'][1], overall['success_curve'], atol=1e-6)
    np.testing.assert_allclose(ours.curves['precision'][1], overall['precision_curve'], atol=1e-6)
    for name, values in theirs['seq_wise'].items():
        assert ours.per_sequence[name]['AUC'] == pytest.approx(values['success_score'], abs=1e-6)
        assert ours.per_sequence[name]['P'] == pytest.approx(values['precision_score'], abs=1e-6)
        assert ours.per_sequence[name]['OP50'] == pytest.approx(values['success_rate'], abs=1e-6)
        assert ours.per_sequence[name].get('FPS', -1) == pytest.approx(values['speed_fps'], rel=1e-6)


def generated_run(rng, length, width=640, height=480, nan_gt=False):
    """Ground truth and predictions with the cases that separate the rules: exact copies (IoU 1), IoU exactly 0.5
    and 0.75, zero-size and out-of-image boxes, far misses, optional NaN ground truth; times with zeros."""
    xy = rng.uniform(0, [width - 130, height - 130], (length, 2))
    gt = np.round(np.hstack([xy, rng.uniform(8, 120, (length, 2))]), 2)
    pred = gt + rng.normal(0, 6, gt.shape)
    kind = rng.integers(0, 8, length)
    pred[kind == 1] = gt[kind == 1]                                         # IoU 1
    pred[kind == 2] = gt[kind == 2] * [1, 1, 1, 0.5]                        # IoU exactly 0.5
    pred[kind == 3] = gt[kind == 3] * [1, 1, 0.75, 1]                       # IoU exactly 0.75
    pred[kind == 4, 2:] = 0                                                  # zero size
    pred[kind == 5, :2] = -pred[kind == 5, 2:] / 2                          # half outside the image
    pred[kind == 6, :2] += 300                                               # a miss
    pred[:, 2:] = np.abs(pred[:, 2:])
    if nan_gt:
        gt[rng.integers(1, length, 2)] = np.nan
    times = rng.uniform(0.002, 0.05, length)
    times[rng.integers(0, length, 2)] = 0.0
    return np.round(gt, 4), np.round(pred, 4), times


def fake_sequence(name, gt):
    return Sequence(name, tuple('%s/%04d.jpg' % (name, i) for i in range(len(gt))), gt,
                    np.ones(len(gt), dtype=bool), 'generated')


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_got10k_otb_protocol_equals_toolkit_on_generated_runs(tmp_path, seed):
    rng = np.random.default_rng(seed)
    out = str(tmp_path / 'results')
    sequences = []
    for index in range(6):
        gt, pred, times = generated_run(rng, int(rng.integers(5, 80)), nan_gt=index == 2)
        sequences.append(fake_sequence('seq%d' % index, gt))
        write_results(out, 'tracker', sequences[-1].name, pred, times)
    ours = score('got10k-otb', load_records([out], 'tracker', sequences))
    assert_matches_otb_toolkit(ours, toolkit_otb_report(out, 'tracker', sequences, str(tmp_path / 'reports')))
    assert 0.2 < ours.overall['AUC'] < 0.9                                  # a case with something to measure


def write_generated_got10k(root, rng, count=4):
    """A GOT-10k val split of real frames with generated boxes and cover labels (some frames cover 0)."""
    val = os.path.join(root, 'val')
    for index in range(count):
        name = 'GOT-10k_Val_%06d' % (index + 1)
        write_got10k(val, name, source=('crossing', 'surfer')[index % 2], count=12)
        gt, _, _ = generated_run(rng, 12, 360 if index % 2 == 0 else 480, 240 if index % 2 == 0 else 360)
        np.savetxt(os.path.join(val, name, 'groundtruth.txt'), gt, fmt='%.4f', delimiter=',')
        cover = rng.integers(0, 9, 12)
        np.savetxt(os.path.join(val, name, 'cover.label'), cover, fmt='%d')
        np.savetxt(os.path.join(val, name, 'absence.label'), (cover == 0).astype(int), fmt='%d')
    return val


def toolkit_got10k_report(root, result_dir, tracker, report_dir):
    experiment = got10k_experiments.ExperimentGOT10k(root, subset='val', result_dir=result_dir,
                                                     report_dir=report_dir)
    return experiment.report([tracker])[tracker]


def assert_matches_got10k_toolkit(ours, theirs):
    overall = theirs['overall']
    assert ours.overall['AO'] == pytest.approx(overall['ao'], abs=1e-6)
    assert ours.overall['SR50'] == pytest.approx(overall['sr'], abs=1e-6)
    assert ours.overall['SR75'] == pytest.approx(overall['succ_curve'][75], abs=1e-6)
    assert ours.overall['FPS'] == pytest.approx(overall['speed_fps'], rel=1e-6)
    np.testing.assert_allclose(ours.curves['success'][1], overall['succ_curve'], atol=1e-6)
    for name, values in theirs['seq_wise'].items():
        assert ours.per_sequence[name]['AO'] == pytest.approx(values['ao'], abs=1e-6)
        assert ours.per_sequence[name]['SR50'] == pytest.approx(values['sr'], abs=1e-6)


def test_got10k_protocol_equals_toolkit_on_generated_runs(tmp_path):
    rng = np.random.default_rng(7)
    val = write_generated_got10k(str(tmp_path / 'data'), rng)
    sequences = list(open_dataset(val))
    out = str(tmp_path / 'results')
    for sequence in sequences:
        _, pred, times = generated_run(rng, len(sequence), *frame_size(sequence.frames[0]))
        write_results(out, 'tracker', sequence.name, pred, times, got10k_layout=True)
    ours = score('got10k', load_records([os.path.join(out, 'GOT-10k')], 'tracker', sequences, image_size=True))
    theirs = toolkit_got10k_report(str(tmp_path / 'data'), out, 'tracker', str(tmp_path / 'reports'))
    assert_matches_got10k_toolkit(ours, theirs)


# ------------------------------------------------------------------------------ hand-computed protocol rules

GT = np.array([[10, 10, 20, 20], [10, 10, 20, 20], [10, 10, 20, 20], [10, 10, 20, 20]], dtype=float)


def record(pred, gt=GT, **kwargs):
    return TrackRecord('s', np.asarray(pred, dtype=float), np.asarray(gt, dtype=float), **kwargs)


def test_first_frame_rule():
    """Frame 0 is replaced by the ground truth and counted (pytracking, OTB, LaSOT); GOT-10k drops it."""
    pred = [[300, 300, 5, 5], [10, 10, 20, 20], [10, 10, 20, 10], [100, 100, 20, 20]]    # IoU -, 1, 0.5, 0
    r = record(pred, image_size=(400, 400), extra={'cover': np.full(4, 8)})
    # IoUs 1, 1, 0.5, 0: a threshold t < 0.5 counts 3 frames, 0.5 <= t < 1 counts 2 (IoU > t), t = 1 none.
    expected_auc = (10 * 3 + 10 * 2 + 0) / 4 / 21
    for protocol in ('pytracking', 'got10k-otb', 'lasot'):
        assert score(protocol, [r]).overall['AUC'] == pytest.approx(expected_auc)
    got10k = score('got10k', [r]).overall                       # frames 1..3 only: IoUs 1, 0.5, 0
    assert got10k['AO'] == pytest.approx(0.5) and got10k['SR50'] == pytest.approx(1 / 3)


def test_threshold_rule_iou_exactly_at_threshold():
    """IoU exactly 0.5: a failure at 0.5 for pytracking / got10k (IoU > t), a success for TrackingNet (IoU >= t)."""
    r = record([[10, 10, 20, 20]] + [[10, 10, 20, 10]] * 3)
    assert score('pytracking', [r]).overall['OP50'] == pytest.approx(0.25)
    assert score('got10k-otb', [r]).overall['OP50'] == pytest.approx(0.25)
    success = score('trackingnet', [r]).curves['success'][1]
    assert success[10] == pytest.approx(1.0) and success[11] == pytest.approx(0.25)
    # TrackingNet scores are trapezoid areas over linspace(0, 1, 21): thresholds 0..0.5 hold 1, 0.55..0.95 0.25
    # and 1.0 0.25 (the frame-0 box equals the ground truth, IoU 1 >= 1).
    curve = np.r_[np.ones(11), np.full(10, 0.25)]
    assert score('trackingnet', [r]).overall['AUC'] == pytest.approx(np.trapezoid(curve, np.linspace(0, 1, 21)))


def test_zero_size_rule():
    """pytracking replaces a zero-size box by the previous box; the other protocols score it as it is."""
    r = record([[10, 10, 20, 20], [10, 10, 20, 20], [10, 10, 0, 0], [10, 10, 0, 20]])
    assert score('pytracking', [r]).overall['OP75'] == pytest.approx(1.0)   # frames 2, 3 become frame 1's box
    assert score('lasot', [r]).overall['OP75'] == pytest.approx(0.5)
    assert score('got10k-otb', [r]).overall['OP75'] == pytest.approx(0.5)


def test_invalid_ground_truth_rule():
    """Ground truth not > 0 (here w = 0 on frame 2): pytracking fails it in success and precision but counts it
    as a success in normalized precision (normalized error -1); LaSOT fails it everywhere; got10k-otb: IoU 0
    and a centre error of 0 (a success in precision)."""
    gt = GT.copy()
    gt[2, 2] = 0
    r = record(GT, gt)                                           # the prediction is the true box everywhere
    pyt = score('pytracking', [r]).overall
    assert (pyt['OP50'], pyt['P'], pyt['NP']) == (pytest.approx(0.75), pytest.approx(0.75), pytest.approx(1.0))
    las = score('lasot', [r]).overall
    assert (las['OP50'], las['P'], las['NP']) == (pytest.approx(0.75), pytest.approx(0.75), pytest.approx(0.75))
    assert pytracking([r], exclude_invalid_frames=True).overall['OP50'] == pytest.approx(1.0)
    otb = score('got10k-otb', [r]).overall
    assert otb['OP50'] == pytest.approx(0.75)


def test_lasot_invisible_frames_fail_in_both_toolkits():
    extra = {'full_occlusion': np.array([0, 1, 0, 0], bool), 'out_of_view': np.array([0, 0, 0, 1], bool)}
    r = record(GT, extra=extra)
    for protocol in ('pytracking', 'lasot'):
        values = score(protocol, [r]).overall
        assert values['OP50'] == pytest.approx(0.5) and values['P'] == pytest.approx(0.5)
        assert values['NP'] == pytest.approx(0.5)


def test_bad_results_are_named():
    bad = record([[10, 10, 20, 20], [10, 10, -3, 20], [10, 10, 20, 20], [10, 10, 20, 20]], source='csrt/x.txt')
    with pytest.raises(ResultsError, match=r'csrt/x.txt line 2: invalid box .* negative size'):
        score('pytracking', [bad])
    nan = record([[10, 10, 20, 20], [10, 10, 20, 20], [np.nan, 10, 20, 20], [10, 10, 20, 20]], source='k.txt')
    with pytest.raises(ResultsError, match=r'k.txt line 3'):
        score('pytracking', [nan])
    # got10k-otb follows the toolkit: a NaN box is a failure, not an error.
    assert score('got10k-otb', [nan]).overall['OP50'] == pytest.approx(0.75)
    short = record(GT[:3], source='short.txt')
    with pytest.raises(ResultsError, match=r'short.txt: 3 result rows for 4 ground-truth frames'):
        score('lasot', [short])
    # pytracking's documented behaviour: a short file is zero-padded (the missing frames fail).
    assert score('pytracking', [short]).overall['OP50'] == pytest.approx(0.75)
    unknown = record(GT, np.vstack([GT[:1], np.full((3, 4), np.nan)]))
    with pytest.raises(ResultsError, match='ground truth unknown from frame 1'):
        score('pytracking', [unknown])
    with pytest.raises(ValueError, match='unknown protocol'):
        score('vot', [unknown])


# ------------------------------------------------------------------------------ score ROC AUC


def test_roc_auc_hand_computed_with_ties():
    """Scores 0.9 0.8 0.8 0.6 0.5 0.5 0.3 with labels + + - + - + - (4 positives, 3 negatives, 12 pairs). Counting
    for each positive the negatives below it, a tie 1/2:
        0.9 > 0.8, 0.5, 0.3                 -> 3
        0.8 = 0.8 (1/2), > 0.5, 0.3        -> 2.5
        0.6 > 0.5, 0.3                      -> 2
        0.5 = 0.5 (1/2), > 0.3              -> 1.5
    U = 9, AUC = 9 / 12 = 0.75. By ranks (ascending, ties share the mean rank): 0.3 -> 1, 0.5 0.5 -> 2.5, 0.6 -> 4,
    0.8 0.8 -> 5.5, 0.9 -> 7; positives' rank sum 7 + 5.5 + 4 + 2.5 = 19, U = 19 - 4 * 5 / 2 = 9: the same."""
    scores = [0.9, 0.8, 0.8, 0.6, 0.5, 0.5, 0.3]
    labels = [1, 1, 0, 1, 0, 1, 0]
    assert roc_auc(scores, labels) == pytest.approx(0.75, abs=1e-12)
    order = [3, 6, 0, 5, 2, 4, 1]                                 # the order of the frames does not matter
    assert roc_auc(np.take(scores, order), np.take(labels, order)) == pytest.approx(0.75, abs=1e-12)
    # all positives above all negatives: 1; below: 0; every score equal: every pair a tie, 1/2
    assert roc_auc([0.9, 0.8, 0.2, 0.1], [True, True, False, False]) == 1.0
    assert roc_auc([0.1, 0.2, 0.8, 0.9], [True, True, False, False]) == 0.0
    assert roc_auc([0.4] * 5, [1, 0, 1, 0, 0]) == 0.5
    # one class empty: undefined
    assert np.isnan(roc_auc([0.3, 0.7], [True, True])) and np.isnan(roc_auc([0.3, 0.7], [0, 0]))
    assert np.isnan(roc_auc([], []))
    with pytest.raises(ValueError, match='finite'):
        roc_auc([0.3, np.nan], [1, 0])
    with pytest.raises(ValueError, match='2 scores for 3 labels'):
        roc_auc([0.3, 0.4], [1, 0, 1])


def test_score_roc_auc_frames_and_pooling():
    """Frame 0 (the init frame), NaN scores and unknown ground truth are left out; the event is IoU > 0.5 (IoU
    exactly 0.5 is a negative); the overall value pools the frames of every sequence."""
    gt = np.tile([10.0, 10.0, 20.0, 20.0], (6, 1))
    gt[4] = np.nan
    pred = np.array([[90, 90, 5, 5],          # frame 0: excluded whatever its box and score
                     [10, 10, 20, 20],        # IoU 1 -> positive, score 0.9
                     [10, 10, 20, 10],        # IoU exactly 0.5 -> negative, score 0.9 (ties the positive)
                     [60, 60, 20, 20],        # IoU 0 -> negative, score 0.2
                     [10, 10, 20, 20],        # ground truth unknown: excluded
                     [11, 10, 20, 20]], float)  # IoU 19/21 -> positive, score NaN: excluded
    scores = np.array([1.0, 0.9, 0.9, 0.2, 0.1, np.nan])
    a = TrackRecord('a', pred, gt, scores=scores)
    # a: positive 0.9 against negatives 0.9 (tie: 1/2) and 0.2 (1): AUC = 1.5 / 2
    overall, per_sequence = score_roc_auc([a])
    assert per_sequence == {'a': pytest.approx(0.75)} and overall == pytest.approx(0.75)
    # b: one positive (0.3) and no negative -> NaN alone; pooled with a: positives 0.9, 0.3 against negatives
    # 0.9, 0.2: 0.9 -> 1/2 + 1, 0.3 -> 0 + 1; 2.5 / 4
    b = TrackRecord('b', GT.copy(), GT.copy(), scores=np.array([1.0, 0.3, np.nan, np.nan]))
    overall, per_sequence = score_roc_auc([a, b])
    assert np.isnan(per_sequence['b']) and overall == pytest.approx(2.5 / 4)
    # through score(): the key only where there are scores; overall only when every sequence has them
    with_scores = score('pytracking', [a.__class__('a', pred[[0, 1, 2, 3, 5]], gt[[0, 1, 2, 3, 5]],
                                                   scores=scores[[0, 1, 2, 3, 5]]), b])
    assert with_scores.overall['ScoreAUROC'] == pytest.approx(2.5 / 4)
    assert with_scores.per_sequence['a']['ScoreAUROC'] == pytest.approx(0.75)
    no_scores = TrackRecord('c', GT.copy(), GT.copy())
    assert 'ScoreAUROC' not in score('pytracking', [no_scores]).overall
    mixed = score('got10k-otb', [b, no_scores])
    assert 'ScoreAUROC' not in mixed.overall and 'ScoreAUROC' in mixed.per_sequence['b']
    with pytest.raises(ResultsError, match='3 scores, 4 result rows'):
        score_roc_auc([TrackRecord('d', GT.copy(), GT.copy(), scores=np.ones(3))])
