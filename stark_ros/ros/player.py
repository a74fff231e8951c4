"""``stark_player``: publish the frames of a video file or image folder as ``sensor_msgs/Image`` on ``image``.

Stamps are the publication time (``now``), so consumers can measure latency from the image stamp. Sensor-data
QoS (best effort, keep last 1), as a camera driver would publish. Used by the demo (``python -m stark_ros.demo``)
and runnable alone: ``python -m stark_ros.ros.player --input VIDEO [--rate HZ] [--loop]``.
"""
import argparse
import sys
import time

import rclpy
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from stark_ros.io import open_frames
from stark_ros.ros.image_conversion import rgb_to_image_msg


class VideoPlayer(Node):
    """A node that publishes given RGB frames as images on ``image`` (relative topic name).

    Args:
        encoding: encoding of the published images ('bgr8' like most camera drivers, or 'rgb8', ...).
        frame_id: ``header.frame_id`` of every image (the camera's optical frame).
        **kwargs: passed to :class:`rclpy.node.Node` (``context``, ``namespace``...).
    """

    def __init__(self, encoding='bgr8', frame_id='camera', node_name='stark_player', **kwargs):
        super().__init__(node_name, **kwargs)
        self.encoding = encoding
        self.frame_id = frame_id
        self.publisher = self.create_publisher(Image, 'image', qos_profile_sensor_data)

    def publish_frame(self, frame):
        """Publish one frame stamped now; returns the stamp (``builtin_interfaces/Time``).

        ``frame`` is an (H, W, 3) uint8 RGB array (encoded here), or a ready ``sensor_msgs/Image`` (for example
        from :func:`~stark_ros.ros.image_conversion.rgb_to_image_msg`), which is only re-stamped, as a camera driver
        would hand it over.
        """
        stamp = self.get_clock().now().to_msg()
        if isinstance(frame, Image):
            frame.header.stamp = stamp
            self.publisher.publish(frame)
        else:
            self.publisher.publish(rgb_to_image_msg(frame, self.encoding, stamp=stamp, frame_id=self.frame_id))
        return stamp


def play(player, frames, rate_hz, on_frame=None):
    """Publish ``frames`` at ``rate_hz`` (absolute schedule, no drift); calls ``on_frame(index, rgb, stamp)``.

    Returns the number of frames published.
    """
    period = 1.0 / rate_hz
    start = time.monotonic()
    count = 0
    for index, rgb in enumerate(frames):
        delay = start + index * period - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        stamp = player.publish_frame(rgb)
        if on_frame is not None:
            on_frame(index, rgb, stamp)
        count += 1
    return count


def main(argv=None):
    """Console entry: play a video or image folder on ``image`` until it ends (or forever with --loop)."""
    parser = argparse.ArgumentParser(prog='python -m stark_ros.ros.player', description=__doc__.split('\n')[0])
    parser.add_argument('--input', required=True, help='video file or folder of images')
    parser.add_argument('--rate', type=float, default=None, help='frames per second (default: the video\'s, or 30)')
    parser.add_argument('--encoding', default='bgr8')
    parser.add_argument('--frame-id', default='camera')
    parser.add_argument('--loop', action='store_true')
    args, ros_args = parser.parse_known_args(argv)
    try:
        source = open_frames(args.input)
    except (OSError, ValueError) as error:
        print('stark_player: error: %s' % error, file=sys.stderr)
        return 2
    rclpy.init(args=ros_args)
    player = VideoPlayer(args.encoding, args.frame_id)
    try:
        while True:
            play(player, source, args.rate or source.fps or 30.0)
            if not args.loop:
                break
    except KeyboardInterrupt:
        pass
    finally:
        player.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
