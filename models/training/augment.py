"""Image augmentations for face crops, written with numpy and OpenCV.

Each transform takes an RGB uint8 HxWx3 image and returns a new one of the same shape and dtype.
The mix follows the DFDC winner's recipe (compression, noise, blur, colour, flips, cut-out) with
heavier re-encoding, because in our data compression level predicts the label (REFERENCE §8): every
training crop is re-encoded at a random JPEG or H.264 quality so that quality stops being a cue.
"""

from __future__ import annotations

import fractions
from dataclasses import dataclass

import av
import cv2
import numpy as np

# FaceForensics++ c23 and c40 are H.264 at constant rate factor 23 and 40: cover both and between.
H264_CRF_RANGE = (18, 40)
JPEG_QUALITY_RANGE = (30, 95)
BLUR_SIGMA_RANGE = (0.3, 1.5)
NOISE_SIGMA_RANGE = (2.0, 10.0)  # in 0-255 units
DOWNSCALE_RANGE = (0.35, 0.8)  # low-resolution faces upscaled to the crop size
BRIGHTNESS_RANGE = 0.15
CONTRAST_RANGE = 0.2
SATURATION_RANGE = 0.25
HUE_SHIFT_DEGREES = 8.0
CUTOUT_SIZE_RANGE = (0.1, 0.35)  # side as a fraction of the crop's side
H264_FRAME_RATE = 25


def _clip_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def hflip(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(image[:, ::-1])


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """Round-trip through OpenCV's JPEG codec (it works in BGR)."""
    ok, encoded = cv2.imencode(
        ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    )
    if not ok:
        raise ValueError("JPEG encoding failed")
    return cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def h264(image: np.ndarray, crf: int) -> np.ndarray:
    """Round-trip one frame through libx264 at a constant rate factor (4:2:0, as videos are)."""
    height, width = image.shape[:2]
    padded = np.pad(image, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height = padded.shape[1], padded.shape[0]
    encoder.pix_fmt = "yuv420p"
    encoder.time_base = fractions.Fraction(1, H264_FRAME_RATE)
    # One thread: x264's output depends on its thread count, and a tiny frame gains nothing.
    encoder.options = {
        "crf": str(int(crf)), "preset": "ultrafast", "tune": "zerolatency", "threads": "1"
    }
    packets = encoder.encode(av.VideoFrame.from_ndarray(padded, format="rgb24")) + encoder.encode(None)
    decoder = av.CodecContext.create("h264", "r")
    decoder.options = {"threads": "1"}
    frames = [frame for packet in packets for frame in decoder.decode(packet)] + decoder.decode(None)
    if not frames:
        raise ValueError("H.264 round trip produced no frame")
    return np.ascontiguousarray(frames[0].to_ndarray(format="rgb24")[:height, :width])


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(image, (0, 0), sigmaX=float(sigma))


def gaussian_noise(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    return _clip_uint8(image.astype(np.float32) + rng.normal(0.0, sigma, image.shape))


def downscale(image: np.ndarray, factor: float) -> np.ndarray:
    """Shrink then restore the size: the look of a small face upsampled by the detector's crop."""
    height, width = image.shape[:2]
    small = cv2.resize(
        image, (max(1, round(width * factor)), max(1, round(height * factor))),
        interpolation=cv2.INTER_AREA,
    )
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def color_jitter(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random brightness, contrast, saturation and hue."""
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV_FULL).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-1, 1) * HUE_SHIFT_DEGREES * 256 / 360) % 256
    hsv[..., 1] *= 1.0 + rng.uniform(-SATURATION_RANGE, SATURATION_RANGE)
    rgb = cv2.cvtColor(_clip_uint8(hsv), cv2.COLOR_HSV2RGB_FULL).astype(np.float32)
    mean = rgb.mean()
    rgb = (rgb - mean) * (1.0 + rng.uniform(-CONTRAST_RANGE, CONTRAST_RANGE)) + mean
    return _clip_uint8(rgb * (1.0 + rng.uniform(-BRIGHTNESS_RANGE, BRIGHTNESS_RANGE)))


def cutout(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Blank a random rectangle so no single face region can carry the decision."""
    height, width = image.shape[:2]
    box_h = max(1, round(height * rng.uniform(*CUTOUT_SIZE_RANGE)))
    box_w = max(1, round(width * rng.uniform(*CUTOUT_SIZE_RANGE)))
    top, left = rng.integers(0, height - box_h + 1), rng.integers(0, width - box_w + 1)
    out = image.copy()
    out[top : top + box_h, left : left + box_w] = rng.integers(0, 256)
    return out


@dataclass(frozen=True)
class AugmentConfig:
    """Probability of each step of `augment`; compression is JPEG or H.264 with equal odds."""

    flip: float = 0.5
    color: float = 0.5
    blur: float = 0.15
    downscale: float = 0.2
    noise: float = 0.15
    compression: float = 0.8
    cutout: float = 0.25

    def describe(self) -> dict[str, str]:
        """Human-readable recipe for the model card."""
        return {
            "horizontal flip": f"p={self.flip}",
            "colour jitter (brightness, contrast, saturation, hue)": f"p={self.color}",
            "gaussian blur": f"p={self.blur}, sigma {BLUR_SIGMA_RANGE}",
            "downscale-upscale": f"p={self.downscale}, factor {DOWNSCALE_RANGE}",
            "gaussian noise": f"p={self.noise}, sigma {NOISE_SIGMA_RANGE}",
            "re-encoding": (
                f"p={self.compression}: JPEG quality {JPEG_QUALITY_RANGE} or "
                f"H.264 CRF {H264_CRF_RANGE}"
            ),
            "cut-out": f"p={self.cutout}, side {CUTOUT_SIZE_RANGE} of the crop",
        }


def augment(image: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    """Apply a random chain in the order a video's life would: content, optics, compression, occlusion."""
    out = image
    if rng.random() < config.flip:
        out = hflip(out)
    if rng.random() < config.color:
        out = color_jitter(out, rng)
    if rng.random() < config.blur:
        out = gaussian_blur(out, rng.uniform(*BLUR_SIGMA_RANGE))
    if rng.random() < config.downscale:
        out = downscale(out, rng.uniform(*DOWNSCALE_RANGE))
    if rng.random() < config.noise:
        out = gaussian_noise(out, rng.uniform(*NOISE_SIGMA_RANGE), rng)
    if rng.random() < config.compression:
        if rng.random() < 0.5:
            out = jpeg(out, int(rng.integers(JPEG_QUALITY_RANGE[0], JPEG_QUALITY_RANGE[1] + 1)))
        else:
            out = h264(out, int(rng.integers(H264_CRF_RANGE[0], H264_CRF_RANGE[1] + 1)))
    if rng.random() < config.cutout:
        out = cutout(out, rng)
    return out
