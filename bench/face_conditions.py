"""Hard viewing conditions made from easy frames, with the face box carried along.

The face-recall benchmark starts from frames in which today's detector finds the face, and
makes them hard the way the issue measured real misses: a dark frame (gamma and gain to a mean
brightness of about 30 of 255), sensor noise, compression, a face 40-80 px high in a 1080p frame,
motion blur, and those together. `dimNN` is how a camera records a dim room: darkened to mean
NN, then sensor noise, then lossy compression; `shadow` puts the face in the dark part of the
room (the issue's missed clips: one lamp, a dark-skinned woman away from it). Each transform is deterministic for a given seed, so two detectors see
the same pixels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

CANVAS = (1920, 1080)  # width, height: the small-face conditions are 1080p frames
DARK_GAMMA = 1.6  # > 1 crushes shadows more than highlights, as an underexposed sensor does
NOISE_SIGMA = 6.0  # grey levels: visible grain, as a phone camera shows in a dim room
BLUR_SHARE = 0.12  # motion blur length as a share of the face height: a quick turn or step
BACKGROUND_GREY = (70, 62, 55)  # the canvas around a shrunk frame: a dull wall
SHADOW_DEPTH = 0.6  # the face gets 40% of the light around it
SHADOW_SPREAD = 1.0  # face heights: the shadow covers the head and shoulders
# JPEG quality standing in for a streaming encoder at a low bitrate: it flattens the few grey
# levels a face spans in a dark frame, as the DFDC clips' H.264 did.
COMPRESSION_QUALITY = 35


@dataclass(frozen=True)
class Scene:
    """A frame and where its one face is: (x1, y1, x2, y2) in the frame's pixels."""

    image: np.ndarray
    face: tuple[float, float, float, float] | None


Transform = Callable[[Scene, np.random.Generator], Scene]


def darken(mean_brightness: float) -> Transform:
    """Gamma DARK_GAMMA, then the gain that brings the frame's mean luma to `mean_brightness`."""

    def apply(scene: Scene, rng: np.random.Generator) -> Scene:
        linear = (scene.image.astype(np.float32) / 255) ** DARK_GAMMA
        luma = float(cv2.cvtColor(scene.image, cv2.COLOR_RGB2GRAY).mean())
        curved = 255 * (max(luma, 1.0) / 255) ** DARK_GAMMA  # first-order estimate of the mean
        gain = mean_brightness / max(curved, 1e-3)
        out = _to_uint8(255 * linear * gain)
        # One correction step for the curve's effect on the mean (it is not linear in gain).
        measured = float(cv2.cvtColor(out, cv2.COLOR_RGB2GRAY).mean())
        out = _to_uint8(255 * linear * gain * mean_brightness / max(measured, 1e-3))
        return Scene(out, scene.face)

    return apply


def face_shadow(depth: float = SHADOW_DEPTH) -> Transform:
    """The face in shadow: light falls off towards it, to 1 - `depth` at its centre (a Gaussian
    of SHADOW_SPREAD face heights), as for a person standing away from the room's one lamp."""

    def apply(scene: Scene, rng: np.random.Generator) -> Scene:
        if scene.face is None:
            raise ValueError("a face shadow needs a face")
        x1, y1, x2, y2 = scene.face
        height, width = scene.image.shape[:2]
        ys, xs = np.ogrid[:height, :width]
        spread = SHADOW_SPREAD * (y2 - y1)
        distance2 = (xs - (x1 + x2) / 2) ** 2 + (ys - (y1 + y2) / 2) ** 2
        light = 1 - depth * np.exp(-distance2 / (2 * spread**2)).astype(np.float32)
        return Scene(_to_uint8(scene.image.astype(np.float32) * light[..., None]), scene.face)

    return apply


def sensor_noise(sigma: float = NOISE_SIGMA) -> Transform:
    """Gaussian noise of `sigma` grey levels, independent per pixel and channel."""

    def apply(scene: Scene, rng: np.random.Generator) -> Scene:
        noise = rng.normal(0.0, sigma, size=scene.image.shape).astype(np.float32)
        return Scene(_to_uint8(scene.image.astype(np.float32) + noise), scene.face)

    return apply


