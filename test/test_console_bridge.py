"""The console's bridge (stark_ros.console.bridge) with real messages and real OpenCV: the JPEG the page gets for raw
and compressed input, malformed images, detections, detection arrays, diagnostics of the tracker only, states, and
the image sizes the init check uses. No ROS graph (test_console.py runs the whole console over DDS)."""
import cv2
import numpy as np
import pytest

from conftest import make_stamp
from node_io_helpers import real_frames


@pytest.fixture(scope='module')
def frame():
    frames, _ = real_frames('bag', 1)
    return frames[0]


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def _decode(jpeg):
    return cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)


def test_raw_image_becomes_a_jpeg_of_the_same_picture(frame):
    from stark_ros.console.bridge import ConsoleState
    from stark_ros.ros.image_conversion import array_to_image_msg
    state = ConsoleState('raw', jpeg_quality=90)
    assert state.frame() is None and state.image_size((0, 0)) is None
    rgb = np.ascontiguousarray(frame[..., ::-1])
    state.put_image(array_to_image_msg(rgb, 'rgb8', stamp=make_stamp(3), frame_id='cam'))
    shown = state.frame()
    assert (shown.seq, shown.stamp, shown.width, shown.height) == (1, (1003, 1003), 480, 360)
    decoded = _decode(shown.jpeg)
    assert decoded.shape == frame.shape
    assert np.abs(decoded.astype(int) - frame.astype(int)).mean() < 4.0     # JPEG loss only, colours not swapped
    assert state.frame() is shown                                           # encoded once per image
    assert state.image_size((1003, 1003)) == (480, 360) and state.image_size((0, 0)) == (480, 360)
    assert state.image_size((1003, 1004)) is None


def test_compressed_jpeg_is_passed_through_and_png_reencoded(frame):
    from stark_ros.console.bridge import ConsoleState
    from stark_ros.ros.compressed import compressed_msg, encode_bgr
    state = ConsoleState('compressed')
    jpeg = encode_bgr(frame, 'jpeg', 85)
    state.put_image(compressed_msg(jpeg, 'jpeg', stamp=make_stamp(1)))
    assert state.frame().jpeg == jpeg
    state.put_image(compressed_msg(encode_bgr(frame, 'png'), 'png', stamp=make_stamp(2)))
    shown = state.frame()
    assert shown.jpeg[:2] == b'\xff\xd8' and _decode(shown.jpeg).shape == frame.shape and shown.seq == 2


def test_malformed_image_keeps_the_last_frame_and_says_why(frame):
    from stark_ros.console.bridge import ConsoleState
    from stark_ros.ros.image_conversion import array_to_image_msg
    state = ConsoleState('raw')
    good = array_to_image_msg(frame, 'bgr8', stamp=make_stamp(1))
    state.put_image(good)
    first = state.frame()
    bad = array_to_image_msg(frame, 'bgr8', stamp=make_stamp(2))
    bad.encoding = '32FC1'
    state.put_image(bad)
    assert state.frame() is first
    assert '32FC1' in state.snapshot()['image_error']
    state.put_image(good)
    assert state.frame().seq == 3 and state.snapshot()['image_error'] is None


