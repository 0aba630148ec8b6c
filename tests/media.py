"""Real, small test media written with PyAV: videos with a known face, blank videos, bad files.

Every test in the project builds its inputs here, so the face and its position are known exactly:
the astronaut's head from scikit-image is pasted on a gradient and moved along a known path.
`pasted_head_boxes` says where it is in every frame (in displayed, upright coordinates).
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator, Sequence
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np
from PIL import Image

# Rows/columns of the head (hair to chin) in skimage.data.astronaut(), a 512x512 RGB photo whose
# face MTCNN finds at about x 181-268, y 62-172.
ASTRONAUT_HEAD = (slice(20, 215), slice(145, 305))
# Rows/columns of the cameraman's head (hair to chin) in skimage.data.camera(), a 512x512
# black-and-white photo of another person, turned three-quarters to his left.
CAMERAMAN_HEAD = (slice(65, 215), slice(160, 262))
HEAD_HEIGHT_SHARE = 0.55  # pasted head height as a share of the frame height (scale 1.0)
TIME_BASE_VFR = Fraction(1, 1000)  # millisecond timestamps for irregular-rate videos
AUDIO_RATE = 44100
ENCODER_PRESET = "veryfast"  # fast, but keeps B-frames so decoders must reorder like real files


def video_codec() -> str:
    """H.264 (what real uploads use) when PyAV's FFmpeg has libx264, else MPEG-4 Part 2."""
    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


@lru_cache(maxsize=1)
def astronaut_head() -> np.ndarray:
    """The head crop of scikit-image's astronaut photo, HxWx3 uint8 RGB."""
    from skimage.data import astronaut

    return np.ascontiguousarray(astronaut()[ASTRONAUT_HEAD])


@lru_cache(maxsize=1)
def cameraman_head() -> np.ndarray:
    """The head crop of scikit-image's black-and-white cameraman photo, HxWx3 uint8 RGB."""
    from skimage.data import camera

    return np.ascontiguousarray(np.repeat(camera()[CAMERAMAN_HEAD][..., None], 3, axis=2))


def paste_heads(
    background: np.ndarray, heads: Sequence[tuple[np.ndarray, tuple[float, float, float]]]
) -> np.ndarray:
    """A copy of `background` with each (head, (centre x, centre y, height)) pasted, in order,
    scaled isotropically; returns the frame."""
    frame = background.copy()
    for head, (cx, cy, box_h) in heads:
        box_w = round(box_h * head.shape[1] / head.shape[0])
        x1, y1 = round(cx - box_w / 2), round(cy - box_h / 2)
        resized = np.asarray(Image.fromarray(head).resize((box_w, round(box_h)), Image.BILINEAR))
        frame[y1 : y1 + resized.shape[0], x1 : x1 + resized.shape[1]] = resized
    return frame


def pasted_head_boxes(
    frame_index: int, *, faces: int = 1, frames: int = 24, width: int = 640, height: int = 360
) -> list[tuple[int, int, int, int]]:
    """Where `make_face_video` pasted each head in a frame: (x1, y1, x2, y2), left to right."""
    progress = frame_index / max(frames - 1, 1)
    head_h, head_w = astronaut_head().shape[:2]
    scale = 0.9 + 0.2 * progress  # the head grows slowly, as if walking towards the camera
    box_h = round(height * HEAD_HEIGHT_SHARE * scale)
    box_w = round(box_h * head_w / head_h)
    if faces == 1:
        centres = [(0.3 + 0.4 * progress) * width]  # drifts left to right
    elif faces == 2:
        bob = 0.03 * width * math.sin(2 * math.pi * progress)
        centres = [0.25 * width + bob, 0.75 * width - bob]
    else:
        raise ValueError(f"faces must be 1 or 2, got {faces}")
    cy = height / 2 + 0.05 * height * math.sin(2 * math.pi * progress)
    boxes = []
    for cx in centres:
        x1 = round(cx - box_w / 2)
        y1 = round(cy - box_h / 2)
        boxes.append((x1, y1, x1 + box_w, y1 + box_h))
    return boxes


def gradient_background(width: int, height: int, phase: float = 0.0) -> np.ndarray:
    """A smooth colour gradient: no edges or texture that could look like a face."""
    xs = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    ys = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    shape = (height, width)
    red = np.broadcast_to(60 + 120 * xs, shape)
    green = np.broadcast_to(80 + 100 * ys, shape)
    blue = 140 + 30 * np.sin(2 * math.pi * (xs + ys + phase))
    return np.stack([red, green, blue], axis=-1).clip(0, 255).astype(np.uint8)


