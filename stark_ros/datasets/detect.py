"""Which benchmark layout a folder holds, and opening it with the right reader.

:func:`open_dataset` is the one entry point evaluation and training use: ``open_dataset(root)`` detects the
layout from the files (never from the folder's name); ``open_dataset(root, 'got10k')`` forces one.
"""
import os

from .annotation import frame_folder, has_frames, read_rows, subfolders
from .base import DatasetError
from .folder import FolderDataset, is_plain_sequence
from .got10k import GOT10kDataset, is_got10k_sequence
from .lasot import LaSOTDataset, is_lasot_sequence
from .otb import OTBDataset, otb_annotation_files
from .trackingnet import TrackingNetDataset, is_trackingnet_chunk, trackingnet_chunks
from .vot import VOTDataset

#: layout name -> reader class
READERS = {'otb': OTBDataset, 'vot': VOTDataset, 'got10k': GOT10kDataset, 'lasot': LaSOTDataset,
           'trackingnet': TrackingNetDataset, 'folder': FolderDataset}


def _classify(folder, root_has_list):
    """Layout of one folder under a dataset root, or None when it is no sequence of any layout."""
    if is_lasot_sequence(folder) or any(is_lasot_sequence(os.path.join(folder, s)) for s in subfolders(folder)):
        return 'lasot'
    if otb_annotation_files(folder):
        return 'otb'
    if is_got10k_sequence(folder):
        return 'got10k'
    annotation = os.path.join(folder, 'groundtruth.txt')
    if os.path.isfile(annotation):
        if has_frames(os.path.join(folder, 'color')):
            return 'vot'
        if frame_folder(folder, 'img') is not None:
            try:
                polygons = read_rows(annotation, widths=(4, 8)).shape[1] == 8
            except DatasetError:
                polygons = False
            return 'vot' if polygons or (root_has_list and not has_frames(os.path.join(folder, 'img'))) \
                else 'folder'
    if is_plain_sequence(folder):
        return 'folder'
    return None


def detect_layouts(root):
    """``{layout: [example folder names]}`` of every layout found directly under ``root`` (empty if none)."""
    root = os.path.abspath(root)
    if is_trackingnet_chunk(root):
        return {'trackingnet': [os.path.basename(root)]}
    found = {}
    chunks = trackingnet_chunks(root)
    if chunks:
        found['trackingnet'] = chunks
    root_has_list = os.path.isfile(os.path.join(root, 'list.txt'))
    for name in subfolders(root):
        if name in chunks:
            continue
        layout = _classify(os.path.join(root, name), root_has_list)
        if layout:
            found.setdefault(layout, []).append(name)
    return found


def detect_format(root):
    """The one layout of the dataset at ``root``.

    Raises:
        DatasetError: ``root`` missing; no layout found (the message names layouts found one level down, e.g. a
            GOT-10k root whose splits must be chosen); or several layouts found (the message names each with
            examples: pass ``format`` or a folder that holds one layout).
    """
    if not os.path.isdir(root):
        raise DatasetError('dataset folder %s does not exist' % root)
    found = detect_layouts(root)
    if len(found) == 1:
        return next(iter(found))
    if len(found) > 1:
        raise DatasetError('%s holds several dataset layouts: %s; give the format explicitly (--format) or a '
                           'folder with one layout' % (root, _describe(found)))
    below = {name: detect_layouts(os.path.join(root, name)) for name in subfolders(root)}
    below = {name: layouts for name, layouts in below.items() if layouts}
    hint = ''
    if below:
        hint = '; one level down: %s (pass one of those folders)' % '; '.join(
            '%s: %s' % (name, ', '.join(layouts)) for name, layouts in below.items())
    raise DatasetError('no known dataset layout (%s) under %s%s' % (', '.join(READERS), root, hint))


def _describe(found):
    return '; '.join('%s (%s%s)' % (layout, ', '.join(names[:3]), ', ...' if len(names) > 3 else '')
                     for layout, names in sorted(found.items()))


def open_dataset(root, format='auto', lasot_split='auto', trackingnet_chunks=None):
    """Open the dataset at ``root`` with the reader of its layout.

    Args:
        root: dataset folder (for GOT-10k: a split folder such as ``GOT-10k/val``).
        format: ``'auto'`` (detect) or one of :data:`READERS`.
        lasot_split: see :class:`LaSOTDataset` (``'auto'``, ``'test'``, ``'all'``).
        trackingnet_chunks: see :class:`TrackingNetDataset` (e.g. ``['TEST']``); None = default.
    Returns:
        a :class:`~.base.SequenceDataset`.
    Raises:
        DatasetError: see :func:`detect_format` and the readers. ValueError: unknown format.
    """
    if format == 'auto':
        format = detect_format(root)
    if format not in READERS:
        raise ValueError('unknown dataset format %r (known: auto, %s)' % (format, ', '.join(READERS)))
    if format == 'lasot':
        return LaSOTDataset(root, lasot_split)
    if format == 'trackingnet':
        return TrackingNetDataset(root, trackingnet_chunks)
    return READERS[format](root)
