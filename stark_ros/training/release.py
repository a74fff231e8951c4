"""``python -m stark_ros.training.release CKPT --output FILE``: a training checkpoint reduced to what inference needs.

Keeps the official layout's inference keys (``net``, ``net_type``, ``variant``, ``epoch``, ``stage``) plus the recipe
(``config``, ``config_yaml``) and the last epoch's ``stats``; drops the optimizer, scheduler, scaler and random
states (about two thirds of a lite0 training file). Weights are stored contiguous (a channels-last training run
leaves NHWC strides) and the file stays ``torch.load(weights_only=True)``-readable. This is how
``stark_ros/model/weights/stark_lite0_own.pth.tar`` (the shipped model) was made.
"""
import argparse
import hashlib
import os
import sys

import torch

from ..errors import StarkError
from .checkpointing import read_training_checkpoint, save_atomic

#: Keys copied from the training checkpoint (``net`` is required; the others when present).
RELEASE_KEYS = ('net', 'net_type', 'variant', 'epoch', 'stage', 'config', 'config_yaml', 'stats')

#: The package ships at most this much model (issue: 25 MB).
MAX_BYTES = 25 * 1024 * 1024


def release_state(state):
    """The inference-only dict of a training checkpoint dict.

    Raises:
        StarkError: the checkpoint has no ``net``.
    """
    if 'net' not in state:
        raise StarkError('not a training checkpoint: no "net" entry')
    out = {k: state[k] for k in RELEASE_KEYS if k in state}
    out['net'] = {k: v.detach().cpu().contiguous().clone() if torch.is_tensor(v) else v for k, v in state['net'].items()}
    return out


def release(source, output, max_bytes=MAX_BYTES):
    """Write the inference-only checkpoint of ``source`` to ``output`` (atomically).

    Returns:
        ``(size in bytes, sha256 hex)`` of the written file.
    Raises:
        CheckpointError: unreadable source. StarkError: no ``net``, or the file exceeds ``max_bytes``.
    """
    state = release_state(read_training_checkpoint(source))
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    save_atomic(state, output)
    size = os.path.getsize(output)
    if size > max_bytes:
        os.remove(output)
        raise StarkError('%s would be %d bytes, over the %d-byte limit' % (output, size, max_bytes))
    with open(output, 'rb') as stream:
        digest = hashlib.sha256(stream.read()).hexdigest()
    return size, digest


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m stark_ros.training.release', description=__doc__.split('\n')[0])
    parser.add_argument('checkpoint', help='training checkpoint (stark_ros.train)')
    parser.add_argument('--output', required=True, help='inference checkpoint to write')
    args = parser.parse_args(argv)
    try:
        size, digest = release(args.checkpoint, args.output)
    except StarkError as error:
        print('release: error: %s' % error, file=sys.stderr)
        return 2
    print('%s: %d bytes, sha256 %s' % (args.output, size, digest))
    return 0


if __name__ == '__main__':
    sys.exit(main())