def face_frame(
    frame_index: int, *, faces: int = 1, frames: int = 24, width: int = 640, height: int = 360
) -> np.ndarray:
    """One upright RGB frame of `make_face_video` (the second face is mirrored)."""
    image = gradient_background(width, height, phase=frame_index / max(frames, 1))
    head = astronaut_head()
    boxes = pasted_head_boxes(frame_index, faces=faces, frames=frames, width=width, height=height)
    for number, (x1, y1, x2, y2) in enumerate(boxes):
        patch = head if number == 0 else np.ascontiguousarray(head[:, ::-1])
        resized = np.asarray(Image.fromarray(patch).resize((x2 - x1, y2 - y1), Image.BILINEAR))
        image[y1:y2, x1:x2] = resized
    return image


def _encode(
    path: Path,
    images: Iterator[np.ndarray],
    *,
    fps: float,
    width: int,
    height: int,
    rotation: int = 0,
    times: Sequence[float] | None = None,
    container_format: str | None = None,
    faststart: bool = True,
) -> Path:
    """Encode upright RGB frames; with `rotation`, store them turned and flag the display matrix."""
    if rotation % 90:
        raise ValueError(f"rotation must be a multiple of 90, got {rotation}")
    turns = (rotation // 90) % 4
    stored_w, stored_h = (height, width) if turns % 2 else (width, height)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"movflags": "faststart"} if faststart and path.suffix in {".mp4", ".mov"} else {}
    with av.open(str(path), "w", format=container_format, options=options) as container:
        codec = video_codec()
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = stored_w, stored_h, "yuv420p"
        if codec == "libx264":
            stream.options = {"preset": ENCODER_PRESET}
        if times is not None:
            stream.codec_context.time_base = TIME_BASE_VFR
        if turns:
            # A player turns the stored picture `rotation` degrees counter-clockwise: store it
            # turned the other way so that only a reader honouring the matrix sees it upright.
            stream.set_display_rotation(rotation)
        for index, image in enumerate(images):
            stored = np.ascontiguousarray(np.rot90(image, k=-turns))
            frame = av.VideoFrame.from_ndarray(stored, format="rgb24")
            if times is not None:
                frame.pts = round(times[index] / TIME_BASE_VFR)
                frame.time_base = TIME_BASE_VFR
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def make_face_video(
    path: Path,
    *,
    faces: int = 1,
    frames: int = 24,
    fps: float = 12,
    width: int = 640,
    height: int = 360,
    rotation: int = 0,
    faststart: bool = True,
    faceless_from: int | None = None,
) -> Path:
    """A clip of the astronaut's head drifting and growing (two mirrored heads with faces=2).

    `width` x `height` is the displayed size. `rotation` (counter-clockwise degrees, like
    `VideoFrame.rotation`) is written as display-matrix metadata over frames stored turned the
    other way. `faststart=False` leaves the index at the end, as many cameras do. From frame
    `faceless_from` on, the person has left: only the background remains.
    """
    kwargs = {"faces": faces, "frames": frames, "width": width, "height": height}
    images = (
        face_frame(i, **kwargs)
        if faceless_from is None or i < faceless_from
        else gradient_background(width, height, phase=i / max(frames, 1))
        for i in range(frames)
    )
    return _encode(
        path, images, fps=fps, width=width, height=height, rotation=rotation, faststart=faststart
    )


