"""The node's debug image: the tracked frame with the box, the target id, the confidence score and the search
region drawn by OpenCV, published on ``~/debug_image`` (``sensor_msgs/Image``, ``bgr8``) and
``~/debug_image/compressed`` (``sensor_msgs/CompressedImage``, JPEG) with the source image's header.

The node renders only while one of the two topics has a subscriber (``Publisher.get_subscription_count``), on the
worker thread after the detection is published, so the detection's latency never includes it. Drawing (pixels,
integer coordinates ``round(v)``):

* box: :data:`BOX_COLOUR` rectangle, 2 px thick, corners ``(round(x), round(y))`` and ``(round(x + w), round(y + h))``;
* search region: :data:`SEARCH_COLOUR` square, 1 px, the crop the tracker searched this frame (``search_factor``
  around the previous box, :func:`stark_ros.tracker.crop.crop_window`);
* label ``"<id> <score>"`` above the box (``"<id>"`` without a score head), black on the box colour.
"""
import cv2
import numpy as np

from stark_ros.tracker.crop import crop_window

#: Colours, BGR.
BOX_COLOUR = (0, 255, 0)
SEARCH_COLOUR = (0, 200, 255)
BOX_THICKNESS = 2


def render_debug(rgb, box_xywh, target_id, score=None, search_xywh=None):
    """Draw one tracking result on a copy of the frame.

    Args:
        rgb: (H, W, 3) uint8 RGB frame (not modified).
        box_xywh: (x, y, w, h) of the detection, pixels.
        target_id: the target's id (label text).
        score: confidence in [0, 1], or None (no score head: no number in the label).
        search_xywh: optional (x, y, side, side) search region, pixels.
    Returns:
        (H, W, 3) uint8 **BGR** array (ready for a ``bgr8`` Image or ``cv2.imencode``).
    """
    return render_debug_many(rgb, [(box_xywh, target_id, score, search_xywh)])


def render_debug_many(rgb, items):
    """Draw several tracking results (one per target) on one copy of the frame.

    Args:
        rgb: (H, W, 3) uint8 RGB frame (not modified).
        items: ``(box_xywh, target_id, score, search_xywh)`` tuples as the arguments of :func:`render_debug`.
    Returns:
        (H, W, 3) uint8 **BGR** array.
    """
    bgr = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)
    for box_xywh, target_id, score, search_xywh in items:
        _draw(bgr, box_xywh, target_id, score, search_xywh)
    return bgr


def _draw(bgr, box_xywh, target_id, score, search_xywh):
    """Draw one result into ``bgr`` in place (see :func:`render_debug`)."""
    if search_xywh is not None:
        sx, sy, sw, sh = (float(v) for v in search_xywh)
        cv2.rectangle(bgr, (round(sx), round(sy)), (round(sx + sw), round(sy + sh)), SEARCH_COLOUR, 1)
    x, y, w, h = (float(v) for v in box_xywh)
    top_left, bottom_right = (round(x), round(y)), (round(x + w), round(y + h))
    cv2.rectangle(bgr, top_left, bottom_right, BOX_COLOUR, BOX_THICKNESS)
    label = str(target_id) if score is None else '%s %.2f' % (target_id, score)
    (text_w, text_h), baseline = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
    label_y = top_left[1] - BOX_THICKNESS if top_left[1] - text_h - baseline - BOX_THICKNESS >= 0 \
        else bottom_right[1] + text_h + baseline + BOX_THICKNESS
    cv2.rectangle(bgr, (top_left[0], label_y - text_h - baseline), (top_left[0] + text_w, label_y), BOX_COLOUR,
                  cv2.FILLED)
    cv2.putText(bgr, label, (top_left[0], label_y - baseline), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1,
                cv2.LINE_AA)


def search_region(box, factor):
    """The search region around ``box`` (x, y, w, h pixels) as (x, y, side, side) pixels, or None without a box."""
    if box is None:
        return None
    x1, y1, side = crop_window(box, factor)
    return (x1, y1, side, side)


class DebugImagePublisher:
    """The two debug-image publishers of a node, and the render-only-when-watched rule.

    Args:
        node: the rclpy node (publishers ``~/debug_image`` and ``~/debug_image/compressed``, reliable, depth 1:
            rviz and ``rqt_image_view`` subscribe reliable by default).
        jpeg_quality: quality of the compressed image, 1..100.
        create_publisher: ``(msg_type, topic, qos_depth) -> publisher``; default ``node.create_publisher`` (a
            lifecycle node passes its ``create_lifecycle_publisher``).
    """

    def __init__(self, node, jpeg_quality=90, create_publisher=None):
        from sensor_msgs.msg import CompressedImage, Image
        create_publisher = create_publisher or node.create_publisher
        self.raw = create_publisher(Image, '~/debug_image', 1)
        self.compressed = create_publisher(CompressedImage, '~/debug_image/compressed', 1)
        self.jpeg_quality = int(jpeg_quality)

    def close(self, destroy_publisher):
        """Destroy both publishers with ``destroy_publisher`` (the node's ``destroy_publisher`` or
        ``destroy_lifecycle_publisher``)."""
        destroy_publisher(self.raw)
        destroy_publisher(self.compressed)

    def wanted(self):
        """Whether anyone subscribes to either topic (rendering is skipped otherwise)."""
        return self.raw.get_subscription_count() > 0 or self.compressed.get_subscription_count() > 0

    def publish(self, header, rgb, box_xywh, target_id, score=None, search_xywh=None):
        """Render (:func:`render_debug`) and publish with ``header`` to the topics that have subscribers."""
        return self.publish_many(header, rgb, [(box_xywh, target_id, score, search_xywh)])

    def publish_many(self, header, rgb, items):
        """Render every target (:func:`render_debug_many`) and publish with ``header`` to the topics that have
        subscribers."""
        from stark_ros.ros.compressed import compressed_msg, encode_bgr
        from stark_ros.ros.image_conversion import array_to_image_msg
        bgr = render_debug_many(rgb, items)
        if self.raw.get_subscription_count() > 0:
            self.raw.publish(array_to_image_msg(bgr, 'bgr8', header=header))
        if self.compressed.get_subscription_count() > 0:
            self.compressed.publish(compressed_msg(encode_bgr(bgr, 'jpeg', self.jpeg_quality), 'jpeg', header=header))
        return bgr
