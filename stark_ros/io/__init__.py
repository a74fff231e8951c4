"""Frame sources for the offline tool and the demo (ROS-free)."""
from .frames import FrameSource, bundled_video, open_frames, parse_box

__all__ = ['FrameSource', 'bundled_video', 'open_frames', 'parse_box']
