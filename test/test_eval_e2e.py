"""End to end: ``python -m stark_ros.evaluate`` over real sequences with real trackers (OpenCV CSRT / KCF, STARK)."""
import os
import re
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from dataset_layouts import REPO_ROOT, shared_eval, write_got10k, write_otb
from oracles import make_official_checkpoint
from stark_ros import evaluate
from stark_ros.datasets import open_dataset
from stark_ros.evaluation import score
from stark_ros.evaluation.metrics import roc_auc, score_events
from stark_ros.evaluation.results import load_records
from stark_ros.evaluation.runner import truncate
from test_eval_metrics import (assert_matches_got10k_toolkit, assert_matches_otb_toolkit, toolkit_got10k_report,
                               toolkit_otb_report)

#: ../shared/eval/README.md: OpenCV CSRT (opencv-contrib-python-headless 5.0.0.93), success AUC per sequence.
README_CSRT_AUC = {'bag': 0.332, 'crossing': 0.771, 'david': 0.740, 'human7': 0.731, 'jogging1': 0.691,
                   'surfer': 0.522}
README_CSRT_MEAN_AUC = 0.631


def table_row(text, label):
    """The numbers of a tracker's row in the printed table ('-', a tracker without confidence scores: None)."""
    line = next(l for l in text.splitlines() if l.split() and l.split()[0] == label)
    return [None if v == '-' else float(v) for v in line.split()[1:]]


