"""The ROS-free tracker core: crop and pre-processing (:mod:`.crop`), parameters (:mod:`.params`) and the
tracker with its dynamic-template policy (:mod:`.stark_tracker`), several targets in one batched network call
(:mod:`.multi_tracker`), the per-target confidence state machine (:mod:`.target_state`), and the contract with what
runs the network (:mod:`.engine`). Importing it never imports rclpy."""
from .engine import InferenceEngine
from .multi_tracker import MultiTracker
from .params import TrackerParams
from .stark_tracker import StarkTracker, TrackResult
from .target_state import MonitorParams, TargetMonitor

__all__ = ['InferenceEngine', 'MonitorParams', 'MultiTracker', 'StarkTracker', 'TargetMonitor', 'TrackResult',
           'TrackerParams']
