"""The ROS-free tracker core: crop and pre-processing (:mod:`.crop`), parameters (:mod:`.params`) and the
tracker with its dynamic-template policy (:mod:`.stark_tracker`), and the contract with what runs the network
(:mod:`.engine`). Importing it never imports rclpy."""
from .engine import InferenceEngine
from .params import TrackerParams
from .stark_tracker import StarkTracker, TrackResult

__all__ = ['InferenceEngine', 'StarkTracker', 'TrackResult', 'TrackerParams']
