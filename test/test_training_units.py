"""Training building blocks: losses against hand-computed values, configs, checkpoint files, ImageNet loading."""
import math
import os

import pytest
import torch

from stark_ros.errors import CheckpointError
from stark_ros.model import build_network, load_network
from stark_ros.training.checkpointing import (capture_rng_state, list_checkpoints, prune_checkpoints,
                                              read_training_checkpoint, restore_rng_state, save_atomic)
from stark_ros.training.config import ConfigError, load_config, recipe_names
from stark_ros.training.losses import box_losses, generalized_iou, score_loss
from stark_ros.training.network import freeze_for_stage, load_stage1_weights, parameter_groups
from stark_ros.training.pretrained import load_imagenet_repvgg, load_imagenet_resnet


# ------------------------------------------------------------------------------------------------- losses

def test_box_losses_match_hand_computed_values():
    # pred cxcywh (0.5, 0.5, 0.2, 0.2) -> xyxy (0.4, 0.4, 0.6, 0.6); gt xywh (0.5, 0.5, 0.2, 0.2) -> (0.5 .. 0.7)
    # intersection 0.01, union 0.07, enclosing 0.3^2 = 0.09: GIoU = 1/7 - 0.02/0.09
    terms = box_losses(torch.tensor([[[0.5, 0.5, 0.2, 0.2]]]), torch.tensor([[0.5, 0.5, 0.2, 0.2]]))
    assert terms['giou'].item() == pytest.approx(1 - (1 / 7 - 0.02 / 0.09), abs=1e-6)
    assert terms['l1'].item() == pytest.approx(0.1, abs=1e-6)
    assert terms['iou'].item() == pytest.approx(1 / 7, abs=1e-6)
    same = box_losses(torch.tensor([[0.3, 0.4, 0.2, 0.1]]), torch.tensor([[0.2, 0.35, 0.2, 0.1]]))
    assert same['giou'].item() == pytest.approx(0.0, abs=1e-6) and same['l1'].item() == pytest.approx(0, abs=1e-7)


def test_ground_truth_corners_are_clamped_to_the_crop():
    # gt xywh (-0.1, 0.9, 0.3, 0.3) -> xyxy (-0.1, 0.9, 0.2, 1.2) -> clamped (0, 0.9, 0.2, 1.0)
    pred = torch.tensor([[0.1, 0.95, 0.2, 0.1]])          # exactly the clamped box
    terms = box_losses(pred, torch.tensor([[-0.1, 0.9, 0.3, 0.3]]))
    assert terms['giou'].item() == pytest.approx(0.0, abs=1e-6)
    assert terms['l1'].item() == pytest.approx(0.0, abs=1e-6)


def test_degenerate_predicted_box_gives_a_finite_nonzero_loss_that_trains():
    # pred w < 0: xyxy (0.6, 0.45, 0.4, 0.55); gt (0.1, 0.1, 0.3, 0.3). Area counted 0, IoU 0, union 0.04,
    # enclosing box of all corners 0.5 x 0.45: GIoU = -(0.225 - 0.04) / 0.225 (the official actor would give 0)
    pred = torch.tensor([[0.5, 0.5, -0.2, 0.1]], requires_grad=True)
    gt = torch.tensor([[0.1, 0.1, 0.2, 0.2]])
    terms = box_losses(pred, gt)
    assert terms['giou'].item() == pytest.approx(1 + 0.185 / 0.225, abs=1e-6)
    terms['giou'].backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0
    with torch.no_grad():
        moved = pred - 0.05 * pred.grad
    assert box_losses(moved, gt)['giou'] < terms['giou']
    # zero-area boxes on both sides stay finite
    giou, iou = generalized_iou(torch.zeros(1, 4), torch.zeros(1, 4))
    assert torch.isfinite(giou).all() and torch.isfinite(iou).all()


def test_score_loss_is_bce_with_logits():
    assert score_loss(torch.zeros(2, 1, 1), torch.tensor([1.0, 0.0])).item() == pytest.approx(math.log(2))
    value = score_loss(torch.tensor([[[2.0]]]), torch.tensor([0.0])).item()
    assert value == pytest.approx(math.log(1 + math.exp(2.0)), abs=1e-6)


# ------------------------------------------------------------------------------------------------- configs

def test_every_recipe_loads_with_the_official_values():
    names = recipe_names()
    for name in ('s50', 'st50_stage1', 'st50_stage2', 'st101_stage1', 'st101_stage2', 'lightning'):
        assert name in names
    for name in (n for n in names if not n.startswith('lite0')):       # lite0: the project's own CPU recipe
        config = load_config(name)
        train = config['train']
        assert (train['lr'], train['weight_decay'], train['backbone_lr_multiplier']) == (1e-4, 1e-4, 0.1)
        assert (train['grad_clip_norm'], train['batch_size'], train['seed']) == (0.1, 16, 42)
        assert config['data']['samples_per_epoch'] == 60000
        expected = (50, 40) if config['stage'] == 2 else (500, 400)
        assert (train['epochs'], train['lr_drop_epoch']) == expected, name
    assert load_config('st50_stage1')['data']['sampler'] == 'trident_pro'
    assert load_config('s50')['data']['sampler'] == 'causal'
    assert load_config('st50_stage2')['train']['val_interval'] == 10
    assert load_config('lite0_stage1')['model']['variant'] == load_config('lite0_stage2')['model']['variant'] == 'lite0'


