"""Checks of the console's JSON requests (``POST /api/init``, ``POST /api/reset``), ROS-free and web-free.

Every check raises :class:`ConsoleRequestError` (a :class:`ValueError`) with a message the page shows as is; a request
that fails a check changes nothing. Box convention of the API: ``[x, y, w, h]``, top-left corner + size, pixels of the
image the box was drawn on (the same convention as ``stark_ros.ros.messages.bbox_to_xywh``).
"""
import math
from dataclasses import dataclass

from stark_ros.errors import StarkError

#: Longest target id accepted, characters (ids are shown in the page and copied to Detection2D.id).
MAX_ID_LENGTH = 64
#: Largest ``sec`` of a stamp (builtin_interfaces/Time.sec is an int32).
MAX_STAMP_SEC = 2 ** 31 - 1


class ConsoleRequestError(StarkError):
    """A console request is malformed: missing or extra fields, a non-finite number, a box outside the image, a stamp
    out of range, or an id that is not a short printable string."""


@dataclass(frozen=True)
class InitRequest:
    """A checked ``POST /api/init`` body.

    Attributes:
        box: ``(x, y, w, h)`` top-left + size, pixels, inside the ``width x height`` image.
        stamp: ``(sec, nanosec)`` header stamp of the image the box was drawn on (``(0, 0)``: the newest image).
        target_id: target id, '' = the tracker's default id.
    """

    box: tuple
    stamp: tuple
    target_id: str


def _finite(value, key):
    # bool is an int subclass: true/false are not coordinates
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConsoleRequestError('%s must be a number, got %r' % (key, value))
    value = float(value)
    if not math.isfinite(value):
        raise ConsoleRequestError('%s must be finite, got %r' % (key, value))
    return value


def check_target_id(value):
    """``value`` as a target id: a string of at most ``MAX_ID_LENGTH`` printable characters ('' allowed).

    Raises:
        ConsoleRequestError: not a string, too long, or holding control / non-printable characters.
    """
    if value is None:
        return ''
    if not isinstance(value, str):
        raise ConsoleRequestError('id must be a string, got %r' % (value,))
    if len(value) > MAX_ID_LENGTH:
        raise ConsoleRequestError('id is %d characters long; at most %d' % (len(value), MAX_ID_LENGTH))
    if not value.isprintable():
        raise ConsoleRequestError('id must hold printable characters only, got %r' % value)
    return value


def _stamp(body):
    stamp = body.get('stamp')
    if stamp is None:
        return (0, 0)
    if not isinstance(stamp, dict) or set(stamp) != {'sec', 'nanosec'}:
        raise ConsoleRequestError('stamp must be {"sec": int, "nanosec": int}, got %r' % (stamp,))
    values = []
    for key, high in (('sec', MAX_STAMP_SEC), ('nanosec', 999999999)):
        value = stamp[key]
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
            raise ConsoleRequestError('stamp.%s must be an integer in [0, %d], got %r' % (key, high, value))
        values.append(value)
    return tuple(values)


def _fields(body, allowed):
    if not isinstance(body, dict):
        raise ConsoleRequestError('the request body must be a JSON object, got %s' % type(body).__name__)
    extra = sorted(set(body) - set(allowed))
    if extra:
        raise ConsoleRequestError('unknown field(s) %s; allowed: %s' % (', '.join(extra), ', '.join(allowed)))


def parse_init(body, size_of):
    """Check a ``POST /api/init`` body against the image it was drawn on.

    Args:
        body: decoded JSON, ``{"box": [x, y, w, h], "stamp": {"sec": s, "nanosec": n}, "id": "..."}``; ``stamp``
            and ``id`` are optional (no stamp: the newest image). Box: top-left + size, pixels.
        size_of: ``size_of((sec, nanosec))`` -> ``(width, height)`` pixels of the image shown with that stamp, or
            None when there is no such image.

    Returns:
        :class:`InitRequest`.

    Raises:
        ConsoleRequestError: unknown fields; a box that is not 4 finite numbers, has a size <= 0 or does not lie
            inside the image (a drag is clamped to the image by the page, so a box poking out is a bug or a
            hand-made request); a malformed stamp or one of no image shown; a bad id (:func:`check_target_id`).
    """
    _fields(body, ('box', 'stamp', 'id'))
    stamp = _stamp(body)
    size = size_of(stamp)
    if size is None:
        raise ConsoleRequestError('no image with stamp %d.%09d was shown (or none at all yet)' % stamp)
    width, height = size
    box = body.get('box')
    if not isinstance(box, (list, tuple)) or len(box) != 4:
        raise ConsoleRequestError('box must be a list [x, y, w, h] (pixels), got %r' % (box,))
    x, y, w, h = (_finite(v, 'box[%d]' % i) for i, v in enumerate(box))
    if w <= 0 or h <= 0:
        raise ConsoleRequestError('box size must be positive, got %g x %g pixels' % (w, h))
    if x < 0 or y < 0 or x + w > width or y + h > height:
        raise ConsoleRequestError('box (x %g, y %g, w %g, h %g) is not inside the %d x %d image'
                                  % (x, y, w, h, width, height))
    return InitRequest((x, y, w, h), stamp, check_target_id(body.get('id', '')))


def parse_reset(body):
    """Check a ``POST /api/reset`` body ``{"id": "..."}``; returns the id ('' or missing = every target).

    Raises:
        ConsoleRequestError: unknown fields or a bad id (:func:`check_target_id`).
    """
    _fields(body, ('id',))
    return check_target_id(body.get('id', ''))


#: What the tracker answers when the image a box was drawn on has left its buffer (``stark_ros.ros.node_inputs``).
_NOT_BUFFERED = 'no buffered image has stamp'


def explain_init_failure(message):
    """The tracker's ``~/init_target`` failure ``message``, with what the operator can do about it appended when the
    image the box was drawn on is no longer buffered: the page shows a still image while the operator drags, and the
    tracker keeps only its last ``frame_buffer_size`` images (30: one second of a 30 Hz camera), so a drag longer
    than that comes too late. Other messages are returned unchanged."""
    if _NOT_BUFFERED not in message:
        return message
    return (message + '. The image you drew on has left the tracker\'s buffer: draw the box faster (the tracker '
            'keeps its last frame_buffer_size images, about one second at 30 Hz by default), or raise the tracker\'s '
            'frame_buffer_size parameter (one image of memory each).')
