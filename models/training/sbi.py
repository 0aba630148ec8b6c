"""Self-blended images (Shiohara & Yamasaki, CVPR 2022): pseudo-fakes made from one real face.

A real crop is blended with a slightly altered copy of itself (colour, sharpness, scale, shift)
through a soft face-shaped mask. The result carries what face swaps share (a blending boundary,
colour and frequency mismatch between face and surroundings, slight misalignment) and nothing of
any one dataset's look, so the classifier learns those artefacts rather than a source's quirks.

The paper builds its mask from 81 landmarks. From MTCNN's five points the hull is extended with
face proportions (forehead, cheeks, jaw) and randomly scaled. From dlib's 68 points
(`models.training.dense_landmarks`) it follows the face's own outline: the whole face up to the
forehead, the inner face (brows, eyes, nose and lips, inside the jaw line) or the lower face from
the nose down (what lip-sync tools regenerate), drawn at random and elastically deformed, as in
the paper.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# The paper's blend ratios: a partial blend a quarter of the time each, a full swap otherwise.
BLEND_RATIOS = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)
# Hull points from the five landmarks, in units of the eye-to-eye vector (u) and the eye-centre
# to mouth-centre vector (v), measured on frontal faces: temples/forehead above the eyes, cheeks
# beside them, jaw below the mouth corners.
FOREHEAD_UP, TEMPLE_OUT = 0.55, 0.35
CHEEK_DOWN, CHEEK_OUT = 0.6, 0.45
JAW_DOWN, JAW_OUT = 0.65, 0.15
HULL_SCALE_RANGE = (0.8, 1.15)
MORPH_FRACTION_RANGE = (0.0, 0.06)  # erosion/dilation kernel, fraction of the crop side
MASK_BLUR_FRACTION_RANGE = (0.01, 0.06)  # gaussian sigma, fraction of the crop side
FIVE_POINTS, DENSE_POINTS = 5, 68  # MTCNN's landmarks; dlib's (iBUG 300-W order)
# Dense masks: the brows lifted towards the hairline by this fraction of the vector from the top
# of the nose bridge to the chin (68 points stop at the brows), and a smooth random warp of up to
# this fraction of the crop side, interpolated from a coarse grid of displacements.
FOREHEAD_LIFT_RANGE = (0.0, 0.3)
ELASTIC_AMPLITUDE_RANGE = (0.0, 0.04)
ELASTIC_GRID = 5
JAW, BROWS, NOSE_BRIDGE_TOP, CHIN = slice(0, 17), slice(17, 27), 27, 8
INNER_FACE = slice(17, 68)  # brows, nose, eyes, lips
LOWER_FACE = [*range(1, 16), *range(28, 36), *range(48, 68)]
SOURCE_SCALE_RANGE = (0.95, 1.05)
SOURCE_SHIFT_FRACTION = 0.03
# Colour mismatch between the pasted face and its frame: subtle, as in real swaps (the paper's
# RGB shift of up to 20 levels at p=0.3, small HSV and brightness/contrast changes). Strong shifts
# make pseudo-fakes trivially separable by colour and teach nothing that transfers.
RGB_SHIFT, RGB_SHIFT_P = 20.0, 0.3
HSV_SHIFT = (4.0, 15.0, 15.0)  # hue (of 256), saturation, value
CONTRAST_RANGE = 0.1  # relative
BRIGHTNESS_SHIFT = 10.0  # levels
SHARPEN_AMOUNT_RANGE = (0.3, 1.0)
SOFTEN_SIGMA_RANGE = (0.5, 1.5)


@dataclass(frozen=True)
class SelfBlend:
    """A pseudo-fake and the blend weight of the altered copy at each pixel (0 = untouched)."""

    image: np.ndarray
    mask: np.ndarray


def face_hull(landmarks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Polygon around the face from MTCNN's five points (eyes, nose, mouth corners), as (K, 2)."""
    landmarks = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    left_eye, right_eye, _nose, mouth_left, mouth_right = landmarks
    u = right_eye - left_eye
    v = (mouth_left + mouth_right) / 2 - (left_eye + right_eye) / 2
    points = np.array(
        [
            left_eye - TEMPLE_OUT * u - FOREHEAD_UP * v,
            right_eye + TEMPLE_OUT * u - FOREHEAD_UP * v,
            right_eye + CHEEK_OUT * u + CHEEK_DOWN * v,
            mouth_right + JAW_OUT * u + JAW_DOWN * v,
            mouth_left - JAW_OUT * u + JAW_DOWN * v,
            left_eye - CHEEK_OUT * u + CHEEK_DOWN * v,
            *landmarks,
        ]
    )
    centre = points.mean(axis=0)
    scale = rng.uniform(*HULL_SCALE_RANGE, size=2)  # independent width and height
    return centre + (points - centre) * scale


