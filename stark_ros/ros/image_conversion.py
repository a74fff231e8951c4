"""Conversion between ``sensor_msgs/msg/Image`` and numpy arrays, without cv_bridge.

The tracker wants an ``H x W x 3`` ``uint8`` **RGB** array; cameras publish many layouts. This module
turns an Image message into that array (:func:`image_msg_to_rgb`) and builds Image messages from arrays
(:func:`array_to_image_msg`, :func:`rgb_to_image_msg`) for the player and the tests.

Everything here is a pure function. rclpy and ``sensor_msgs`` are imported only by the two functions
that *create* messages, so the reading side works on any object with the ``sensor_msgs/Image`` fields
(``height``, ``width``, ``encoding``, ``is_bigendian``, ``step``, ``data``).

Supported encodings (names as in ``sensor_msgs/image_encodings.hpp``):

==============  =====  =========  =====================================================
encoding        chans  bytes/px   conversion to RGB
==============  =====  =========  =====================================================
rgb8            3      3          none (zero-copy view when rows are not padded)
bgr8            3      3          channel swap
rgba8 / bgra8   4      4          alpha dropped
mono8           1      1          grey replicated to R, G and B
rgb16 / bgr16   3      6          most significant byte kept (value >> 8)
rgba16/bgra16   4      8          most significant byte kept, alpha dropped
mono16          1      2          most significant byte kept (value >> 8)
yuv422          2      2          UYVY byte order (ROS ``yuv422``), width must be even
yuv422_yuy2     2      2          YUYV byte order, width must be even
==============  =====  =========  =====================================================

16-bit data honour ``is_bigendian``; for 8-bit data it is irrelevant. 16-bit images are reduced to 8
bits by keeping the high byte, i.e. a full-range 16-bit image maps to 0..255; a 12-bit camera that
stores 0..4095 in ``mono16`` would look dark (scale it on the camera side).

Rows may be padded: ``step`` (bytes per row) may exceed ``width * bytes_per_pixel``; the padding is
ignored. Malformed messages raise :class:`stark_ros.errors.InvalidImageError` with a message that says
what is wrong.
"""
import array
from collections import namedtuple

import cv2
import numpy as np

from stark_ros.errors import InvalidImageError

#: Layout of one encoding: number of channels, bytes per channel, and how to reach RGB.
EncodingInfo = namedtuple('EncodingInfo', 'channels bytes_per_channel to_rgb from_rgb')

# to_rgb / from_rgb are cv2.cvtColor codes; None = already RGB (or handled specially).
_ENCODINGS = {
    'rgb8': EncodingInfo(3, 1, None, None),
    'bgr8': EncodingInfo(3, 1, cv2.COLOR_BGR2RGB, cv2.COLOR_RGB2BGR),
    'rgba8': EncodingInfo(4, 1, cv2.COLOR_RGBA2RGB, cv2.COLOR_RGB2RGBA),
    'bgra8': EncodingInfo(4, 1, cv2.COLOR_BGRA2RGB, cv2.COLOR_RGB2BGRA),
    'mono8': EncodingInfo(1, 1, cv2.COLOR_GRAY2RGB, cv2.COLOR_RGB2GRAY),
    'rgb16': EncodingInfo(3, 2, None, None),
    'bgr16': EncodingInfo(3, 2, cv2.COLOR_BGR2RGB, cv2.COLOR_RGB2BGR),
    'rgba16': EncodingInfo(4, 2, cv2.COLOR_RGBA2RGB, cv2.COLOR_RGB2RGBA),
    'bgra16': EncodingInfo(4, 2, cv2.COLOR_BGRA2RGB, cv2.COLOR_RGB2BGRA),
    'mono16': EncodingInfo(1, 2, cv2.COLOR_GRAY2RGB, cv2.COLOR_RGB2GRAY),
    'yuv422': EncodingInfo(2, 1, cv2.COLOR_YUV2RGB_UYVY, None),
    'yuv422_yuy2': EncodingInfo(2, 1, cv2.COLOR_YUV2RGB_YUY2, None),
}

#: Encodings :func:`image_msg_to_rgb` accepts, sorted.
SUPPORTED_ENCODINGS = tuple(sorted(_ENCODINGS))

#: Encodings :func:`rgb_to_image_msg` can produce (YUV output is not implemented).
RGB_OUTPUT_ENCODINGS = tuple(sorted(k for k, v in _ENCODINGS.items()
                                    if k in ('rgb8', 'rgb16') or v.from_rgb is not None))