@pytest.fixture(scope='module')
def csrt_run(tmp_path_factory):
    """CSRT over all of ../shared/eval through the real command line (about a minute on an idle 2-core CPU)."""
    out = str(tmp_path_factory.mktemp('csrt_eval'))
    done = subprocess.run([sys.executable, '-m', 'stark_ros.evaluate', '--dataset', shared_eval(), '--trackers',
                           'csrt', '--output', out, '--quiet', '--threads', '1'], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    return out, done.stdout, done.stderr


def test_csrt_matches_the_published_numbers(csrt_run):
    out, stdout, stderr = csrt_run
    assert 'Protocol: pytracking protocol' in stdout
    auc, op50, op75, precision, norm_precision, fps, score_auroc = table_row(stdout, 'csrt')
    assert score_auroc is None                                  # CSRT has no confidence score
    assert abs(auc - README_CSRT_MEAN_AUC) <= 0.01
    assert abs(precision - 0.838) <= 0.02 and abs(norm_precision - 0.792) <= 0.02 and fps > 0
    with open(os.path.join(out, 'sequences_pytracking.csv')) as handle:
        rows = [line.strip().split(',') for line in handle][1:]
    assert {r[1]: float(r[2]) for r in rows} == pytest.approx(README_CSRT_AUC, abs=0.01)
    for name in ('report_pytracking.md', 'report_pytracking.csv', 'success_pytracking.png', 'precision_pytracking.png'):
        assert os.path.getsize(os.path.join(out, name)) > 0
    with open(os.path.join(out, 'success_pytracking.png'), 'rb') as handle:
        assert handle.read(8) == b'\x89PNG\r\n\x1a\n'
    with open(os.path.join(out, 'report_pytracking.md')) as handle:
        assert re.search(r'\| csrt \| 0\.6\d\d \|', handle.read())
    for sequence in open_dataset(shared_eval()):
        with open(os.path.join(out, 'csrt', sequence.name + '.txt')) as handle:
            assert sum(1 for _ in handle) == len(sequence)
        with open(os.path.join(out, 'csrt', 'times', sequence.name + '_time.txt')) as handle:
            assert sum(1 for _ in handle) == len(sequence)


def test_real_outputs_score_as_the_toolkit_does(csrt_run, tmp_path):
    out, _, _ = csrt_run
    sequences = list(open_dataset(shared_eval()))
    ours = score('got10k-otb', load_records([out], 'csrt', sequences))
    assert_matches_otb_toolkit(ours, toolkit_otb_report(out, 'csrt', sequences, str(tmp_path)))


def test_rerun_skips_existing_results_and_overwrite_redoes_them(csrt_run, capsys):
    out, _, _ = csrt_run
    path = os.path.join(out, 'csrt', 'crossing.txt')
    before = os.stat(path).st_mtime_ns
    assert evaluate.main(['--dataset', shared_eval(), '--trackers', 'csrt', '--output', out, '--quiet',
                          '--sequences', 'crossing', '--no-plots']) == 0
    assert '1 run(s) skipped' in capsys.readouterr().err and os.stat(path).st_mtime_ns == before
    assert evaluate.main(['--dataset', shared_eval(), '--trackers', 'csrt', '--output', out, '--quiet',
                          '--sequences', 'crossing', '--no-plots', '--overwrite']) == 0
    assert 'skipped' not in capsys.readouterr().err and os.stat(path).st_mtime_ns != before


def test_stark_end_to_end_fast_configuration(tmp_path, capsys):
    """STARK through the same runner from a real checkpoint file: an official-format Lightning checkpoint written
    by the reference generator (test/fixtures/make_checkpoint.py), on the first 20 frames of two sequences; and
    the synthetic-weights path, which must say so (the oracle tests cover the numerics)."""
    checkpoint = str(tmp_path / 'STARKLightningXtrt_ep0500.pth.tar')
    make_official_checkpoint('lightning', checkpoint)
    out = str(tmp_path / 'out')
    assert evaluate.main(['--dataset', shared_eval(), '--trackers',
                          'kcf,lite=stark:checkpoint=%s,synth=stark:checkpoint=synthetic:variant=lightning'
                          % checkpoint,
                          '--sequences', 'crossing,human7', '--max-frames', '20', '--output', out, '--quiet',
                          '--threads', '1']) == 0
    captured = capsys.readouterr()
    assert 'tracker synth runs deterministic SYNTHETIC STARK weights' in captured.err
    assert 'STARK lightning (%s' % checkpoint in captured.err, captured.err
    for label in ('kcf', 'lite', 'synth'):
        values = table_row(captured.out, label)
        assert len(values) == 7 and all(0 <= v <= 1 for v in values[:5]) and values[5] > 0
        assert values[6] is None and not os.path.exists(os.path.join(out, label, 'scores'))  # no score head
        for name in ('crossing', 'human7'):
            boxes = np.loadtxt(os.path.join(out, label, name + '.txt'), delimiter=',')
            assert boxes.shape == (20, 4) and np.isfinite(boxes).all()
    assert os.path.isfile(os.path.join(out, 'success_pytracking.png'))


def test_static_baseline_holds_the_init_box_and_scores_as_the_toolkit(tmp_path, capsys):
    """``static`` on a whole real sequence: every result row is the frame-0 ground truth, and its scores are the
    got10k toolkit's ExperimentOTB report of those results (printed table and every number of the record)."""
    out = str(tmp_path / 'out')
    assert evaluate.main(['--dataset', shared_eval(), '--trackers', 'static', '--sequences', 'crossing',
                          '--protocol', 'got10k-otb', '--output', out, '--quiet', '--no-plots']) == 0
    captured = capsys.readouterr()
    assert 'static: static (the frame-0 box on every frame)' in captured.err
    sequence = open_dataset(shared_eval()).load_sequence('crossing')
    boxes = np.loadtxt(os.path.join(out, 'static', 'crossing.txt'), delimiter=',')
    assert boxes.shape == (len(sequence), 4) and len(sequence) > 100
    np.testing.assert_array_equal(boxes, np.tile(np.asarray(sequence.boxes[0], float), (len(sequence), 1)))
    assert not os.path.exists(os.path.join(out, 'static', 'scores'))              # no confidence score
    theirs = toolkit_otb_report(out, 'static', [sequence], str(tmp_path / 'reports'))
    auc, _, _, precision, _, score_auroc = table_row(captured.out, 'static')      # got10k-otb: no NP
    assert auc == pytest.approx(theirs['overall']['success_score'], abs=5e-4)
    assert precision == pytest.approx(theirs['overall']['precision_score'], abs=5e-4)
    assert 0 < auc < 0.5 and score_auroc is None       # the walkers leave the box at once (0.04 here)
    assert_matches_otb_toolkit(score('got10k-otb', load_records([out], 'static', [sequence])), theirs)


def test_default_trackers_and_the_score_roc_auc_column(tmp_path, capsys):
    """The default --trackers (static, csrt, kcf, stark: the shipped lite0 model with a score head) on the first
    40 frames of two real sequences: STARK writes one confidence per frame and gets a ScoreAUROC equal to roc_auc
    of its files' scores and IoU > 0.5 events, overall and per sequence; the trackers without scores show '-'."""
    out = str(tmp_path / 'out')
    assert evaluate.main(['--dataset', shared_eval(), '--sequences', 'crossing,human7', '--max-frames', '40',
                          '--output', out, '--quiet', '--threads', '1']) == 0
    captured = capsys.readouterr()
    header = next(l for l in captured.out.splitlines() if l.startswith('tracker'))
    assert header.split()[-1] == 'ScoreAUROC'
    assert [l.split()[0] for l in captured.out.splitlines()[2:6]] == ['static', 'csrt', 'kcf', 'stark']
    for label in ('static', 'csrt', 'kcf'):
        assert table_row(captured.out, label)[6] is None
    sequences = [truncate(open_dataset(shared_eval()).load_sequence(n), 40) for n in ('crossing', 'human7')]
    records = load_records([out], 'stark', sequences)
    for record in records:
        with open(os.path.join(out, 'stark', 'scores', record.name + '_scores.txt')) as handle:
            lines = handle.read().split()
        assert len(lines) == 40 and float(lines[0]) == 1.0
        assert all(0.0 <= float(v) <= 1.0 for v in lines[1:]) and len(set(lines[1:])) > 5
        np.testing.assert_array_equal(record.scores, np.array(lines, float))
    pairs = [score_events(r) for r in records]
    labels = np.concatenate([l for _, l in pairs])
    assert 0 < labels.sum() < len(labels) == 78                 # frames 1..39 of each; both classes present
    expected = roc_auc(np.concatenate([s for s, _ in pairs]), labels)
    assert table_row(captured.out, 'stark')[6] == pytest.approx(expected, abs=5e-4)
    with open(os.path.join(out, 'sequences_pytracking.csv')) as handle:
        rows = [line.strip().split(',') for line in handle]
    assert rows[0][-1] == 'ScoreAUROC'
    per_sequence = {r[1]: r[-1] for r in rows[1:] if r[0] == 'stark'}
    for record, (s, l) in zip(records, pairs):
        value = roc_auc(s, l)
        assert per_sequence[record.name] == ('nan' if np.isnan(value) else '%.3f' % value)
    assert {r[-1] for r in rows[1:] if r[0] != 'stark'} == {'-'}


def test_shards_and_workers_merge_to_the_single_run(tmp_path, capsys):
    common = ['--dataset', shared_eval(), '--trackers', 'kcf', '--sequences', 'crossing,human7,jogging1',
              '--max-frames', '25', '--quiet', '--no-plots']
    single, a, b = (str(tmp_path / n) for n in ('single', 'a', 'b'))
    assert evaluate.main(common + ['--output', single]) == 0
    whole = table_row(capsys.readouterr().out, 'kcf')
    assert evaluate.main(common + ['--output', a, '--shard', '1/2', '--workers', '2']) == 0
    assert evaluate.main(common + ['--output', b, '--shard', '2/2']) == 0
    capsys.readouterr()
    assert sorted(os.listdir(os.path.join(a, 'kcf'))) == ['crossing.txt', 'jogging1.txt', 'times']
    assert sorted(os.listdir(os.path.join(b, 'kcf'))) == ['human7.txt', 'times']
    report = str(tmp_path / 'report')
    assert evaluate.main(common + ['--results-only', a, b, '--output', report]) == 0
    merged = table_row(capsys.readouterr().out, 'kcf')
    assert merged[:5] == whole[:5]
    for name in ('crossing', 'jogging1'):                 # worker processes give the same boxes
        np.testing.assert_array_equal(np.loadtxt(os.path.join(a, 'kcf', name + '.txt'), delimiter=','),
                                      np.loadtxt(os.path.join(single, 'kcf', name + '.txt'), delimiter=','))
    assert evaluate.main(common + ['--results-only', a, '--output', report]) == 2
    assert 'no results for 1 of 3 sequences' in capsys.readouterr().err


def test_got10k_layout_submission_and_toolkit_on_real_outputs(tmp_path, capsys):
    data = tmp_path / 'data'
    for index, source in enumerate(('crossing', 'surfer')):
        write_got10k(str(data / 'val'), 'GOT-10k_Val_%06d' % (index + 1), source, count=12)
    out = str(tmp_path / 'out')
    assert evaluate.main(['--dataset', str(data / 'val'), '--trackers', 'csrt', '--protocol', 'got10k',
                          '--output', out, '--quiet']) == 0
    captured = capsys.readouterr()
    assert 'Protocol: got10k toolkit GOT-10k experiment' in captured.out
    ao = table_row(captured.out, 'csrt')[0]
    assert 0.3 < ao <= 1.0
    with zipfile.ZipFile(os.path.join(out, 'submissions', 'csrt_got10k.zip')) as archive:
        assert sorted(archive.namelist()) == sorted('GOT-10k_Val_%06d/GOT-10k_Val_%06d%s' % (i, i, s)
                                                    for i in (1, 2) for s in ('_001.txt', '_time.txt'))
    sequences = list(open_dataset(str(data / 'val')))
    ours = score('got10k', load_records([out], 'csrt', sequences, image_size=True))
    assert ours.overall['AO'] == pytest.approx(ao, abs=5e-4)
    theirs = toolkit_got10k_report(str(data), out, 'csrt', str(tmp_path / 'reports'))
    assert_matches_got10k_toolkit(score('got10k', load_records([os.path.join(out, 'GOT-10k')], 'csrt', sequences,
                                                               image_size=True)), theirs)


# ------------------------------------------------------------------------------------------ bad input


def run_cli(capsys, *argv):
    status = evaluate.main(list(argv) + ['--quiet', '--no-plots'])
    return status, capsys.readouterr().err


def test_missing_frame_and_bad_results_are_named(tmp_path, capsys):
    data = str(tmp_path / 'data')
    written, _ = write_otb(data, 'crossing', count=6)
    os.remove(written[3])
    status, err = run_cli(capsys, '--dataset', data, '--trackers', 'kcf', '--output', str(tmp_path / 'o'))
    assert status == 2 and 'groundtruth_rect.txt has 6 boxes but the sequence has 5 frames' in err
    written, _ = write_otb(data, 'crossing', count=6)
    with open(written[4], 'wb') as handle:
        handle.write(b'\xff\xd8 truncated')
    status, err = run_cli(capsys, '--dataset', data, '--trackers', 'kcf', '--output', str(tmp_path / 'o'))
    assert status == 2 and re.search(r'frame .*crossing/img/0005.jpg cannot be decoded', err)
    results = tmp_path / 'res' / 'mine'
    results.mkdir(parents=True)
    (results / 'crossing.txt').write_text('1,2,3,4\n' * 3 + '1,2,nan,4\n' + '1,2,3,4\n' * 2)
    status, err = run_cli(capsys, '--dataset', data, '--results-only', str(results), '--output', str(tmp_path / 'r'))
    assert status == 2 and re.search(r'mine/crossing.txt line 4: invalid box', err)
    (results / 'crossing.txt').write_text('1,2,3,4\n' * 3 + '1,2,x,4\n' + '1,2,3,4\n' * 2)
    status, err = run_cli(capsys, '--dataset', data, '--results-only', str(results), '--output', str(tmp_path / 'r'))
    assert status == 2 and re.search(r'mine/crossing.txt line 4: not a number', err)


def test_bad_arguments(tmp_path, capsys):
    status, err = run_cli(capsys, '--dataset', shared_eval(), '--sequences', 'nosuch', '--output', str(tmp_path))
    assert status == 2 and 'unknown sequence(s) nosuch in otb dataset' in err
    status, err = run_cli(capsys, '--dataset', shared_eval(), '--trackers', 'csrt,medianflow', '--output',
                          str(tmp_path))
    assert status == 2 and "unknown tracker 'medianflow'" in err
    status, err = run_cli(capsys, '--dataset', shared_eval(), '--trackers', 'stark:colour=red', '--output',
                          str(tmp_path))
    assert status == 2 and "bad STARK option 'colour=red'" in err
    status, err = run_cli(capsys, '--dataset', shared_eval(), '--trackers', 'stark,stark:variant=lightning',
                          '--output', str(tmp_path))
    assert status == 2 and 'given twice' in err
    status, err = run_cli(capsys, '--dataset', shared_eval(), '--shard', '3/2', '--output', str(tmp_path))
    assert status == 2 and 'i must be in 1..n' in err
