"""Helpers of the node input/output tests (compressed input, diagnostics, debug image): real frames of
``../shared/eval`` and a test node that feeds a ``stark_tracker`` node over real DDS one frame at a time."""
import queue
import time

import cv2

from conftest import make_stamp, wait_for
from dataset_layouts import source_sequence


def real_frames(name='bag', count=10):
    """``(frames, init box)``: the first ``count`` frames of a real sequence as (H, W, 3) uint8 BGR arrays (as the
    JPEG files decode) and the ground-truth box of frame 0 (x, y, w, h, pixels)."""
    paths, boxes = source_sequence(name, count)
    return [cv2.imread(path, cv2.IMREAD_COLOR) for path in paths], tuple(float(v) for v in boxes[0])


class Feeder:
    """A test node in ``namespace`` that publishes images to a tracker node (raw ``Image`` on ``image``, or
    ``CompressedImage`` on ``image_topic`` + ``/compressed``), collects its ``detection`` messages and calls its
    ``~/init_target``.

    ``feed`` is lock-step: it publishes one frame, re-sends it only while the node's ``received`` + ``rejected``
    counters show that it never arrived (best-effort QoS may drop a sample; a duplicate would be tracked twice),
    then waits for the frame's detection.
    """

    def __init__(self, runner, namespace, node, compressed=False, image_topic='image'):
        from sensor_msgs.msg import CompressedImage, Image
        from stark_ros_msgs.srv import InitTarget
        from vision_msgs.msg import Detection2D
        import rclpy

        self.runner, self.tracker_node = runner, node
        self.node = rclpy.create_node('stark_io_feeder', namespace=namespace, context=runner.context)
        if compressed:
            self.image_pub = self.node.create_publisher(CompressedImage, image_topic + '/compressed', 10)
        else:
            self.image_pub = self.node.create_publisher(Image, image_topic, 10)
        self.detections = queue.Queue()
        self.detection_sub = self.node.create_subscription(Detection2D, 'detection', self.detections.put, 50)
        self.init_client = self.node.create_client(InitTarget, 'stark_tracker/init_target')
        runner.add(self.node)
        assert wait_for(lambda: self.image_pub.get_subscription_count() >= 1
                        and self.detection_sub.get_publisher_count() >= 1 and self.init_client.service_is_ready(),
                        20.0), 'tracker node not discovered'
        self._stamps = iter(range(1, 10 ** 6))

    def stamp(self):
        return make_stamp(next(self._stamps), base_sec=7000)

    def _arrived(self):
        stats = self.tracker_node.stats()
        return stats['received'] + stats['rejected']

    def publish(self, msg, timeout=15.0):
        """Publish ``msg`` until the node counted it (received or rejected); True when it did."""
        before = self._arrived()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.image_pub.publish(msg)
            if wait_for(lambda: self._arrived() > before, 1.0):
                return True
        return False

    def init(self, msg, box_xywh):
        """Buffer ``msg`` and initialise the target on it by stamp; returns the service response."""
        from stark_ros.ros.messages import xywh_to_bbox
        from stark_ros_msgs.srv import InitTarget
        assert self.publish(msg), 'init image never arrived'
        request = InitTarget.Request()
        xywh_to_bbox(box_xywh, request.box)
        request.stamp = msg.header.stamp
        future = self.init_client.call_async(request)
        assert wait_for(future.done, 60.0), 'init_target did not answer'
        return future.result()

    def feed(self, msg, timeout=30.0):
        """Publish one frame and return its detection (None if none arrives within ``timeout`` s)."""
        assert self.publish(msg), 'image never arrived'
        return detection_with_stamp(self.detections, msg.header.stamp, timeout)

    def close(self):
        self.runner.remove(self.node)


def detection_with_stamp(detections, stamp, timeout=30.0):
    """Take detections from the queue ``detections`` until the one of the image with ``stamp`` (returned); None
    after ``timeout`` seconds. Detections of other images are dropped."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            det = detections.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            return None
        if det.header.stamp == stamp:
            return det
    return None


def det_box(det):
    """A Detection2D's box as (x, y, w, h), pixels."""
    b = det.bbox
    return (b.center.position.x - b.size_x / 2.0, b.center.position.y - b.size_y / 2.0, b.size_x, b.size_y)