def test_targets_from_detections_arrays_and_reset():
    from stark_ros.console.bridge import ConsoleState, STALE_AFTER_SEC
    from stark_ros.ros.messages import make_detection
    from std_msgs.msg import Header
    from vision_msgs.msg import Detection2DArray
    clock = Clock()
    state = ConsoleState('raw', clock=clock)
    header = Header(stamp=make_stamp(7), frame_id='cam')
    state.put_detection(make_detection(header, (10.0, 20.0, 30.0, 40.0), 0.75, 'a', 'object'))
    array = Detection2DArray(header=header)
    array.detections = [make_detection(header, (1.0, 2.0, 3.0, 4.0), 0.5, 'b', 'object'),
                        make_detection(header, (5.0, 6.0, 7.0, 8.0), 0.25, 'c', 'object')]
    clock.now += 1.0
    state.put_detections(array)
    targets = {t['id']: t for t in state.snapshot()['targets']}
    assert sorted(targets) == ['a', 'b', 'c']
    assert targets['a']['box'] == [10.0, 20.0, 30.0, 40.0] and targets['a']['score'] == 0.75
    assert targets['a']['stamp'] == [1007, 1007] and targets['a']['state'] == 'tracking'
    assert targets['a']['age_sec'] == 1.0 and targets['c']['box'] == [5.0, 6.0, 7.0, 8.0]
    clock.now += STALE_AFTER_SEC
    states = {t['id']: t['state'] for t in state.snapshot()['targets']}
    assert states == {'a': 'stale', 'b': 'tracking', 'c': 'tracking'}
    state.forget('b')
    assert [t['id'] for t in state.snapshot()['targets']] == ['a', 'c']
    state.forget('')
    assert state.snapshot()['targets'] == []


def test_only_the_trackers_diagnostics_are_kept():
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
    from stark_ros.console.bridge import ConsoleState
    state = ConsoleState('raw', tracker_name='/robot/stark_tracker')
    other = DiagnosticStatus(name='/camera_driver', level=DiagnosticStatus.ERROR, message='other node')
    mine = DiagnosticStatus(name='/robot/stark_tracker', level=DiagnosticStatus.WARN, message='slow',
                            values=[KeyValue(key='input rate (Hz)', value='30.00')])
    state.put_diagnostics(DiagnosticArray(status=[other]))
    assert state.snapshot()['diagnostics'] is None
    state.put_diagnostics(DiagnosticArray(status=[other, mine]))
    diag = state.snapshot()['diagnostics']
    assert diag['level'] == 1 and diag['message'] == 'slow' and diag['values'] == {'input rate (Hz)': '30.00'}


def test_target_states_from_the_trackers_status():
    """With the multi-target tracker's ``status`` (stark_ros_msgs/TargetStatusArray), each target's state is the
    tracker's own (tracking / uncertain / lost) while it is fresh; a target only in the status gets its box."""
    try:
        from stark_ros_msgs import msg as msgs
        msgs.TargetStatusArray
    except (ImportError, AttributeError):
        from stark_ros.console.node import status_message_type
        assert status_message_type() is None     # and the console runs without the status topic
        pytest.skip('stark_ros_msgs has no TargetStatusArray in this build (multi-target tracker not merged)')
    from stark_ros.console.bridge import ConsoleState, STALE_AFTER_SEC
    from stark_ros.console.node import status_message_type
    from stark_ros.ros.messages import make_detection, xywh_to_bbox
    from std_msgs.msg import Header
    assert status_message_type() is msgs.TargetStatusArray
    clock = Clock()
    state = ConsoleState('raw', clock=clock)
    header = Header(stamp=make_stamp(9), frame_id='cam')
    state.put_detection(make_detection(header, (10.0, 20.0, 30.0, 40.0), 0.2, 'a', 'object'))
    array = msgs.TargetStatusArray(header=header)
    a = msgs.TargetStatus(header=header, id='a', state='uncertain', score=0.2)
    b = msgs.TargetStatus(header=header, id='b', state='lost', score=0.05)
    xywh_to_bbox((1.0, 2.0, 3.0, 4.0), b.box)
    array.targets = [a, b]
    state.put_status(array)
    targets = {t['id']: t for t in state.snapshot()['targets']}
    assert targets['a']['state'] == 'uncertain' and targets['a']['box'] == [10.0, 20.0, 30.0, 40.0]
    assert targets['b']['state'] == 'lost' and targets['b']['box'] == [1.0, 2.0, 3.0, 4.0]
    assert targets['b']['status']['header']['stamp'] == [1009, 1009]
    clock.now += STALE_AFTER_SEC + 0.1
    assert {t['state'] for t in state.snapshot()['targets']} == {'stale'}
