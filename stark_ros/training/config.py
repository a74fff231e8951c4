"""Training configuration: YAML recipes in ``stark_ros/training/configs/``, validated, overridable.

A config is a nested dict whose keys and types are those of :data:`DEFAULTS`. A recipe file gives values for any
subset of them; :func:`load_config` fills in the rest from the defaults, applies ``section.key=value`` overrides
(values parsed as YAML: ``train.lr=2e-4``, ``data.train=[{type: got10k, root: got10k/train}]``) and rejects unknown
keys and wrong types, naming them. The defaults are the official STARK-ST stage-1 recipe (STARK_FACTS.md sections
12 and 12b).
"""
import copy
import os

import yaml

from ..errors import StarkError

#: Directory of the packaged recipes (``<name>.yaml``).
CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'configs')

#: Every key a config may have, with its default. None defaults accept any value (or stay unset).
DEFAULTS = {
    'stage': 1,                          # 1 = localisation (box losses), 2 = score head only (BCE)
    'model': {
        'variant': 'st50',               # s50 | st50 | st101 | lightning | lite0
        'score_head': True,              # build the ST score head (official stage-1 ST models carry it untrained)
        'pretrained': None,              # ImageNet backbone weights file (torchvision ResNet, RepVGG-A0-train.pth)
        'backbone_trainable': None,      # backbone parameter-name fragments trained; None = the variant's choice
    },
    'data': {
        'root': '.',                     # base directory of relative dataset roots
        'train': [],                     # dataset entries (stark_ros.training.data.build_training_datasets)
        'val': [],
        'samples_per_epoch': 60000,      # global, split across processes
        'val_samples_per_epoch': 10000,
        'num_workers': 8,                # DataLoader worker processes per training process
        'sampler': 'trident_pro',        # causal (one template: S, Lightning) | trident_pro (static + dynamic: ST)
        'max_gap': 200,                  # frames between template and search frames
        'template': {'factor': 2.0, 'size': 128, 'center_jitter': 0.0, 'scale_jitter': 0.0},
        'search': {'factor': 5.0, 'size': 320, 'center_jitter': 4.5, 'scale_jitter': 0.5},
        'grayscale_prob': 0.05,
        'flip_prob': 0.5,
        'brightness_jitter': 0.2,
        'negative_ratio': 0.5,           # stage 2: fraction of samples without the target
        'feature_cache': None,           # lite0: train on cached backbone features (stark_ros.training.feature_cache):
                                         # {folder: DIR, <CacheSettings fields>}; None = crops every step
    },
    'train': {
        'epochs': 500,
        'lr_drop_epoch': 400,            # StepLR step size (gamma 0.1)
        'lr_gamma': 0.1,
        'batch_size': 16,                # per process
        'lr': 1e-4,
        'weight_decay': 1e-4,
        'backbone_lr_multiplier': 0.1,
        'grad_clip_norm': 0.1,           # 0 = no clipping
        'giou_weight': 2.0,
        'l1_weight': 5.0,
        'cls_weight': 1.0,
        'amp': False,                    # mixed precision (CUDA float16 with loss scaling; CPU bfloat16)
        'channels_last': False,          # NHWC convolutions (faster on CPU for depthwise backbones such as lite0)
        'dropout': None,                 # transformer dropout (attention and FFN); None = the network's (0.1)
        'seed': 42,                      # each process seeds with seed + rank
        'deterministic': False,          # torch.use_deterministic_algorithms (CPU runs are deterministic anyway)
        'val_interval': 20,              # epochs between validation-loss passes; 0 = never
    },
    'checkpoint': {
        'keep_last': 10,                 # keep the last N epochs' checkpoints ...
        'keep_every': 100,               # ... and every K-th
    },
    'log': {
        'interval': 50,                  # iterations per CSV row (losses averaged over them)
    },
    'eval': {
        'interval': 0,                   # epochs between tracking evaluations (stark_ros.evaluate); 0 = never
        'dataset': None,                 # dataset folder for stark_ros.evaluate (any layout it reads)
        'protocol': 'pytracking',        # its --protocol
        'max_frames': None,              # its --max-frames (quick checks)
        'sequences': None,               # its --sequences (comma-separated names)
    },
    'dist': {
        'backend': None,                 # None = nccl on CUDA, gloo on CPU
        'timeout_s': 1800,               # collective timeout: a rank waiting longer fails instead of hanging
                                         # (the others wait this long for rank 0's evaluation)
    },
}


class ConfigError(StarkError):
    """A recipe file or override is unreadable, names an unknown key, or has a value of the wrong type."""


def recipe_names():
    """Names of the packaged recipes (file stems in :data:`CONFIG_DIR`), sorted."""
    return sorted(f[:-5] for f in os.listdir(CONFIG_DIR) if f.endswith('.yaml'))


