"""Read videos and still images with PyAV: probe them cheaply and sample upright RGB frames.

Torch-free on purpose: the gateway imports this module to validate uploads.

Frames are decoded sequentially (no seeking: seeking in real uploads is inexact, REFERENCE §7) and
only the sampled ones are converted to RGB. Once the sampled times are known, frames that no other
frame refers to (B-frames, about half of an H.264 stream) are not even decoded unless they are
next to a sampled time: the same frames are sampled, for about half the decoding work.
Every failure of FFmpeg surfaces as a `VideoError` whose message says what is wrong with the file.
"""

from __future__ import annotations

import bisect
import logging
import math
import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import av
import av.error
import numpy as np

from models.config import DECODE_MAX_SIDE
from models.errors import ConfigError, FrameTooLarge, TooManyFrames, VideoError
from models.image_size import image_size
from models.schema import VideoInfo

log = logging.getLogger(__name__)

SNIFF_BYTES = 512  # enough to see every signature below, incl. a second MPEG-TS sync byte
IMAGE_CONTAINERS = frozenset({"jpeg", "png", "webp"})
# FFmpeg demuxers that read one still image from a stream of bytes, whatever the file is named.
_IMAGE_DEMUXERS = {"jpeg": "jpeg_pipe", "png": "png_pipe", "webp": "webp_pipe"}
_MPEGTS_PACKET = 188  # ISO/IEC 13818-1 transport packets, each starting with sync byte 0x47
_M2TS_PACKET = 192  # Blu-ray transport packets: a 4-byte timecode before each 188-byte packet
_QUICKTIME_ATOMS = (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot")
# FFmpeg's stream probe takes decoder options per stream index; files with more streams than
# this are probed without the size cap on the extra ones (they are never decoded).
_PROBED_STREAMS = 64
# Frames one request may sample (the `frames` option's bound, and what `fps` over a whole video
# may add up to): each costs a face detection and a classification.
MAX_SAMPLED_FRAMES = 1024


def sniff_container(head: bytes) -> str | None:
    """Name the container of a file from its first bytes (ideally `SNIFF_BYTES`), None if unknown.

    Recognises mp4, mov, matroska, webm, avi, mpegts, mpeg (program stream), flv, ogg, asf, and
    the images jpeg, png, webp and gif. Meant for a quick accept/reject before any decoding.
    """
    if head[4:8] == b"ftyp":
        return "mov" if head[8:12] == b"qt  " else "mp4"
    if head[4:8] in _QUICKTIME_ATOMS:
        return "mov"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "webm" if b"webm" in head[:64] else "matroska"
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "avi"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "webp"
    if head[:1] == b"\x47" and head[_MPEGTS_PACKET : _MPEGTS_PACKET + 1] == b"\x47":
        return "mpegts"
    if head[4:5] == b"\x47" and head[4 + _M2TS_PACKET : 5 + _M2TS_PACKET] == b"\x47":
        return "mpegts"
    if head.startswith(b"\x00\x00\x01\xba"):
        return "mpeg"
    if head.startswith(b"FLV\x01"):
        return "flv"
    if head.startswith(b"OggS"):
        return "ogg"
    if head.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"):
        return "asf"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    return None


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
class _Decoded:
    index: int
    time: float  # seconds, stream clock, never decreasing
    frame: av.VideoFrame


class _Source:
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

    def frames(self) -> Iterator[_Decoded]:
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
                yield _Decoded(packet_times.rank(frame.pts) if skipping else index, last_time, frame)
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
def _open(path: str | Path, threads: int = 0, max_side: int = DECODE_MAX_SIDE) -> Iterator[_Source]:
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
        yield _Source(
            path, container, is_image=kind in IMAGE_CONTAINERS, threads=threads, max_side=max_side
        )
    finally:
        container.close()


def _reason(error: av.error.FFmpegError) -> str:
    return error.strerror or type(error).__name__


def _rotation(source: _Source, first: av.VideoFrame) -> int:
    """Counter-clockwise degrees (0, 90, 180 or 270) that turn the stored picture upright."""
    degrees = first.rotation  # from the display matrix, counter-clockwise
    tag = source.stream.metadata.get("rotate")
    if not degrees and tag:
        try:
            degrees = -float(tag)  # the legacy `rotate` tag counts clockwise
        except ValueError:
            log.warning("%s: ignoring unreadable rotate tag %r", source.path.name, tag)
    return round(degrees / 90) % 4 * 90


def _upright_rgb(frame: av.VideoFrame, rotation: int) -> np.ndarray:
    image = frame.to_ndarray(format="rgb24")
    if rotation:
        image = np.ascontiguousarray(np.rot90(image, k=rotation // 90))
    return image


def _info(source: _Source, first: av.VideoFrame) -> VideoInfo:
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
    with _open(path, max_side=max_side) as source:
        first = next(source.frames())
        return _info(source, first.frame)


def measured_duration(path: str | Path) -> float | None:
    """Seconds the video stream lasts by its packets, for files that do not declare it (a live
    WebM, a bare stream): demuxed, not decoded. From the packets' timestamps, or their count
    times the frame interval when they carry none; None when neither is known."""
    with _open(path) as source:
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


def _targets(sampling: FrameSampling, start: float, end: float) -> list[float]:
    """Evenly spaced times over [start, end] on the stream clock."""
    if sampling.count is not None:
        return np.linspace(start, end, sampling.count).tolist()
    step = 1.0 / sampling.per_second
    steps = math.floor((end - start) / step + 1e-9)
    if steps + 1 > MAX_SAMPLED_FRAMES:
        raise TooManyFrames(steps + 1, MAX_SAMPLED_FRAMES)
    return [start + k * step for k in range(steps + 1)]


def _nearest(frames: Iterator[_Decoded], targets: list[float]) -> Iterator[_Decoded]:
    """For each target time (ascending) the nearest decoded frame, each frame at most once.

    Streams: holds only the previous frame, and stops decoding once the last target is served.
    Targets past the last decodable frame (a truncated file) get that last frame.
    """
    pending = iter(targets)
    target = next(pending, None)
    previous: _Decoded | None = None
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
    with _open(path) as source:
        first = last = None
        for decoded in source.frames():
            first = decoded.time if first is None else first
            last = decoded.time
        return first, last


def _sample(source: _Source, sampling: FrameSampling) -> tuple[VideoInfo, Iterator[SampledFrame]]:
    """Probe from the first frame, then lazily pick and convert the sampled frames."""
    frames = source.frames()
    first = next(frames)
    info = _info(source, first.frame)
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
                image=_upright_rgb(chosen.frame, info.rotation),
            )

    return info, sampled()


def _chain(first: _Decoded, rest: Iterator[_Decoded]) -> Iterator[_Decoded]:
    yield first
    yield from rest


def iter_sampled_frames(path: str | Path, sampling: FrameSampling) -> Iterator[SampledFrame]:
    """Yield the sampled frames in order, upright RGB, decoding the file once from the start.

    Targets are spread evenly from the first frame to the end of the real duration; each takes the
    nearest decoded frame, so variable frame rates are handled by time, not by index. A video with
    fewer frames than asked for yields each frame once. When the file states no duration, one extra
    decoding pass measures it first. A still image is a one-frame video at t=0.
    """
    with _open(path) as source:
        _, frames = _sample(source, sampling)
        yield from frames


def read_sampled_frames(
    path: str | Path, sampling: FrameSampling
) -> tuple[VideoInfo, list[SampledFrame]]:
    """`probe_video` and `iter_sampled_frames` in one pass, the frames held in memory."""
    with _open(path) as source:
        info, frames = _sample(source, sampling)
        return info, list(frames)


_END = object()  # the producer's last queue item after the final frame
PREFETCH_DEPTH = 8  # decoded frames held ahead of the consumer: 8 x 6 MB at 1080p
# Decoder threads while the caller computes on the CPU: one. On the 2-core benchmark machine a
# 1-thread decoder next to 1-thread torch ran a 1080p video end to end in 12.2 s, FFmpeg's
# automatic thread count in 15.1 s (bench/results): threads beyond the cores only contend.
PREFETCH_DECODE_THREADS = 1


class PrefetchedFrames:
    """`read_sampled_frames`, decoded in a background thread while the caller works on earlier
    frames, so decoding overlaps detection (FFmpeg and torch both release the GIL).

    Use as a context manager: `info` waits for the first frame; `batches(n)` yields the frames
    that are ready (at least one, at most n) in order; `decode_seconds` is the producer's wall
    time and `report` how much of the video was decoded, once it has finished. Decoding errors
    are raised in the caller's thread. `decode_threads` is FFmpeg's thread count for it (0: one
    per core).
    """

    def __init__(
        self,
        path: str | Path,
        sampling: FrameSampling,
        depth: int = PREFETCH_DEPTH,
        decode_threads: int = PREFETCH_DECODE_THREADS,
    ):
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self.decode_seconds = 0.0
        self._thread = threading.Thread(
            target=self._produce,
            args=(path, sampling, decode_threads),
            name="frame-decoder",
            daemon=True,
        )
        self.report = DecodeReport()
        try:
            self._thread.start()
            self.info: VideoInfo = self._take()  # type: ignore[assignment]
        except BaseException:
            # A deadline (SIGALRM) may fire here, even inside start(), and no caller holds the
            # object to close it: stopped, the producer ends at its next frame instead of
            # waiting for ever on a full queue.
            self._stop.set()
            raise

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the producer (if still decoding) and wait for it to release the file."""
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=0.05)
            except queue.Empty:
                pass
        self._thread.join()

    def batches(self, max_size: int) -> Iterator[list[SampledFrame]]:
        """Frames in order, `max_size` at a time (the last batch may be shorter).

        A batch never ends early because the decoder was slow: batch sizes change the float
        rounding of MTCNN and the classifiers, so timing-dependent batches made the same video
        score differently by ~1e-7 from one run to the next.
        """
        batch: list[SampledFrame] = []
        while (item := self._take()) is not _END:
            batch.append(item)  # type: ignore[arg-type]
            if len(batch) == max_size:
                yield batch
                batch = []
        if batch:
            yield batch

    def _take(self) -> object:
        return self._raise_if_failed(self._queue.get())

    @staticmethod
    def _raise_if_failed(item: object) -> object:
        if isinstance(item, BaseException):
            raise item
        return item

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self, path: str | Path, sampling: FrameSampling, threads: int) -> None:
        started = time.perf_counter()
        try:
            with _open(path, threads=threads) as source:
                self.report = source.report
                info, frames = _sample(source, sampling)
                if not self._put(info):
                    return
                for frame in frames:
                    if not self._put(frame):
                        return
        except Exception as error:  # noqa: BLE001 - any failure is re-raised in the caller
            self._put(error)
            return
        self.decode_seconds = time.perf_counter() - started
        self._put(_END)
