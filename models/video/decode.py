"""Open a video or image with PyAV and decode its video stream, refusing oversized frames first.

Frames are decoded sequentially (no seeking: seeking in real uploads is inexact, REFERENCE §7).
Once the sampled times are known, frames that no other frame refers to (B-frames, about half of an
H.264 stream) are not even decoded unless they are next to a sampled time. Every failure of FFmpeg
surfaces as a `VideoError` whose message says what is wrong with the file.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import av
import av.error
import numpy as np

from models.config import DECODE_MAX_SIDE
from models.errors import FrameTooLarge, VideoError
from models.image_size import image_size
from models.schema import VideoInfo
from models.video.sniff import IMAGE_CONTAINERS, SNIFF_BYTES, sniff_container

log = logging.getLogger(__name__)

# FFmpeg demuxers that read one still image from a stream of bytes, whatever the file is named.
_IMAGE_DEMUXERS = {"jpeg": "jpeg_pipe", "png": "png_pipe", "webp": "webp_pipe"}
# FFmpeg's stream probe takes decoder options per stream index; files with more streams than
# this are probed without the size cap on the extra ones (they are never decoded).
_PROBED_STREAMS = 64


@dataclass
class DecodeReport:
    """How much of a video was really decoded, filled in while its frames are read.

    A file cut off in transfer still opens and still yields frames: without this, its score
    reads as if the whole video had been seen. `fraction` is the share of the expected time span
    that was reached, times the share of packets that decoded.
    """

    expected_start: float = 0.0
    expected_end: float = 0.0  # the last sampled time the file's own duration promises
    reached: float | None = None  # stream time of the last decoded frame
    packets: int = 0
    undecodable: int = 0
    ended_early: str | None = None  # why demuxing stopped before the end of the file

    @property
    def fraction(self) -> float:
        span = self.expected_end - self.expected_start
        covered = 1.0
        if span > 0 and self.reached is not None:
            covered = min(1.0, max(0.0, (self.reached - self.expected_start) / span))
        decoded = 1.0 - self.undecodable / self.packets if self.packets else 1.0
        return round(covered * decoded, 4)

    def warnings(self) -> list[str]:
        notes = []
        span = self.expected_end - self.expected_start
        if span > 0 and self.reached is not None and self.reached < self.expected_end:
            notes.append(
                f"the video ends early: frames were decoded up to "
                f"{self.reached - self.expected_start:.1f} s of the "
                f"{span:.1f} s its header declares (a cut-off file?)"
            )
        if self.ended_early:
            notes.append(f"reading stopped at a damaged part of the file: {self.ended_early}")
        if self.undecodable:
            notes.append(
                f"{self.undecodable} of {self.packets} packets could not be decoded and were skipped"
            )
        return notes


@dataclass(frozen=True)
class Decoded:
    index: int
    time: float  # seconds, stream clock, never decreasing
    frame: av.VideoFrame


class Source:
    """An opened file's video stream, decoded from the start, bad packets skipped."""

    def __init__(
        self,
        path: Path,
        container: av.container.InputContainer,
        is_image: bool,
        threads: int = 0,
        max_side: int = DECODE_MAX_SIDE,
    ):
        self.path = path
        self.container = container
        self.stream = _video_stream(container, path)
        codec = self.stream.codec_context
        _check_side(codec.width, codec.height, max_side)  # the container's word, before decoding
        codec.options = {"max_pixels": str(max_side * max_side)}
        self.stream.thread_type = "AUTO"
        codec.thread_count = threads  # 0: FFmpeg picks (one per core)
        self.is_image = is_image
        self._needed: _NeededTimes | None = None
        self.report = DecodeReport()

    def decode_only_near(self, times: list[float]) -> None:
        """From the next packet on, skip decoding frames that nothing refers to unless they lie
        within `NEAR_FRAMES` frame intervals of one of `times` (ascending, stream seconds)."""
        interval = self.frame_interval
        if interval is not None and times:
            self._needed = _NeededTimes(times, NEAR_FRAMES * interval)

    @property
    def frame_interval(self) -> float | None:
        rate = self.stream.average_rate or self.stream.guessed_rate
        return float(1 / rate) if rate else None

    @property
    def origin(self) -> float | None:
        """Where time zero of the file is on the stream clock (seconds), when the file says."""
        start = self.container.start_time
        return start / av.time_base if start is not None else None

    def declared_duration(self) -> float | None:
        """Seconds the video stream lasts by the file's own account, None when unknown."""
        stream = self.stream
        if stream.duration and stream.time_base:
            return float(stream.duration * stream.time_base)
        if self.container.duration:
            return self.container.duration / av.time_base
        if stream.frames and self.frame_interval:
            return stream.frames * self.frame_interval
        return None

    def frames(self) -> Iterator[Decoded]:
        """Every decodable frame in presentation order, with a time even when pts is missing
        (after `decode_only_near`, the frames near those times and the frames others refer to).

        A frame's index is its position among the decoded frames or, once frames may be skipped,
        among all the stream's frames by timestamp.
        """
        index, last_time, skipped = 0, None, 0
        packet_times = _PresentationOrder()
        codec = self.stream.codec_context
        report = self.report
        for packet in self._packets():
            if packet is not None and packet.size:
                report.packets += 1
            if packet is not None and packet.pts is not None:
                packet_times.add(packet.pts)
                if self._needed is not None and packet.time_base:
                    near = self._needed.near(float(packet.pts * packet.time_base))
                    codec.skip_frame = "DEFAULT" if near else "NONREF"
            try:
                decoded = self.stream.decode(packet)
            except av.error.FFmpegError:
                skipped += 1
                report.undecodable += 1
                continue
            for frame in decoded:
                last_time = self._frame_time(frame, last_time)
                report.reached = last_time
                skipping = self._needed is not None and frame.pts is not None
                yield Decoded(packet_times.rank(frame.pts) if skipping else index, last_time, frame)
                index += 1
        if skipped:
            log.warning("%s: %d undecodable packets skipped", self.path.name, skipped)
        if index == 0:
            raise VideoError(f"no frame could be decoded from {self.path.name}")

    def _packets(self) -> Iterator[av.Packet | None]:
        """The stream's packets; on a truncated or corrupt container, None to flush the decoder."""
        packets = self.container.demux(self.stream)
        while True:
            try:
                yield next(packets)
            except StopIteration:  # PyAV has sent its own flush packets
                return
            except av.error.FFmpegError as error:
                log.warning("%s: demuxing stopped early: %s", self.path.name, _reason(error))
                self.report.ended_early = _reason(error)
                yield None
                return

    def _frame_time(self, frame: av.VideoFrame, last_time: float | None) -> float:
        if frame.pts is not None and frame.time_base:
            time = float(frame.pts * frame.time_base)
        elif last_time is None:
            time = 0.0
        elif self.frame_interval is not None:
            time = last_time + self.frame_interval  # raw streams carry no timestamps
        else:
            raise VideoError(f"{self.path.name} has neither timestamps nor a frame rate")
        # Broken files repeat or reorder pts; sampling needs a clock that never runs backwards.
        return time if last_time is None else max(time, last_time)


