"""Launch the STARK tracker node.

    ros2 launch stark_ros tracker.launch.py checkpoint:=/path/STARKST_ep0050.pth.tar image_topic:=/camera/image_raw

Arguments: ``checkpoint`` (empty = the shipped STARK-lite0 model; ``synthetic`` = test weights, boxes meaningless),
``device`` (auto/cpu/cuda/cuda:N), ``image_topic`` (remapped onto the node's ``image`` subscription),
``image_transport`` (``raw``: ``sensor_msgs/Image`` on the image topic; ``compressed``: ``CompressedImage`` on
``<image_topic>/compressed``). All other parameters come from the installed ``config/tracker.yaml``.

``console:=true`` also starts the operator web console (``stark_console``, :mod:`stark_ros.console`) on the same image
topic: ``console_port`` (default 8080), ``console_host`` (default 127.0.0.1, this machine only),
``console_image_transport`` (raw or compressed; default: the tracker's ``image_transport``).

    ros2 launch stark_ros tracker.launch.py console:=true console_port:=8080

``lifecycle:=true`` starts the managed (lifecycle) node ``lifecycle_tracker_node`` instead of the plain
``tracker_node`` (the default), with the same name, parameters and remapping: it comes up unconfigured; bring it up
with ``ros2 lifecycle set /stark_tracker configure`` then ``... activate`` (or a lifecycle manager).

    ros2 launch stark_ros tracker.launch.py lifecycle:=true
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, GroupAction
from launch.conditions import IfCondition, UnlessCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node
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
        DeclareLaunchArgument('image_transport', default_value='raw',
                              description='raw: sensor_msgs/Image on image_topic; compressed: '
                                          'sensor_msgs/CompressedImage on <image_topic>/compressed'),
        DeclareLaunchArgument('lifecycle', default_value='false',
                              description='true: start the managed (lifecycle) node lifecycle_tracker_node instead '
                                          'of tracker_node; it starts unconfigured (ros2 lifecycle set /stark_tracker '
                                          'configure, then activate)'),
        GroupAction(
            condition=UnlessCondition(LaunchConfiguration('lifecycle')),
            actions=[Node(
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
                        'image_transport': ParameterValue(LaunchConfiguration('image_transport'), value_type=str),
                    },
                ],
                remappings=[('image', LaunchConfiguration('image_topic'))],
            )],
        ),
        LifecycleNode(
            package='stark_ros',
            executable='lifecycle_tracker_node',
            name='stark_tracker',
            namespace='',
            output='screen',
            condition=IfCondition(LaunchConfiguration('lifecycle')),
            parameters=[
                config,
                {
                    'checkpoint': ParameterValue(LaunchConfiguration('checkpoint'), value_type=str),
                    'device': ParameterValue(LaunchConfiguration('device'), value_type=str),
                    'image_transport': ParameterValue(LaunchConfiguration('image_transport'), value_type=str),
                },
            ],
            remappings=[('image', LaunchConfiguration('image_topic'))],
        ),
        DeclareLaunchArgument('console', default_value='false',
                              description='true: also start the operator web console (stark_ros console)'),
        DeclareLaunchArgument('console_port', default_value='8080', description='TCP port of the web console'),
        DeclareLaunchArgument('console_host', default_value='127.0.0.1',
                              description='address the web console binds to (127.0.0.1: this machine only)'),
        DeclareLaunchArgument('console_image_transport', default_value=LaunchConfiguration('image_transport'),
                              description='raw or compressed: the image the console takes (default: the '
                                          'tracker\'s image_transport)'),
        Node(
            package='stark_ros',
            executable='console',
            name='stark_console',
            output='screen',
            condition=IfCondition(LaunchConfiguration('console')),
            parameters=[{
                'port': ParameterValue(LaunchConfiguration('console_port'), value_type=int),
                'host': ParameterValue(LaunchConfiguration('console_host'), value_type=str),
                'image_transport': ParameterValue(LaunchConfiguration('console_image_transport'), value_type=str),
                'tracker_node': 'stark_tracker',
            }],
            remappings=[('image', LaunchConfiguration('image_topic'))],
        ),
    ])
