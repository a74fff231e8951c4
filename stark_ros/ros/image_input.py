"""The node's image input, chosen by the read-only parameter ``image_transport`` (image_transport's names):

* ``raw``: ``sensor_msgs/msg/Image`` on ``image`` (:mod:`stark_ros.ros.image_conversion`);
* ``compressed``: ``sensor_msgs/msg/CompressedImage`` (JPEG or PNG) on ``image/compressed``, where ``image`` is
  resolved first (namespace and remapping: ``-r image:=/camera/image_raw`` makes the node subscribe to
  ``/camera/image_raw/compressed``, as image_transport subscribers do) (:mod:`stark_ros.ros.compressed`).

Each input has a cheap ``size`` check for the subscription callback and a ``to_rgb`` conversion for the worker.
"""
from collections import namedtuple

from stark_ros.ros.compressed import check_compressed_msg, compressed_msg_to_rgb
from stark_ros.ros.image_conversion import check_image_msg, image_msg_to_rgb

#: Values of the ``image_transport`` parameter.
TRANSPORTS = ('raw', 'compressed')

#: ``message_class``: the ROS message class; ``size(msg) -> (width, height)`` pixels, validates without touching the
#: pixels (raises InvalidImageError); ``to_rgb(msg)`` -> (H, W, 3) uint8 RGB (raises InvalidImageError).
ImageInput = namedtuple('ImageInput', 'transport message_class size to_rgb')


def _raw_size(msg):
    check_image_msg(msg)
    return int(msg.width), int(msg.height)


def _compressed_size(msg):
    return check_compressed_msg(msg)[1:]


def transport_error(transport):
    """Why ``transport`` is not a valid ``image_transport`` value, or None when it is."""
    if transport in TRANSPORTS:
        return None
    return 'image_transport must be one of %s, got %r' % (', '.join(TRANSPORTS), transport)


def image_input(transport):
    """The :data:`ImageInput` of an ``image_transport`` value.

    Raises:
        ValueError: unknown transport.
    """
    if transport_error(transport):
        raise ValueError(transport_error(transport))
    from sensor_msgs.msg import CompressedImage, Image
    if transport == 'raw':
        return ImageInput('raw', Image, _raw_size, image_msg_to_rgb)
    return ImageInput('compressed', CompressedImage, _compressed_size, compressed_msg_to_rgb)


def input_topic(node, transport):
    """Topic the node subscribes to: ``image`` (relative, remappable) for raw, the resolved ``image`` name plus
    ``/compressed`` for compressed."""
    if transport == 'raw':
        return 'image'
    return node.resolve_topic_name('image') + '/compressed'
