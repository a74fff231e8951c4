"""The network as training sees it: built from the config, ImageNet-initialised, partly frozen, grouped for the
optimizer, or started from a stage-1 checkpoint.

Sources: STARK_FACTS.md sections 2, 12 and 12b. Stage 1 trains everything except the frozen backbone parts (ResNet:
stem and layer1; only ``layer2``/``layer3`` train) and the score head (built, not run); stage 2 trains only the
parameters whose name contains ``cls`` (the score head) and keeps every other tensor bit-identical.
"""
from collections import OrderedDict

from torch import nn

from ..errors import CheckpointError
from ..model import build_network
from ..model.checkpoint import extract_state_dict, read_checkpoint_file

#: Backbone parameter-name fragments trained in stage 1 for networks that do not say it themselves (a parameter
#: trains if its name contains one). Lightning: the facts only say "per the yaml"; we train the last two RepVGG
#: stages (stride 8 and 16), as the official ResNet rule trains layer2 and layer3.
BACKBONE_TRAINABLE = {'lightning': ('backbone.body.stage2.', 'backbone.body.stage3.')}


def build_training_network(config):
    """Build the config's network (random weights) in training form.

    Returns:
        the network (``Stark`` / ``StarkLightning`` / a variant from :func:`stark_ros.model.build_network`).
    Raises:
        ValueError: unknown variant, sizes that do not fit, or a stage-2 config for a network without score head.
    """
    model, data = config['model'], config['data']
    variant = model['variant']
    score_head = None if variant == 'lightning' or model['score_head'] is None else bool(model['score_head'])
    network = build_network(variant, score_head=score_head, search_size=data['search']['size'],
                            template_size=data['template']['size'])
    if config['stage'] == 2 and not network.has_score_head:
        raise ValueError('stage 2 trains the score head, but STARK-%s is built without one' % variant.upper())
    return network


def backbone_trainable(network, config):
    """Backbone name fragments that train in stage 1: the config's ``model.backbone_trainable``, else the
    network's own ``backbone_trainable_prefixes()`` (ResNet: layer2 + layer3, official; lite0: its choice), else
    :data:`BACKBONE_TRAINABLE`."""
    if config['model']['backbone_trainable'] is not None:
        return tuple(config['model']['backbone_trainable'])
    if hasattr(network, 'backbone_trainable_prefixes'):
        return tuple(network.backbone_trainable_prefixes())
    if network.variant not in BACKBONE_TRAINABLE:
        raise ValueError('STARK-%s does not say which backbone parts train: set model.backbone_trainable'
                         % network.variant.upper())
    return BACKBONE_TRAINABLE[network.variant]


def freeze_for_stage(network, stage, trainable_fragments):
    """Set ``requires_grad`` for the stage; returns the names of the trainable parameters.

    Stage 1: backbone parameters train iff their name contains one of ``trainable_fragments``; the score head
    (``cls_head``) is frozen (not run by the loss); everything else trains. Stage 2: only names containing ``cls``.
    """
    names = []
    for name, parameter in network.named_parameters():
        if stage == 2:
            train = 'cls' in name
        elif name.startswith('backbone.'):
            train = any(fragment in name for fragment in trainable_fragments)
        else:
            train = not name.startswith('cls_head.')
        parameter.requires_grad_(train)
        if train:
            names.append(name)
    return names


def set_dropout(network, probability):
    """Set every dropout of the network (``nn.Dropout`` and the attention dropout of ``nn.MultiheadAttention``)
    to ``probability``; returns how many were set. Dropout 0 lets the CPU use its fused attention kernel (2x
    faster training steps for lite0, ``bench/bench_training.py``); eval-mode outputs do not change."""
    count = 0
    for module in network.modules():
        if isinstance(module, nn.Dropout):
            module.p = float(probability)
            count += 1
        elif isinstance(module, nn.MultiheadAttention):
            module.dropout = float(probability)
            count += 1
    return count


def set_train_mode(network, stage):
    """Training mode for the trained parts only: in stage 2 every module except the score head stays in eval mode,
    so the head's batch-norm statistics and dropout of the frozen transformer do not change or randomise them."""
    network.train()
    if stage == 2:
        network.eval()
        network.cls_head.train()
    return network


def parameter_groups(network, lr, backbone_multiplier):
    """AdamW groups: non-backbone trainable parameters at ``lr``, trainable backbone ones at
    ``lr * backbone_multiplier`` (official ``BACKBONE_MULTIPLIER``; frozen parameters are in no group)."""
    head = [p for n, p in network.named_parameters() if p.requires_grad and not n.startswith('backbone.')]
    backbone = [p for n, p in network.named_parameters() if p.requires_grad and n.startswith('backbone.')]
    groups = [{'params': head, 'lr': lr}]
    if backbone:
        groups.append({'params': backbone, 'lr': lr * backbone_multiplier})
    return groups


def load_stage1_weights(network, path):
    """Start stage 2 from a stage-1 checkpoint: every weight must be present except the score head's (which then
    keeps its fresh initialisation); unexpected or mis-shaped keys are errors.

    Returns:
        the list of score-head keys that were missing (empty when the stage-1 file carries an untrained head).
    Raises:
        CheckpointError: unreadable file, or keys outside the score head missing / unexpected / mis-shaped.
    """
    weights, _ = extract_state_dict(read_checkpoint_file(path), path)
    expected = network.state_dict()
    missing = [k for k in expected if k not in weights]
    unexpected = [k for k in weights if k not in expected and not k.endswith('num_batches_tracked')]
    wrong = [k for k in expected if k in weights and weights[k].shape != expected[k].shape]
    bad_missing = [k for k in missing if not k.startswith('cls_head.') and not k.endswith('num_batches_tracked')]
    if bad_missing or unexpected or wrong:
        raise CheckpointError('%s does not fit STARK-%s for stage 2: missing %s; unexpected %s; wrong shape %s'
                              % (path, network.variant.upper(), bad_missing[:6], unexpected[:6], wrong[:6]))
    network.load_state_dict(OrderedDict((k, v) for k, v in weights.items() if k in expected), strict=False)
    return [k for k in missing if k.startswith('cls_head.')]
