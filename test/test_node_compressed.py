"""``image_transport: compressed``: the node tracks ``sensor_msgs/CompressedImage`` (JPEG, PNG) as it tracks the same
frames sent raw, over real DDS, with the shipped STARK-lite0 model on real frames of ``../shared/eval/crossing``.

What is compared, and the tolerances:

* PNG is lossless, so PNG frames decode to the raw frames' exact pixels: the boxes must equal the raw run's to
  float rounding (``EXACT_TOL``).
* JPEG (quality 95, image_transport's default) changes pixels by a few grey levels; the boxes then differ from the
  raw run by what those pixels change in the network, which is not a decoding property. The check is therefore
  two-fold: (1) the node's boxes equal, to float rounding, a ROS-free :class:`StarkTracker` run on
  ``cv2.imdecode`` of the very bytes sent (the node tracks exactly the decoded pixels: nothing is lost or
  reordered in transport); this is the check that catches a colour swap or a shifted image; (2) against the raw
  run each box keeps IoU >= ``JPEG_MIN_IOU`` and its centre within ``JPEG_CENTRE_TOL_PX``. That tolerance is the
  model's sensitivity, not the codec's: q95 re-encoding changes these frames by 0.1 grey level on average, yet moves
  the shipped model's box by up to 3.2 px (centre) and 2.7 px (size), IoU 0.92, on a target of 157 px diagonal
  over these 9 tracked frames (measured 2026-12, eager torch fp32): the same order as shifting the image by one
  pixel (5.9 px). 5 px (3 % of the diagonal) and IoU 0.85 leave room for other CPUs' rounding; a lost track or
  a wrong frame is off by tens of pixels.
"""
import numpy as np
import pytest

from conftest import wait_for
from node_io_helpers import Feeder, det_box, real_frames

N_FRAMES = 10
EXACT_TOL = 1e-3          # pixels
JPEG_MIN_IOU = 0.75       # crossing's walker is 25 x 28 px: the measured 1.8 px shift gives IoU 0.80
JPEG_CENTRE_TOL_PX = 5.0


def _iou(a, b):
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax2, bx2) - max(a[0], b[0]))
    ih = max(0.0, min(ay2, by2) - max(a[1], b[1]))
    inter = iw * ih
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


@pytest.fixture(scope='module')
def frames():
    # crossing: JPEG re-encoding moves the shipped model's boxes by 1.8 px there; on bag, human7, jogging1 and david
    # the model jumps to another object after re-encoding (shift 28-81 px), see README, compressed input
    return real_frames('crossing', N_FRAMES)


def _start(runner, namespace, transport, cli_args=None):
    from rclpy.parameter import Parameter
    from stark_ros.ros.tracker_node import TrackerNode
    node = TrackerNode(context=runner.context, namespace=namespace, cli_args=cli_args,
                       parameter_overrides=[Parameter('image_transport', value=transport),
                                            Parameter('device', value='cpu')])
    return runner.add(node)


def _track(feeder, msgs, box):
    """Initialise on msgs[0] and feed the others lock-step; the boxes of frames 1..N-1."""
    response = feeder.init(msgs[0], box)
    assert response.success, response.message
    boxes = []
    for msg in msgs[1:]:
        det = feeder.feed(msg)
        assert det is not None, 'no detection for a good frame'
        boxes.append(det_box(det))
    return np.array(boxes)


def _raw_msgs(feeder, frames):
    from stark_ros.ros.image_conversion import array_to_image_msg
    return [array_to_image_msg(bgr, 'bgr8', stamp=feeder.stamp(), frame_id='cam') for bgr in frames]


def _compressed_msgs(feeder, frames, codec):
    from stark_ros.ros.compressed import compressed_msg, encode_bgr
    return [compressed_msg(encode_bgr(bgr, codec), codec, stamp=feeder.stamp(), frame_id='cam') for bgr in frames]


@pytest.fixture(scope='module')
def raw_boxes(ros_runner, ros_namespace, frames):
    images, box = frames
    namespace = ros_namespace + '/raw'
    node = _start(ros_runner, namespace, 'raw')
    feeder = Feeder(ros_runner, namespace, node)
    try:
        yield _track(feeder, _raw_msgs(feeder, images), box)
    finally:
        feeder.close()
        ros_runner.remove(node)


@pytest.fixture(scope='module')
def compressed(ros_runner, ros_namespace):
    """A compressed-input node whose ``image`` is remapped to ``cam/image_raw``, and its feeder."""
    namespace = ros_namespace + '/compressed'
    node = _start(ros_runner, namespace, 'compressed', cli_args=['--ros-args', '-r', 'image:=cam/image_raw'])
    feeder = Feeder(ros_runner, namespace, node, compressed=True, image_topic='cam/image_raw')
    yield node, feeder
    feeder.close()
    ros_runner.remove(node)


def test_subscribes_to_the_resolved_image_topic_plus_compressed(compressed, ros_namespace):
    node, _ = compressed
    assert node.get_parameter('image_transport').value == 'compressed'
    assert node._image_sub.topic_name == ros_namespace + '/compressed/cam/image_raw/compressed'


