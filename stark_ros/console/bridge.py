"""The bridge between the console's ROS side and its web side: what the ROS callbacks hand over and what the page
reads, behind one lock.

ROS callbacks only store references (no decoding, no encoding: :meth:`ConsoleState.put_image` keeps the message);
the web side turns the newest image into JPEG bytes on demand (:meth:`ConsoleState.frame`, OpenCV), once per image,
outside the lock. Stamps are kept as ``(sec, nanosec)`` pairs, boxes as ``(x, y, w, h)`` top-left + size, pixels.
"""
import collections
import threading
import time
from dataclasses import dataclass

import cv2
import numpy as np

from stark_ros.errors import InvalidImageError
from stark_ros.ros.compressed import check_compressed_msg
from stark_ros.ros.image_input import image_input

#: A detection older than this (seconds since it arrived) is shown as ``stale`` unless a status says otherwise.
STALE_AFTER_SEC = 2.0
#: Image sizes remembered by stamp (to check a box drawn on a frame that is no longer the newest).
SIZE_HISTORY = 256


@dataclass(frozen=True)
class Frame:
    """The newest image as the page gets it.

    Attributes:
        seq: arrival counter of the image (1, 2, ...), increases with every image.
        stamp: ``(sec, nanosec)`` of its header.
        width, height: pixels.
        jpeg: JPEG bytes of the image.
    """

    seq: int
    stamp: tuple
    width: int
    height: int
    jpeg: bytes


def stamp_pair(stamp):
    """``builtin_interfaces/Time`` -> ``(sec, nanosec)``."""
    return (int(stamp.sec), int(stamp.nanosec))


def detection_to_dict(det):
    """A ``vision_msgs/Detection2D`` -> ``{'id', 'box' [x, y, w, h] px, 'score' (None without hypothesis), 'stamp'}``."""
    b = det.bbox
    w, h = float(b.size_x), float(b.size_y)
    box = [float(b.center.position.x) - w / 2.0, float(b.center.position.y) - h / 2.0, w, h]
    score = float(det.results[0].hypothesis.score) if len(det.results) else None
    return {'id': det.id, 'box': box, 'score': score, 'stamp': list(stamp_pair(det.header.stamp))}


def message_to_dict(msg):
    """A ROS message -> a JSON-able dict of its fields (nested messages as dicts, stamps as ``[sec, nanosec]``)."""
    if hasattr(msg, 'get_fields_and_field_types'):
        if set(msg.get_fields_and_field_types()) == {'sec', 'nanosec'}:
            return [int(msg.sec), int(msg.nanosec)]
        return {name: message_to_dict(getattr(msg, name)) for name in msg.get_fields_and_field_types()}
    if isinstance(msg, (list, tuple)) or type(msg).__name__ == 'array' or isinstance(msg, np.ndarray):
        return [message_to_dict(v) for v in msg]
    if isinstance(msg, (bytes, bytearray)):
        return list(msg)
    if isinstance(msg, (np.generic,)):
        return msg.item()
    return msg


def _status_box(bbox):
    """A status message's ``box`` (BoundingBox2D as :func:`message_to_dict` gives it) -> [x, y, w, h] px, or None."""
    try:
        w, h = float(bbox['size_x']), float(bbox['size_y'])
        return [float(bbox['center']['position']['x']) - w / 2.0, float(bbox['center']['position']['y']) - h / 2.0,
                w, h]
    except (KeyError, TypeError, ValueError):
        return None


