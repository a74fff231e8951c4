"""The ``stark_tracker`` node's parameters: the table (defaults, descriptors, ranges) and the checks a change must
pass before it is accepted.

Read-only parameters (``checkpoint``, ``variant``, ``device``, ``backend``, ``precision``, ``search_size``,
``num_threads``, ``image_transport``) take effect at start-up only. The tracker parameters (:data:`TRACKER_PARAMS` but ``search_size``)
take effect at the next ``~/init_target``; ``class_id``, ``frame_buffer_size``, ``frame_policy``, ``max_targets``,
the target-state parameters (:data:`MONITOR_PARAMS`, ``publish_when_lost``) and the ``diagnostics_*`` thresholds
immediately.
"""
import collections

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

from stark_ros.model.build import VARIANT_NAMES


def _float_range(lo, hi):
    return [FloatingPointRange(from_value=float(lo), to_value=float(hi), step=0.0)]


def _int_range(lo, hi, step=1):
    return [IntegerRange(from_value=int(lo), to_value=int(hi), step=int(step))]


#: Parameters that make a :class:`stark_ros.tracker.TrackerParams`.
TRACKER_PARAMS = ('template_factor', 'template_size', 'search_factor', 'search_size', 'update_interval',
                  'score_threshold')

FRAME_POLICIES = ('fresh', 'newest')

