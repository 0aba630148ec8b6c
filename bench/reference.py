"""The naive reference mode: the DFDC winner's recipe run one step after another (REFERENCE §1).

OpenCV decoding that `grab()`s every frame up to the last wanted one and `retrieve()`s only the
wanted ones; facenet-pytorch MTCNN on one frame at a time, downscaled 0.5x with PIL; every model
in fp32 with contiguous (not channels_last) weights and inputs; no overlap between stages; torch
at its default thread count (one per core), whatever the detector chose for itself; on a GPU,
MTCNN and the models run there, still fp32 and one frame at a time. Faces
are filtered, tracked and cropped exactly as in the project's pipeline, so both modes classify the
same kind and number of faces and the speed-up is measured at equal work.
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import torch
from facenet_pytorch import MTCNN
from PIL import Image

from models.aggregation import CropScores, get_policy
from models.checkpoints import load_classifier
from models.crops import crop_face, crops_to_tensor
from models.errors import VideoError
from models.faces import DFDC_THRESHOLDS, MIN_BOX_SIDE, MIN_CONFIDENCE, Face
from models.registry import Registry
from models.tracking import assign_identities, drop_short_tracks, min_track_length

REFERENCE_SCALE = 0.5  # REFERENCE §1: MTCNN on the frame downscaled 0.5x, boxes scaled back


def read_frames_opencv(path: Path, count: int) -> list[np.ndarray]:
    """`count` evenly spaced frames (RGB) by index, grabbing through the file (REFERENCE §1)."""
    capture = cv2.VideoCapture(str(path))
    try:
        total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        if not capture.isOpened() or total <= 0:
            raise VideoError(f"OpenCV cannot read {Path(path).name}")
        wanted = set(np.linspace(0, total - 1, count, dtype=int).tolist())
        frames = []
        for index in range(max(wanted) + 1):
            if not capture.grab():
                break
            if index in wanted:
                ok, frame = capture.retrieve()
                if ok:
                    frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        return frames
    finally:
        capture.release()


class ReferencePipeline:
    """The unoptimised pipeline, with its own fp32 contiguous copies of the ensemble's models."""

    def __init__(
        self, registry_path: Path | None, policy: str, threads: int, device: str = "cpu"
    ) -> None:
        self.threads = threads
        self.device = torch.device(device)
        registry = Registry.load(registry_path)
        self.entries = registry.resolve(None)
        self.models = {e.id: load_classifier(e, registry, self.device) for e in self.entries}
        self.policy = get_policy(policy)
        self.mtcnn = MTCNN(
            thresholds=list(DFDC_THRESHOLDS), keep_all=True, device=self.device
        ).eval()

    def run(self, path: Path, frames: int) -> dict[str, object]:
        """Stage timings (s), total, faces classified and the video score for one video."""
        chosen = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            return self._run(path, frames)
        finally:
            torch.set_num_threads(chosen)

    def _run(self, path: Path, frames: int) -> dict[str, object]:
        timings: dict[str, float] = {}
        started = time.perf_counter()
        mark = started

        def lap(stage: str) -> None:
            nonlocal mark
            now = time.perf_counter()
            timings[stage] = now - mark
            mark = now

        images = read_frames_opencv(path, frames)
        lap("decode")
        faces = [self._detect_one(image) for image in images]
        faces, identities = drop_short_tracks(
            faces, assign_identities(faces), min_track_length(len(faces))
        )
        located = [(i, face) for i, frame_faces in enumerate(faces) for face in frame_faces]
        lap("detect_faces")
        probability = None
        if located:
            crops = {
                spec: crops_to_tensor([crop_face(images[i], f.box, spec) for i, f in located], spec)
                for spec in dict.fromkeys(e.preprocessing for e in self.entries)
            }
            lap("crop")
            with torch.inference_mode():
                per_model = {
                    e.id: torch.sigmoid(
                        self.models[e.id](crops[e.preprocessing].to(self.device))
                        .float()
                        .reshape(-1)
                        / e.temperature
                    )
                    .cpu()
                    .numpy()
                    .astype(np.float64)
                    for e in self.entries
                }
            lap("classify")
            ids = np.array([identity for frame_ids in identities for identity in frame_ids])
            probability = self.policy.video_score(CropScores(identities=ids, per_model=per_model))
            lap("aggregate")
        timings["total"] = time.perf_counter() - started
        return {
            "timings": timings,
            "sampled_frames": len(images),
            "faces": len(located),
            "probability": probability,
            "torch_threads": self.threads,
        }

    def _detect_one(self, image: np.ndarray) -> list[Face]:
        height, width = image.shape[:2]
        small = Image.fromarray(image).resize(
            (round(width * REFERENCE_SCALE), round(height * REFERENCE_SCALE))
        )
        boxes, probs, points = self.mtcnn.detect(small, landmarks=True)
        if boxes is None:
            return []
        found = []
        for box, prob, landmarks in zip(boxes, probs, points, strict=True):
            box = np.clip(np.asarray(box, np.float32) / REFERENCE_SCALE, 0, [width, height] * 2)
            side = min(box[2] - box[0], box[3] - box[1])
            if prob >= MIN_CONFIDENCE and side >= MIN_BOX_SIDE:
                found.append(
                    Face(
                        box=box,
                        confidence=float(prob),
                        landmarks=np.asarray(landmarks, np.float32) / REFERENCE_SCALE,
                    )
                )
        found.sort(key=lambda f: -f.confidence)
        return found