def dense_hull(landmarks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Polygon from dlib's 68 points, as (K, 2): one of the whole face with its forehead, the
    inner face without the jaw line, or the lower face from the nose bridge down, drawn alike."""
    points = np.asarray(landmarks, dtype=np.float64).reshape(DENSE_POINTS, 2)
    region = rng.integers(3)
    if region == 0:
        height = points[CHIN] - points[NOSE_BRIDGE_TOP]
        forehead = points[BROWS] - rng.uniform(*FOREHEAD_LIFT_RANGE) * height
        return np.concatenate([points[JAW], forehead])
    if region == 1:
        return points[INNER_FACE]
    return points[LOWER_FACE]


def elastic_warp(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The mask under a smooth random displacement: real blending boundaries are not convex."""
    height, width = mask.shape
    amplitude = min(height, width) * rng.uniform(*ELASTIC_AMPLITUDE_RANGE)
    coarse = rng.uniform(-amplitude, amplitude, size=(2, ELASTIC_GRID, ELASTIC_GRID)).astype(np.float32)
    dx, dy = (cv2.resize(field, (width, height), interpolation=cv2.INTER_CUBIC) for field in coarse)
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return cv2.remap(mask, xs + dx, ys + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def blend_mask(landmarks: np.ndarray, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Soft mask in [0, 1]: the hull (warped when dense), randomly eroded or dilated, blurred,
    times a blend ratio."""
    points = np.asarray(landmarks, dtype=np.float64).reshape(-1, 2)
    if len(points) not in (FIVE_POINTS, DENSE_POINTS):
        raise ValueError(f"masks are shaped from {FIVE_POINTS} or {DENSE_POINTS} landmarks, not {len(points)}")
    dense = len(points) == DENSE_POINTS
    height, width = shape
    side = min(height, width)
    mask = np.zeros((height, width), np.uint8)
    polygon = dense_hull(points, rng) if dense else face_hull(points, rng)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(polygon).astype(np.int32)), 255)
    if dense:
        mask = elastic_warp(mask, rng)
    kernel = round(side * rng.uniform(*MORPH_FRACTION_RANGE))
    if kernel >= 2:
        element = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (kernel, kernel))
        mask = cv2.erode(mask, element) if rng.random() < 0.5 else cv2.dilate(mask, element)
    soft = cv2.GaussianBlur(
        mask.astype(np.float32) / 255.0, (0, 0), sigmaX=side * rng.uniform(*MASK_BLUR_FRACTION_RANGE)
    )
    soft[soft < 1.0 / 255.0] = 0.0  # the gaussian tail would otherwise touch every pixel
    return soft * float(rng.choice(BLEND_RATIOS))


def _colour_shift(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """RGB shift, HSV shift and brightness/contrast: the face and its frame rarely match in colour."""
    rgb = image.astype(np.float32)
    if rng.random() < RGB_SHIFT_P:
        rgb = rgb + rng.uniform(-RGB_SHIFT, RGB_SHIFT, size=3)
    hsv = cv2.cvtColor(np.clip(rgb, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV_FULL).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-HSV_SHIFT[0], HSV_SHIFT[0])) % 256
    hsv[..., 1:] += rng.uniform(-1, 1, size=2) * np.array(HSV_SHIFT[1:], np.float32)
    rgb = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB_FULL).astype(np.float32)
    mean = rgb.mean()
    rgb = (rgb - mean) * (1 + rng.uniform(-CONTRAST_RANGE, CONTRAST_RANGE)) + mean
    rgb = rgb + rng.uniform(-BRIGHTNESS_SHIFT, BRIGHTNESS_SHIFT)
    return np.clip(rgb, 0, 255)


def _frequency_shift(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sharpen or soften: generators and blending leave the face at a different sharpness."""
    if rng.random() < 0.5:
        blurred = cv2.GaussianBlur(image, (0, 0), sigmaX=1.0)
        return np.clip(image + rng.uniform(*SHARPEN_AMOUNT_RANGE) * (image - blurred), 0, 255)
    return cv2.GaussianBlur(image, (0, 0), sigmaX=rng.uniform(*SOFTEN_SIGMA_RANGE))


def _misalign(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Small scale and shift: a swapped face never sits exactly where the old one was."""
    height, width = image.shape[:2]
    scale = rng.uniform(*SOURCE_SCALE_RANGE)
    shift = rng.uniform(-SOURCE_SHIFT_FRACTION, SOURCE_SHIFT_FRACTION, size=2) * (width, height)
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), 0.0, scale)
    matrix[:, 2] += shift
    return cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_REFLECT)


def self_blend(image: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator) -> SelfBlend:
    """Blend an altered copy of `image` into itself inside the face mask.

    Args:
        image: RGB uint8 face crop.
        landmarks: (5, 2) MTCNN points or (68, 2) dlib points in the crop's pixel coordinates.
    """
    source = image.astype(np.float32)
    source = _colour_shift(source.astype(np.uint8), rng) if rng.random() < 0.9 else source
    source = _frequency_shift(source, rng) if rng.random() < 0.7 else source
    source = _misalign(source, rng)
    mask = blend_mask(landmarks, image.shape[:2], rng)
    weight = mask[..., None]
    blended = source * weight + image.astype(np.float32) * (1.0 - weight)
    return SelfBlend(image=np.clip(np.rint(blended), 0, 255).astype(np.uint8), mask=mask)
