"""The one object workers, the CLI and the benchmark share: load once, then video -> result."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch

from models.aggregation import AggregationPolicy, CropScores, get_policy, identity_scores
from models.appearance import DESCRIPTOR_SIZE, describe_face
from models.config import DetectOptions, DetectorConfig
from models.crops import CropSpec, crop_face, crops_to_tensor
from models.device import cap_cpu_threads, resolve_device
from models.ensemble import Ensemble, Member
from models.errors import ConfigError
from models.faces import Face
from models.family_faces import FamilyFaces
from models.presets import OperatingPoint, aggregation_policy, ensemble_presets, operating_point
from models.registry import Registry, ThresholdPresets, registry_sha256
from models.schema import (
    Box,
    DetectionResult,
    FaceScore,
    FrameScore,
    IdentityScore,
    ModelInfo,
    ThresholdPreset,
    VideoInfo,
)
from models.scoring_jobs import Crops, ScoringJobs
from models.shots import frame_signature, shot_starts
from models.ssim_pairs import NO_PAIR_REASON, NoPairError, PairInputs, grey_view
from models.tracking import assign_identities, drop_short_tracks, min_track_length
from models.video.decode import DecodeReport
from models.video.prefetch import PREFETCH_DECODE_THREADS, PrefetchedFrames
from models.video.sampling import FrameSampling

FAKEWATCH_VERSION = version("fakewatch")  # the installed distribution's, as pip reports it

Progress = Callable[[str, float], None]
STAGES = ("decode", "detect_faces", "crop", "classify", "aggregate")
WARMUP_SIZE = (360, 640)  # a small frame: enough to build kernels and allocate buffers once


@dataclass
class _LocatedFace:
    """A detected face with where it came from: frame position and identity."""

    frame: int
    face: Face
    identity: int


class _Stopwatch:
    """Seconds per stage; stages timed on several threads add up."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._lock = threading.Lock()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            with self._lock:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start


