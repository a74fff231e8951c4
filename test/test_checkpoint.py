"""Checkpoint loading: official and MMTracking formats, variant inference, untrusted pickles, key errors."""
import os
import sys
import types
from collections import OrderedDict

import numpy as np
import pytest
import torch

from oracles import BOX_TOL_PX, SCORE_TOL, make_official_checkpoint, oracle, oracle_params, reference_path
from stark_ros.errors import CheckpointError
from stark_ros.backends.device import resolve_device
from stark_ros.model import load_network
from stark_ros.model.checkpoint import check_torch_version, mmtrack_to_official_key, read_checkpoint_file
from stark_ros.model.synthetic import state_dict_digest
from stark_ros.tracker import StarkTracker


@pytest.fixture(scope='module')
def official_st50(tmp_path_factory):
    return make_official_checkpoint('st50', tmp_path_factory.mktemp('ckpt') / 'STARKST_ep0050.pth.tar')


def _keymap():
    rows = []
    with open(reference_path('mmtrack_to_official_stark_st2_r50_keymap.tsv'), encoding='utf-8') as f:
        next(f)
        for line in f:
            mm, official, _shape, dtype, action = line.rstrip('\n').split('\t')
            rows.append((mm, None if official == '-' else official, dtype, action))
    return rows


def _write_mmtracking(official_path, out_path, stage=2):
    """An MMTracking-format file made from official weights through the shared key map (MMTRACK_FACTS.md 4)."""
    net = torch.load(official_path, map_location='cpu', weights_only=True)['net']
    state = OrderedDict()
    for mm, official, dtype, _action in _keymap():
        if stage == 1 and mm.startswith('head.cls_head.'):
            continue
        state[mm] = net[official] if official else torch.zeros((), dtype=torch.int64)
    meta = {'mmtrack_version': '0.14.0', 'config': 'model = dict(type="Stark")', 'CLASSES': None, 'epoch': 50}
    torch.save({'meta': meta, 'state_dict': state}, out_path, _use_new_zipfile_serialization=False)
    return str(out_path)


def test_key_map_matches_reference_table():
    rows = _keymap()
    assert len(rows) == 509
    for mm, official, _dtype, _action in rows:
        assert mmtrack_to_official_key(mm) == official, mm


def test_official_checkpoint_loads_bit_exact(official_st50):
    network, info = load_network(official_st50, 'auto', 'cpu')
    assert info['format'] == 'official' and info['variant'] == 'st50' and info['has_score_head']
    assert state_dict_digest(network.state_dict()) == oracle('st50')['meta']['weights']['sha256_digest']


def _first_frames(tracker, o, n):
    tracker.initialize(o['frames_rgb'][0], o['init_box'])
    return [tracker.track(o['frames_rgb'][t]) for t in range(1, n)]


def test_mmtracking_checkpoint_gives_official_outputs(official_st50, tmp_path):
    path = _write_mmtracking(official_st50, tmp_path / 'stark_st2_r50_50e_lasot.pth')
    tracker = StarkTracker.from_checkpoint(path, 'auto', 'cpu', oracle_params('st50'))
    assert tracker.info['format'] == 'mmtracking' and tracker.variant == 'st50' and tracker.has_score_head
    assert state_dict_digest(tracker.network.state_dict()) == oracle('st50')['meta']['weights']['sha256_digest']
    o = oracle('st50')
    results = _first_frames(tracker, o, 6)
    np.testing.assert_allclose([r.box for r in results], o['boxes'][1:6], atol=BOX_TOL_PX, rtol=0)
    np.testing.assert_allclose([r.score for r in results], o['scores'][1:6], atol=SCORE_TOL, rtol=0)


def test_mmtracking_stage1_runs_without_score_or_update(official_st50, tmp_path):
    path = _write_mmtracking(official_st50, tmp_path / 'stark_st1_r50_500e_lasot.pth', stage=1)
    tracker = StarkTracker.from_checkpoint(path, 'auto', 'cpu', oracle_params('st50'))
    assert tracker.variant == 'st50' and not tracker.has_score_head
    o = oracle('st50')
    results = _first_frames(tracker, o, 12)
    assert all(r.score is None and not r.template_updated for r in results)
    # Two templates and no update: until the official run's first update (frame 10) the boxes are the same.
    np.testing.assert_allclose([r.box for r in results[:10]], o['boxes'][1:11], atol=BOX_TOL_PX, rtol=0)


class _SettingsLike:
    """Stands for the official trainer's pickled 'settings' object (its class is absent at load time)."""

    def __init__(self):
        self.env = {'workspace_dir': '/data'}


