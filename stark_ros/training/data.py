"""Training datasets from config entries: ``{type: got10k, root: PATH, split: vottrain, ratio: 1}`` -> readers.

Entry types (every entry needs ``type`` and ``root``; ``ratio`` defaults to 1):

* ``got10k``: GOT-10k's ``train`` folder (``list.txt``); ``split``: ``train_full`` (default: every listed
  sequence), a split name (``vottrain``, ``votval``, ``train``, ``val``) whose index file lies in ``root`` as
  ``<name>.txt`` or ``got10k_<name>_split.txt`` (``vot_train`` / ``vot_val`` for the vot splits), or the path of
  a split file (:mod:`stark_ros.datasets.subset`);
* ``lasot``: the LaSOT folder; ``split``: ``train`` (default: every sequence except the 280 test sequences, the
  official 1120 when the full download is there) or ``all``;
* ``trackingnet``: the TrackingNet folder; ``chunks``: chunk numbers or names (default: every ``TRAIN_k``);
* ``coco``: the COCO 2017 folder (``annotations/instances_<split>.json``, ``<split>/``); ``split``:
  ``train2017`` (default);
* ``sequences``: the user's folder of sequences (OTB, GOT-10k or plain layout, detected); ``split``: a file of
  sequence names to use (a relative path is looked up in the working directory, then beside the packaged
  recipes, e.g. ``train_real_train.txt``);
* ``images``: the user's folder of still images, with ``annotations``: a COCO-style json.

Sources: STARK_FACTS.md sections 12 and 12b (datasets, ratios 1:1:1:1, splits).
"""
import os

from ..datasets.base import DatasetError
from ..datasets.coco import CocoDataset
from ..datasets.detect import open_dataset
from ..datasets.got10k import GOT10kDataset
from ..datasets.lasot import TEST_SEQUENCES, LaSOTDataset
from ..datasets.subset import SubsetDataset, read_split
from ..datasets.trackingnet import TrackingNetDataset

#: GOT-10k split names -> their index-file names (besides ``<name>.txt``).
GOT10K_SPLIT_FILES = {'vottrain': 'got10k_vot_train_split.txt', 'votval': 'got10k_vot_val_split.txt',
                      'train': 'got10k_train_split.txt', 'val': 'got10k_val_split.txt'}
_KEYS = {'got10k': {'split'}, 'lasot': {'split'}, 'trackingnet': {'chunks'}, 'coco': {'split'}, 'sequences': {'split'},
         'images': {'annotations'}}


def _got10k(entry, root):
    dataset = GOT10kDataset(root)
    split = str(entry.get('split', 'train_full'))
    if split == 'train_full':
        return dataset
    if split in GOT10K_SPLIT_FILES:
        candidates = [os.path.join(root, split + '.txt'), os.path.join(root, GOT10K_SPLIT_FILES[split])]
        found = [c for c in candidates if os.path.isfile(c)]
        if not found:
            raise DatasetError('GOT-10k split %r needs its index file (GOT-10k does not ship it): looked for %s; '
                               'put it there or give its path as split' % (split, ' and '.join(candidates)))
        return read_split(found[0], dataset)
    if os.path.isfile(split):
        return read_split(split, dataset)
    raise DatasetError('GOT-10k split %r is neither train_full, one of %s, nor an existing split file'
                       % (split, ', '.join(GOT10K_SPLIT_FILES)))


def _lasot(entry, root):
    split = entry.get('split', 'train')
    if split not in ('train', 'all'):
        raise DatasetError("LaSOT training split must be 'train' or 'all', got %r" % (split,))
    dataset = LaSOTDataset(root, split='all')
    if split == 'all':
        return dataset
    test = set(TEST_SEQUENCES)
    return SubsetDataset(dataset, [n for n in dataset.sequence_names() if n not in test],
                         description='LaSOT training split (all but the 280 test sequences) of %s' % root)


def _trackingnet(entry, root):
    chunks = entry.get('chunks')
    if chunks is not None:
        chunks = [c if isinstance(c, str) else 'TRAIN_%d' % c for c in chunks]
    return TrackingNetDataset(root, chunks)


def _images(entry, root):
    if 'annotations' not in entry:
        raise DatasetError('training dataset entry of type images (root %s) needs "annotations": a COCO-style json'
                           % root)
    return CocoDataset(root, entry['annotations'], name='images')


def _sequences(entry, root):
    dataset = open_dataset(root)
    if not entry.get('split'):
        return dataset
    path = str(entry['split'])
    if not os.path.isabs(path) and not os.path.isfile(path):
        from .config import CONFIG_DIR
        path = os.path.join(CONFIG_DIR, path)
    return read_split(path, dataset)


_BUILDERS = {
    'got10k': _got10k,
    'lasot': _lasot,
    'trackingnet': _trackingnet,
    'coco': lambda entry, root: CocoDataset.coco2017(root, entry.get('split', 'train2017')),
    'sequences': _sequences,
    'images': _images,
}


def build_training_datasets(entries):
    """Readers and sampling ratios for :class:`~.sampler.TrainingSampler` from config entries.

    Args:
        entries: list of dicts, each with ``type`` (one of got10k, lasot, trackingnet, coco, sequences, images),
            ``root`` (folder), optional ``ratio`` (>= 0, default 1) and the type's options (module docstring).
    Returns:
        (datasets, ratios): lists of :class:`~stark_ros.datasets.base.SequenceDataset` and floats.
    Raises:
        DatasetError: an unknown type, an unknown option, a missing root, or a reader's error (naming the file).
    """
    if not entries:
        raise DatasetError('no training dataset given')
    datasets, ratios = [], []
    for number, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or 'type' not in entry:
            raise DatasetError('training dataset entry %d (%r) needs a "type" (%s)'
                               % (number, entry, ', '.join(_BUILDERS)))
        kind = entry['type']
        if kind not in _BUILDERS:
            raise DatasetError('training dataset entry %d: unknown type %r (known: %s)'
                               % (number, kind, ', '.join(_BUILDERS)))
        unknown = set(entry) - {'type', 'root', 'ratio'} - _KEYS[kind]
        if unknown:
            raise DatasetError('training dataset entry %d (%s): unknown option(s) %s (known: root, ratio%s)'
                               % (number, kind, ', '.join(sorted(unknown)),
                                  ''.join(', ' + k for k in sorted(_KEYS[kind]))))
        root = entry.get('root')
        if not root or not os.path.isdir(str(root)):
            raise DatasetError('training dataset entry %d (%s): root folder %r does not exist' % (number, kind, root))
        ratio = entry.get('ratio', 1)
        if not isinstance(ratio, (int, float)) or ratio < 0:
            raise DatasetError('training dataset entry %d (%s): ratio must be a number >= 0, got %r'
                               % (number, kind, ratio))
        datasets.append(_BUILDERS[kind](entry, os.path.abspath(str(root))))
        ratios.append(float(ratio))
    return datasets, ratios
