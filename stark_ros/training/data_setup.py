"""Config -> training / validation datasets, through the data side's ``build_training_datasets`` and sampler.

Dataset roots that are relative are resolved against ``data.root``.
"""
import os


def resolve_entries(entries, root):
    """Copies of the dataset entries with relative ``root`` paths joined to ``root``."""
    resolved = []
    for entry in entries:
        entry = dict(entry)
        if entry.get('root') and not os.path.isabs(entry['root']):
            entry['root'] = os.path.join(root, entry['root'])
        resolved.append(entry)
    return resolved


def build_datasets(config):
    """``(train_set, val_set or None)`` for the config's ``data`` section.

    Raises:
        ValueError: no training datasets configured.
    """
    data = config['data']
    if not data['train']:
        raise ValueError('no training data: set data.train (see the README, section Training)')
    raise NotImplementedError('the training sampler (stark_ros.training.sampler) is not merged yet')