class Detector:
    """Loads the face detector and the classifier ensemble once; scores videos one at a time."""

    def __init__(self, config: DetectorConfig | None = None) -> None:
        self.config = config or DetectorConfig()
        if self.config.policy is not None:  # refuse a bad default before loading anything
            get_policy(self.config.policy)
        self.device = resolve_device(self.config.device)
        self._faces: FamilyFaces | None = None
        self._ensemble: Ensemble | None = None
        self._presets: ThresholdPresets | None = None
        self._registry_sha256: str | None = None
        # One classifier thread for the detector's life, shared by concurrent videos: cuDNN
        # keeps its execution plans per thread, and a fresh thread per video rebuilt them all
        # (8 s of a video's 8.7 s on an H100). `warmup` builds them in this thread.
        self._classifier = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fakewatch-classify")

    def load(self) -> None:
        """Load every model; raises MissingWeightsError naming any absent weights file."""
        if self._ensemble is not None:
            return
        if self.device.type == "cpu":
            cap_cpu_threads(reserved=PREFETCH_DECODE_THREADS)
        registry = Registry.load(self.config.registry_path)
        self._registry_sha256 = registry_sha256(self.config.registry_path)
        self._ensemble = Ensemble.load(
            registry, self.config.models, self.device, self.config.precision
        )
        self._presets = ensemble_presets(registry, self.config.models)
        if self.config.preset is not None:  # refuse a preset that cannot apply before any video
            operating_point(DetectOptions(), self.config, self._presets, whole_ensemble=True)
        self._faces = FamilyFaces.load(
            [m.entry.preprocessing.detector for m in self._ensemble.members], self.device
        )

    def warmup(self) -> None:
        """One pass on a blank frame and blank crops, so the first video is not slow."""
        faces, ensemble = self._loaded()
        faces.warmup(np.zeros((*WARMUP_SIZE, 3), dtype=np.uint8))
        self._classifier.submit(ensemble.warmup).result()

    @property
    def models(self) -> list[ModelInfo]:
        return [member.info for member in self._loaded()[1].members]

    @property
    def registry_sha256(self) -> str:
        """Identity of the loaded weights: results carry it, and the service's dedup keys on it
        so a model upgrade never serves results scored by the old weights."""
        self._loaded()
        assert self._registry_sha256 is not None
        return self._registry_sha256

    @property
    def ensemble(self) -> Ensemble:
        """The loaded classifiers (loading them first if needed)."""
        return self._loaded()[1]

    @property
    def presets(self) -> list[ThresholdPreset]:
        """The loaded ensemble's measured operating points (empty when it has none)."""
        self._loaded()
        return self._presets.listing() if self._presets else []

    @property
    def presets_policy(self) -> str | None:
        """The aggregation policy the presets' rates were measured under (None without presets)."""
        self._loaded()
        return self._presets.measured_policy if self._presets else None

    @property
    def default_policy(self) -> str:
        """The aggregation policy a request that names none is scored with."""
        return self.policy_name(DetectOptions())

    def operating_point(self, options: DetectOptions) -> OperatingPoint:
        """The threshold (and preset) a request with `options` is judged at."""
        return operating_point(options, self.config, self._presets, self._whole_ensemble(options))

    def policy_name(self, options: DetectOptions) -> str:
        """The aggregation policy a request with `options` is scored with."""
        return aggregation_policy(options, self.config, self._presets, self._whole_ensemble(options))

    def _whole_ensemble(self, options: DetectOptions) -> bool:
        ensemble = self._loaded()[1]
        return options.models is None or set(options.models) >= set(ensemble.ids)

    def detect(
        self,
        path: str | Path,
        options: DetectOptions | None = None,
        progress: Progress | None = None,
    ) -> DetectionResult:
        """Score one video (or image), stamped with what scored it. Raises VideoError for
        undecodable input."""
        result = self._score(path, options, progress)
        provenance = {"fakewatch_version": FAKEWATCH_VERSION, "registry_sha256": self.registry_sha256}
        return result.model_copy(update=provenance)

    def _score(
        self, path: str | Path, options: DetectOptions | None, progress: Progress | None
    ) -> DetectionResult:
        faces_model, ensemble = self._loaded()
        options = options or DetectOptions()
        policy = get_policy(self.policy_name(options))
        point = self.operating_point(options)
        members = ensemble.select(options.models)
        report = progress or (lambda stage, fraction: None)
        clock = _Stopwatch()
        started = time.perf_counter()

        def predict(crops: Crops, model_id: str) -> np.ndarray:
            with clock.stage("classify"):
                return ensemble.predict(crops, [model_id])[model_id]

        jobs = ScoringJobs(
            self._classifier,
            predict,
            [m.entry.id for m in members if not m.needs_pairs],
            help_at_end=self.device.type == "cpu",
        )
        pair_members = [m for m in members if m.needs_pairs]
        report("decode", 0.0)
        scan = _scan_video(
            path,
            frame_sampling(options, self.config),
            faces_model.select([m.entry.preprocessing.detector for m in members]),
            jobs,
            list(dict.fromkeys(m.entry.preprocessing for m in members)),
            {m.entry.preprocessing for m in pair_members},
            clock,
            report,
            decoder_threads(self.device),
        )
        info, frames = scan.info, scan.frames
        with clock.stage("detect_faces"):
            located = _locate(scan)
        warnings = scan.decode.warnings()
        if pair_members:
            located, unpaired = _paired_only(located)
            if unpaired:
                warnings.append(
                    f"{unpaired} face(s) of people seen in one sampled frame only were not scored: "
                    f"{', '.join(m.entry.id for m in pair_members)} compare each face with the same "
                    "person's face in the neighbouring sampled frame"
                )
        if not located:
            clock.seconds["total"] = time.perf_counter() - started
            return self._no_face(
                Path(path).name, info, frames, policy.name, point, members, clock.seconds,
                scan.decode,
            )

        identities = np.array([f.identity for f in located])
        per_model = scan.probabilities_of([f.face for f in located])
        if pair_members:
            with clock.stage("classify"):
                per_model |= self._classifier.submit(
                    _score_pairs, ensemble, pair_members, scan, located, identities
                ).result()
        with clock.stage("aggregate"):
            report("aggregate", 0.0)
            scores = CropScores(identities=identities, per_model=per_model)
            video_probability = policy.video_score(scores)
            result_frames = _frame_scores(frames, located, scores)
            identities = _identity_scores(policy, scores, result_frames, point.threshold)
        clock.seconds["total"] = time.perf_counter() - started
        report("done", 1.0)
        return DetectionResult(
            file=Path(path).name,
            status="ok",
            probability=video_probability,
            label=_label(video_probability, point.threshold),
            threshold=point.threshold,
            preset=point.preset,
            aggregation=policy.name,
            identities=identities,
            frames=result_frames,
            models=[m.info for m in members],
            video=info,
            sampled_frames=len(frames),
            decoded_fraction=scan.decode.fraction,
            warnings=warnings,
            timings=clock.seconds,
        )

    def _loaded(self) -> tuple[FamilyFaces, Ensemble]:
        if self._faces is None or self._ensemble is None:
            self.load()
        assert self._faces is not None and self._ensemble is not None
        return self._faces, self._ensemble

    @staticmethod
    def _no_face(
        file: str,
        info: VideoInfo,
        frames: list[_FramePosition],
        policy: str,
        point: OperatingPoint,
        members: list[Member],
        timings: dict[str, float],
        decode: DecodeReport,
    ) -> DetectionResult:
        return DetectionResult(
            file=file,
            status="no_face",
            probability=None,
            label=None,
            threshold=point.threshold,
            preset=point.preset,
            aggregation=policy,
            identities=[],
            frames=[FrameScore(index=f.index, timestamp=f.timestamp, faces=[]) for f in frames],
            models=[m.info for m in members],
            video=info,
            sampled_frames=len(frames),
            decoded_fraction=decode.fraction,
            warnings=decode.warnings(),
            timings=timings,
        )


