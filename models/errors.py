"""Errors the core raises, each with a message a user can act on."""


class FakewatchError(Exception):
    """Base class for every error fakewatch reports to a user instead of crashing."""


class VideoError(FakewatchError):
    """The file is not a decodable video (or image): empty, truncated, not a video, no video stream."""


class WeightsError(FakewatchError):
    """A checkpoint is missing, corrupt, of the wrong format, or does not match its architecture."""


class MissingWeightsError(WeightsError):
    """A registered model's weights file is not on disk."""


class ConfigError(FakewatchError):
    """Options that cannot work together (unknown model id, unknown policy, bad frame count)."""


class FrameTooLarge(VideoError):
    """Frames are larger than the service decodes; refused from the header, before decoding."""

    def __init__(self, width: int, height: int, max_side: int) -> None:
        super().__init__(
            f"frames are {width}x{height}, over the limit of {max_side} pixels on the longer "
            "side; downscale the video first"
        )
        self.width, self.height, self.max_side = width, height, max_side


class TooManyFrames(VideoError):
    """Sampling at the requested rate over the whole video would score too many frames."""

    def __init__(self, frames: int, limit: int) -> None:
        super().__init__(
            f"sampling at this rate gives {frames} frames, over the limit of {limit}; ask for a "
            "lower fps or a frame count"
        )
        self.frames, self.limit = frames, limit
