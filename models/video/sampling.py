"""Which frames of a video to score, and those frames as upright RGB images.

Targets are spread evenly over the real duration; each takes the nearest decoded frame, so
variable frame rates are handled by time, not by index.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.errors import ConfigError, TooManyFrames
from models.schema import VideoInfo
from models.video.decode import Decoded, Source, open_source, upright_rgb, video_info

# Frames one request may sample (the `frames` option's bound, and what `fps` over a whole video
# may add up to): each costs a face detection and a classification.
MAX_SAMPLED_FRAMES = 1024


@dataclass(frozen=True)
class FrameSampling:
    """Which frames to sample: `count` spread evenly over the video, or `per_second` frames/s.

    Exactly one must be set; `FrameSampling.at_rate(2.0)` builds the per-second kind.
    """

    count: int | None = 32
    per_second: float | None = None

    def __post_init__(self) -> None:
        if (self.count is None) == (self.per_second is None):
            raise ConfigError("frame sampling needs exactly one of count and per_second")
        if self.count is not None and (isinstance(self.count, bool) or self.count < 1):
            raise ConfigError(f"frame count must be a positive integer, got {self.count!r}")
        if self.per_second is not None and not (
            math.isfinite(self.per_second) and self.per_second > 0
        ):
            raise ConfigError(f"frames per second must be positive, got {self.per_second!r}")

    @classmethod
    def at_rate(cls, per_second: float) -> FrameSampling:
        return cls(count=None, per_second=per_second)


@dataclass(frozen=True)
class SampledFrame:
    """One sampled frame: decoded index and presentation time (s) from the start of the file."""

    index: int
    timestamp: float
    image: np.ndarray  # HxWx3 uint8 RGB, turned upright


def _targets(sampling: FrameSampling, start: float, end: float) -> list[float]:
    """Evenly spaced times over [start, end] on the stream clock."""
    if sampling.count is not None:
        return np.linspace(start, end, sampling.count).tolist()
    step = 1.0 / sampling.per_second
    steps = math.floor((end - start) / step + 1e-9)
    if steps + 1 > MAX_SAMPLED_FRAMES:
        raise TooManyFrames(steps + 1, MAX_SAMPLED_FRAMES)
    return [start + k * step for k in range(steps + 1)]


def _nearest(frames: Iterator[Decoded], targets: list[float]) -> Iterator[Decoded]:
    """For each target time (ascending) the nearest decoded frame, each frame at most once.

    Streams: holds only the previous frame, and stops decoding once the last target is served.
    Targets past the last decodable frame (a truncated file) get that last frame.
    """
    pending = iter(targets)
    target = next(pending, None)
    previous: Decoded | None = None
    emitted = -1
    for current in frames:
        while target is not None and current.time >= target:
            closer_before = previous is not None and target - previous.time < current.time - target
            chosen = previous if closer_before else current
            if chosen.index != emitted:
                emitted = chosen.index
                yield chosen
            target = next(pending, None)
        if target is None:
            return
        previous = current
    if previous is not None and previous.index != emitted:
        yield previous


def _time_span(path: Path) -> tuple[float, float]:
    """First and last frame time, by decoding the whole file once (only when it does not say)."""
    with open_source(path) as source:
        first = last = None
        for decoded in source.frames():
            first = decoded.time if first is None else first
            last = decoded.time
        return first, last


def sample_frames(source: Source, sampling: FrameSampling) -> tuple[VideoInfo, Iterator[SampledFrame]]:
    """Probe from the first frame, then lazily pick and convert the sampled frames."""
    frames = source.frames()
    first = next(frames)
    info = video_info(source, first.frame)
    origin = source.origin if source.origin is not None else first.time
    if info.is_image:
        start = end = first.time
    elif (duration := source.declared_duration()) is not None:
        start = first.time
        end = max(start, start + duration - (source.frame_interval or 0.0))
    else:
        start, end = _time_span(source.path)

    targets = _targets(sampling, start, end)
    source.report.expected_start, source.report.expected_end = start, end
    source.decode_only_near(targets)

    def sampled() -> Iterator[SampledFrame]:
        for chosen in _nearest(_chain(first, frames), targets):
            yield SampledFrame(
                index=chosen.index,
                timestamp=max(0.0, chosen.time - origin),
                image=upright_rgb(chosen.frame, info.rotation),
            )

    return info, sampled()


def _chain(first: Decoded, rest: Iterator[Decoded]) -> Iterator[Decoded]:
    yield first
    yield from rest


def iter_sampled_frames(path: str | Path, sampling: FrameSampling) -> Iterator[SampledFrame]:
    """Yield the sampled frames in order, upright RGB, decoding the file once from the start.

    Targets are spread evenly from the first frame to the end of the real duration; each takes the
    nearest decoded frame, so variable frame rates are handled by time, not by index. A video with
    fewer frames than asked for yields each frame once. When the file states no duration, one extra
    decoding pass measures it first. A still image is a one-frame video at t=0.
    """
    with open_source(path) as source:
        _, frames = sample_frames(source, sampling)
        yield from frames


def read_sampled_frames(
    path: str | Path, sampling: FrameSampling
) -> tuple[VideoInfo, list[SampledFrame]]:
    """`probe_video` and `iter_sampled_frames` in one pass, the frames held in memory."""
    with open_source(path) as source:
        info, frames = sample_frames(source, sampling)
        return info, list(frames)