def test_jpeg_tracks_the_decoded_pixels_and_like_raw(compressed, frames, raw_boxes):
    import cv2
    from stark_ros.ros.compressed import compressed_msg_to_rgb
    from stark_ros.tracker import StarkTracker

    node, feeder = compressed
    images, box = frames
    msgs = _compressed_msgs(feeder, images, 'jpeg')
    assert msgs[0].format == 'bgr8; jpeg compressed bgr8'
    boxes = _track(feeder, msgs, box)

    # (1) exactly what a ROS-free tracker gives on cv2.imdecode of the bytes sent
    reference = StarkTracker.from_checkpoint('', device='cpu')
    decoded = [cv2.cvtColor(cv2.imdecode(np.frombuffer(bytes(m.data), np.uint8), cv2.IMREAD_COLOR),
                            cv2.COLOR_BGR2RGB) for m in msgs]
    assert np.array_equal(compressed_msg_to_rgb(msgs[3]), decoded[3])
    reference.initialize(decoded[0], box)
    expected = np.array([reference.track(rgb).box for rgb in decoded[1:]])
    np.testing.assert_allclose(boxes, expected, rtol=0, atol=EXACT_TOL)

    # (2) like the raw frames, within the JPEG re-encoding error
    centre = lambda b: b[:, :2] + b[:, 2:] / 2.0  # noqa: E731
    shift = np.abs(centre(boxes) - centre(raw_boxes)).max()
    ious = [_iou(a, b) for a, b in zip(boxes, raw_boxes)]
    print('JPEG vs raw: max centre shift %.3f px, min IoU %.4f' % (shift, min(ious)))
    assert shift <= JPEG_CENTRE_TOL_PX and min(ious) >= JPEG_MIN_IOU, (boxes, raw_boxes)


def test_png_tracks_exactly_like_raw(compressed, frames, raw_boxes):
    node, feeder = compressed
    images, box = frames
    msgs = _compressed_msgs(feeder, images, 'png')
    msgs[2].format = 'png'           # cv_bridge's plain format string works too
    boxes = _track(feeder, msgs, box)
    np.testing.assert_allclose(boxes, raw_boxes, rtol=0, atol=EXACT_TOL)


def test_corrupt_data_is_skipped_counted_and_the_next_frame_tracked(compressed, frames):
    from stark_ros.ros.compressed import compressed_msg, encode_bgr

    node, feeder = compressed
    images, box = frames
    good = [encode_bgr(bgr, 'jpeg') for bgr in images[:4]]
    assert feeder.init(compressed_msg(good[0], 'jpeg', stamp=feeder.stamp()), box).success
    assert feeder.feed(compressed_msg(good[1], 'jpeg', stamp=feeder.stamp())) is not None
    rng = np.random.default_rng(0)
    sos = good[2].index(b'\xff\xda')                                      # JPEG start-of-scan marker
    png = encode_bgr(images[2], 'png')
    idat = png.index(b'IDAT')
    corrupt = [
        ('jpeg', good[2][:sos] + b'\xff\xd9'),          # complete headers, no image data: fails in cv2.imdecode
        ('png', png[:idat + 200] + rng.integers(0, 256, 3000, dtype=np.uint8).tobytes() + png[-12:]),  # bad IDAT
        ('jpeg', good[2][:len(good[2]) // 2]),            # truncated (no EOI marker)
        ('jpeg', good[2][:1000] + rng.integers(0, 256, 4000, dtype=np.uint8).tobytes()),  # garbage after the header
        ('jpeg', rng.integers(0, 256, 5000, dtype=np.uint8).tobytes()),    # not a JPEG at all
        ('png', good[2]),                                 # JPEG data announced as PNG
        ('jpeg', b''),                                    # empty
    ]
    before = node.stats()
    for count, (codec, data) in enumerate(corrupt, 1):
        # one at a time: the worker decodes only the newest image (an older one would be dropped unread)
        assert feeder.publish(compressed_msg(data, codec, stamp=feeder.stamp()))
        assert wait_for(lambda: node.stats()['rejected'] - before['rejected'] >= count, 20.0), (count, node.stats())
    assert wait_for(lambda: not node.stats()['busy'], 20.0)
    after = node.stats()
    assert after['rejected'] - before['rejected'] == len(corrupt)
    assert after['errors'] == before['errors'] and after['processed'] == before['processed']
    assert feeder.detections.empty()
    unsupported = compressed_msg(good[2], 'jpeg', stamp=feeder.stamp())
    unsupported.format = 'bgr8; webp compressed bgr8'
    assert feeder.publish(unsupported)
    assert node.stats()['rejected'] - after['rejected'] == 1
    det = feeder.feed(compressed_msg(good[3], 'jpeg', stamp=feeder.stamp()))
    assert det is not None, 'the next good frame was not tracked'
    assert node.stats()['processed'] == before['processed'] + 1
