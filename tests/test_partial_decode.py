"""Truncated and damaged videos say so (issue 12, defect 6), and a deadline that interrupts the
prefetcher's start does not leave its decoder thread behind (defect 7)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType

import pytest

from models.video.prefetch import PrefetchedFrames
from models.video.sampling import FrameSampling
from tests import media

DECODER_THREAD = "frame-decoder"
THREAD_EXIT_TIMEOUT_S = 30


def _decode(path: Path) -> PrefetchedFrames:
    with PrefetchedFrames(path, FrameSampling(count=8)) as prefetch:
        for _ in prefetch.batches(8):
            pass
    return prefetch


def test_a_whole_video_is_fully_decoded(face_video: Path) -> None:
    report = _decode(face_video).report
    assert report.fraction == 1.0
    assert report.warnings() == []


@pytest.mark.parametrize("kept", [0.5, 0.7, 0.9])
def test_a_cut_off_video_reports_the_share_decoded(
    face_video: Path, tmp_path: Path, kept: float
) -> None:
    cut = media.make_truncated_video(face_video, tmp_path / f"cut{kept}.mp4", keep_fraction=kept)
    report = _decode(cut).report
    assert 0.0 < report.fraction < 0.95
    assert any("ends early" in warning for warning in report.warnings())


class Interrupted(Exception):
    """Stands for the worker's DeadlineExceeded, raised by a signal handler like it."""


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    raise Interrupted


def test_an_interrupt_while_the_prefetcher_starts_stops_its_decoder(face_video: Path) -> None:
    main = threading.get_ident()

    def interrupt_once_decoding() -> None:
        while not any(t.name == DECODER_THREAD for t in threading.enumerate()):
            pass
        signal.pthread_kill(main, signal.SIGALRM)

    previous = signal.signal(signal.SIGALRM, _raise_interrupted)
    helper = threading.Thread(target=interrupt_once_decoding)
    try:
        helper.start()
        with pytest.raises(Interrupted):
            # depth 1: a decoder nobody stops blocks on the full queue for ever
            PrefetchedFrames(face_video, FrameSampling(count=24), depth=1)
    finally:
        helper.join()
        signal.signal(signal.SIGALRM, previous)
    for thread in threading.enumerate():
        if thread.name == DECODER_THREAD:
            _join_once_started(thread)
            assert not thread.is_alive(), "the decoder thread outlived its prefetcher"


def _join_once_started(thread: threading.Thread) -> None:
    """Join, even a thread whose start() the interrupt cut short (not yet marked started)."""
    while True:
        try:
            thread.join(THREAD_EXIT_TIMEOUT_S)
            return
        except RuntimeError:
            continue
