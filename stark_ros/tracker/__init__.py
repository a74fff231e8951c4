"""The ROS-free tracker core: crop and pre-processing (:mod:`.crop`), parameters (:mod:`.params`) and the
tracker with its dynamic-template policy (:mod:`.stark_tracker`). Importing it never imports rclpy."""
from .params import TrackerParams
from .stark_tracker import StarkTracker, TrackResult

__all__ = ['StarkTracker', 'TrackResult', 'TrackerParams']
