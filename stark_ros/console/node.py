"""The console's ROS side: a node that listens to the tracker and calls its services.

Subscriptions (relative names, in the console's namespace; remap ``image`` as the tracker's):

* ``image`` (``sensor_msgs/Image``, parameter ``image_transport`` = ``raw``) or ``<image>/compressed``
  (``sensor_msgs/CompressedImage``, ``compressed``), sensor-data QoS, depth 1;
* ``detection`` (``vision_msgs/Detection2D``) and ``detections`` (``vision_msgs/Detection2DArray``): whichever the
  tracker publishes;
* ``status`` (``stark_ros_msgs/TargetStatusArray``, or ``TargetStatus``) when that message type exists in the
  installed stark_ros_msgs (each target's state: tracking, uncertain, lost);
* ``/diagnostics`` (``diagnostic_msgs/DiagnosticArray``): the status named after the tracker node.

Clients: ``<tracker_node>/init_target`` (``stark_ros_msgs/srv/InitTarget``) and ``<tracker_node>/reset``
(``stark_ros_msgs/srv/Reset`` with an ``id`` when that type exists, else ``std_srvs/srv/Trigger``: every target).
Every callback only stores the message in :class:`stark_ros.console.bridge.ConsoleState`.
"""
from rcl_interfaces.msg import IntegerRange, ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data

from stark_ros.console.bridge import ConsoleState
from stark_ros.ros.image_input import TRANSPORTS, image_input, input_topic, transport_error

NODE_NAME = 'stark_console'

#: name -> (default, ParameterDescriptor keyword arguments); all read-only (used at start-up).
PARAMETERS = {
    'host': ('127.0.0.1', dict(
        description='Address the web server binds to. 127.0.0.1 (default): this machine only. 0.0.0.0 exposes the '
                    'console (which can start and reset targets) to the network: use only on a trusted network.')),
    'port': (8080, dict(description='TCP port of the web server (0: any free port, printed at start).',
                        integer_range=[IntegerRange(from_value=0, to_value=65535, step=1)])),
    'tracker_node': ('stark_tracker', dict(
        description='Name of the tracker node (relative to the console namespace, or absolute): its services are '
                    '<tracker_node>/init_target and <tracker_node>/reset, its /diagnostics status is named after it.')),
    'image_transport': ('raw', dict(
        description='raw: sensor_msgs/Image on image; compressed: sensor_msgs/CompressedImage on <image>/compressed.',
        additional_constraints='one of: ' + ', '.join(TRANSPORTS))),
    'jpeg_quality': (80, dict(description='JPEG quality of the image the page shows (1..100).',
                              integer_range=[IntegerRange(from_value=1, to_value=100, step=1)])),
}


def reset_service_type():
    """``(service class, takes an id)``: ``stark_ros_msgs/srv/Reset`` (``string id``, empty = all) when installed,
    else ``std_srvs/srv/Trigger`` (resets every target)."""
    try:
        from stark_ros_msgs.srv import Reset
        return Reset, True
    except ImportError:
        from std_srvs.srv import Trigger
        return Trigger, False


def status_message_type():
    """The tracker's ``status`` message: ``stark_ros_msgs/msg/TargetStatusArray`` (every target on one image) or
    ``TargetStatus`` (one target) when installed, else None (the console then derives the states itself)."""
    try:
        import stark_ros_msgs.msg as msgs
    except ImportError:
        return None
    return getattr(msgs, 'TargetStatusArray', None) or getattr(msgs, 'TargetStatus', None)


