"""Launch the STARK tracker node.

    ros2 launch stark_ros tracker.launch.py checkpoint:=/path/STARKST_ep0050.pth.tar image_topic:=/camera/image_raw

Arguments: ``checkpoint`` (empty = the shipped STARK-lite0 model; ``synthetic`` = test weights, boxes meaningless), ``device`` (auto/cpu/cuda/cuda:N),
``image_topic`` (remapped onto the node's ``image`` subscription). All other parameters come from the
installed ``config/tracker.yaml``.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue


def generate_launch_description():
    config = os.path.join(get_package_share_directory('stark_ros'), 'config', 'tracker.yaml')
    return LaunchDescription([
        DeclareLaunchArgument('checkpoint', default_value='',
                              description='STARK checkpoint file; empty = the shipped STARK-lite0 model; '
                                          '"synthetic" = test weights (boxes meaningless)'),
        DeclareLaunchArgument('device', default_value='auto',
                              description='torch device: auto, cpu, cuda or cuda:N'),
        DeclareLaunchArgument('image_topic', default_value='/camera/image_raw',
                              description='sensor_msgs/Image topic to track on'),
        Node(
            package='stark_ros',
            executable='tracker_node',
            name='stark_tracker',
            output='screen',
            parameters=[
                config,
                {
                    # value_type=str: an empty or numeric-looking path must stay a string parameter
                    'checkpoint': ParameterValue(LaunchConfiguration('checkpoint'), value_type=str),
                    'device': ParameterValue(LaunchConfiguration('device'), value_type=str),
                },
            ],
            remappings=[('image', LaunchConfiguration('image_topic'))],
        ),
    ])