def shrink(face_height: float) -> Transform:
    """The whole frame scaled so that the face is `face_height` px high, placed at a random spot
    of a 1080p canvas (a dull wall beyond the frame's edges)."""

    def apply(scene: Scene, rng: np.random.Generator) -> Scene:
        if scene.face is None:
            raise ValueError("shrink needs a face to size the frame by")
        x1, y1, x2, y2 = scene.face
        scale = face_height / (y2 - y1)
        height, width = scene.image.shape[:2]
        new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
        if new_w > CANVAS[0] or new_h > CANVAS[1]:
            raise ValueError(f"a {width}x{height} frame scaled by {scale:.2f} overflows 1080p")
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
        small = cv2.resize(scene.image, (new_w, new_h), interpolation=interpolation)
        canvas = np.empty((CANVAS[1], CANVAS[0], 3), dtype=np.uint8)
        canvas[:] = BACKGROUND_GREY
        left = int(rng.integers(0, CANVAS[0] - new_w + 1))
        top = int(rng.integers(0, CANVAS[1] - new_h + 1))
        canvas[top : top + new_h, left : left + new_w] = small
        sx, sy = new_w / width, new_h / height
        face = (left + x1 * sx, top + y1 * sy, left + x2 * sx, top + y2 * sy)
        return Scene(canvas, face)

    return apply


def motion_blur(share: float = BLUR_SHARE) -> Transform:
    """A horizontal motion blur `share` of the face height long (of 5% of the frame height
    when there is no face)."""

    def apply(scene: Scene, rng: np.random.Generator) -> Scene:
        reference = (scene.face[3] - scene.face[1]) if scene.face else 0.05 * scene.image.shape[0]
        length = max(3, round(share * reference) | 1)
        kernel = np.full((1, length), 1.0 / length, dtype=np.float32)
        return Scene(cv2.filter2D(scene.image, -1, kernel, borderType=cv2.BORDER_REFLECT), scene.face)

    return apply


def compress(quality: int = COMPRESSION_QUALITY) -> Transform:
    """A JPEG round trip at `quality`: blocking and flattened shadows."""

    def apply(scene: Scene, rng: np.random.Generator) -> Scene:
        ok, encoded = cv2.imencode(
            ".jpg", cv2.cvtColor(scene.image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
        )
        if not ok:
            raise RuntimeError("OpenCV could not encode a JPEG")
        decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
        return Scene(cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB), scene.face)

    return apply


def chain(*steps: Transform) -> Transform:
    """The steps in order, each with the same random generator."""

    def apply(scene: Scene, rng: np.random.Generator) -> Scene:
        for step in steps:
            scene = step(scene, rng)
        return scene

    return apply


def identity(scene: Scene, rng: np.random.Generator) -> Scene:
    return scene


def mean_brightness(image: np.ndarray) -> float:
    """Mean luma (BT.601) of an RGB uint8 image, 0-255."""
    return float(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).mean())


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


# The benchmark's conditions, by name. Faces: every one; face-free frames: those that need no
# face (`FACE_FREE`).
DIM_ROOM = chain(darken(30), sensor_noise(), compress())  # how a camera records a dim room
CONDITIONS: dict[str, Transform] = {
    "clean": identity,
    "dark30": darken(30),
    "dark25": darken(25),
    "noise": sensor_noise(),
    "jpeg": compress(),
    "dim30": DIM_ROOM,
    "dim25": chain(darken(25), sensor_noise(), compress()),
    "blur": motion_blur(),
    "small80": shrink(80),
    "small50": shrink(50),
    "small40": shrink(40),
    "dark30+small50": chain(shrink(50), darken(30)),
    "dim30+shadow": chain(face_shadow(), DIM_ROOM),
    "dim30+small50": chain(shrink(50), DIM_ROOM),
    "dim30+shadow+small60": chain(shrink(60), face_shadow(), DIM_ROOM),
    "dim30+small70": chain(shrink(70), DIM_ROOM),
    "dim35+small60+blur": chain(shrink(60), motion_blur(), darken(35), sensor_noise(), compress()),
}
FACE_FREE = ("clean", "dark30", "noise", "dim30", "dim25")
# Conditions of the turned-head frames (`bench.face_truth.turned_clips`): profile views as they
# are, in a dark and in a dim room, and standing a few metres away.
TURNED_CONDITIONS: dict[str, Transform] = {
    "turned": identity,
    "turned+dark30": darken(30),
    "turned+dim30": DIM_ROOM,
    "turned+small60": shrink(60),
}
