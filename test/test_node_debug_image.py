"""``~/debug_image``: rendered only while someone subscribes (counted by the node, no mock), published with the
source image's header, the box drawn where the detection says in the colour of the target's state on ``status``;
``~/debug_image/compressed`` decodes to the same picture. Real DDS, shipped lite0 model, real frames of ``../shared/eval/bag``."""
import queue

import cv2
import numpy as np
import pytest

from conftest import wait_for
from node_io_helpers import Feeder, det_box, real_frames
from stark_ros.ros.debug_image import BOX_COLOUR, STATE_COLOURS, box_colour, render_debug


@pytest.fixture(scope='module')
def setup(ros_runner, ros_namespace):
    from rclpy.parameter import Parameter
    from stark_ros.ros.tracker_node import TrackerNode
    namespace = ros_namespace + '/debug'
    node = ros_runner.add(TrackerNode(context=ros_runner.context, namespace=namespace,
                                      parameter_overrides=[Parameter('device', value='cpu')]))
    feeder = Feeder(ros_runner, namespace, node)
    yield node, feeder
    feeder.close()
    ros_runner.remove(node)


def _edge_pixels(bgr, box):
    """Pixels on the four sides of the box's drawn rectangle (corners round(x), round(y), round(x+w), round(y+h)),
    away from the label above the top-left corner."""
    x, y, w, h = box
    x1, y1, x2, y2 = round(x), round(y), round(x + w), round(y + h)
    xs, ys = np.arange(x1 + 3, x2 - 2), np.arange(y1 + 3, y2 - 2)
    return np.concatenate([bgr[y2, xs], bgr[ys, x1], bgr[ys, x2]])


def test_no_subscriber_no_rendering_then_the_box_drawn_with_the_image_header(setup):
    from sensor_msgs.msg import CompressedImage, Image
    from stark_ros.ros.compressed import compressed_msg_to_rgb
    from stark_ros.ros.image_conversion import array_to_image_msg, image_msg_to_array

    node, feeder = setup
    images, box = real_frames('bag', 8)
    msgs = [array_to_image_msg(bgr, 'bgr8', stamp=feeder.stamp(), frame_id='cam_optical') for bgr in images]
    assert feeder.init(msgs[0], box).success
    for msg in msgs[1:4]:
        assert feeder.feed(msg) is not None
    assert node.stats()['debug_renders'] == 0, 'rendered without a subscriber'

    from stark_ros_msgs.msg import TargetStatusArray
    raw, compressed, statuses = queue.Queue(), queue.Queue(), queue.Queue()
    status_sub = feeder.node.create_subscription(TargetStatusArray, 'status', statuses.put, 10)
    raw_sub = feeder.node.create_subscription(Image, 'stark_tracker/debug_image', raw.put, 10)
    compressed_sub = feeder.node.create_subscription(CompressedImage, 'stark_tracker/debug_image/compressed',
                                                     compressed.put, 10)
    assert wait_for(lambda: raw_sub.get_publisher_count() >= 1 and compressed_sub.get_publisher_count() >= 1, 20.0)
    assert wait_for(lambda: node._debug.wanted(), 20.0)

    for index in (4, 5):
        msg = msgs[index]
        det = feeder.feed(msg)
        assert det is not None
        image = raw.get(timeout=20.0)
        while image.header.stamp != msg.header.stamp:   # an image of an earlier frame may still be queued
            image = raw.get(timeout=20.0)
        assert image.header.frame_id == 'cam_optical' and image.encoding == 'bgr8'
        assert (image.width, image.height) == (msg.width, msg.height)
        bgr = image_msg_to_array(image)
        source = images[index]
        status = statuses.get(timeout=20.0)
        while status.header.stamp != msg.header.stamp:
            status = statuses.get(timeout=20.0)
        colour = box_colour(status.targets[0].state)
        edges = _edge_pixels(bgr, det_box(det))
        assert (edges == colour).all(axis=1).mean() > 0.95      # the box is drawn where the detection is, in its state's colour
        assert (_edge_pixels(source, det_box(det)) == colour).all(axis=1).mean() < 0.05   # not the photo's
        changed = np.any(bgr != source, axis=2)
        assert changed.mean() < 0.1          # only lines and the label are drawn: the photo is otherwise intact

        jpeg = compressed.get(timeout=20.0)
        while jpeg.header.stamp != msg.header.stamp:
            jpeg = compressed.get(timeout=20.0)
        assert jpeg.header.frame_id == 'cam_optical' and 'jpeg' in jpeg.format
        decoded = cv2.cvtColor(compressed_msg_to_rgb(jpeg), cv2.COLOR_RGB2BGR)
        assert np.abs(decoded.astype(int) - bgr.astype(int)).mean() < 3.0    # the same picture, JPEG-coded

    assert wait_for(lambda: not node.stats()['busy'], 20.0)     # the last render runs after its detection
    assert node.stats()['debug_renders'] == 2
    feeder.node.destroy_subscription(raw_sub)
    feeder.node.destroy_subscription(compressed_sub)
    feeder.node.destroy_subscription(status_sub)
    assert wait_for(lambda: not node._debug.wanted(), 20.0)
    assert feeder.feed(msgs[6]) is not None
    assert wait_for(lambda: not node.stats()['busy'], 20.0)     # a render would come after the detection
    assert node.stats()['debug_renders'] == 2, 'rendered after the subscribers left'


def test_box_colour_and_label_follow_the_target_state():
    """Each state draws its own colour (the demo's annotated video uses the same renderer); unknown states are
    refused; the label names the state (the label area differs between states' texts)."""
    rgb = np.full((120, 160, 3), 90, np.uint8)
    box = (40.0, 50.0, 60.0, 40.0)
    assert len({STATE_COLOURS[s] for s in ('tracking', 'uncertain', 'lost')}) == 3
    assert box_colour(None) == BOX_COLOUR
    for state, colour in STATE_COLOURS.items():
        bgr = render_debug(rgb, box, 'walker', 0.42, (20.0, 30.0, 100.0, 100.0), state=state)
        assert (_edge_pixels(bgr, box) == colour).all(axis=1).mean() > 0.95
    text = [(render_debug(rgb, box, 'walker', 0.42, state=s)[:50] == 0).all(axis=2) for s in ('tracking', 'lost')]
    assert text[0].any() and np.any(text[0] != text[1])     # black label text, different words
    with pytest.raises(ValueError, match='unknown target state'):
        render_debug(rgb, box, 'walker', 0.42, state='gone')
