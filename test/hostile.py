"""Hostile inputs for the running node, as hypothesis strategies, and the driver that sends them over DDS.

Used by ``test/test_node_fuzz.py`` (a short profile in the suite) and ``bench/fuzz_node.py`` (>= 10,000 cases).
A *case* is one hostile input: an ``Image`` (every field varied: encodings known and unknown, zero and huge sizes,
wrong steps, truncated and oversize data, big-endian 16-bit) or an ``~/init_target`` request (NaN, infinities,
negative and huge boxes, rotated boxes, stamps far in the past and future, long and non-ASCII ids). Cases come in
sequences interleaved with valid frames; after a sequence :meth:`FuzzDriver.check_health` proves the node still
tracks exactly (oracle boxes of the Lightning seed-0 weights).

Every hostile image is proved delivered (the node's ``received`` or ``rejected`` counter moved), so a case cannot
pass because DDS dropped it; every request must be answered.
"""
import array
import itertools
import math

import numpy as np
from hypothesis import strategies as st

from stark_ros.ros.image_conversion import SUPPORTED_ENCODINGS, array_to_image_msg

_BYTES_PER_PIXEL = {'rgb8': 3, 'bgr8': 3, 'rgba8': 4, 'bgra8': 4, 'mono8': 1, 'rgb16': 6, 'bgr16': 6,
                    'rgba16': 8, 'bgra16': 8, 'mono16': 2, 'yuv422': 2, 'yuv422_yuy2': 2}
#: Largest data a generated image really carries (declared sizes may be anything).
MAX_DATA_BYTES = 1 << 21
UINT32_MAX = 2 ** 32 - 1
INT32_MIN, INT32_MAX = -2 ** 31, 2 ** 31 - 1

#: Text a ROS string can carry (any Unicode but lone surrogates, which rclpy cannot encode to send at all).
_text = st.text(alphabet=st.characters(blacklist_categories=('Cs',)), max_size=200)
_encodings = st.one_of(st.sampled_from(SUPPORTED_ENCODINGS),
                       st.sampled_from(['', '32FC1', '16UC1', 'bayer_rggb8', 'RGB8', 'rgb8 ', 'jpeg', 'mono12']),
                       _text)
_sides = st.one_of(st.sampled_from([0, 1, 2, 3, 15, 16, 17, 63, 240, 320, 641]), st.integers(0, 2048),
                   st.sampled_from([65535, 65536, 2 ** 31, UINT32_MAX]))


@st.composite
def hostile_images(draw):
    """``dict`` describing one ``sensor_msgs/Image`` (see :func:`build_image`)."""
    encoding = draw(_encodings)
    width, height = draw(_sides), draw(_sides)
    bpp = _BYTES_PER_PIXEL.get(encoding, draw(st.integers(1, 8)))
    row = width * bpp
    step = draw(st.sampled_from(['exact', 'exact', 'padded', 'short', 'zero', 'huge']))
    step = {'exact': row, 'padded': row + draw(st.integers(1, 64)), 'short': max(0, row - 1), 'zero': 0,
            'huge': UINT32_MAX}[step]
    step = min(step, UINT32_MAX)
    declared = step * height
    size = draw(st.sampled_from(['exact', 'exact', 'truncated', 'oversize', 'empty']))
    if size == 'exact':
        length = declared
    elif size == 'truncated':
        length = max(0, declared - draw(st.integers(1, 4096)))
    elif size == 'oversize':
        length = declared + draw(st.integers(1, 4096))
    else:
        length = 0
    if length > MAX_DATA_BYTES:          # declared far beyond what is sent: really a truncated image
        length = draw(st.integers(0, 4096))
    return {'encoding': encoding, 'width': width, 'height': height, 'step': step, 'length': length,
            'is_bigendian': draw(st.sampled_from([0, 1, 255])), 'seed': draw(st.integers(0, 255)),
            'frame_id': draw(_text)}


_any_float = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                       st.sampled_from([0.0, -0.0, -1.0, 1e-300, -1e300, 1e300, 1.7976931348623157e308,
                                        float('nan'), float('inf'), float('-inf')]),
                       st.floats(-1000.0, 1000.0))
_ids = st.one_of(_text,
                 st.sampled_from(['', 'ü🎯\u202e\x00x', 'a' * 100000, '\n\t ']))


@st.composite
def hostile_requests(draw):
    """``dict`` describing one ``InitTarget`` request (see :func:`build_request`)."""
    theta = draw(st.one_of(st.just(0.0), _any_float))
    return {'cx': draw(_any_float), 'cy': draw(_any_float), 'w': draw(_any_float), 'h': draw(_any_float),
            'theta': theta,
            'sec': draw(st.one_of(st.just(0), st.sampled_from([INT32_MIN, INT32_MAX, -1, 1]),
                                  st.integers(INT32_MIN, INT32_MAX))),
            'nanosec': draw(st.one_of(st.just(0), st.sampled_from([UINT32_MAX, 999999999, 1]),
                                      st.integers(0, UINT32_MAX))),
            'id': draw(_ids)}


#: One step of a sequence: ('image', spec), ('init', spec), ('frame', oracle frame index) or ('target', oracle frame
#: index: a valid init on it, so that the hostile images that follow are tracked).
actions = st.lists(st.one_of(st.tuples(st.just('image'), hostile_images()),
                             st.tuples(st.just('init'), hostile_requests()),
                             st.tuples(st.sampled_from(['frame', 'target']), st.integers(0, 39))),
                   min_size=1, max_size=8)


