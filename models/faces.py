"""Face detection with facenet-pytorch's MTCNN, batched over a video's frames.

MTCNN runs on a copy of each frame scaled by `detection_scale` (as the DFDC winner did), and
boxes and landmarks are mapped back to full resolution. Its weights ship inside the wheel.

Where the time goes (CPU): P-Net over the image pyramid, batched across frames, is most of it;
the pyramid's area resizing is a good part of that. Stages 2 and 3 crop all candidates of a batch
in bulk (`models.mtcnn`). Small torch ops are very sensitive to thread oversubscription: on a
busy 2-core machine one torch thread ran 512x512 frames at ~0.1 s each, two threads six times
slower. Downscaling large frames (`detection_scale`) shrinks the pyramid quadratically; a larger
`MIN_FACE_FRACTION` skips its largest, costliest levels.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from facenet_pytorch import MTCNN

from models.exposure import normalise_exposure
from models.face_settings import DFDC_THRESHOLDS
from models.mtcnn import run_mtcnn

# REFERENCE §1, selim's DFDC-winning pipeline: frames are rescaled for MTCNN by their long side.
UPSCALE_BELOW = 300  # long side < 300 px: detect at 2x
UPSCALE = 2.0
FULL_SIZE_UP_TO = 1000  # 300..1000 px: detect at full size
HALF_SIZE_UP_TO = 1900  # 1000..1900 px: detect at 0.5x
HALF_SIZE = 0.5
THIRD_SIZE = 0.33  # above 1900 px

MIN_FACE_SIZE = 20  # facenet-pytorch's default, in pixels of the scaled detection image
# MTCNN's pyramid levels that only find faces smaller than this share of the frame's short side
# are skipped. They are its largest levels (in 1080p the first one, for faces under 56 px, is half
# of P-Net's work), and such faces are too small for their crops to show blending artefacts.
# Larger faces are found exactly as before. (In the 103 research clips every face tracked over
# several frames was at least 5.7% of the short side.)
MIN_FACE_FRACTION = 0.055
# Extra cut on O-Net's score. In 27 research clips (8 frames each) every detection scoring 0.8-0.9
# was a non-face (text on a necklace, a blurred lip fragment); real faces, even blurred, scored > 0.9.
MIN_CONFIDENCE = 0.9
BATCH_SIZE = 16  # frames per MTCNN call: amortises Python overhead, bounds the pyramid's memory
MIN_BOX_SIDE = 2.0  # full-resolution pixels; smaller boxes after clipping are not faces


def detection_scale(width: int, height: int) -> float:
    """Factor to resize a frame by before MTCNN, from its long side (REFERENCE §1)."""
    long_side = max(width, height)
    if long_side < UPSCALE_BELOW:
        return UPSCALE
    if long_side <= FULL_SIZE_UP_TO:
        return 1.0
    if long_side <= HALF_SIZE_UP_TO:
        return HALF_SIZE
    return THIRD_SIZE


@dataclass(frozen=True, eq=False)  # arrays have no single truth value: compare by identity
class Face:
    """One detected face, in full-resolution pixels of the upright frame.

    Attributes:
        box: (4,) float32 x1, y1, x2, y2, clipped to the frame.
        confidence: O-Net's face probability.
        landmarks: (5, 2) float32 x, y of the eyes, nose and mouth corners (MTCNN order).
    """

    box: np.ndarray
    confidence: float
    landmarks: np.ndarray


class FaceDetector:
    """MTCNN loaded once, run on batches of equally sized frames.

    Args:
        device: torch device for MTCNN ("cpu", "cuda", "cuda:1").
        thresholds: P-, R- and O-Net score thresholds.
        min_face_size: smallest face MTCNN looks for, in pixels of the scaled detection image.
        min_face_fraction: pyramid levels that only find faces smaller than this share of the
            frame's short side are skipped.
        min_confidence: faces scoring below this are dropped after detection.
        batch_size: frames per MTCNN call.
        exposure: brighten dark frames before MTCNN (`models.exposure`); boxes stay those of
            the original frame, and nothing else sees the brightened pixels. Off by default:
            plain MTCNN, as shipped before issue 11 (the benchmarks' baseline); the detector's
            `FaceFinder` turns it on.
        zoom: factor on the detection scale: 2 detects a 1080p frame at full size instead of half.
        scale: resize every frame by this (times `zoom`) before MTCNN, whatever its resolution;
            None: by its long side (`detection_scale`).
    """

    def __init__(
        self,
        device: str | torch.device = "cpu",
        thresholds: tuple[float, float, float] = DFDC_THRESHOLDS,
        min_face_size: int = MIN_FACE_SIZE,
        min_face_fraction: float = MIN_FACE_FRACTION,
        min_confidence: float = MIN_CONFIDENCE,
        batch_size: int = BATCH_SIZE,
        exposure: bool = False,
        zoom: float = 1.0,
        scale: float | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.device = torch.device(device)
        self.min_face_fraction = min_face_fraction
        self.min_confidence = min_confidence
        self.batch_size = batch_size
        self.exposure = exposure
        if zoom <= 0:
            raise ValueError(f"zoom must be positive, got {zoom}")
        self.zoom = zoom
        if scale is not None and scale <= 0:
            raise ValueError(f"scale must be positive, got {scale}")
        self.scale = scale
        self._mtcnn = MTCNN(
            min_face_size=min_face_size,
            thresholds=list(thresholds),
            keep_all=True,
            select_largest=False,
            device=self.device,
        ).eval()
        # Convolutions in channels_last (oneDNN's fast CPU layout), while the image pyramid is
        # resized in contiguous NCHW: MTCNN 1.7-2x faster, same faces.
        self._mtcnn.to(memory_format=torch.channels_last)

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        """Faces in each HxWx3 uint8 RGB image, most confident first; one list per image."""
        results: list[list[Face]] = []
        for batch in _same_size_batches(images, self.batch_size):
            results.extend(self._detect_batch(batch))
        return results

    def _detect_batch(self, batch: Sequence[np.ndarray]) -> list[list[Face]]:
        height, width = batch[0].shape[:2]
        scale = (self.scale or detection_scale(width, height)) * self.zoom
        scaled_w, scaled_h = max(1, round(width * scale)), max(1, round(height * scale))
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        scaled = [
            image if scale == 1.0 else cv2.resize(image, (scaled_w, scaled_h), interpolation=interpolation)
            for image in batch
        ]
        if self.exposure:  # on the scaled copy: a quarter of the pixels of a 1080p frame
            scaled = [normalise_exposure(image) for image in scaled]
        stacked = np.stack(scaled)
        smallest = self.min_face_fraction * min(scaled_w, scaled_h)
        boxes, points = run_mtcnn(self._mtcnn, stacked, smallest)
        to_full = np.array([width / scaled_w, height / scaled_h], dtype=np.float32)
        return [
            self._faces(boxes[i], points[i], to_full, width, height) for i in range(len(batch))
        ]

    def _faces(
        self, boxes: np.ndarray, points: np.ndarray, to_full: np.ndarray, width: int, height: int
    ) -> list[Face]:
        """One image's MTCNN output ((k,5) boxes with scores, (k,5,2) landmarks) as
        full-resolution Faces."""
        probs = boxes[:, 4].astype(np.float32)
        points = points.astype(np.float32).reshape(-1, 5, 2) * to_full
        boxes = (boxes[:, :4].astype(np.float32).reshape(-1, 2, 2) * to_full).reshape(-1, 4)
        np.clip(boxes[:, 0::2], 0, width, out=boxes[:, 0::2])
        np.clip(boxes[:, 1::2], 0, height, out=boxes[:, 1::2])
        sides_ok = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) >= MIN_BOX_SIDE
        keep = np.flatnonzero(sides_ok & (probs >= self.min_confidence))
        keep = keep[np.argsort(-probs[keep], kind="stable")]
        return [
            Face(box=boxes[i].copy(), confidence=float(probs[i]), landmarks=points[i].copy())
            for i in keep
        ]


def _same_size_batches(images: Sequence[np.ndarray], batch_size: int) -> Iterator[list[np.ndarray]]:
    """Consecutive runs of equally shaped images, at most `batch_size` long (MTCNN stacks them)."""
    batch: list[np.ndarray] = []
    for image in images:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected HxWx3 uint8 RGB images, got {image.dtype} {image.shape}")
        if batch and (image.shape != batch[0].shape or len(batch) == batch_size):
            yield batch
            batch = []
        batch.append(image)
    if batch:
        yield batch