def make_turns_video(path: Path, *, frames: int = 24, width: int = 640, height: int = 360) -> Path:
    """An interview without a visible cut: the astronaut and the cameraman take turns in
    the same spot, three frames each, the astronaut first."""
    background = gradient_background(width, height)
    people = (astronaut_head(), cameraman_head())
    spot = (width / 2, height / 2, 0.55 * height)
    images = (paste_heads(background, [(people[(i // 3) % 2], spot)]) for i in range(frames))
    return _encode(path, images, fps=12, width=width, height=height)


def encode_images(path: Path, images: Sequence[np.ndarray], *, fps: float = 12) -> Path:
    """Encode equally sized upright RGB frames as they are."""
    height, width = images[0].shape[:2]
    return _encode(path, iter(images), fps=fps, width=width, height=height)


def make_vfr_video(
    path: Path, *, times: Sequence[float], width: int = 320, height: int = 240
) -> Path:
    """A variable-frame-rate face clip whose frames are shown at exactly `times` (seconds)."""
    kwargs = {"faces": 1, "frames": len(times), "width": width, "height": height}
    images = (face_frame(i, **kwargs) for i in range(len(times)))
    mean_fps = (len(times) - 1) / (times[-1] - times[0])
    return _encode(path, images, fps=mean_fps, width=width, height=height, times=times)


def make_raw_h264_video(
    path: Path, *, frames: int = 24, width: int = 320, height: int = 240
) -> Path:
    """A bare H.264 elementary stream: no container, so no duration, frame count or timestamps."""
    kwargs = {"faces": 1, "frames": frames, "width": width, "height": height}
    images = (face_frame(i, **kwargs) for i in range(frames))
    return _encode(path, images, fps=12, width=width, height=height, container_format="h264")


class _AppendOnly(io.RawIOBase):
    """A write-only, unseekable sink: muxers cannot go back to fill in duration or index."""

    def __init__(self, target: BinaryIO) -> None:
        self._target = target

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:
        return self._target.write(data)


def make_streamed_webm(
    path: Path, *, frames: int = 24, width: int = 320, height: int = 240
) -> Path:
    """A face clip muxed as a live stream (as browsers record): WebM with no duration or count."""
    path = Path(path)
    codec = "libvpx-vp9" if "libvpx-vp9" in av.codecs_available else "libvpx"
    kwargs = {"faces": 1, "frames": frames, "width": width, "height": height}
    with path.open("wb") as sink, av.open(_AppendOnly(sink), "w", format="webm") as container:
        stream = container.add_stream(codec, rate=12)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"deadline": "realtime", "cpu-used": "8"}
        for index in range(frames):
            image = face_frame(index, **kwargs)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return path


def make_blank_video(
    path: Path, *, frames: int = 24, fps: float = 12, width: int = 320, height: int = 240
) -> Path:
    """No face anywhere: a gradient with a few moving coloured shapes and light noise."""
    rng = np.random.default_rng(0)

    def images() -> Iterator[np.ndarray]:
        for i in range(frames):
            image = gradient_background(width, height, phase=i / frames).astype(np.int16)
            x = int((i / max(frames - 1, 1)) * (width - 60))
            image[40:100, x : x + 60] = (220, 40, 40)  # a red square sliding right
            yy, xx = np.ogrid[:height, :width]
            cx, cy = width - 50 - x // 2, height - 60
            image[(xx - cx) ** 2 + (yy - cy) ** 2 < 30**2] = (30, 200, 60)  # a green disc
            image += rng.integers(-8, 9, size=image.shape, dtype=np.int16)
            yield image.clip(0, 255).astype(np.uint8)

    return _encode(path, images(), fps=fps, width=width, height=height)


def make_face_image(path: Path) -> Path:
    """The whole astronaut photo as a still image; the format follows the suffix (.jpg/.png/.webp)."""
    from skimage.data import astronaut

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(astronaut()).save(path, quality=90)
    return path


def make_audio_only(path: Path, *, seconds: float = 1.0) -> Path:
    """An .m4a/.mp4 holding one AAC stream of a 440 Hz tone and no video."""
    path = Path(path)
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=AUDIO_RATE)
        stream.layout = "mono"
        samples_per_frame = 1024
        total = int(seconds * AUDIO_RATE)
        for start in range(0, total, samples_per_frame):
            t = (np.arange(start, start + samples_per_frame) / AUDIO_RATE).astype(np.float32)
            tone = (0.2 * np.sin(2 * math.pi * 440 * t))[None, :]
            frame = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
            frame.sample_rate = AUDIO_RATE
            frame.pts = start
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def make_text_file(path: Path) -> Path:
    """Plain text, typically saved under a video name to check that content, not name, decides."""
    path = Path(path)
    path.write_text("this is a shopping list, not a video\n" * 40)
    return path


def make_empty_file(path: Path) -> Path:
    path = Path(path)
    path.write_bytes(b"")
    return path


def make_truncated_video(src: Path, dst: Path, keep_fraction: float = 0.3) -> Path:
    """The first `keep_fraction` of `src`'s bytes, as an interrupted upload or copy leaves it."""
    data = Path(src).read_bytes()
    dst = Path(dst)
    dst.write_bytes(data[: int(len(data) * keep_fraction)])
    return dst


def make_headers_only_video(src: Path, dst: Path) -> Path:
    """`src` (a faststart MP4) cut just after its index: it opens and probes, but holds no frame."""
    data = Path(src).read_bytes()
    media_box = data.find(b"mdat")
    if media_box < 0 or data.find(b"moov") > media_box:
        raise ValueError(f"{src} is not an MP4 with its index before the media data")
    dst = Path(dst)
    dst.write_bytes(data[: media_box + 4 + 16])
    return dst