@dataclass(frozen=True)
class _FramePosition:
    """Where a sampled frame sits in the video; its pixels are dropped once its faces are cropped."""

    index: int
    timestamp: float


def decoder_threads(device: torch.device) -> int:
    """FFmpeg threads for the decoder thread. On CPU one, because torch needs the other cores;
    with the models on a GPU the cores are free and decoding is what the GPU waits on, so
    FFmpeg takes one per core (0)."""
    return PREFETCH_DECODE_THREADS if device.type == "cpu" else 0


@dataclass
class _Scan:
    """A video's sampled frames, their faces and every face's P(fake) per model."""

    info: VideoInfo
    decode: DecodeReport
    frames: list[_FramePosition]
    faces_per_frame: list[list[Face]]
    appearances: list[np.ndarray]  # per frame, (faces, D) `describe_face` descriptors
    signatures: list[np.ndarray]  # per frame, its `frame_signature` (for shot cuts)
    kept_crops: dict[CropSpec, dict[Face, np.ndarray]]  # uint8 crops for members scored after tracking
    _row: dict[Face, int]
    _per_model: dict[str, np.ndarray]

    def probabilities_of(self, faces: Sequence[Face]) -> dict[str, np.ndarray]:
        """P(fake) per model for `faces` (detected in this scan), in their order."""
        rows = np.array([self._row[face] for face in faces], dtype=np.int64)
        return {model_id: probabilities[rows] for model_id, probabilities in self._per_model.items()}