#: name -> (default value, ParameterDescriptor keyword arguments). Declared in this order.
PARAMETERS = collections.OrderedDict([
    ('checkpoint', ('', dict(
        description='Path of a STARK checkpoint (official .pth.tar, MMTracking .pth or stark_ros.train). Empty: '
                    'the shipped STARK-lite0 model. "synthetic": deterministic synthetic weights (seed 0) for '
                    'testing only -- the boxes are meaningless.',
        read_only=True))),
    ('variant', ('auto', dict(
        description='Network variant; auto = detect from the checkpoint (st50 for synthetic weights).',
        additional_constraints='one of: auto, ' + ', '.join(VARIANT_NAMES), read_only=True))),
    ('device', ('auto', dict(
        description='Torch device for inference; auto = cuda if available (and the backend can use it), else cpu.',
        additional_constraints='cpu, cuda, cuda:N or auto', read_only=True))),
    ('backend', ('auto', dict(
        description='Inference engine: auto (the fastest exact fp32 engine installed for the device: openvino on an '
                    'x86 CPU where the openvino package is installed, else torch; torch on CUDA; torch-fast for '
                    'reduced precisions without openvino; logged at start), torch (eager fp32, the reference), '
                    'torch-fast (folded BN, channels-last), openvino (x86 CPUs) or onnxruntime. See '
                    'stark_ros.backends.resolve_backend.',
        additional_constraints='one of: auto, torch, torch-fast, openvino, onnxruntime', read_only=True))),
    ('precision', ('fp32', dict(
        description='fp32 (reproduces the official tracker), bf16 (CPUs with avx512_bf16/AMX; boxes within about '
                    '1-2 px of fp32), fp16 (torch-fast on CUDA) or auto.',
        additional_constraints='one of: fp32, bf16, fp16, auto', read_only=True))),
    ('update_interval', (200, dict(
        description='Dynamic template refresh period in frames (ST only). Applied at the next init_target.',
        integer_range=_int_range(1, 1000000)))),
    ('score_threshold', (0.5, dict(
        description='The dynamic template is refreshed only when the confidence is above this (ST only). '
                    'Applied at the next init_target.',
        floating_point_range=_float_range(0.0, 1.0)))),
    ('class_id', ('object', dict(
        description='class_id written into every Detection2D hypothesis (STARK is class-agnostic).'))),
    ('template_factor', (2.0, dict(
        description='Template crop side = sqrt(w*h) * template_factor (memory bounded as for search_factor). '
                    'Applied at the next init_target.',
        floating_point_range=_float_range(0.5, 10.0)))),
    ('template_size', (128, dict(
        description='Template patch side fed to the network, pixels (multiple of 16). Lightning (128) and the '
                    'openvino / onnxruntime backends (compiled for the start-up value; backend auto picks openvino '
                    'on x86 CPUs) take only the size they were built for; other values are refused. Applied at the '
                    'next init_target.',
        integer_range=_int_range(16, 1024, 16)))),
    ('search_factor', (5.0, dict(
        description='Search crop side = sqrt(w*h) * search_factor. Crops over 4096 px are sampled straight into '
                    'the patch, so no value takes more than 48 MiB (stark_ros.tracker.crop.MAX_CROP_BYTES). Applied '
                    'at the next init_target.',
        floating_point_range=_float_range(1.0, 20.0)))),
    ('search_size', (320, dict(
        description='Search patch side fed to the network, pixels (multiple of 16); the network is built for '
                    'it (320 for the official checkpoints). Read-only.',
        integer_range=_int_range(16, 2048, 16), read_only=True))),
    ('num_threads', (0, dict(
        description='CPU threads for inference (torch intra-op threads, and the openvino / onnxruntime engines); '
                    '0 = auto = one less than the cores available to the process (affinity and cgroup quota; at '
                    'least 1), leaving a core to the executor, DDS and the camera driver. More threads than free '
                    'cores make every parallel operation wait for descheduled threads. Read-only.',
        integer_range=_int_range(0, 256), read_only=True))),
    ('image_transport', ('raw', dict(
        description='Image input: raw = sensor_msgs/Image on image; compressed = sensor_msgs/CompressedImage (JPEG or '
                    'PNG, as image_transport publishes) on <image>/compressed, decoded by the tracker thread. '
                    'Read-only.',
        additional_constraints='one of: raw, compressed', read_only=True))),
    ('frame_buffer_size', (30, dict(
        description='Number of recent images kept for init_target by stamp (memory: this many images).',
        integer_range=_int_range(1, 600)))),
    ('frame_policy', ('fresh', dict(
        description='Which image the tracker takes when it becomes free. fresh: if the newest image arrived '
                    'while the previous one was being tracked, wait for the next image (at most 1.5 camera '
                    'periods), so every detection is about an image that waited ~0 ms (lowest latency); '
                    'newest: take the newest image at once (more detections per second when the camera is '
                    'faster than the tracker, each up to one camera period older).',
        additional_constraints='one of: fresh, newest'))),
    ('max_targets', (8, dict(
        description='Largest number of targets tracked at once (one batched network call per image on every '
                    'backend). An init_target with a new id beyond it fails; lowering it keeps the targets already '
                    'tracked.',
        integer_range=_int_range(1, 64)))),
    ('uncertain_threshold', (0.5, dict(
        description='Target state: a frame with a confidence score at or above this is confident; a tracking '
                    'target with a lower score becomes uncertain (stark_ros.tracker.target_state).',
        floating_point_range=_float_range(0.0, 1.0)))),
    ('lost_threshold', (0.25, dict(
        description='Target state: lost_after_frames consecutive frames with a confidence score below this make '
                    'the target lost. Must not exceed uncertain_threshold.',
        floating_point_range=_float_range(0.0, 1.0)))),
    ('lost_after_frames', (5, dict(
        description='Consecutive frames below lost_threshold before a target is lost.',
        integer_range=_int_range(1, 1000)))),
    ('recover_after_frames', (3, dict(
        description='Consecutive confident frames before an uncertain or lost target is tracking again.',
        integer_range=_int_range(1, 1000)))),
    ('lost_search_growth', (1.5, dict(
        description='While lost, the search area factor is multiplied by this per lost frame, up to a search region '
                    'covering the whole image (crop memory stays bounded, 48 MiB); back to search_factor on the '
                    'first confident frame. 1 disables.',
        floating_point_range=_float_range(1.0, 4.0)))),
    ('publish_when_lost', (True, dict(
        description='Publish detections of lost targets (with their low score) on detection and detections; '
                    'false leaves them out (their status is still published).'))),
    ('diagnostics_min_processed_ratio', (0.5, dict(
        description='/diagnostics WARN while tracking when the processed rate is below this fraction of the input '
                    'rate (the tracker does not keep up; images are dropped). 0 disables.',
        floating_point_range=_float_range(0.0, 1.0)))),
    ('diagnostics_max_latency_ms', (500.0, dict(
        description='/diagnostics WARN when the end-to-end latency p95 (image stamp -> detection published) of the '
                    'last 5 s is above this, milliseconds. 0 disables.',
        floating_point_range=_float_range(0.0, 60000.0)))),
    ('diagnostics_stale_image_sec', (2.0, dict(
        description='/diagnostics ERROR when a target is set and no image arrived for this many seconds.',
        floating_point_range=_float_range(0.1, 3600.0)))),
])

