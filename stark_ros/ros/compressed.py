"""``sensor_msgs/msg/CompressedImage`` (JPEG, PNG) <-> RGB arrays, as image_transport's ``compressed`` transport
publishes them on ``<image topic>/compressed``.

``format`` strings accepted (case-insensitive):

* image_transport's ``compressed`` plugin: ``"<source encoding>; <codec> compressed <encoding>"``, e.g.
  ``"bgr8; jpeg compressed bgr8"``, ``"rgb8; jpeg compressed bgr8"``, ``"mono8; png compressed mono8"``,
  ``"bgr16; png compressed bgr16"``;
* cv_bridge's ``cv2_to_compressed_imgmsg`` and other simple publishers: ``"jpeg"``, ``"jpg"``, ``"png"``;
* an empty string: the codec is taken from the data's signature.

The codec named must be JPEG or PNG and agree with the data's signature (JPEG ``FF D8 FF``, PNG
``89 50 4E 47 0D 0A 1A 0A``); ``compressedDepth`` (depth images) is refused. The pixels always come out as
``H x W x 3`` ``uint8`` RGB: the compressed data hold colour in the standard order whatever the source encoding
was (image_transport converts ``rgb8`` to ``bgr8`` before encoding), grey images are replicated to three channels
and 16-bit PNGs reduced to 8 bits by OpenCV (value / 256).

:func:`check_compressed_msg` is cheap (format string, signature and the image header, no decoding) for a
subscription callback; :func:`compressed_msg_to_rgb` decodes with ``cv2.imdecode`` and belongs on a worker thread
(about 2 ms for a 640 x 480 JPEG, 15 ms for 1920 x 1080 on one core). Malformed data raise
:class:`stark_ros.errors.InvalidImageError`: truncated data, headers without image data, anything OpenCV cannot
decode. Bytes damaged inside structurally complete data can still decode (libjpeg then only warns): such an image
is tracked as it decodes, as by any image_transport subscriber.
"""
import io

import cv2
import numpy as np

from stark_ros.errors import InvalidImageError

#: Codecs accepted, by the name used in ``format`` strings.
CODECS = ('jpeg', 'png')
#: Largest decoded image accepted, pixels (8K UHD, 7680 x 4320: 100 MB as RGB). The header is checked before
#: decoding, so a small message that claims a huge image cannot make the decoder allocate gigabytes.
MAX_PIXELS = 7680 * 4320

_SIGNATURES = {'jpeg': b'\xff\xd8\xff', 'png': b'\x89PNG\r\n\x1a\n'}
#: How complete data end: JPEG's EOI marker, PNG's IEND chunk (type and CRC).
_ENDINGS = {'jpeg': b'\xff\xd9', 'png': b'IEND\xaeB`\x82'}
_ALIASES = {'jpeg': 'jpeg', 'jpg': 'jpeg', 'png': 'png'}
# OpenCV >= 4.11 decodes straight to RGB; older ones (Ubuntu's python3-opencv) give BGR, swapped afterwards.
_IMREAD_RGB = getattr(cv2, 'IMREAD_COLOR_RGB', None)
_IMREAD_FLAGS = (cv2.IMREAD_COLOR if _IMREAD_RGB is None else _IMREAD_RGB) | cv2.IMREAD_IGNORE_ORIENTATION


def _bytes_view(data):
    """A flat uint8 array over ``data`` (zero-copy for bytes, bytearray, array.array)."""
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except (TypeError, ValueError):  # e.g. a plain list of ints
        return np.asarray(data, dtype=np.uint8).reshape(-1)


def format_codec(fmt):
    """The codec a ``CompressedImage.format`` string names: ``'jpeg'``, ``'png'``, or ``''`` for an empty format.

    Raises:
        InvalidImageError: ``compressedDepth`` or a codec other than JPEG / PNG.
    """
    text = (fmt or '').strip().lower()
    if 'compresseddepth' in text:
        raise InvalidImageError('compressedDepth images (%r) are not supported: the tracker takes colour or grey '
                                'images' % fmt)
    words = text.split(';')[-1].split()     # "bgr8; jpeg compressed bgr8" -> ["jpeg", "compressed", "bgr8"]
    if not words:
        return ''
    codec = _ALIASES.get(words[0])
    if codec is None:
        raise InvalidImageError('unsupported compressed image format %r; supported codecs: %s'
                                % (fmt, ', '.join(CODECS)))
    return codec


