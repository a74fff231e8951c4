"""Exception types shared by the model, the tracker and the ROS node.

All derive from :class:`ValueError` so callers that only care about "bad input" can catch that.
"""


class StarkError(ValueError):
    """Base class of every error stark_ros raises on bad input."""


class CheckpointError(StarkError):
    """A checkpoint file is unreadable, of an unknown format, or its keys/shapes do not match the model.

    The message names the offending keys (missing, unexpected, or mis-shaped).
    """


class InvalidBoxError(StarkError):
    """A box is empty, not finite, or does not overlap the image."""


class InvalidImageError(StarkError):
    """An image is not an HxWx3 uint8 array (or a ROS image message is malformed / of an unknown encoding)."""