def test_overrides_are_typed_and_unknown_keys_are_named(tmp_path):
    config = load_config('st50_stage1', ['train.lr=2e-4', 'data.samples_per_epoch=1000',
                                         'data.train=[{type: got10k, root: g, split: train_full, ratio: 1}]'])
    assert config['train']['lr'] == 2e-4 and config['data']['samples_per_epoch'] == 1000
    assert config['data']['train'][0]['split'] == 'train_full'
    with pytest.raises(ConfigError, match='train.lrr'):
        load_config('st50_stage1', ['train.lrr=1'])
    with pytest.raises(ConfigError, match='train.batch_size'):
        load_config(None, ['train.batch_size=many'])
    bad = tmp_path / 'bad.yaml'
    bad.write_text('model:\n  variant: st50\n  backbone: resnet\n')
    with pytest.raises(ConfigError, match='model.backbone'):
        load_config(str(bad))
    with pytest.raises(ConfigError, match='no training config'):
        load_config('no_such_recipe')


def test_repeated_set_options_all_apply():
    """``--set a=1 --set b=2`` keeps both (argparse's default would silently keep only the last one)."""
    from stark_ros.train import build_parser
    args = build_parser().parse_args(['lite0_stage1', '--set', 'data.root=/d', 'train.lr=1e-4',
                                      '--set', 'train.epochs=22'])
    assert args.overrides == ['data.root=/d', 'train.lr=1e-4', 'train.epochs=22']
    config = load_config(args.config, args.overrides)
    assert (config['data']['root'], config['train']['lr'], config['train']['epochs']) == ('/d', 1e-4, 22)


# ------------------------------------------------------------------------------------------- checkpoints

def test_checkpoint_files_are_atomic_plain_and_pruned(tmp_path):
    directory = str(tmp_path)
    for epoch in range(1, 13):
        save_atomic({'net': {'w': torch.full((2,), float(epoch))}, 'epoch': epoch, 'config': {'a': [1, 'b']}},
                    os.path.join(directory, 'STARKST_ep%04d.pth.tar' % epoch))
    assert sorted(os.listdir(directory))[0] == 'STARKST_ep0001.pth.tar'      # no temporary file left behind
    prune_checkpoints(directory, keep_last=3, keep_every=5)
    assert [e for e, _ in list_checkpoints(directory)] == [5, 10, 11, 12]
    state = torch.load(os.path.join(directory, 'STARKST_ep0012.pth.tar'), weights_only=True)
    assert state['epoch'] == 12 and state['net']['w'][0] == 12
    with pytest.raises(ValueError, match='weights_only'):
        save_atomic({'net': {}, 'settings': object()}, os.path.join(directory, 'x.pth.tar'))
    assert not os.path.exists(os.path.join(directory, 'x.pth.tar'))
    with pytest.raises(CheckpointError, match='not a training checkpoint'):
        (tmp_path / 'other.pth').write_bytes(b'')
        torch.save({'state_dict': {}}, str(tmp_path / 'other.pth'))
        read_training_checkpoint(str(tmp_path / 'other.pth'))


def test_random_states_round_trip_through_a_weights_only_file(tmp_path):
    import random
    import numpy as np
    torch.manual_seed(3)
    state = capture_rng_state()
    path = str(tmp_path / 'rng.pth')
    save_atomic({'rng': state}, path)
    first = (torch.rand(3), np.random.rand(), random.random())
    restore_rng_state(torch.load(path, weights_only=True)['rng'])
    second = (torch.rand(3), np.random.rand(), random.random())
    assert torch.equal(first[0], second[0]) and first[1:] == second[1:]


# ----------------------------------------------------------------------------- network set-up for training

def test_stage_freezing_and_parameter_groups():
    network = build_network('st50')
    trainable = freeze_for_stage(network, 1, network.backbone_trainable_prefixes())
    assert not any(n.startswith(('backbone.0.body.conv1', 'backbone.0.body.layer1', 'cls_head')) for n in trainable)
    assert any('layer2' in n for n in trainable) and any('layer3' in n for n in trainable)
    groups = parameter_groups(network, 1e-4, 0.1)
    assert groups[1]['lr'] == pytest.approx(1e-5)
    backbone_trainable = sum(p.numel() for n, p in network.named_parameters()
                             if n.startswith('backbone.') and p.requires_grad)
    assert sum(p.numel() for p in groups[1]['params']) == backbone_trainable
    assert all(n.startswith('cls_head.') for n in freeze_for_stage(network, 2, ()))


