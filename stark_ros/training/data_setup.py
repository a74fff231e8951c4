"""Config -> training / validation samplers (:class:`~.sampler.TrainingSampler` over
:func:`~.data.build_training_datasets`). Relative dataset roots are resolved against ``data.root``."""
import os

from .augmentation import Augmentation
from .data import build_training_datasets
from .sampler import TrainingSampler


def resolve_entries(entries, root):
    """Copies of the dataset entries with relative ``root`` paths joined to ``root``."""
    resolved = []
    for entry in entries:
        entry = dict(entry)
        if entry.get('root') and not os.path.isabs(str(entry['root'])):
            entry['root'] = os.path.join(root, str(entry['root']))
        resolved.append(entry)
    return resolved


def build_sampler(config, entries, samples, seed):
    """A :class:`TrainingSampler` over ``entries`` with the config's sampling, processing and augmentation.

    Raises:
        DatasetError: a dataset entry or its files are wrong (the message names them).
    """
    data = config['data']
    datasets, ratios = build_training_datasets(resolve_entries(entries, data['root']))
    augmentation = Augmentation(grayscale_probability=data['grayscale_prob'], joint_flip_probability=data['flip_prob'],
                                brightness_jitter=data['brightness_jitter'], crop_flip_probability=data['flip_prob'])
    template, search = data['template'], data['search']
    return TrainingSampler(datasets, ratios, samples_per_epoch=samples, mode=data['sampler'], max_gap=data['max_gap'],
                           stage=config['stage'], positive_probability=1.0 - data['negative_ratio'],
                           template_size=template['size'], template_factor=template['factor'],
                           search_size=search['size'], search_factor=search['factor'],
                           template_scale_jitter=template['scale_jitter'],
                           template_center_jitter=template['center_jitter'],
                           search_scale_jitter=search['scale_jitter'], search_center_jitter=search['center_jitter'],
                           augmentation=augmentation, seed=seed)


def build_datasets(config):
    """``(train_set, val_set or None)`` for the config's ``data`` section (validation draws use seed + 1).

    Raises:
        DatasetError: no training data, or a dataset problem (the message names the file).
    """
    data, seed = config['data'], config['train']['seed']
    train_set = build_sampler(config, data['train'], data['samples_per_epoch'], seed)
    val_set = None
    if data['val'] and config['train']['val_interval']:
        val_set = build_sampler(config, data['val'], data['val_samples_per_epoch'], seed + 1)
    return train_set, val_set
