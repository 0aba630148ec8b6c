"""models.video on real files encoded with PyAV: probing, even sampling, rotation, bad input."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from models.errors import ConfigError, VideoError
from models.video import decode
from models.video.decode import probe_video
from models.video.sampling import FrameSampling, iter_sampled_frames, read_sampled_frames
from models.video.sniff import SNIFF_BYTES, sniff_container
from tests import media

FPS = 12  # the face_video fixture's rate; 24 frames, 2 seconds


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def test_probe_reads_the_header(face_video: Path) -> None:
    info = probe_video(face_video)
    assert (info.width, info.height) == (640, 360)
    assert info.fps == pytest.approx(FPS)
    assert info.frame_count == 24
    assert info.duration == pytest.approx(2.0, abs=0.1)
    assert info.rotation == 0
    assert info.codec in {"h264", "mpeg4"}
    assert not info.is_image


def test_count_sampling_spreads_evenly_over_the_whole_clip(face_video: Path) -> None:
    frames = list(iter_sampled_frames(face_video, FrameSampling(count=8)))
    indices = [f.index for f in frames]
    assert len(frames) == 8
    assert indices[0] == 0 and indices[-1] == 23  # first and last frame of the clip
    assert set(np.diff(indices)) <= {3, 4}  # 23 / 7 steps, evenly
    for frame in frames:
        assert frame.timestamp == pytest.approx(frame.index / FPS, abs=1e-3)
        assert frame.image.shape == (360, 640, 3) and frame.image.dtype == np.uint8


def test_sampled_images_are_the_encoded_frames(face_video: Path) -> None:
    for frame in iter_sampled_frames(face_video, FrameSampling(count=3)):
        expected = media.face_frame(frame.index)
        assert mean_abs_diff(frame.image, expected) < 6  # lossy H.264, same picture
        other = media.face_frame((frame.index + 12) % 24)
        assert mean_abs_diff(frame.image, other) > mean_abs_diff(frame.image, expected) + 2


def test_asking_for_more_frames_than_exist_yields_each_once(face_video: Path) -> None:
    frames = list(iter_sampled_frames(face_video, FrameSampling(count=100)))
    assert [f.index for f in frames] == list(range(24))


def test_per_second_sampling_follows_the_clock(face_video: Path) -> None:
    frames = list(iter_sampled_frames(face_video, FrameSampling.at_rate(4)))
    assert [f.timestamp for f in frames] == pytest.approx([k / 4 for k in range(8)], abs=0.5 / FPS)


def test_read_sampled_frames_returns_info_and_frames(face_video: Path) -> None:
    info, frames = read_sampled_frames(face_video, FrameSampling(count=4))
    assert info == probe_video(face_video)
    assert [f.index for f in frames] == [0, 8, 15, 23]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"count": None}, "exactly one"),
        ({"count": 8, "per_second": 2.0}, "exactly one"),
        ({"count": 0}, "positive integer"),
        ({"count": None, "per_second": -1.0}, "positive"),
        ({"count": None, "per_second": float("nan")}, "positive"),
    ],
)
def test_frame_sampling_refuses_bad_settings(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        FrameSampling(**kwargs)


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation_metadata_turns_frames_upright(tmp_path: Path, rotation: int) -> None:
    path = media.make_face_video(
        tmp_path / "phone.mp4", frames=4, width=320, height=240, rotation=rotation
    )
    with av.open(str(path)) as container:  # what a reader ignoring the metadata sees
        stored = next(container.decode(video=0)).to_ndarray(format="rgb24")
    upright = media.face_frame(0, frames=4, width=320, height=240)
    if rotation == 180:
        assert mean_abs_diff(stored, upright) > 20
    else:
        assert stored.shape == (320, 240, 3)

    info = probe_video(path)
    assert info.rotation == rotation
    assert (info.width, info.height) == (320, 240)
    first = next(iter_sampled_frames(path, FrameSampling(count=1)))
    assert first.image.shape == (240, 320, 3)
    assert mean_abs_diff(first.image, upright) < 6


@pytest.mark.slow
def test_rotated_face_is_found_upright(tmp_path: Path, face_detector) -> None:
    path = media.make_face_video(tmp_path / "portrait.mp4", frames=4, rotation=90)
    frames = list(iter_sampled_frames(path, FrameSampling(count=2)))
    faces = face_detector.detect([f.image for f in frames])
    assert [len(f) for f in faces] == [1, 1]


def test_variable_frame_rate_uses_real_timestamps(tmp_path: Path) -> None:
    times = [0.0, 0.04, 0.3, 0.34, 0.38, 1.0, 1.05, 1.5, 1.55, 1.6]
    path = media.make_vfr_video(tmp_path / "vfr.mp4", times=times)
    frames = list(iter_sampled_frames(path, FrameSampling.at_rate(5)))
    for frame in frames:
        assert frame.timestamp == pytest.approx(times[frame.index], abs=1e-3)
    # Each 0.2 s target takes the frame nearest in time, never a frame counted by index. The span
    # ends one mean frame interval (1.65 s / 10 frames) before the stream's 1.65 s: targets 0..1.4.
    chosen = [f.index for f in frames]
    nearest = sorted({int(np.argmin([abs(t - k * 0.2) for t in times])) for k in range(8)})
    assert chosen == nearest


def test_stream_without_duration_or_frame_count_is_sampled_over_its_length(tmp_path: Path) -> None:
    path = media.make_raw_h264_video(tmp_path / "bare.h264", frames=24)
    info = probe_video(path)
    assert info.duration is None and info.frame_count is None
    frames = list(iter_sampled_frames(path, FrameSampling(count=6)))
    indices = [f.index for f in frames]
    assert indices[0] == 0 and indices[-1] == 23
    assert set(np.diff(indices)) <= {4, 5}
    assert np.all(np.diff([f.timestamp for f in frames]) > 0)


def test_live_recorded_webm_without_duration_is_sampled_over_its_length(tmp_path: Path) -> None:
    path = media.make_streamed_webm(tmp_path / "recording.webm", frames=24)
    info = probe_video(path)
    assert info.duration is None and info.frame_count is None
    frames = list(iter_sampled_frames(path, FrameSampling(count=5)))
    assert [f.index for f in frames][0::4] == [0, 23]
    assert [f.timestamp for f in frames] == pytest.approx(
        [k * 23 / 12 / 4 for k in range(5)], abs=0.5 / FPS
    )


def test_truncated_video_yields_what_decodes(tmp_path: Path, face_video: Path) -> None:
    path = media.make_truncated_video(face_video, tmp_path / "cut.mp4", keep_fraction=0.5)
    frames = list(iter_sampled_frames(path, FrameSampling(count=24)))
    indices = [f.index for f in frames]
    assert 1 <= len(frames) < 24
    assert indices == list(range(len(frames)))
    assert mean_abs_diff(frames[0].image, media.face_frame(0)) < 6


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("empty", "file is empty: empty.mp4"),
        ("text", "not a video or image file: notes.mp4"),
        ("audio_only", "no video stream in voice.m4a: it holds only audio"),
        ("garbage", "not a video or image file: cut_camera.mp4"),
        ("no_frames", "no frame could be decoded from headers_only.mp4"),
    ],
)
def test_bad_files_raise_a_clear_video_error(
    bad_files: dict[str, Path], kind: str, message: str
) -> None:
    path = bad_files[kind]
    with pytest.raises(VideoError, match=message):
        probe_video(path)
    with pytest.raises(VideoError, match=message):
        list(iter_sampled_frames(path, FrameSampling(count=4)))


def test_missing_file_is_a_video_error(tmp_path: Path) -> None:
    with pytest.raises(VideoError, match="file not found: nothing.mp4"):
        probe_video(tmp_path / "nothing.mp4")


def test_image_is_a_one_frame_video(face_image: Path) -> None:
    from skimage.data import astronaut

    info, frames = read_sampled_frames(face_image, FrameSampling(count=32))
    assert info.is_image and info.frame_count == 1 and info.duration is None
    assert (info.width, info.height) == (512, 512)
    assert len(frames) == 1
    assert (frames[0].index, frames[0].timestamp) == (0, 0.0)
    assert mean_abs_diff(frames[0].image, astronaut()) < 6


@pytest.mark.parametrize("suffix", [".png", ".webp"])
def test_image_is_recognised_by_content_not_name(tmp_path: Path, suffix: str) -> None:
    real = media.make_face_image(tmp_path / f"photo{suffix}")
    disguised = tmp_path / "upload.mp4"
    disguised.write_bytes(real.read_bytes())
    info = probe_video(disguised)
    assert info.is_image and info.codec == suffix[1:]


def test_exif_orientation_of_a_photo_is_honoured(tmp_path: Path) -> None:
    from skimage.data import astronaut

    upright = astronaut()
    stored = Image.fromarray(np.ascontiguousarray(np.rot90(upright)))  # turned counter-clockwise
    exif = stored.getexif()
    exif[0x0112] = 6  # EXIF orientation 6: turn 90 degrees clockwise to display
    path = tmp_path / "phone.jpg"
    stored.save(path, exif=exif, quality=90)
    frames = list(iter_sampled_frames(path, FrameSampling(count=1)))
    assert mean_abs_diff(frames[0].image, upright) < 6


@pytest.mark.parametrize(
    ("suffix", "expected"),
    [
        (".mp4", "mp4"),
        (".mov", "mov"),
        (".mkv", "matroska"),
        (".avi", "avi"),
        (".ts", "mpegts"),
        (".flv", "flv"),
    ],
)
def test_sniff_recognises_real_video_files(tmp_path: Path, suffix: str, expected: str) -> None:
    path = media.make_face_video(tmp_path / f"clip{suffix}", frames=2, width=160, height=120)
    with path.open("rb") as handle:
        assert sniff_container(handle.read(SNIFF_BYTES)) == expected
    assert probe_video(path).width == 160  # whatever sniff accepts, the reader reads


@pytest.mark.parametrize(
    ("suffix", "expected"), [(".jpg", "jpeg"), (".png", "png"), (".webp", "webp"), (".gif", "gif")]
)
def test_sniff_recognises_real_images(tmp_path: Path, suffix: str, expected: str) -> None:
    path = media.make_face_image(tmp_path / f"photo{suffix}")
    assert sniff_container(path.read_bytes()[:SNIFF_BYTES]) == expected


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"this is a shopping list, not a video\n" * 10,
        b"%PDF-1.7\n" + bytes(100),
        b"ID3\x04\x00" + bytes(100),  # an MP3
        b"\x47" + bytes(300),  # one MPEG-TS sync byte is not a transport stream
    ],
)
def test_sniff_rejects_other_content(head: bytes) -> None:
    assert sniff_container(head) is None


def test_sniff_tells_webm_and_ogg_from_their_headers() -> None:
    ebml = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\x82\x84webm"
    assert sniff_container(ebml) == "webm"
    assert sniff_container(b"OggS\x00\x02" + bytes(50)) == "ogg"


def _decode_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sample as if every frame had to be decoded (no frames skipped)."""
    monkeypatch.setattr(decode.Source, "decode_only_near", lambda self, times: None)


