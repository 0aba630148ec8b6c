"""Face crops for training, cut by the detector's own pipeline and cached on disk outside the repo.

Sampled frames -> the detector's `FaceFinder` at the spec's detector settings -> `crop_face` with
the members' `CropSpec`, then the detector's tracking (`assign_identities`, one-off tracks dropped) to keep each clip's main person: the same
steps `Detector.detect` runs, so the models train on exactly what they will see. MTCNN's landmarks
are kept too, mapped into crop pixels, for self-blended images. The cache folder is
named by a hash of every setting that changes the crops; a file's entry by its path, size and
modification time, so re-runs skip finished videos and a changed file is extracted again.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import sys
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from models.crops import CropSpec, crop_face, crop_window
from models.errors import FakewatchError
from models.face_finder import FaceFinder, finder_settings
from models.faces import Face
from models.tracking import assign_identities, main_person, min_track_length
from models.video.sampling import FrameSampling, read_sampled_frames

# Bump when what is stored, or how it is computed, changes. 3: faces found by the detector's
# FaceFinder (dark frames brightened, a second pass) at the spec's detector settings, not plain MTCNN.
CACHE_FORMAT_VERSION = 3


def default_cache_root() -> Path:
    """`$XDG_CACHE_HOME/fakewatch/crops`, else `~/.cache/fakewatch/crops`."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fakewatch" / "crops"


@dataclass(frozen=True)
class ClipCrops:
    """Every face found in one clip's sampled frames, with its crop, in frame order.

    Attributes:
        crops: (N, S, S, 3) uint8 RGB.
        landmarks: (N, 5, 2) float32 MTCNN points in crop pixels.
        boxes: (N, 4) float32 face boxes in frame pixels.
        frame_landmarks: (N, 5, 2) float32 MTCNN points in frame pixels.
        confidences: (N,) MTCNN face probability.
        frame_positions: (N,) which sampled frame (0 .. frames_sampled - 1) each face is in.
        frame_indices: (N,) decoded frame index of each face.
        frames_sampled: frames read from the clip (some may hold no face).
    """

    crops: np.ndarray
    landmarks: np.ndarray
    boxes: np.ndarray
    frame_landmarks: np.ndarray
    confidences: np.ndarray
    frame_positions: np.ndarray
    frame_indices: np.ndarray
    frames_sampled: int

    def __len__(self) -> int:
        return len(self.crops)

    def identities(self) -> np.ndarray:
        """(N,) person track of each face, by the detector's tracker (computed, not cached, so
        that a change to tracking never leaves stale identities in the cache)."""
        faces_per_frame: list[list[Face]] = [[] for _ in range(self.frames_sampled)]
        for i in range(len(self)):
            faces_per_frame[self.frame_positions[i]].append(
                Face(box=self.boxes[i], confidence=float(self.confidences[i]), landmarks=self.frame_landmarks[i])
            )
        per_frame = assign_identities(faces_per_frame)
        cursor = [0] * self.frames_sampled
        identities = np.zeros(len(self), np.int64)
        for i, position in enumerate(self.frame_positions):
            identities[i] = per_frame[position][cursor[position]]
            cursor[position] += 1
        return identities

    def tracked(self) -> tuple[ClipCrops, np.ndarray]:
        """The faces the detector keeps (tracks of at least `min_track_length` frames) and
        their identities."""
        identities = self.identities()
        ids, counts = np.unique(identities, return_counts=True)
        keep = np.isin(identities, ids[counts >= min_track_length(self.frames_sampled)])
        return self.select(keep), identities[keep]

    def main_person(self) -> ClipCrops:
        """Faces of the person in most sampled frames (ties: the first seen); none when every
        track is shorter than the detector keeps.

        A fake clip's label is about its manipulated face, normally the main one; bystanders
        would be mislabelled samples.
        """
        faces, identities = self.tracked()
        if not len(faces):
            return faces
        return faces.select(main_person(identities))

    def select(self, keep: np.ndarray) -> ClipCrops:
        return ClipCrops(
            **{name: value[keep] for name, value in vars(self).items() if name != "frames_sampled"},
            frames_sampled=self.frames_sampled,
        )


