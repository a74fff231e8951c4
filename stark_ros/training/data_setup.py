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


def build_cached_sampler(config, entries, samples, seed, folder, log=print):
    """A :class:`~.pair_sampler.CachedPairSampler` over the feature cache of ``entries`` in ``folder`` (built
    first when missing or made with other settings; the backbone prefix has the config's ImageNet weights).

    Raises:
        DatasetError: a dataset entry or its files are wrong; ValueError: a non-lite0 variant or bad settings.
    """
    import torch

    from .feature_cache import CacheSettings, build_feature_cache
    from .network import build_training_network
    from .pair_sampler import CachedPairSampler
    from .pretrained import load_imagenet_backbone
    data = config['data']
    options = {k: v for k, v in data['feature_cache'].items() if k != 'folder'}
    template, search = data['template'], data['search']
    settings = CacheSettings(template_size=template['size'], template_factor=template['factor'],
                             search_size=search['size'], search_factor=search['factor'],
                             search_scale_jitter=search['scale_jitter'], search_center_jitter=search['center_jitter'],
                             flip_prob=data['flip_prob'], brightness_jitter=data['brightness_jitter'],
                             seed=seed, **options)
    datasets, _ = build_training_datasets(resolve_entries(entries, data['root']))
    sequences = [dataset.load_sequence(name) for dataset in datasets for name in dataset.sequence_names()]
    network = build_training_network(config)
    load_imagenet_backbone(network, config['model']['pretrained'])
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    cache = build_feature_cache(sequences, network.backbone[0], folder, settings, device=device, log=log)
    return CachedPairSampler(cache, samples, stage=config['stage'], max_gap=data['max_gap'],
                             negative_ratio=data['negative_ratio'], seed=seed)


def build_datasets(config):
    """``(train_set, val_set or None)`` for the config's ``data`` section (validation draws use seed + 1).

    With ``data.feature_cache`` set, both are :class:`~.pair_sampler.CachedPairSampler` over caches in
    ``feature_cache.folder`` (``train/``, ``val/``; relative to the working directory, default ``feature_cache``).

    Raises:
        DatasetError: no training data, or a dataset problem (the message names the file).
    """
    data, seed = config['data'], config['train']['seed']
    if data['feature_cache']:
        folder = str(data['feature_cache'].get('folder', 'feature_cache'))
        train_set = build_cached_sampler(config, data['train'], data['samples_per_epoch'], seed,
                                         os.path.join(folder, 'train'))
        val_set = None
        if data['val'] and config['train']['val_interval']:
            val_set = build_cached_sampler(config, data['val'], data['val_samples_per_epoch'], seed + 1,
                                           os.path.join(folder, 'val'))
        return train_set, val_set
    train_set = build_sampler(config, data['train'], data['samples_per_epoch'], seed)
    val_set = None
    if data['val'] and config['train']['val_interval']:
        val_set = build_sampler(config, data['val'], data['val_samples_per_epoch'], seed + 1)
    return train_set, val_set
