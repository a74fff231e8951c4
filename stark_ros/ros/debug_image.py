"""The node's debug image: the tracked frame with the box, the target id, the confidence score and the search
region drawn by OpenCV, published on ``~/debug_image`` (``sensor_msgs/Image``, ``bgr8``) and
``~/debug_image/compressed`` (``sensor_msgs/CompressedImage``, JPEG) with the source image's header.

The node renders only while one of the two topics has a subscriber (``Publisher.get_subscription_count``), on the
worker thread after the detection is published, so the detection's latency never includes it. Drawing (pixels,
integer coordinates ``round(v)``):

* box: a rectangle in the colour of the target's state (:data:`STATE_COLOURS`: ``tracking`` green, ``uncertain``
  orange, ``lost`` red; :data:`BOX_COLOUR` without a state), 2 px thick, corners ``(round(x), round(y))`` and
  ``(round(x + w), round(y + h))``;
* search region: :data:`SEARCH_COLOUR` square, 1 px, the crop the tracker searched this frame (``search_factor``
  around the previous box, :func:`stark_ros.tracker.crop.crop_window`; it grows while the target is lost);
* label ``"<id> <score> <state>"`` above the box (without the score for a tracker without a score head, without the
  state when none is known), black on the box colour.

The demo's annotated video (:mod:`stark_ros.demo`) is drawn by the same functions.
"""
import cv2
import numpy as np

from stark_ros.tracker.crop import crop_window

#: Colours, BGR.
BOX_COLOUR = (0, 255, 0)
#: Box colour per target state (:mod:`stark_ros.tracker.target_state`), BGR: green, orange, red.
STATE_COLOURS = {'tracking': BOX_COLOUR, 'uncertain': (0, 160, 255), 'lost': (0, 0, 255)}
SEARCH_COLOUR = (255, 200, 0)
BOX_THICKNESS = 2


def box_colour(state=None):
    """BGR colour of a box in ``state`` ('tracking', 'uncertain', 'lost' or None: :data:`BOX_COLOUR`).

    Raises:
        ValueError: an unknown state.
    """
    if state is None:
        return BOX_COLOUR
    try:
        return STATE_COLOURS[state]
    except KeyError:
        raise ValueError('unknown target state %r (expected one of %s)' % (state, ', '.join(STATE_COLOURS))) \
            from None


def render_debug(rgb, box_xywh, target_id, score=None, search_xywh=None, state=None):
    """Draw one tracking result on a copy of the frame.

    Args:
        rgb: (H, W, 3) uint8 RGB frame (not modified).
        box_xywh: (x, y, w, h) of the detection, pixels.
        target_id: the target's id (label text).
        score: confidence in [0, 1], or None (no score head: no number in the label).
        search_xywh: optional (x, y, side, side) search region, pixels.
        state: optional target state ('tracking', 'uncertain', 'lost'): box colour and label.
    Returns:
        (H, W, 3) uint8 **BGR** array (ready for a ``bgr8`` Image or ``cv2.imencode``).
    Raises:
        ValueError: an unknown state.
    """
    return render_debug_many(rgb, [(box_xywh, target_id, score, search_xywh, state)])


def render_debug_many(rgb, items):
    """Draw several tracking results (one per target) on one copy of the frame.

    Args:
        rgb: (H, W, 3) uint8 RGB frame (not modified).
        items: ``(box_xywh, target_id, score, search_xywh[, state])`` tuples as the arguments of
            :func:`render_debug`.
    Returns:
        (H, W, 3) uint8 **BGR** array.
    """
    bgr = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)
    for item in items:
        draw_result(bgr, *item)
    return bgr


def draw_result(bgr, box_xywh, target_id, score=None, search_xywh=None, state=None):
    """Draw one result into the BGR image ``bgr`` in place (arguments as :func:`render_debug`)."""
    colour = box_colour(state)
    if search_xywh is not None:
        sx, sy, sw, sh = (float(v) for v in search_xywh)
        cv2.rectangle(bgr, (round(sx), round(sy)), (round(sx + sw), round(sy + sh)), SEARCH_COLOUR, 1)
    x, y, w, h = (float(v) for v in box_xywh)
    top_left, bottom_right = (round(x), round(y)), (round(x + w), round(y + h))
    cv2.rectangle(bgr, top_left, bottom_right, colour, BOX_THICKNESS)
    label = ' '.join([str(target_id)] + ([] if score is None else ['%.2f' % score])
                     + ([] if state is None else [state]))
    (text_w, text_h), baseline = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
    label_y = top_left[1] - BOX_THICKNESS if top_left[1] - text_h - baseline - BOX_THICKNESS >= 0 \
        else bottom_right[1] + text_h + baseline + BOX_THICKNESS
    cv2.rectangle(bgr, (top_left[0], label_y - text_h - baseline), (top_left[0] + text_w, label_y), colour,
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

    def publish(self, header, rgb, box_xywh, target_id, score=None, search_xywh=None, state=None):
        """Render (:func:`render_debug`) and publish with ``header`` to the topics that have subscribers."""
        return self.publish_many(header, rgb, [(box_xywh, target_id, score, search_xywh, state)])

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