class ConsoleNode(Node):
    """The console's rclpy node (see the module docstring). ``state`` is its :class:`ConsoleState`.

    Raises:
        ValueError: a parameter of the wrong type or out of range, a bad ``image_transport`` or ``tracker_node``.
    """

    def __init__(self, **kwargs):
        super().__init__(NODE_NAME, **kwargs)
        p = {}
        for name, (default, descriptor) in PARAMETERS.items():
            try:
                self.declare_parameter(name, default, ParameterDescriptor(read_only=True, **descriptor))
                p[name] = self.get_parameter(name).value
            except Exception as err:  # noqa: BLE001 - rclpy's exceptions for a wrong type, range or an empty value
                raise ValueError('parameter %s: %s (%s)' % (name, err, type(err).__name__)) from err
            if type(p[name]) is not type(default):
                raise ValueError('parameter %s must be a %s, got %r' % (name, type(default).__name__, p[name]))
        if transport_error(p['image_transport']):
            raise ValueError(transport_error(p['image_transport']))
        tracker = p['tracker_node'].strip().rstrip('/')
        if not tracker or any(c.isspace() for c in tracker):
            raise ValueError('tracker_node must be a node name, got %r' % p['tracker_node'])
        self.host, self.port = p['host'], int(p['port'])
        self.tracker_name = self.resolve_topic_name(tracker)   # fully qualified: /ns/stark_tracker
        self.state = ConsoleState(p['image_transport'], self.tracker_name, p['jpeg_quality'])

        from diagnostic_msgs.msg import DiagnosticArray
        from stark_ros_msgs.srv import InitTarget
        from vision_msgs.msg import Detection2D, Detection2DArray

        image_qos = QoSProfile(depth=1, history=qos_profile_sensor_data.history,
                               reliability=qos_profile_sensor_data.reliability,
                               durability=qos_profile_sensor_data.durability)
        inp = image_input(p['image_transport'])
        self._image_sub = self.create_subscription(inp.message_class, input_topic(self, inp.transport),
                                                   self.state.put_image, image_qos)
        self._detection_sub = self.create_subscription(Detection2D, 'detection', self.state.put_detection, 10)
        self._detections_sub = self.create_subscription(Detection2DArray, 'detections', self.state.put_detections, 10)
        status_type = status_message_type()
        self._status_sub = (self.create_subscription(status_type, 'status', self.state.put_status, 10)
                            if status_type is not None else None)
        self._diag_sub = self.create_subscription(DiagnosticArray, '/diagnostics', self.state.put_diagnostics, 10)
        self.reset_type, self.reset_takes_id = reset_service_type()
        self.init_client = self.create_client(InitTarget, self.tracker_name + '/init_target')
        self.reset_client = self.create_client(self.reset_type, self.tracker_name + '/reset')
        self._service_timer = self.create_timer(1.0, self._check_services)
        self._check_services()

    def _check_services(self):
        """Timer (1 Hz): whether the tracker's services are reachable, for the page."""
        self.state.set_services(tracker=self.tracker_name, init_target=self.init_client.service_is_ready(),
                                reset=self.reset_client.service_is_ready(),
                                reset_type=self.reset_type.__module__.split('.')[0] + '/srv/' + self.reset_type.__name__,
                                status_topic=self._status_sub is not None)

    def call_init(self, request):
        """Send ``~/init_target`` for a checked :class:`stark_ros.console.validation.InitRequest`; returns the rclpy
        Future of the response (thread-safe: called from the web thread)."""
        from stark_ros.ros.messages import xywh_to_bbox
        from stark_ros_msgs.srv import InitTarget
        msg = InitTarget.Request()
        xywh_to_bbox(request.box, msg.box)
        msg.stamp.sec, msg.stamp.nanosec = request.stamp
        msg.id = request.target_id
        return self.init_client.call_async(msg)

    def call_reset(self, target_id):
        """Send ``~/reset`` for one target id ('' = all); returns the rclpy Future of the response.

        Raises:
            ValueError: a non-empty id while the tracker's reset is ``std_srvs/Trigger`` (it can reset all only)."""
        request = self.reset_type.Request()
        if self.reset_takes_id:
            request.id = target_id
        elif target_id:
            raise ValueError('this tracker resets every target at once (std_srvs/srv/Trigger); '
                             'reset all instead of %r' % target_id)
        return self.reset_client.call_async(request)