def _scan_video(
    path: str | Path,
    sampling: FrameSampling,
    faces_model: FamilyFaces,
    jobs: ScoringJobs,
    specs: Sequence[CropSpec],
    kept_specs: set[CropSpec],
    clock: _Stopwatch,
    report: Progress,
    decode_threads: int,
) -> _Scan:
    """Decode, detect and classify as a three-stage pipeline, one thread per stage.

    The decoder thread reads ahead; this thread runs MTCNN on each batch of ready frames and
    crops its faces; the detector's classifier thread scores the crops of one batch while MTCNN
    works on the next, and this thread helps with the last batches (`ScoringJobs`). Each thread
    keeps torch at one intra-op thread, so on a small CPU the stages run on different cores
    instead of fighting over them, and wall time approaches the slowest stage rather than the
    sum. Every face is classified as soon as it is found, before tracking
    decides which faces form a person (tracking then drops one-off detections, whose scores were
    wasted work; they are rare), and only one batch of full-resolution frames is held at a time.
    Crops of `kept_specs` are kept for the members that compare a person's crops across frames,
    which can only run once tracking has said who is who (`_score_pairs`).
    `decode` and `classify` are their threads' own times, so they overlap the other stages.
    """
    frames: list[_FramePosition] = []
    faces_per_frame: list[list[Face]] = []
    appearances: list[np.ndarray] = []
    signatures: list[np.ndarray] = []
    kept_crops: dict[CropSpec, dict[Face, np.ndarray]] = {spec: {} for spec in kept_specs}
    scored: list[Face] = []
    try:
        with PrefetchedFrames(path, sampling, decode_threads=decode_threads) as prefetch:
            report("detect_faces", 0.0)
            for batch in prefetch.batches(faces_model.batch_size):
                with clock.stage("detect_faces"):
                    found = faces_model.detect([frame.image for frame in batch])
                    batch_faces = found.faces
                    signatures.extend(frame_signature(frame.image) for frame in batch)
                    appearances.extend(
                        _describe(frame.image, faces) for frame, faces in zip(batch, batch_faces)
                    )
                frames.extend(_FramePosition(frame.index, frame.timestamp) for frame in batch)
                faces_per_frame.extend(batch_faces)
                located = [(frame, face) for frame, faces in zip(batch, batch_faces) for face in faces]
                if not located:
                    continue
                boxes = {  # each family's box for every located face, in `located` order
                    settings: [box for frame_boxes in per_frame for box in frame_boxes]
                    for settings, per_frame in found.boxes.items()
                }
                done = _fraction(len(frames), sampling)
                with clock.stage("crop"):
                    report("crop", done)
                    cut = {
                        spec: [
                            crop_face(frame.image, box, spec)
                            for (frame, _), box in zip(located, boxes[spec.detector], strict=True)
                        ]
                        for spec in specs
                    }
                    for spec, kept in kept_crops.items():
                        kept.update(zip((face for _, face in located), cut[spec], strict=True))
                    crops = {spec: crops_to_tensor(images, spec) for spec, images in cut.items()}
                report("classify", done)
                jobs.submit(crops)
                scored.extend(face for _, face in located)
            per_model = jobs.results()
    finally:
        jobs.cancel()
    clock.seconds["decode"] = prefetch.decode_seconds
    for stage in ("crop", "classify"):
        clock.seconds.setdefault(stage, 0.0)
    return _Scan(
        info=prefetch.info,
        decode=prefetch.report,
        frames=frames,
        faces_per_frame=faces_per_frame,
        appearances=appearances,
        signatures=signatures,
        kept_crops=kept_crops,
        _row={face: row for row, face in enumerate(scored)},
        _per_model=per_model,
    )


def _paired_only(located: list[_LocatedFace]) -> tuple[list[_LocatedFace], int]:
    """The faces of people seen in at least two sampled frames, and how many others there were.

    Raises NoPairError when nobody is (an image, or a clip too short for two sampled frames).
    """
    counts = Counter(item.identity for item in located)
    paired = [item for item in located if counts[item.identity] >= 2]
    if located and not paired:
        raise NoPairError(NO_PAIR_REASON)
    renumber = {identity: new for new, identity in enumerate(dict.fromkeys(i.identity for i in paired))}
    for item in paired:
        item.identity = renumber[item.identity]
    return paired, len(located) - len(paired)