class _Payload:
    """An object whose unpickling would run a shell command."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, ('touch %s' % self.marker,)


def test_trainer_checkpoint_with_foreign_objects_loads_without_running_code(official_st50, tmp_path):
    net = torch.load(official_st50, map_location='cpu', weights_only=True)['net']
    names = ['lib', 'lib.train', 'lib.train.admin', 'lib.train.admin.settings']
    assert not any(name in sys.modules for name in names)
    modules = {name: types.ModuleType(name) for name in names}
    module = modules['lib.train.admin.settings']
    module.Settings = type('Settings', (_SettingsLike,), {'__module__': module.__name__})
    marker = tmp_path / 'pwned'
    sys.modules.update(modules)
    try:
        path = tmp_path / 'trainer.pth.tar'
        torch.save({'epoch': 50, 'net_type': 'STARKST', 'net': net, 'settings': module.Settings(),
                    'stats': _Payload(marker)}, path)
    finally:
        for name in names:
            del sys.modules[name]
    with pytest.raises(Exception):
        torch.load(path, map_location='cpu', weights_only=True)   # the safe loader alone refuses it
    obj = read_checkpoint_file(str(path))
    assert not marker.exists()
    assert set(obj) >= {'net', 'settings', 'stats'}
    network, info = load_network(str(path), 'auto', 'cpu')
    assert not marker.exists()
    assert info['format'] == 'official'
    assert state_dict_digest(network.state_dict()) == oracle('st50')['meta']['weights']['sha256_digest']


def test_variant_inferred_for_s50_and_st101(tmp_path):
    for variant in ('s50', 'st101'):
        path = make_official_checkpoint(variant, tmp_path / ('%s.pth' % variant))
        network, info = load_network(path, 'auto', 'cpu')
        assert info['variant'] == variant
        assert network.has_score_head == (variant != 's50')


def _corrupt(official_path, tmp_path, edit):
    ckpt = torch.load(official_path, map_location='cpu', weights_only=True)
    edit(ckpt['net'])
    path = tmp_path / 'edited.pth'
    torch.save(ckpt, path)
    return str(path)


def test_missing_key_is_named(official_st50, tmp_path):
    path = _corrupt(official_st50, tmp_path, lambda net: net.pop('transformer.decoder.norm.weight'))
    with pytest.raises(CheckpointError, match=r'1 missing: transformer\.decoder\.norm\.weight'):
        load_network(path, 'st50', 'cpu')


def test_unexpected_key_is_named(official_st50, tmp_path):
    path = _corrupt(official_st50, tmp_path, lambda net: net.update({'extra.weight': torch.zeros(3)}))
    with pytest.raises(CheckpointError, match=r'1 unexpected: extra\.weight'):
        load_network(path, 'auto', 'cpu')


def test_wrong_shape_is_named(official_st50, tmp_path):
    path = _corrupt(official_st50, tmp_path, lambda net: net.update({'query_embed.weight': torch.zeros(2, 256)}))
    with pytest.raises(CheckpointError, match=r'wrong shape: query_embed\.weight \(2, 256\) \(model \(1, 256\)\)'):
        load_network(path, 'auto', 'cpu')


def test_forced_variant_that_does_not_fit_names_the_keys(official_st50):
    with pytest.raises(CheckpointError, match=r'STARK-S50: 6 unexpected: cls_head\.layers\.0\.weight'):
        load_network(official_st50, 's50', 'cpu')
    with pytest.raises(CheckpointError, match='missing'):
        load_network(official_st50, 'st101', 'cpu')


@pytest.mark.parametrize('content', [b'', b'not a checkpoint at all', b'\x80\x04K\x01.'])
def test_garbage_files_are_rejected(tmp_path, content):
    path = tmp_path / 'bad.pth'
    path.write_bytes(content)
    with pytest.raises(CheckpointError):
        load_network(str(path), 'auto', 'cpu')


def test_missing_file_is_rejected(tmp_path):
    with pytest.raises(CheckpointError, match='not found'):
        load_network(str(tmp_path / 'nope.pth'), 'auto', 'cpu')


def test_dict_without_weights_is_rejected(tmp_path):
    path = tmp_path / 'empty.pth'
    torch.save({'epoch': 3, 'optimizer': {}}, path)
    with pytest.raises(CheckpointError, match='no STARK weights'):
        load_network(str(path), 'auto', 'cpu')


def test_devices():
    assert resolve_device('cpu') == torch.device('cpu')
    assert resolve_device('auto').type == ('cuda' if torch.cuda.is_available() else 'cpu')
    # on a machine with a GPU, 'auto' is CUDA for the torch backends and the CPU for the CPU-only ones
    assert resolve_device('auto', 'torch-fast', cuda_available=True).type == 'cuda'
    for backend in ('openvino', 'onnxruntime'):
        assert resolve_device('auto', backend, cuda_available=True) == torch.device('cpu')
        with pytest.raises(ValueError, match='CPU only'):
            resolve_device('cuda', backend, cuda_available=True)
    for bad in ('gpu', 'cuda:x', ''):
        with pytest.raises(ValueError, match='unknown device'):
            resolve_device(bad)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match='CUDA is not available'):
            resolve_device('cuda:0')
    with pytest.raises(ValueError, match='unknown STARK variant'):
        load_network('synthetic', 'st18', 'cpu')


def test_lightning_checkpoints_training_and_deployed_form(tmp_path):
    path = make_official_checkpoint('lightning', tmp_path / 'STARKLightningXtrt_ep0500.pth.tar')
    unfused, info = load_network(path, 'auto', 'cpu', fuse=False)
    assert info['variant'] == 'lightning' and not info['has_score_head']
    assert state_dict_digest(unfused.state_dict()) == oracle('lightning')['meta']['weights']['sha256_digest']
    fused, _ = load_network(path, 'auto', 'cpu')
    deployed = tmp_path / 'deployed.pth'
    torch.save({'net': fused.state_dict()}, deployed)
    reloaded, info = load_network(str(deployed), 'auto', 'cpu')
    assert info['variant'] == 'lightning'
    for key, value in fused.state_dict().items():
        assert torch.equal(reloaded.state_dict()[key], value), key


def test_auto_device_never_picks_cuda_for_a_cpu_only_backend(monkeypatch):
    """A machine with a GPU (simulated: torch reports CUDA): ``device: auto`` with onnxruntime must build on the CPU;
    it used to resolve to CUDA, move the network there and fail at start-up."""
    from stark_ros.backends import load_engine
    from stark_ros.tracker import TrackerParams
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    engine, info = load_engine('synthetic', 'lightning', 'auto', 'onnxruntime', params=TrackerParams())
    assert info['device'] == 'cpu' and engine.device == torch.device('cpu')


@pytest.mark.parametrize('version, ok', [('2.5.1+cu121', False), ('1.13.1', False), ('2.6.0', True),
                                         ('2.13.0+cpu', True), ('3.0.0a0', True), ('garbage', False)])
def test_torch_older_than_2_6_is_refused(version, ok):
    if ok:
        check_torch_version(version)
    else:
        with pytest.raises(CheckpointError, match=r'CVE-2025-32434.*torch >= 2\.6'):
            check_torch_version(version)


def test_reading_a_checkpoint_with_old_torch_is_refused(official_st50, monkeypatch):
    monkeypatch.setattr(torch, '__version__', '2.5.1')
    with pytest.raises(CheckpointError, match='torch 2.5.1 cannot read checkpoints safely'):
        read_checkpoint_file(official_st50)


class _TrainerSettings:
    """Stands for the official trainer's pickled ``settings`` object: torch's safe loader refuses it."""


def _inflated_checkpoint(path, legacy, numel=2 ** 34):
    """A checkpoint whose only storage claims ``numel`` float32 elements (64 GiB by default) but holds 4."""
    import io
    import zipfile
    obj = {'settings': _TrainerSettings(), 'net': {'w': torch.zeros(4)}}   # settings first: restricted path
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=not legacy)
    small, big = b'X\x03\x00\x00\x00cpuq', b'K\x04'
    if legacy:
        data = buf.getvalue()
        at = data.index(small) + len(small) + 1
        assert data[at:at + 2] == big
        path.write_bytes(data[:at] + b'\x8a\x05' + numel.to_bytes(5, 'little') + data[at + 2:])   # LONG1
        return str(path)
    buf.seek(0)
    with zipfile.ZipFile(buf) as zin, zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.endswith('data.pkl'):
                at = data.index(small) + len(small) + 1
                assert data[at:at + 2] == big
                data = data[:at] + b'\x8a\x05' + numel.to_bytes(5, 'little') + data[at + 2:]
            zout.writestr(item, data)
    return str(path)


@pytest.mark.parametrize('legacy', [True, False])
def test_restricted_unpickler_bounds_storages_by_the_file_size(tmp_path, legacy):
    """A storage larger than the file is refused before torch allocates it (it used to ask for 64 GiB)."""
    path = _inflated_checkpoint(tmp_path / 'inflated.pth', legacy)
    with pytest.raises(CheckpointError, match=r'a storage of 68719476736 bytes is larger than the checkpoint file '
                                              r'\(%d bytes\)' % os.path.getsize(path)):
        read_checkpoint_file(path)


def test_restricted_unpickler_still_reads_trainer_checkpoints(tmp_path):
    path = tmp_path / 'trainer.pth'
    for legacy in (True, False):
        torch.save({'settings': _TrainerSettings(), 'net': {'w': torch.arange(4.0)}}, path,
                   _use_new_zipfile_serialization=not legacy)
        obj = read_checkpoint_file(str(path))
        assert torch.equal(obj['net']['w'], torch.arange(4.0)) and type(obj['settings']).__name__ == '_TrainerSettings'


def test_storage_classes_in_a_checkpoint_allocate_nothing(tmp_path):
    """A legacy file whose header pickle calls ``torch.FloatStorage(2**40)``: the restricted unpickler must not resolve
    storage classes (that call asked for 4 TiB); the file is then refused as corrupt."""
    path = tmp_path / 'storage_call.pth'
    path.write_bytes(b'\x80\x02ctorch\nFloatStorage\n\x8a\x06' + (2 ** 40).to_bytes(6, 'little') + b'\x85R.')
    with pytest.raises(CheckpointError) as info:
        read_checkpoint_file(str(path))
    assert 'allocate' not in str(info.value) and 'magic number' in str(info.value), info.value