def build_image(spec, stamp):
    """The ``sensor_msgs/Image`` of a :func:`hostile_images` spec (data: a byte pattern of ``length`` bytes)."""
    from sensor_msgs.msg import Image
    msg = Image()
    msg.header.stamp = stamp
    msg.header.frame_id = spec['frame_id']
    msg.encoding = spec['encoding']
    msg.width, msg.height, msg.step = spec['width'], spec['height'], spec['step']
    msg.is_bigendian = spec['is_bigendian']
    pattern = bytes((spec['seed'] + i * 37) & 255 for i in range(256))
    length = spec['length']
    msg.data = array.array('B', (pattern * (length // 256 + 1))[:length])
    return msg


def build_request(spec):
    from builtin_interfaces.msg import Time
    from stark_ros_msgs.srv import InitTarget
    req = InitTarget.Request()
    req.box.center.position.x, req.box.center.position.y = spec['cx'], spec['cy']
    req.box.size_x, req.box.size_y, req.box.center.theta = spec['w'], spec['h'], spec['theta']
    req.stamp = Time(sec=spec['sec'], nanosec=spec['nanosec'])
    req.id = spec['id']
    return req


class FuzzDriver:
    """Sends cases to an in-process ``TrackerNode`` (Lightning, seed-0 weights) through a ``TrackerHarness``.

    Args:
        node, harness: the node under test and the harness connected to it.
        oracle: the Lightning oracle (``frames_bgr``, ``init_box``, ``boxes``).
        answer_timeout: seconds a request may take before it counts as unanswered.
    """

    BOX_TOL = 1e-2

    def __init__(self, node, harness, oracle, answer_timeout=60.0):
        self.node, self.harness, self.oracle = node, harness, oracle
        self.answer_timeout = answer_timeout
        self.cases = 0
        self.failures = []
        self._stamps = itertools.count(1)

    def _stamp(self):
        from builtin_interfaces.msg import Time
        n = next(self._stamps)
        return Time(sec=100000 + n, nanosec=n % 1000000000)

    def _fail(self, what):
        self.failures.append(what)
        return what

    def _seen(self):
        stats = self.node.stats()
        return stats['received'] + stats['rejected']

    def run(self, steps):
        """Run one sequence of :data:`actions`; returns the failures it caused (also kept in ``failures``)."""
        before = len(self.failures)
        for kind, spec in steps:
            if kind == 'image':
                self.cases += 1
                self.send_image(build_image(spec, self._stamp()), spec)
            elif kind == 'init':
                self.cases += 1
                self.send_request(spec)
            elif kind == 'target':
                self.send_frame(spec)
                response = self.harness.init(self.oracle['init_box'], target_id='fuzz')
                # the requests' random ids may have filled max_targets: a refusal naming it is the right answer
                if not response.success and 'max_targets' not in response.message:
                    self._fail('valid init refused: %s' % response.message)
            else:
                self.send_frame(spec)
        return self.failures[before:]

    def send_image(self, msg, spec=None):
        seen = self._seen()
        if not self.harness.publish_until(msg, lambda: self._seen() > seen, timeout=self.answer_timeout):
            return self._fail('image never reached the node: %r' % (spec,))
        return None

    def send_frame(self, index):
        msg = array_to_image_msg(self.oracle['frames_bgr'][index], 'bgr8', stamp=self._stamp(), frame_id='cam')
        return self.send_image(msg, 'oracle frame %d' % index)

    def send_request(self, spec):
        import threading
        done = threading.Event()
        future = self.harness.init_client.call_async(build_request(spec))
        future.add_done_callback(lambda _: done.set())
        if not done.wait(self.answer_timeout):
            return self._fail('init_target unanswered: %r' % ({k: v for k, v in spec.items() if k != 'id'},))
        response = future.result()
        numbers = [spec[k] for k in ('cx', 'cy', 'w', 'h', 'theta')]
        if response.success and not all(math.isfinite(v) for v in numbers):
            return self._fail('init_target accepted non-finite numbers: %r' % (numbers,))
        if not response.success and not response.message:
            return self._fail('init_target failed without a reason')
        return None

    def check_health(self):
        """Reset, init on oracle frame 0, track frame 1: the detection must carry the oracle box. Returns the failure
        or None."""
        if not self.harness.reset().success:
            return self._fail('reset failed')
        frame0 = array_to_image_msg(self.oracle['frames_bgr'][0], 'bgr8', stamp=self._stamp(), frame_id='cam')
        stamp0 = frame0.header.stamp.sec * 10 ** 9 + frame0.header.stamp.nanosec
        if not self.harness.publish_until(frame0, lambda: stamp0 in self.node.buffered_stamps(),
                                          timeout=self.answer_timeout):
            return self._fail('health: frame 0 never buffered')
        response = self.harness.init(self.oracle['init_box'], stamp=frame0.header.stamp, target_id='health')
        if not response.success:
            return self._fail('health: valid init refused: %s' % response.message)
        frame1 = array_to_image_msg(self.oracle['frames_bgr'][1], 'bgr8', stamp=self._stamp(), frame_id='cam')
        self.harness.drain()
        det = None
        for _ in range(int(self.answer_timeout)):
            self.harness.publish(frame1)
            det = self.harness.next_detection(1.0)
            while det is not None and det.header.stamp != frame1.header.stamp:
                det = self.harness.next_detection(1.0)
            if det is not None:
                break
        if det is None:
            return self._fail('health: no detection for a valid frame')
        x, y, w, h = self.oracle['boxes'][1]
        got = (det.bbox.center.position.x, det.bbox.center.position.y, det.bbox.size_x, det.bbox.size_y)
        if det.id != 'health' or not np.allclose(got, (x + w / 2, y + h / 2, w, h), atol=self.BOX_TOL, rtol=0):
            return self._fail('health: wrong detection %r (oracle %r)' % (got, (x, y, w, h)))
        self.harness.reset()
        return None