def check_compressed_msg(msg):
    """Validate a CompressedImage without decoding it: format string, data signature, image header and size.

    Args:
        msg: a ``sensor_msgs/msg/CompressedImage`` (or any object with ``format`` and ``data``).
    Returns:
        ``(codec, width, height)``: ``'jpeg'`` or ``'png'`` and the image size in pixels from its header.
    Raises:
        InvalidImageError: unsupported format, empty data, a signature that is not the named codec's, data that
            do not end as complete data do (JPEG EOI marker, PNG IEND chunk), an unreadable header, an empty size,
            or more than :data:`MAX_PIXELS` pixels.
    """
    from PIL import Image, UnidentifiedImageError

    named = format_codec(msg.format)
    data = _bytes_view(msg.data)
    if not data.size:
        raise InvalidImageError('compressed image has no data')
    head = data[:8].tobytes()
    codec = next((name for name, sig in _SIGNATURES.items() if head.startswith(sig)), None)
    if codec is None or (named and codec != named):
        raise InvalidImageError('compressed image data (first bytes %s) are not %s data'
                                % (head.hex(' '), named.upper() if named else 'JPEG or PNG'))
    if data[-len(_ENDINGS[codec]):].tobytes() != _ENDINGS[codec]:
        # OpenCV decodes a truncated JPEG whose end is garbage into a half-grey image without an error
        raise InvalidImageError('%s data (%d bytes) are truncated: they do not end with the %s'
                                % (codec.upper(), data.size, 'EOI marker' if codec == 'jpeg' else 'IEND chunk'))
    try:
        with Image.open(io.BytesIO(data), formats=[codec.upper()]) as image:   # reads the header only
            width, height = image.size
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise InvalidImageError('unreadable %s header: %s' % (codec.upper(), err)) from None
    if width <= 0 or height <= 0:
        raise InvalidImageError('%s image has an empty size: %d x %d pixels' % (codec.upper(), width, height))
    if width * height > MAX_PIXELS:
        raise InvalidImageError('%s image of %d x %d pixels is larger than the %d pixels accepted'
                                % (codec.upper(), width, height, MAX_PIXELS))
    return codec, int(width), int(height)


def compressed_msg_to_rgb(msg):
    """Decode a CompressedImage (JPEG or PNG) to an ``H x W x 3`` ``uint8`` RGB array with ``cv2.imdecode``.

    Raises:
        InvalidImageError: see :func:`check_compressed_msg`; or the data do not decode (truncated or corrupt:
            OpenCV returns no image), or decode to another size than the header states.
    """
    codec, width, height = check_compressed_msg(msg)
    image = cv2.imdecode(_bytes_view(msg.data), _IMREAD_FLAGS)
    if image is None:
        raise InvalidImageError('corrupt %s data (%d bytes): OpenCV could not decode them'
                                % (codec.upper(), len(msg.data)))
    if image.shape[:2] != (height, width) or image.ndim != 3:
        raise InvalidImageError('%s data decoded to shape %s, the header says %d x %d'
                                % (codec.upper(), image.shape, width, height))
    if _IMREAD_RGB is None:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return image


def encode_rgb(rgb, codec='jpeg', quality=95):
    """``(H, W, 3)`` uint8 RGB -> JPEG or PNG bytes (OpenCV; ``quality`` 1..100 for JPEG, 95 as image_transport's
    default ``jpeg_quality``; PNG uses OpenCV's default compression level).

    Raises:
        InvalidImageError: not an (H, W, 3) uint8 array, or an unknown codec.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8 or not rgb.size:
        raise InvalidImageError('expected an (H, W, 3) uint8 RGB array, got %s %s' % (rgb.dtype, rgb.shape))
    return encode_bgr(cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR), codec, quality)


def encode_bgr(bgr, codec='jpeg', quality=95):
    """As :func:`encode_rgb` for an OpenCV-ordered ``(H, W, 3)`` uint8 BGR array."""
    if codec not in CODECS:
        raise InvalidImageError('unknown codec %r; supported: %s' % (codec, ', '.join(CODECS)))
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if codec == 'jpeg' else []
    ok, buffer = cv2.imencode('.jpg' if codec == 'jpeg' else '.png', bgr, params)
    if not ok:
        raise InvalidImageError('OpenCV could not encode a %s image' % codec.upper())
    return buffer.tobytes()


def compressed_msg(data, codec, header=None, stamp=None, frame_id=None, source_encoding='bgr8'):
    """A ``sensor_msgs/msg/CompressedImage`` holding ``data`` (JPEG or PNG bytes), with image_transport's format
    string ``"<source_encoding>; <codec> compressed bgr8"`` and the given header (``stamp`` / ``frame_id`` override
    it)."""
    import array

    from sensor_msgs.msg import CompressedImage

    msg = CompressedImage()
    if header is not None:
        msg.header = header
    if stamp is not None:
        msg.header.stamp = stamp
    if frame_id is not None:
        msg.header.frame_id = frame_id
    msg.format = '%s; %s compressed bgr8' % (source_encoding, codec)
    msg.data = array.array('B', data)
    return msg
