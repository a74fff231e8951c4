"""What an empty ``checkpoint`` means: the project's own STARK-lite0 model, shipped inside the package.

Every entry point (the node's ``checkpoint`` parameter, ``stark_ros.demo``, ``stark_ros.track``,
``stark_ros.evaluate``, :func:`stark_ros.model.load_network`) resolves its checkpoint argument here:

* ``None`` or ``''``: :data:`DEFAULT_CHECKPOINT`, the lite0 model trained with ``stark_ros.train`` on the project's
  own data (``weights/README.md`` beside this file gives its recipe, command, log and scores);
* :data:`SYNTHETIC` (``'synthetic'``): deterministic synthetic weights, for tests and for the oracle fixtures only
  (their boxes are meaningless);
* anything else: a checkpoint file path.
"""
import os

from ..errors import CheckpointError

#: The checkpoint argument that selects deterministic synthetic weights (tests, oracle fixtures, benchmarks).
SYNTHETIC = 'synthetic'

#: Folder of the shipped model: the checkpoint, its training config and log, and README.md.
WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'weights')

#: The shipped model (official trainer format, ``net`` + metadata, no optimizer state).
DEFAULT_CHECKPOINT = os.path.join(WEIGHTS_DIR, 'stark_lite0_own.pth.tar')


def resolve_checkpoint(checkpoint):
    """Map a checkpoint argument to what :func:`stark_ros.model.load_network` loads.

    Args:
        checkpoint: None / '' (the shipped model), :data:`SYNTHETIC`, or a path (str or path-like).
    Returns:
        the checkpoint path (str), or None for synthetic weights.
    Raises:
        CheckpointError: the shipped model is asked for but missing from the installation.
    """
    if checkpoint is None or checkpoint == '':
        if not os.path.isfile(DEFAULT_CHECKPOINT):
            raise CheckpointError('the shipped STARK-lite0 model %s is missing from this installation (reinstall '
                                  'stark_ros, or give a checkpoint; %r selects synthetic test weights)'
                                  % (DEFAULT_CHECKPOINT, SYNTHETIC))
        return DEFAULT_CHECKPOINT
    if checkpoint == SYNTHETIC:
        return None
    return os.fspath(checkpoint)
