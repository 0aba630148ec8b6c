"""Sampled frames decoded in a background thread, so decoding overlaps face detection."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Self

from models.schema import VideoInfo
from models.video.decode import DecodeReport, open_source
from models.video.sampling import FrameSampling, SampledFrame, sample_frames

_END = object()  # the producer's last queue item after the final frame
PREFETCH_DEPTH = 8  # decoded frames held ahead of the consumer: 8 x 6 MB at 1080p
# Decoder threads while the caller computes on the CPU: one. On the 2-core benchmark machine a
# 1-thread decoder next to 1-thread torch ran a 1080p video end to end in 12.2 s, FFmpeg's
# automatic thread count in 15.1 s (bench/results): threads beyond the cores only contend.
PREFETCH_DECODE_THREADS = 1


class PrefetchedFrames:
    """`read_sampled_frames`, decoded in a background thread while the caller works on earlier
    frames, so decoding overlaps detection (FFmpeg and torch both release the GIL).

    Use as a context manager: `info` waits for the first frame; `batches(n)` yields the frames in
    order, n at a time; `decode_seconds` is the producer's wall
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
            with open_source(path, threads=threads) as source:
                self.report = source.report
                info, frames = sample_frames(source, sampling)
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