class ConsoleState:
    """Thread-safe store of the newest image, the targets, the tracker's diagnostics and the service clients' state.

    Args:
        transport: ``'raw'`` (sensor_msgs/Image) or ``'compressed'`` (sensor_msgs/CompressedImage), as the tracker's
            ``image_transport`` parameter.
        tracker_name: fully qualified name of the tracker node (e.g. ``/stark_tracker``); its ``/diagnostics`` status
            has this name.
        jpeg_quality: 1..100, quality of the JPEG the page shows (raw input, or PNG compressed input).
        clock: monotonic clock, seconds (tests may pass their own).
    """

    def __init__(self, transport='raw', tracker_name='/stark_tracker', jpeg_quality=80, clock=time.monotonic):
        self._input = image_input(transport)
        self._tracker_name = tracker_name
        self._quality = int(jpeg_quality)
        self._clock = clock
        self._lock = threading.Lock()
        self._encode_lock = threading.Lock()
        self._image = None          # (seq, msg, arrival time)
        self._seq = 0
        self._frame = None          # Frame of the newest encoded image
        self._sizes = collections.OrderedDict()   # (sec, nanosec) -> (width, height)
        self._targets = {}          # id -> dict (detection_to_dict + 'received')
        self._status = {}           # id -> dict (TargetStatus fields) + 'received'
        self._diagnostics = None
        self._image_error = None
        self._services = {}

    # ------------------------------------------------------------------ ROS side (callbacks: store only)
    def put_image(self, msg):
        """Keep ``msg`` as the newest image (no decoding here)."""
        with self._lock:
            self._seq += 1
            self._image = (self._seq, msg, self._clock())

    def put_detection(self, det):
        """Record a ``vision_msgs/Detection2D`` as the newest box of its target."""
        entry = detection_to_dict(det)
        entry['received'] = self._clock()
        with self._lock:
            self._targets[entry['id']] = entry

    def put_detections(self, array):
        """Record every detection of a ``vision_msgs/Detection2DArray``."""
        for det in array.detections:
            self.put_detection(det)

    def put_status(self, msg):
        """Record a target status message (any message with an ``id`` field; the other fields are passed on as they are).
        A message with a ``targets`` sequence is taken as one status per element."""
        items = getattr(msg, 'targets', None)
        for item in (items if items is not None else [msg]):
            entry = message_to_dict(item)
            if not isinstance(entry, dict):
                continue
            entry['received'] = self._clock()
            with self._lock:
                self._status[str(entry.get('id', ''))] = entry

    def put_diagnostics(self, array):
        """Keep the tracker's status of a ``diagnostic_msgs/DiagnosticArray`` (other nodes' statuses are ignored)."""
        for status in array.status:
            if status.name == self._tracker_name:
                entry = {'level': int.from_bytes(status.level, 'little') if isinstance(status.level, bytes)
                         else int(status.level),
                         'message': status.message, 'values': {kv.key: kv.value for kv in status.values},
                         'received': self._clock()}
                with self._lock:
                    self._diagnostics = entry

    def set_services(self, **ready):
        """Record which tracker services are reachable (``init_target=True, reset=False, reset_type='...'``)."""
        with self._lock:
            self._services.update(ready)

    def forget(self, target_id=''):
        """Drop one target ('' = all) from the page after a successful reset."""
        with self._lock:
            if target_id:
                self._targets.pop(target_id, None)
                self._status.pop(target_id, None)
            else:
                self._targets.clear()
                self._status.clear()

    # ------------------------------------------------------------------ web side
    def _encode(self, msg):
        """JPEG bytes, width, height of an image message (raw: convert + encode; JPEG: passed through)."""
        if self._input.transport == 'compressed':
            codec, width, height = check_compressed_msg(msg)
            if codec == 'jpeg':
                return bytes(msg.data), width, height
        rgb = self._input.to_rgb(msg)
        ok, buffer = cv2.imencode('.jpg', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, self._quality])
        if not ok:
            raise InvalidImageError('OpenCV could not encode the image as JPEG')
        return buffer.tobytes(), rgb.shape[1], rgb.shape[0]

    def frame(self):
        """The newest image as a :class:`Frame` (encoded once per image), or None before the first valid image.

        A malformed image is skipped (the previous frame stays) and its error is shown in :meth:`snapshot`."""
        with self._encode_lock:
            with self._lock:
                image, current = self._image, self._frame
            if image is None or (current is not None and current.seq == image[0]):
                return current
            seq, msg, _ = image
            try:
                jpeg, width, height = self._encode(msg)
            except InvalidImageError as err:
                with self._lock:
                    self._image_error = str(err)
                return current
            stamp = stamp_pair(msg.header.stamp)
            frame = Frame(seq, stamp, int(width), int(height), jpeg)
            with self._lock:
                self._frame, self._image_error = frame, None
                self._sizes[stamp] = (frame.width, frame.height)
                while len(self._sizes) > SIZE_HISTORY:
                    self._sizes.popitem(last=False)
            return frame

    def latest_seq(self):
        """Arrival counter of the newest image (0: none yet)."""
        with self._lock:
            return self._seq

    def image_size(self, stamp):
        """``(width, height)`` of the shown image with this ``(sec, nanosec)`` stamp (``(0, 0)``: the newest shown
        image), or None when the console never showed it."""
        with self._lock:
            if tuple(stamp) == (0, 0):
                return None if self._frame is None else (self._frame.width, self._frame.height)
            return self._sizes.get(tuple(stamp))

    def snapshot(self):
        """A JSON-able dict of everything the page shows: ``frame`` (seq, stamp, width, height, age_sec), ``targets``
        (sorted by id: id, box [x, y, w, h] px, score, stamp, age_sec, state, status), ``diagnostics`` (level, message,
        values, age_sec), ``services``, ``image_error``."""
        now = self._clock()
        with self._lock:
            frame, image = self._frame, self._image
            targets = {k: dict(v) for k, v in self._targets.items()}
            status = {k: dict(v) for k, v in self._status.items()}
            diag = dict(self._diagnostics) if self._diagnostics else None
            services, image_error = dict(self._services), self._image_error
        out_targets = []
        for target_id in sorted(set(targets) | set(status)):
            entry = targets.get(target_id, {'id': target_id, 'box': None, 'score': None, 'stamp': None})
            received = entry.pop('received', None)
            if entry['box'] is None and status.get(target_id):
                entry['box'] = _status_box(status[target_id].get('box'))
            entry['age_sec'] = None if received is None else round(now - received, 3)
            st = status.get(target_id)
            st_received = st.pop('received', None) if st is not None else None
            entry['status'] = st
            state = st.get('state') if st else None
            if state is None or isinstance(state, (dict, list)) or now - st_received > STALE_AFTER_SEC:
                # no (recent) status: tracking while detections come, stale after STALE_AFTER_SEC without one
                state = 'tracking' if received is not None and now - received <= STALE_AFTER_SEC else 'stale'
            entry['state'] = str(state)
            out_targets.append(entry)
        if diag is not None:
            diag['age_sec'] = round(now - diag.pop('received'), 3)
        return {
            'frame': None if frame is None else {
                'seq': frame.seq, 'stamp': list(frame.stamp), 'width': frame.width, 'height': frame.height,
                'age_sec': None if image is None else round(now - image[2], 3)},
            'targets': out_targets,
            'diagnostics': diag,
            'services': services,
            'image_error': image_error,
        }