#: Parameters that make a :class:`stark_ros.tracker.target_state.MonitorParams`.
MONITOR_PARAMS = ('uncertain_threshold', 'lost_threshold', 'lost_after_frames', 'recover_after_frames',
                  'lost_search_growth')

#: Parameters that make the diagnostics' :class:`stark_ros.ros.diagnostics.Thresholds`, by field name.
DIAGNOSTICS_PARAMS = {'diagnostics_min_processed_ratio': 'min_processed_ratio',
                      'diagnostics_max_latency_ms': 'max_latency_ms',
                      'diagnostics_stale_image_sec': 'stale_image_sec'}


def declare_parameters(node):
    """Declare every parameter of :data:`PARAMETERS` on ``node``, with its descriptor."""
    for name, (default, desc_kwargs) in PARAMETERS.items():
        node.declare_parameter(name, default, ParameterDescriptor(name=name, **desc_kwargs))


def frame_policy_error(value):
    """Why ``value`` is not a valid ``frame_policy``, or None when it is."""
    if value in FRAME_POLICIES:
        return None
    return 'frame_policy must be one of %s, got %r' % (', '.join(FRAME_POLICIES), value)


def monitor_params(values):
    """:class:`stark_ros.tracker.target_state.MonitorParams` from a ``{name: value}`` dict of
    :data:`MONITOR_PARAMS`.

    Raises:
        ValueError: inconsistent values (lost_threshold above uncertain_threshold).
    """
    from stark_ros.tracker.target_state import MonitorParams
    return MonitorParams(**{name: values[name] for name in MONITOR_PARAMS})


def tracker_params(values):
    """:class:`stark_ros.tracker.TrackerParams` from a ``{name: value}`` dict of :data:`TRACKER_PARAMS`.

    Raises:
        ValueError: inconsistent values (the message says which).
    """
    from stark_ros.tracker import TrackerParams
    return TrackerParams(**{name: values[name] for name in TRACKER_PARAMS})


def change_error(changes, current, tracker=None, monitor=None):
    """Why a set of parameter changes must be refused, or None when it may be applied.

    Args:
        changes: ``{name: new value}`` of the parameters being set together.
        current: ``{name: value}`` of the tracker parameters in force (:data:`TRACKER_PARAMS`).
        tracker: the node's tracker; when it has ``check_params`` (:meth:`StarkTracker.check_params`), the new
            tracker parameters must pass it too (e.g. a template size Lightning has no position table for).
        monitor: ``{name: value}`` of the target-state parameters in force (:data:`MONITOR_PARAMS`), to check the
            thresholds' order.
    """
    if 'frame_policy' in changes and frame_policy_error(changes['frame_policy']):
        return frame_policy_error(changes['frame_policy'])
    if monitor is not None and any(name in MONITOR_PARAMS for name in changes):
        try:
            monitor_params(dict(monitor, **{n: v for n, v in changes.items() if n in MONITOR_PARAMS}))
        except ValueError as err:
            return str(err)
    changed = {name: value for name, value in changes.items() if name in TRACKER_PARAMS}
    if not changed:
        return None
    try:
        params = tracker_params(dict(current, **changed))
        check = getattr(tracker, 'check_params', None)
        if check is not None:
            check(params)
    except ValueError as err:
        return str(err)
    return None
