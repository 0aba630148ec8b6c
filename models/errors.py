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
