"""One training step's forward: a batch from the sampler -> network -> weighted loss terms.

Source: STARK_FACTS.md section 12 (official ``lib/train/actors/stark_s.py``, ``stark_st.py``): stage 1 trains the
box with ``giou_weight * GIoU-loss + l1_weight * L1``; stage 2 trains the score with ``cls_weight * BCE``.
"""
import torch
from torch import nn

from .losses import DEFAULT_WEIGHTS, box_losses, score_loss

#: Keys of a batch (the sampler's item, stacked by the default collate; see :func:`move_batch`).
BATCH_KEYS = ('template_images', 'template_masks', 'search_image', 'search_mask', 'search_box', 'label')


class TrainingForward(nn.Module):
    """Wraps a STARK network (:class:`~stark_ros.model.Stark` or :class:`~stark_ros.model.StarkLightning`) so that
    one ``forward`` runs templates and search region through it (the module DDP wraps).

    ``forward(template_images, template_masks, search_image, search_mask)``:
    template_images (B, T, 3, Ht, Wt) float, ImageNet-normalised; template_masks (B, T, Ht, Wt) bool (True =
    padding); search_image (B, 3, Hs, Ws); search_mask (B, Hs, Ws). Returns the network's output dict with
    ``pred_boxes`` reshaped to (B, 4) cxcywh normalised and ``pred_logits`` (B, 1, 1) or None.

    With ``channels_last`` the network's 4-D weights and the images are kept in NHWC memory order (same values,
    faster convolutions on CPU, especially depthwise ones).

    Raises:
        ValueError: T differs from the network's number of templates.
    """

    input_keys = ('template_images', 'template_masks', 'search_image', 'search_mask')

    def __init__(self, network, channels_last=False):
        super().__init__()
        self.net = network
        self.channels_last = channels_last
        if channels_last:
            network.to(memory_format=torch.channels_last)

    def forward(self, template_images, template_masks, search_image, search_mask):
        num_templates = template_images.shape[1]
        if num_templates != self.net.num_templates:
            raise ValueError('the batch has %d template(s) per sample, STARK-%s takes %d'
                             % (num_templates, self.net.variant.upper(), self.net.num_templates))
        tokens = [self.net.forward_backbone(self._layout(template_images[:, i]), template_masks[:, i])
                  for i in range(num_templates)]
        tokens.append(self.net.forward_backbone(self._layout(search_image), search_mask))
        out = dict(self.net.forward_head(tokens))
        out['pred_boxes'] = out['pred_boxes'].reshape(-1, 4)
        return out

    def _layout(self, images):
        return images.contiguous(memory_format=torch.channels_last) if self.channels_last else images


def move_batch(batch, device, keys=BATCH_KEYS):
    """The batch's tensors ``keys`` on ``device`` (non-blocking); raises ValueError naming a missing key."""
    missing = [k for k in keys if k not in batch]
    if missing:
        raise ValueError('training batch lacks %s' % ', '.join(missing))
    return {k: batch[k].to(device, non_blocking=True) for k in keys}


class StarkActor:
    """Computes the loss of one batch for stage 1 (box) or stage 2 (score).

    Args:
        model: a :class:`TrainingForward` or :class:`~.cached_forward.CachedTrainingForward` (possibly inside
            DistributedDataParallel).
        stage: 1 or 2.
        weights: dict with 'giou', 'l1', 'cls' (defaults: :data:`~stark_ros.training.losses.DEFAULT_WEIGHTS`).
        input_keys: the batch keys passed to ``model``, in order (default: the image keys of
            :class:`TrainingForward`).
    """

    def __init__(self, model, stage=1, weights=None, input_keys=TrainingForward.input_keys):
        if stage not in (1, 2):
            raise ValueError('stage must be 1 or 2, got %r' % (stage,))
        self.model = model
        self.input_keys = tuple(input_keys)
        #: every key a batch must carry (model inputs, then targets)
        self.batch_keys = self.input_keys + ('search_box', 'label')
        self.stage = stage
        self.weights = dict(DEFAULT_WEIGHTS, **(weights or {}))
        #: names of the logged terms, in column order
        self.term_names = ('loss', 'giou', 'l1', 'iou') if stage == 1 else ('loss', 'cls', 'accuracy')

    def __call__(self, batch):
        """Forward one batch (tensors already on the device).

        Returns:
            ``(loss, terms)``: the 0-d loss to back-propagate and a dict of detached 0-d tensors for logging
            (stage 1: ``loss``, ``giou``, ``l1``, ``iou``; stage 2: ``loss``, ``cls``, ``accuracy``).
        Raises:
            ValueError: stage 2 on a network without a score head.
        """
        out = self.model(*[batch[k] for k in self.input_keys])
        if self.stage == 1:
            terms = box_losses(out['pred_boxes'], batch['search_box'])
            loss = self.weights['giou'] * terms['giou'] + self.weights['l1'] * terms['l1']
        else:
            if out['pred_logits'] is None:
                raise ValueError('stage 2 trains the score head, but the network has none')
            cls = score_loss(out['pred_logits'], batch['label'])
            loss = self.weights['cls'] * cls
            hits = (out['pred_logits'].reshape(-1) > 0).to(batch['label'].dtype) == batch['label']
            terms = {'cls': cls, 'accuracy': hits.float().mean()}
        terms = {k: v.detach() for k, v in terms.items()}
        terms['loss'] = loss.detach()
        return loss, terms