NEAR_FRAMES = 1.5  # frames decoded around each sampled time: the nearest frame is among them


class _NeededTimes:
    """Ascending times, and whether a moment lies within `tolerance` of one of them."""

    def __init__(self, times: list[float], tolerance: float) -> None:
        self._times = times
        self._tolerance = tolerance

    def near(self, time: float) -> bool:
        first = bisect.bisect_left(self._times, time - self._tolerance)
        return first < len(self._times) and self._times[first] <= time + self._tolerance


class _PresentationOrder:
    """Every packet timestamp seen so far, to number frames in presentation order."""

    def __init__(self) -> None:
        self._sorted: list[int] = []

    def add(self, pts: int) -> None:
        bisect.insort(self._sorted, pts)

    def rank(self, pts: int) -> int:
        return bisect.bisect_left(self._sorted, pts)


def _video_stream(
    container: av.container.InputContainer, path: Path
) -> av.video.stream.VideoStream:
    """The first real video stream; cover art in audio files is an attached picture, not video."""
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    if container.streams.audio:
        raise VideoError(f"no video stream in {path.name}: it holds only audio")
    raise VideoError(f"no video stream in {path.name}")


def _check_side(width: int, height: int, max_side: int) -> None:
    if max(width, height) > max_side:
        raise FrameTooLarge(width, height, max_side)


def _decoder_options(max_side: int) -> list[dict[str, str]]:
    """Options for the decoders FFmpeg's stream probe opens: none may allocate a frame over
    `max_side` squared pixels (it would decode a whole still image to learn its size)."""
    return [{"max_pixels": str(max_side * max_side)}] * _PROBED_STREAMS


