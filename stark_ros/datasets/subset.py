"""A part of a dataset chosen by a split file or a name list (GOT-10k's vottrain / votval / train / val splits).

GOT-10k's training splits are files of row indices into ``train/list.txt`` (STARK_FACTS.md section 12b:
train_full 9335 sequences = the whole list, vottrain 7086, votval 1249, train 7934, val 1401). The split files are
not part of GOT-10k's download; a user passes the file. A split file holds one entry per line: a 0-based index into
the dataset's sequence order (``list.txt`` order), or a sequence name; blank lines and ``#`` comments are skipped.
"""
import os

from .annotation import read_list
from .base import DatasetError, SequenceDataset


class SubsetDataset(SequenceDataset):
    """The sequences ``names`` of ``dataset``, in the given order (same ``name`` and ``is_video``).

    Raises:
        DatasetError: ``names`` is empty or names a sequence the dataset does not have.
    """

    def __init__(self, dataset, names, description='subset'):
        known = set(dataset.sequence_names())
        unknown = [n for n in names if n not in known]
        if unknown:
            raise DatasetError('%s: %d sequence(s) not in the %s dataset (first: %s)'
                               % (description, len(unknown), dataset.name, ', '.join(unknown[:5])))
        if not names:
            raise DatasetError('%s: no sequence selected from the %s dataset' % (description, dataset.name))
        self.dataset = dataset
        self.name = dataset.name
        self.is_video = dataset.is_video
        self._names = list(names)

    def sequence_names(self):
        return list(self._names)

    def __len__(self):
        return len(self._names)

    def load_sequence(self, name):
        return self.dataset.load_sequence(name)


def read_split(path, dataset):
    """The :class:`SubsetDataset` of ``dataset`` that a split file selects (see the module docstring).

    Raises:
        DatasetError: the file is missing or empty, an index is out of range, or a name is unknown (the message
            names the file and the 1-based entry).
    """
    names = list(dataset.sequence_names())
    selected = []
    for number, entry in enumerate(read_list(path), 1):
        if entry.isdigit():
            index = int(entry)
            if index >= len(names):
                raise DatasetError('%s entry %d: index %d, but the %s dataset has %d sequences'
                                   % (path, number, index, dataset.name, len(names)))
            selected.append(names[index])
        else:
            selected.append(entry)
    if not selected:
        raise DatasetError('split file %s selects no sequence' % path)
    return SubsetDataset(dataset, selected, description='split file %s' % os.path.abspath(path))