def recipe_path(name_or_path):
    """A recipe name (``st50_stage1``) or a YAML file path -> the file path. Raises ConfigError if absent."""
    if os.path.isfile(name_or_path):
        return name_or_path
    path = os.path.join(CONFIG_DIR, name_or_path + '.yaml')
    if os.path.isfile(path):
        return path
    raise ConfigError('no training config %r: give a YAML file or one of %s'
                      % (name_or_path, ', '.join(recipe_names())))


def load_config(name_or_path=None, overrides=()):
    """Defaults <- recipe file <- overrides, validated.

    Args:
        name_or_path: packaged recipe name, YAML path, or None for the defaults alone.
        overrides: iterable of ``'dotted.key=yaml value'`` strings.
    Returns:
        a new nested dict with every key of :data:`DEFAULTS`.
    Raises:
        ConfigError: unreadable file, unknown key, wrong type, malformed override.
    """
    config = copy.deepcopy(DEFAULTS)
    if name_or_path is not None:
        path = recipe_path(name_or_path)
        try:
            with open(path) as stream:
                recipe = yaml.safe_load(stream) or {}
        except (OSError, yaml.YAMLError) as error:
            raise ConfigError('cannot read training config %s: %s' % (path, error)) from error
        if not isinstance(recipe, dict):
            raise ConfigError('%s: the top level must be a mapping' % path)
        _merge(config, recipe, DEFAULTS, '', path)
    for item in overrides:
        key, sep, text = item.partition('=')
        if not sep or not key.strip():
            raise ConfigError('override %r is not of the form section.key=value' % item)
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ConfigError('override %s: value %r is not valid YAML: %s' % (key, text, error)) from error
        nested = value
        for part in reversed(key.strip().split('.')):
            nested = {part: nested}
        _merge(config, nested, DEFAULTS, '', 'override %s' % key.strip())
    _check_consistency(config)
    return config


def _merge(config, update, schema, prefix, source):
    for key, value in update.items():
        name = prefix + str(key)
        if key not in schema:
            raise ConfigError('%s: unknown config key %r (known under %s: %s)'
                              % (source, name, prefix.rstrip('.') or 'top level', ', '.join(sorted(schema))))
        default = schema[key]
        if isinstance(default, dict):
            if not isinstance(value, dict):
                raise ConfigError('%s: %s must be a mapping, got %r' % (source, name, value))
            _merge(config[key], value, default, name + '.', source)
        elif default is None and isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = dict(config[key], **value)     # free-form mapping (data.feature_cache): keys merge
        else:
            config[key] = _checked(value, default, name, source)


def _checked(value, default, name, source):
    if default is None or value is None and name in _NULLABLE:
        return value
    expected = type(default)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected is float and isinstance(value, str):  # YAML 1.1 reads '1e-4' (no dot) as a string
        try:
            return float(value)
        except ValueError:
            pass
    if isinstance(value, expected) and not (expected is int and isinstance(value, bool)):
        return value
    raise ConfigError('%s: %s must be of type %s, got %r' % (source, name, expected.__name__, value))


#: Keys whose non-None default may be set to None.
_NULLABLE = {'model.score_head'}


def _check_consistency(config):
    train, data = config['train'], config['data']
    if config['stage'] not in (1, 2):
        raise ConfigError('stage must be 1 or 2, got %r' % config['stage'])
    for key in ('epochs', 'lr_drop_epoch', 'batch_size'):
        if train[key] < 1:
            raise ConfigError('train.%s must be >= 1, got %r' % (key, train[key]))
    if data['samples_per_epoch'] < train['batch_size']:
        raise ConfigError('data.samples_per_epoch (%d) is smaller than one batch (%d)'
                          % (data['samples_per_epoch'], train['batch_size']))
    if data['sampler'] not in ('causal', 'trident_pro'):
        raise ConfigError("data.sampler must be 'causal' or 'trident_pro', got %r" % data['sampler'])
    for key in ('keep_last', 'keep_every'):
        if config['checkpoint'][key] < 0:
            raise ConfigError('checkpoint.%s must be >= 0' % key)
    if config['eval']['interval'] and not config['eval']['dataset']:
        raise ConfigError('eval.interval is set but eval.dataset is not')
    for entry in data['train'] + data['val']:
        if not isinstance(entry, dict) or 'type' not in entry:
            raise ConfigError('every data.train / data.val entry must be a mapping with a "type", got %r' % (entry,))


def dump_config(config):
    """The config as YAML text (stored in checkpoints and beside the training log)."""
    return yaml.safe_dump(config, sort_keys=False, default_flow_style=False)