def encoding_info(encoding):
    """Return the :data:`EncodingInfo` of ``encoding``.

    Raises:
        InvalidImageError: the encoding is not supported; the message names it and lists the supported ones.
    """
    try:
        return _ENCODINGS[encoding]
    except (KeyError, TypeError):
        raise InvalidImageError('unsupported image encoding %r; supported encodings: %s'
                                % (encoding, ', '.join(SUPPORTED_ENCODINGS))) from None


def check_image_msg(msg):
    """Validate the geometry of an Image message without touching the pixels.

    Cheap (no copy): meant for a subscription callback that must reject malformed images quickly.

    Args:
        msg: a ``sensor_msgs/msg/Image`` (or any object with the same fields).

    Returns:
        The :data:`EncodingInfo` of the message's encoding.

    Raises:
        InvalidImageError: unknown encoding, height or width not positive, ``step`` smaller than
            ``width * bytes_per_pixel``, fewer than ``step * height`` bytes of data, or an odd width
            for a YUV 4:2:2 encoding.
    """
    info = encoding_info(msg.encoding)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise InvalidImageError('image has an empty size: width %d x height %d pixels' % (width, height))
    bpp = info.channels * info.bytes_per_channel
    if step < width * bpp:
        raise InvalidImageError('image step %d bytes is smaller than width %d x %d bytes per pixel (%s) = %d'
                                % (step, width, bpp, msg.encoding, width * bpp))
    size = len(msg.data)
    if size < step * height:
        raise InvalidImageError('image data has %d bytes, expected at least step %d x height %d = %d'
                                % (size, step, height, step * height))
    if info.channels == 2 and width % 2:
        raise InvalidImageError('%s image width must be even, got %d' % (msg.encoding, width))
    return info


def _byte_view(data):
    """A flat uint8 view of ``data`` (zero-copy for bytes, bytearray, array.array, memoryview)."""
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except (TypeError, ValueError):  # e.g. a plain list of ints
        return np.asarray(data, dtype=np.uint8).reshape(-1)


def image_msg_to_array(msg):
    """Return the pixels of an Image message as an array in the message's own layout (no colour conversion).

    Shape is ``(H, W)`` for single-channel encodings and ``(H, W, C)`` otherwise; dtype ``uint8``, or
    native-endian ``uint16`` for 16-bit encodings. The result is a view of ``msg.data`` whenever
    possible (8-bit encodings; rows may be strided when ``step`` has padding), so it must not be
    modified and is only valid while the message is.

    Raises:
        InvalidImageError: see :func:`check_image_msg`.
    """
    info = check_image_msg(msg)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    row_bytes = width * info.channels * info.bytes_per_channel
    rows = _byte_view(msg.data)[:step * height].reshape(height, step)[:, :row_bytes]
    if info.bytes_per_channel == 2:
        dtype = np.dtype('>u2' if msg.is_bigendian else '<u2')
        rows = np.ascontiguousarray(rows).view(dtype).astype(np.uint16, copy=False)
    if info.channels == 1:
        return rows.reshape(height, width)
    return rows.reshape(height, width, info.channels)


def image_msg_to_rgb(msg):
    """Convert a ``sensor_msgs/msg/Image`` to an ``H x W x 3`` ``uint8`` RGB array.

    For ``rgb8`` without row padding the result is a zero-copy (read-only use) view of ``msg.data``;
    every other case returns a new C-contiguous array.

    Args:
        msg: the Image message (any of :data:`SUPPORTED_ENCODINGS`).

    Returns:
        ``numpy.ndarray`` of shape ``(msg.height, msg.width, 3)``, dtype ``uint8``, RGB channel order.

    Raises:
        InvalidImageError: unknown encoding (the message lists the supported ones), empty size,
            ``step`` too small, or truncated ``data``.
    """
    info = encoding_info(msg.encoding)
    pixels = image_msg_to_array(msg)
    if info.bytes_per_channel == 2:
        pixels = (pixels >> 8).astype(np.uint8)
    if info.to_rgb is None:
        return pixels if pixels.flags.c_contiguous else np.ascontiguousarray(pixels)
    return cv2.cvtColor(np.ascontiguousarray(pixels), info.to_rgb)


def _fill_header(msg, header, stamp, frame_id):
    if header is not None:
        msg.header = header
    if stamp is not None:
        msg.header.stamp = stamp
    if frame_id is not None:
        msg.header.frame_id = frame_id


