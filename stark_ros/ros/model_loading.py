"""Building the ``stark_tracker`` node's tracker from its read-only parameters (``checkpoint``, ``variant``, ``device``,
``backend``, ``precision``, ``num_threads``; see :mod:`stark_ros.ros.parameters`): load the checkpoint, pick the
engine, warm up, log what was loaded.

Used by both nodes: :class:`stark_ros.ros.tracker_node.TrackerNode` in its constructor and
:class:`stark_ros.ros.lifecycle_node.ManagedTrackerNode` in its ``configure`` transition.
"""
import time

import torch

from stark_ros.cpu import inference_threads
from stark_ros.model.default_model import SYNTHETIC

#: Score published for trackers without a score head (S50); see :mod:`stark_ros.ros.tracker_node`.
SCORE_WITHOUT_SCORE_HEAD = 1.0

#: Backends whose engine takes its own thread count (torch's is process-wide: ``torch.set_num_threads``).
ENGINE_THREAD_BACKENDS = ('openvino', 'onnxruntime')


def load_tracker(node, params):
    """Build the :class:`stark_ros.tracker.StarkTracker` the node's parameters describe and warm it up.

    Sets torch's intra-op thread count (process-wide) to ``num_threads`` (0 = auto,
    :func:`stark_ros.cpu.inference_threads`) and logs one INFO line with the variant, checkpoint, backend, precision,
    load and warm-up times (seconds); a ``synthetic`` checkpoint is logged as a WARNING (meaningless boxes).

    Args:
        node: the rclpy node whose parameters (declared by :func:`stark_ros.ros.parameters.declare_parameters`) are
            read and whose logger is used.
        params: the :class:`stark_ros.tracker.TrackerParams` of the first targets.
    Returns:
        ``(tracker, backend_note)``: ``backend_note`` is '' or a sentence appended to a refused ``template_size``
        change when backend ``auto`` chose an engine compiled for the start-up size.
    Raises:
        CheckpointError: the checkpoint cannot be loaded (missing file, not a STARK checkpoint).
        ValueError: bad ``variant`` / ``device`` / ``backend`` / ``precision``.
        ImportError: the chosen backend's package is not installed.
    """
    from stark_ros.backends import resolve_backend
    from stark_ros.tracker import StarkTracker
    checkpoint = node.get_parameter('checkpoint').value
    variant = node.get_parameter('variant').value
    device = node.get_parameter('device').value
    if checkpoint == SYNTHETIC:
        node.get_logger().warning(
            '*** checkpoint is "synthetic": using SYNTHETIC random weights (seed 0). The published boxes are '
            'MEANINGLESS; leave checkpoint empty (the shipped model) or give a STARK .pth.tar file. ***')
    requested = node.get_parameter('backend').value
    precision = node.get_parameter('precision').value
    backend = resolve_backend(requested, device, precision)     # 'auto': the fastest exact engine installed
    threads = inference_threads(node.get_parameter('num_threads').value)
    torch.set_num_threads(threads)
    options = {'threads': threads} if backend in ENGINE_THREAD_BACKENDS else {}
    started = time.monotonic()
    tracker = StarkTracker.from_checkpoint(checkpoint=checkpoint, variant=variant, device=device, params=params,
                                           backend=backend, precision=precision, **options)
    loaded = time.monotonic() - started
    warm = tracker.warm_up()    # the first real frame then runs at full speed
    auto = requested.strip().lower() == 'auto'
    # a template_size change the auto-chosen engine refuses, but torch would take (not Lightning's table)
    note = ''
    if auto and backend in ENGINE_THREAD_BACKENDS and tracker.variant != 'lightning':
        note = (" (backend 'auto' chose %s, whose graphs are compiled for the start-up size; set backend to torch or "
                "torch-fast to change template_size while running)" % backend)
    node.get_logger().info('loaded STARK %s (%s) on backend %s%s, %s, in %.1f s, warmed up in %.1f s, '
                           '%d inference thread(s)%s'
                           % (tracker.variant, tracker.info.get('checkpoint'), backend, ' (auto)' if auto else '',
                              tracker.info.get('precision', precision), loaded, warm, threads,
                              '' if tracker.has_score_head else
                              '; no score head: detections carry score %.1f' % SCORE_WITHOUT_SCORE_HEAD))
    return tracker, note
