"""stark_ros: the STARK transformer tracker (Yan et al., ICCV 2021) as a ROS 2 perception node.

Sub-packages:

* :mod:`stark_ros.model`   - the STARK networks (S50, ST50, ST101) and checkpoint loading.
* :mod:`stark_ros.tracker` - crop, pre-processing and the tracker itself (ROS-free, no rclpy import).
* :mod:`stark_ros.ros`     - image conversion, the ``tracker_node`` and the demo player (needs rclpy).
"""

__version__ = '0.1.0'
