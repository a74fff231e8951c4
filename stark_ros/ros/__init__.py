"""ROS 2 side of stark_ros: image conversion, the ``tracker_node`` and the demo player (needs rclpy)."""