def _open_container(path: Path, format: str | None, max_side: int) -> av.container.InputContainer:
    """Open with FFmpeg's stream probe capped at `max_side`. Formats that list their streams
    only while probing (MPEG program streams, FLV) take no per-stream options: they are probed
    uncapped, and the cap applies from the first frame this module decodes."""
    try:
        return av.open(str(path), format=format, stream_options=_decoder_options(max_side))
    except ValueError:  # PyAV: "this format does not expose its streams before probing"
        return av.open(str(path), format=format)


@contextmanager
def open_source(path: str | Path, threads: int = 0, max_side: int = DECODE_MAX_SIDE) -> Iterator[Source]:
    """Open a video or image, refusing frames whose longer side is over `max_side` from the
    header, before anything is decoded (FrameTooLarge)."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            head = handle.read(SNIFF_BYTES)
    except FileNotFoundError:
        raise VideoError(f"file not found: {path.name}") from None
    except OSError as error:
        raise VideoError(f"cannot read {path.name}: {error.strerror}") from None
    if not head:
        raise VideoError(f"file is empty: {path.name}")
    kind = sniff_container(head)
    if kind in IMAGE_CONTAINERS or kind == "gif":
        size = image_size(path, kind)
        if size is not None:
            _check_side(*size, max_side)
    try:
        container = _open_container(path, _IMAGE_DEMUXERS.get(kind or ""), max_side)
    except av.error.FFmpegError as error:
        raise VideoError(f"not a video or image file: {path.name} ({_reason(error)})") from None
    try:
        yield Source(
            path, container, is_image=kind in IMAGE_CONTAINERS, threads=threads, max_side=max_side
        )
    finally:
        container.close()


def _reason(error: av.error.FFmpegError) -> str:
    return error.strerror or type(error).__name__


def _rotation(source: Source, first: av.VideoFrame) -> int:
    """Counter-clockwise degrees (0, 90, 180 or 270) that turn the stored picture upright."""
    degrees = first.rotation  # from the display matrix, counter-clockwise
    tag = source.stream.metadata.get("rotate")
    if not degrees and tag:
        try:
            degrees = -float(tag)  # the legacy `rotate` tag counts clockwise
        except ValueError:
            log.warning("%s: ignoring unreadable rotate tag %r", source.path.name, tag)
    return round(degrees / 90) % 4 * 90


def upright_rgb(frame: av.VideoFrame, rotation: int) -> np.ndarray:
    image = frame.to_ndarray(format="rgb24")
    if rotation:
        image = np.ascontiguousarray(np.rot90(image, k=rotation // 90))
    return image


def video_info(source: Source, first: av.VideoFrame) -> VideoInfo:
    rotation = _rotation(source, first)
    width, height = (first.height, first.width) if rotation % 180 else (first.width, first.height)
    stream = source.stream
    codec = stream.codec_context.name
    if source.is_image:
        return VideoInfo(
            width=width,
            height=height,
            duration=None,
            fps=None,
            frame_count=1,
            rotation=rotation,
            codec=codec,
            is_image=True,
        )
    return VideoInfo(
        width=width,
        height=height,
        duration=source.declared_duration(),
        fps=float(stream.average_rate) if stream.average_rate else None,
        frame_count=stream.frames or None,
        rotation=rotation,
        codec=codec,
        is_image=False,
    )


def probe_video(path: str | Path, max_side: int = DECODE_MAX_SIDE) -> VideoInfo:
    """What the file holds, reading its header and decoding one frame to prove it decodes.

    Frames over `max_side` pixels on the longer side are refused from the header (FrameTooLarge)
    before that frame is decoded.
    """
    with open_source(path, max_side=max_side) as source:
        first = next(source.frames())
        return video_info(source, first.frame)


def measured_duration(path: str | Path) -> float | None:
    """Seconds the video stream lasts by its packets, for files that do not declare it (a live
    WebM, a bare stream): demuxed, not decoded. From the packets' timestamps, or their count
    times the frame interval when they carry none; None when neither is known."""
    with open_source(path) as source:
        first: float | None = None
        end: float | None = None
        count = 0
        for packet in source._packets():
            if packet is None:
                continue
            count += 1
            if packet.pts is None or not packet.time_base:
                continue
            start = float(packet.pts * packet.time_base)
            stop = start + float((packet.duration or 0) * packet.time_base)
            first = start if first is None else min(first, start)
            end = stop if end is None else max(end, stop)
        if first is not None and end is not None:
            return end - first
        interval = source.frame_interval
        return count * interval if interval is not None and count else None
