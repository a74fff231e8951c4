"""Message helpers of the node: stamps, the box conversions between ``vision_msgs/BoundingBox2D`` (centre + size)
and the tracker's ``(x, y, w, h)`` (top-left + size, pixels), the ``init_target`` box checks, and the detection."""
import math

from vision_msgs.msg import Detection2D, ObjectHypothesisWithPose


def stamp_to_ns(stamp):
    """``builtin_interfaces/Time`` -> integer nanoseconds."""
    return int(stamp.sec) * 1000000000 + int(stamp.nanosec)


def format_stamp_ns(ns):
    """Integer nanoseconds -> ``'sec.nanosec'`` with 9 decimals (exact, no float rounding)."""
    return '%d.%09d' % divmod(int(ns), 1000000000)


def bbox_to_xywh(bbox):
    """``vision_msgs/BoundingBox2D`` (centre + size, pixels) -> ``(x, y, w, h)`` top-left + size, pixels."""
    cx, cy = float(bbox.center.position.x), float(bbox.center.position.y)
    w, h = float(bbox.size_x), float(bbox.size_y)
    return (cx - w / 2.0, cy - h / 2.0, w, h)


def xywh_to_bbox(box, bbox):
    """Write ``(x, y, w, h)`` (top-left + size, pixels) into ``bbox`` (BoundingBox2D, centre + size)."""
    x, y, w, h = (float(v) for v in box)
    bbox.center.position.x = x + w / 2.0
    bbox.center.position.y = y + h / 2.0
    bbox.center.theta = 0.0
    bbox.size_x = w
    bbox.size_y = h
    return bbox


def init_box_error(bbox):
    """Why an ``init_target`` box cannot be used whatever the image, or None: non-finite numbers, an empty size,
    a rotation, or a box so large that its corners are not finite."""
    numbers = (bbox.center.position.x, bbox.center.position.y, bbox.size_x, bbox.size_y, bbox.center.theta)
    if not all(math.isfinite(v) for v in numbers):
        return 'box has non-finite values (centre %r, %r, size %r x %r, theta %r)' % numbers
    if bbox.size_x <= 0 or bbox.size_y <= 0:
        return 'box size must be positive, got %g x %g pixels' % (bbox.size_x, bbox.size_y)
    if bbox.center.theta != 0.0:
        return 'rotated boxes are not supported (center.theta must be 0, got %g)' % bbox.center.theta
    if not all(math.isfinite(v) for v in bbox_to_xywh(bbox)):
        return 'box is too large (its corners are not finite numbers)'
    return None


def box_outside_error(box_xywh, width, height):
    """Why an ``(x, y, w, h)`` box does not overlap a ``width x height`` image, or None when it does."""
    x, y, w, h = box_xywh
    if x + w <= 0 or y + h <= 0 or x >= width or y >= height:
        return ('box (x %g, y %g, w %g, h %g, top-left + size) lies outside the %d x %d image'
                % (x, y, w, h, width, height))
    return None


def make_detection(header, box_xywh, score, target_id, class_id):
    """A ``vision_msgs/Detection2D`` for one tracked image: its ``header``, the box (pixels), one hypothesis with
    ``class_id`` and ``score``."""
    det = Detection2D()
    det.header = header
    det.id = target_id
    xywh_to_bbox(box_xywh, det.bbox)
    hyp = ObjectHypothesisWithPose()
    hyp.hypothesis.class_id = class_id
    hyp.hypothesis.score = float(score)
    det.results = [hyp]
    return det