def _score_pairs(ensemble: Ensemble, members: Sequence[Member], scan: _Scan,
                 located: Sequence[_LocatedFace], identities: np.ndarray) -> dict[str, np.ndarray]:
    """P(fake) of the tracked faces (every person seen at least twice: `_paired_only`) from the
    members that compare each face with the same person's crop in the neighbouring sampled frame."""
    per_model: dict[str, np.ndarray] = {}
    for spec in dict.fromkeys(m.entry.preprocessing for m in members):
        images = [scan.kept_crops[spec][item.face] for item in located]
        pairs = PairInputs.of_faces([grey_view(image) for image in images], identities)
        ids = [m.entry.id for m in members if m.entry.preprocessing == spec]
        per_model |= ensemble.predict({spec: crops_to_tensor(images, spec)}, ids, pairs)
    return per_model


def _fraction(frames_done: int, sampling: FrameSampling) -> float:
    """Share of the sampled frames processed, when the count is known in advance."""
    return min(1.0, frames_done / sampling.count) if sampling.count else 0.0


def frame_sampling(options: DetectOptions, config: DetectorConfig) -> FrameSampling:
    """Which frames a request samples; crops for review are cut again from the same frames."""
    if options.fps is not None:
        if options.frames is not None:
            raise ConfigError("give either frames or fps, not both")
        return FrameSampling(count=None, per_second=options.fps)
    return FrameSampling(count=options.frames or config.frames)


def _describe(image: np.ndarray, faces: list[Face]) -> np.ndarray:
    """(faces, D) appearance descriptors of one frame's faces, from the original pixels."""
    if not faces:
        return np.empty((0, DESCRIPTOR_SIZE), dtype=np.float32)
    return np.stack([describe_face(image, face.box) for face in faces])


def _locate(scan: _Scan) -> list[_LocatedFace]:
    """Faces with their identities (tracks split at shot cuts, linked by position and
    appearance); one-off detections are dropped so that a single spurious box cannot become a
    "person" and decide a video under max-identity."""
    faces_per_frame, identities = drop_short_tracks(
        scan.faces_per_frame,
        assign_identities(scan.faces_per_frame, scan.appearances, shot_starts(scan.signatures)),
        min_track_length(len(scan.faces_per_frame)),
    )
    return [
        _LocatedFace(frame=frame_position, face=face, identity=identity)
        for frame_position, (faces, ids) in enumerate(zip(faces_per_frame, identities, strict=True))
        for face, identity in zip(faces, ids, strict=True)
    ]


def _label(probability: float, threshold: float) -> str:
    return "fake" if probability >= threshold else "real"


def _frame_scores(
    frames: list[_FramePosition], located: list[_LocatedFace], scores: CropScores
) -> list[FrameScore]:
    ensemble = scores.ensemble
    by_frame: dict[int, list[FaceScore]] = {position: [] for position in range(len(frames))}
    for crop_index, item in enumerate(located):
        box = item.face.box
        by_frame[item.frame].append(
            FaceScore(
                box=Box(x1=float(box[0]), y1=float(box[1]), x2=float(box[2]), y2=float(box[3])),
                detection_confidence=min(1.0, float(item.face.confidence)),
                landmarks=[(float(x), float(y)) for x, y in item.face.landmarks],
                identity=item.identity,
                model_probabilities={
                    model_id: float(p[crop_index]) for model_id, p in scores.per_model.items()
                },
                probability=float(ensemble[crop_index]),
            )
        )
    return [
        FrameScore(index=frame.index, timestamp=frame.timestamp, faces=by_frame[position])
        for position, frame in enumerate(frames)
    ]


def _identity_scores(
    policy: AggregationPolicy, scores: CropScores, frames: list[FrameScore], threshold: float
) -> list[IdentityScore]:
    result = []
    for identity, probability in identity_scores(policy, scores).items():
        seen = [f.timestamp for f in frames if any(face.identity == identity for face in f.faces)]
        result.append(
            IdentityScore(
                identity=identity,
                probability=probability,
                label=_label(probability, threshold),
                faces=int(np.count_nonzero(scores.identities == identity)),
                first_timestamp=min(seen),
                last_timestamp=max(seen),
            )
        )
    return result