def array_to_image_msg(pixels, encoding, header=None, stamp=None, frame_id=None, row_padding=0):
    """Pack an array that is already laid out in ``encoding`` into a new ``sensor_msgs/msg/Image``.

    Args:
        pixels: ``(H, W)`` or ``(H, W, 1)`` for mono encodings, ``(H, W, C)`` otherwise, C as the encoding
            says (3 for ``bgr8``, 2 for ``yuv422``); dtype ``uint8`` for 8-bit encodings, ``uint16``
            for 16-bit ones. ``bgr8`` means the array is in BGR order (as OpenCV reads images).
        encoding: one of :data:`SUPPORTED_ENCODINGS`.
        header: optional ``std_msgs/msg/Header`` copied into the message.
        stamp: optional ``builtin_interfaces/msg/Time`` (overrides ``header.stamp``).
        frame_id: optional frame id (overrides ``header.frame_id``).
        row_padding: extra bytes appended to every row (``step = width * bytes_per_pixel + row_padding``);
            meant for tests of consumers that must honour ``step``.

    Returns:
        The Image message. 16-bit data are written little-endian (``is_bigendian = 0``). ``data`` is
        filled through ``array.array('B', ...)``, which is orders of magnitude faster than assigning a
        numpy array or list to the rclpy field.

    Raises:
        InvalidImageError: unknown encoding, or an array whose shape/dtype does not match the encoding.
    """
    from sensor_msgs.msg import Image

    info = encoding_info(encoding)
    pixels = np.asarray(pixels)
    want_dtype = np.uint8 if info.bytes_per_channel == 1 else np.uint16
    if pixels.ndim == 3 and info.channels == 1 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    want_ndim = 2 if info.channels == 1 else 3
    if (pixels.ndim != want_ndim or (want_ndim == 3 and pixels.shape[2] != info.channels)
            or pixels.dtype != want_dtype):
        raise InvalidImageError('%s needs a %s array of shape (H, W%s), got %s %s'
                                % (encoding, np.dtype(want_dtype).name,
                                   '' if info.channels == 1 else ', %d' % info.channels,
                                   pixels.dtype, pixels.shape))
    height, width = pixels.shape[:2]
    if height <= 0 or width <= 0:
        raise InvalidImageError('cannot pack an empty image of shape %s' % (pixels.shape,))
    if info.channels == 2 and width % 2:
        raise InvalidImageError('%s image width must be even, got %d' % (encoding, width))
    if info.bytes_per_channel == 2:
        pixels = pixels.astype('<u2', copy=False)
    rows = np.ascontiguousarray(pixels).reshape(height, -1).view(np.uint8)
    if row_padding:
        rows = np.concatenate([rows, np.zeros((height, int(row_padding)), np.uint8)], axis=1)

    msg = Image()
    _fill_header(msg, header, stamp, frame_id)
    msg.height = int(height)
    msg.width = int(width)
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = int(rows.shape[1])
    msg.data = array.array('B', rows.tobytes())
    return msg


def rgb_to_image_msg(rgb, encoding='rgb8', header=None, stamp=None, frame_id=None):
    """Convert an ``H x W x 3`` ``uint8`` RGB array to a ``sensor_msgs/msg/Image`` of the given encoding.

    The inverse of :func:`image_msg_to_rgb` up to the loss of the target encoding (grey for mono,
    ``value * 257`` for 16-bit, alpha 255 for 4-channel encodings).

    Args:
        rgb: ``(H, W, 3)`` ``uint8`` array, RGB order.
        encoding: one of :data:`RGB_OUTPUT_ENCODINGS` (the YUV encodings are input-only).
        header, stamp, frame_id: as for :func:`array_to_image_msg`.

    Raises:
        InvalidImageError: ``rgb`` is not ``(H, W, 3)`` ``uint8``, or the encoding cannot be produced.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise InvalidImageError('expected an (H, W, 3) uint8 RGB array, got %s %s' % (rgb.dtype, rgb.shape))
    info = encoding_info(encoding)
    if encoding not in RGB_OUTPUT_ENCODINGS:
        raise InvalidImageError('cannot produce encoding %r from RGB; possible: %s'
                                % (encoding, ', '.join(RGB_OUTPUT_ENCODINGS)))
    pixels = np.ascontiguousarray(rgb)
    if info.from_rgb is not None:
        pixels = cv2.cvtColor(pixels, info.from_rgb)
    if info.bytes_per_channel == 2:
        pixels = pixels.astype(np.uint16) * np.uint16(257)
    return array_to_image_msg(pixels, encoding, header=header, stamp=stamp, frame_id=frame_id)