def test_imagenet_resnet_weights_in_torchvision_layout(tmp_path):
    network = build_network('st50')
    body = network.backbone[0].body
    torchvision_layout = {k: torch.randn_like(v) for k, v in body.state_dict().items()}
    torchvision_layout.update({'bn1.num_batches_tracked': torch.tensor(5), 'layer4.0.conv1.weight': torch.ones(1),
                               'fc.weight': torch.ones(1000, 2048), 'fc.bias': torch.ones(1000)})
    path = str(tmp_path / 'resnet50.pth')
    torch.save(torchvision_layout, path)
    assert load_imagenet_resnet(network, path) == len(body.state_dict())
    assert torch.equal(network.state_dict()['backbone.0.body.layer3.5.conv3.weight'],
                       torchvision_layout['layer3.5.conv3.weight'])
    with pytest.raises(CheckpointError, match='missing.*layer3.6'):
        load_imagenet_resnet(build_network('st101'), path)                         # ResNet-50 weights for ST101
    lightning = build_network('lightning')
    with pytest.raises(CheckpointError, match='missing'):
        load_imagenet_repvgg(lightning, path)                                      # a ResNet file


def test_stage2_start_allows_only_the_score_head_missing(tmp_path):
    stage1 = build_network('s50')                   # an S-style file: no score head at all
    path = str(tmp_path / 's1.pth.tar')
    torch.save({'net': stage1.state_dict(), 'epoch': 500}, path)
    network = build_network('st50')
    missing = load_stage1_weights(network, path)
    assert missing and all(k.startswith('cls_head.') for k in missing)
    assert torch.equal(network.state_dict()['bottleneck.weight'], stage1.state_dict()['bottleneck.weight'])
    with pytest.raises(CheckpointError, match='does not fit'):
        load_stage1_weights(build_network('st101'), path)
    # the file the trainer writes loads in the tracker's loader as it is
    loaded, info = load_network(path)
    assert info['variant'] == 's50'



# ------------------------------------------------------------------------------------ channels-last, release

def test_channels_last_forward_and_gradients_match_the_default_layout():
    """train.channels_last only changes memory order: the lite0 forward and its gradients agree with NCHW."""
    from stark_ros.training.actor import TrainingForward
    torch.manual_seed(0)
    reference = build_network('lite0', search_size=128, template_size=64)
    nhwc = build_network('lite0', search_size=128, template_size=64)
    nhwc.load_state_dict(reference.state_dict())
    templates = torch.randn(2, 2, 3, 64, 64)
    search = torch.randn(2, 3, 128, 128)
    masks = torch.zeros(2, 2, 64, 64, dtype=torch.bool), torch.zeros(2, 128, 128, dtype=torch.bool)
    outputs, grads = [], []
    for net, channels_last in ((reference, False), (nhwc, True)):
        model = TrainingForward(net, channels_last=channels_last).train()
        torch.manual_seed(1)                        # the same dropout masks in both runs
        out = model(templates, masks[0], search, masks[1])['pred_boxes']
        out.sum().backward()
        outputs.append(out.detach())
        grads.append(net.box_head.conv1_tl[0].weight.grad.clone())
    assert nhwc.backbone[0].body._blocks[5]._depthwise_conv.weight.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(outputs[1], outputs[0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(grads[1], grads[0], atol=1e-5, rtol=1e-3)


def test_release_keeps_the_weights_and_drops_the_training_state(tmp_path):
    from stark_ros.training.release import release
    torch.manual_seed(0)
    network = build_network('lite0', search_size=128, template_size=64).to(memory_format=torch.channels_last)
    state = {'net': network.state_dict(), 'net_type': 'STARKLITE0', 'variant': 'lite0', 'epoch': 3, 'stage': 2,
             'optimizer': {'state': {}, 'param_groups': []}, 'rng_states': [{'torch': torch.zeros(4)}],
             'config_yaml': 'stage: 2\n', 'stats': {'loss': 0.5}}
    save_atomic(state, str(tmp_path / 'train.pth.tar'))
    size, digest = release(str(tmp_path / 'train.pth.tar'), str(tmp_path / 'ship.pth.tar'))
    shipped = torch.load(tmp_path / 'ship.pth.tar', weights_only=True)
    assert set(shipped) == {'net', 'net_type', 'variant', 'epoch', 'stage', 'config_yaml', 'stats'}
    assert size == os.path.getsize(tmp_path / 'ship.pth.tar') and len(digest) == 64
    for key, value in network.state_dict().items():
        assert torch.equal(shipped['net'][key], value) and shipped['net'][key].is_contiguous(), key
    loaded, info = load_network(str(tmp_path / 'ship.pth.tar'), search_size=128, template_size=64)
    assert info['variant'] == 'lite0'
    with pytest.raises(Exception, match='over the 100-byte limit'):
        release(str(tmp_path / 'train.pth.tar'), str(tmp_path / 'big.pth.tar'), max_bytes=100)
    assert not os.path.exists(tmp_path / 'big.pth.tar')