def landmarks_in_crop(
    landmarks: np.ndarray, window: tuple[int, int, int, int], size: int
) -> np.ndarray:
    """Map frame-pixel landmarks into a letterboxed crop of `window` (to within a pixel of
    rounding: `crop_face` resizes isotropically to `size` on the long side and centres)."""
    left, top, right, bottom = window
    width, height = right - left, bottom - top
    scale = size / max(width, height)
    offset = np.array(
        [(size - round(width * scale)) // 2, (size - round(height * scale)) // 2], np.float32
    )
    origin = np.array([left, top], np.float32)
    return ((np.asarray(landmarks, np.float32) - origin) * scale + offset).astype(np.float32)


class CropExtractor:
    """Runs the detector's face pipeline on one clip at a time.

    Args:
        spec: crop convention of the models being trained.
        frames: frames sampled evenly over each clip.
        device: where MTCNN runs.
    """

    def __init__(self, spec: CropSpec, frames: int, device: str = "cpu") -> None:
        self.spec = spec
        self.sampling = FrameSampling(count=frames)
        self.device = device
        self._faces: FaceFinder | None = None

    def settings(self) -> dict[str, object]:
        """Everything that changes the crops: it names the cache folder."""
        return {
            "version": CACHE_FORMAT_VERSION,
            "frames": self.sampling.count,
            "spec": asdict(self.spec),
            "finder": finder_settings(self.spec.detector),
        }

    def extract(self, path: Path) -> ClipCrops:
        """Crops of every face found in the sampled frames. Raises VideoError for bad files."""
        if self._faces is None:
            self._faces = FaceFinder(device=self.device, settings=self.spec.detector)
        _info, frames = read_sampled_frames(path, self.sampling)
        faces_per_frame = self._faces.detect([frame.image for frame in frames])
        located = [
            (position, frame, face)
            for position, (frame, faces) in enumerate(zip(frames, faces_per_frame, strict=True))
            for face in faces
        ]
        crops, landmarks = [], []
        for _position, frame, face in located:
            window = crop_window(frame.image.shape[0], frame.image.shape[1], face.box, self.spec)
            crops.append(crop_face(frame.image, face.box, self.spec))
            landmarks.append(landmarks_in_crop(face.landmarks, window, self.spec.size))
        size = self.spec.size
        return ClipCrops(
            crops=np.stack(crops) if crops else np.zeros((0, size, size, 3), np.uint8),
            landmarks=np.stack(landmarks) if landmarks else np.zeros((0, 5, 2), np.float32),
            boxes=np.array([f.box for _, _, f in located], np.float32).reshape(-1, 4),
            frame_landmarks=np.array([f.landmarks for _, _, f in located], np.float32).reshape(-1, 5, 2),
            confidences=np.array([f.confidence for _, _, f in located], np.float32),
            frame_positions=np.array([p for p, _, _ in located], np.int64),
            frame_indices=np.array([frame.index for _, frame, _ in located], np.int64),
            frames_sampled=len(frames),
        )


class CropCache:
    """Crops on disk under `root/<settings hash>/<file key>.npz`, extracted on first use."""

    def __init__(self, extractor: CropExtractor, root: Path | None = None) -> None:
        self.extractor = extractor
        digest = hashlib.sha256(json.dumps(extractor.settings(), sort_keys=True).encode()).hexdigest()
        self.directory = (root or default_cache_root()) / digest[:16]

    def entry(self, path: Path) -> Path:
        """Cache file for a video: keyed by its absolute path, size and modification time."""
        stat = path.stat()
        key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
        return self.directory / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.npz"

    def has(self, path: Path) -> bool:
        return self.entry(path).is_file()

    def get(self, path: Path) -> ClipCrops:
        """Load the clip's crops, extracting and storing them first when absent."""
        entry = self.entry(path)
        if entry.is_file():
            with np.load(entry) as stored:
                fields = {name: stored[name] for name in stored.files}
            return ClipCrops(**{**fields, "frames_sampled": int(fields["frames_sampled"])})
        clip = self.extractor.extract(path)
        self.directory.mkdir(parents=True, exist_ok=True)
        partial = entry.with_suffix(".partial.npz")
        np.savez(partial, **vars(clip))
        partial.replace(entry)  # atomic: an interrupted run never leaves a truncated entry
        return clip


def _worker_init(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _extract_into(cache: CropCache, path: Path) -> tuple[Path, str | None]:
    """Fill one cache entry; a bad video is returned as its error message, not raised, so that
    one file does not abort the others."""
    try:
        cache.get(path)
    except FakewatchError as error:
        return path, str(error)
    return path, None


def fill_cache(
    cache: CropCache, paths: list[Path], workers: int = 1, progress: bool = True
) -> dict[Path, str]:
    """Extract every clip not cached yet, in `workers` processes; returns {path: error}.

    With 2 workers on 2 cores one process decodes while the other runs MTCNN.
    """
    todo = [path for path in paths if not cache.has(path)]
    errors: dict[Path, str] = {}
    bar = tqdm(total=len(todo), desc="extracting faces", unit="clip", file=sys.stderr,
               disable=None if progress else True)
    if workers <= 1:
        results: Iterable[tuple[Path, str | None]] = (_extract_into(cache, p) for p in todo)
        for path, error in results:
            if error:
                errors[path] = error
            bar.update()
    else:
        context = multiprocessing.get_context("spawn")  # no forked torch or OpenMP state
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_init,
                                 initargs=(1,)) as pool:
            futures = [pool.submit(_extract_into, cache, path) for path in todo]
            for future in as_completed(futures):
                path, error = future.result()
                if error:
                    errors[path] = error
                bar.update()
    bar.close()
    return errors