def _non_reference_frames(path: Path) -> int:
    """Frames of the file that no other frame refers to (x264's default GOP makes B-frames)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        every = sum(1 for _ in container.decode(stream))
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.skip_frame = "NONREF"
        kept = sum(1 for _ in container.decode(stream))
    return every - kept


@pytest.mark.parametrize(
    "sampling", [FrameSampling(count=3), FrameSampling(count=8), FrameSampling(count=None, per_second=2)]
)
def test_skipping_frames_far_from_the_sampled_times_samples_the_same_frames(
    face_video: Path, sampling: FrameSampling, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, sampled = read_sampled_frames(face_video, sampling)
    _decode_everything(monkeypatch)
    _, expected = read_sampled_frames(face_video, sampling)
    assert [(f.index, f.timestamp) for f in sampled] == [(f.index, f.timestamp) for f in expected]
    assert all(np.array_equal(a.image, b.image) for a, b in zip(sampled, expected, strict=True))


def test_only_frames_near_a_wanted_time_or_referred_to_are_decoded(face_video: Path) -> None:
    """24 frames at 12 fps; one wanted time at 1 s. Skipped B-frames still count in the index."""
    skippable = _non_reference_frames(face_video)
    assert skippable >= 6
    with decode.open_source(face_video) as source:
        every = [(d.index, d.time) for d in source.frames()]
    with decode.open_source(face_video) as source:
        frames = source.frames()
        first = next(frames)
        source.decode_only_near([1.0])
        decoded = [(first.index, first.time)] + [(d.index, d.time) for d in frames]
    assert len(decoded) <= len(every) - skippable + 3  # at most the frames within 1.5 intervals
    assert set(decoded) <= set(every)  # right indices for the frames that were decoded
    assert [t for _, t in every if abs(t - 1.0) <= 1.5 / FPS] == [
        t for _, t in decoded if abs(t - 1.0) <= 1.5 / FPS
    ]
