"""The one result schema: what the detector returns, `scan --json` prints and the API serves.

Pure pydantic on purpose: the gateway imports this module without torch.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, computed_field

Label = Literal["fake", "real"]
Status = Literal["ok", "no_face"]


class Box(BaseModel):
    """Face box in full-resolution pixel coordinates of the (rotation-corrected) frame."""

    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1


class FaceScore(BaseModel):
    """One face in one sampled frame and what every model thought of it."""

    box: Box
    detection_confidence: float = Field(ge=0.0, le=1.0)
    landmarks: list[tuple[float, float]] | None = Field(
        default=None, description="Five points: eyes, nose, mouth corners (MTCNN order)."
    )
    identity: int = Field(ge=0, description="Person track this face belongs to.")
    model_probabilities: dict[str, float] = Field(
        description="P(fake) per ensemble member, keyed by model id."
    )
    probability: float = Field(ge=0.0, le=1.0, description="Ensemble P(fake) for this crop.")


class FrameScore(BaseModel):
    index: int = Field(ge=0, description="Decoded frame index in presentation order.")
    timestamp: float = Field(ge=0.0, description="Presentation time in seconds.")
    faces: list[FaceScore]


class IdentityScore(BaseModel):
    """One person tracked across frames."""

    identity: int
    probability: float = Field(ge=0.0, le=1.0)
    label: Label
    faces: int = Field(ge=1, description="Number of face crops scored for this person.")
    first_timestamp: float
    last_timestamp: float


class ModelInfo(BaseModel):
    id: str
    architecture: str
    sha256: str
    license: str | None = None


class ThresholdPreset(BaseModel):
    """A named operating point of an ensemble, with what it did on real and fake videos it was
    not fitted on (the model card's leave-sources-out protocol)."""

    name: str
    threshold: float = Field(ge=0.0, le=1.0)
    real_flagged: float = Field(ge=0.0, le=1.0, description="Share of real videos labelled fake.")
    fakes_caught: float = Field(ge=0.0, le=1.0, description="Share of fake videos labelled fake.")
    default: bool = False


class VideoInfo(BaseModel):
    width: int = Field(description="Displayed width after rotation.")
    height: int = Field(description="Displayed height after rotation.")
    duration: float | None = Field(description="Seconds; null when the container does not say.")
    fps: float | None = None
    frame_count: int | None = Field(default=None, description="As declared by the container.")
    rotation: int = Field(default=0, description="Degrees applied to display the frames upright.")
    codec: str | None = None
    is_image: bool = False


class DetectionResult(BaseModel):
    """Verdict for one video. `probability` is null when no face was found: never a guess."""

    file: str | None = Field(default=None, description="Name of the scanned file.")
    status: Status
    probability: float | None = Field(ge=0.0, le=1.0)
    label: Label | None
    threshold: float = Field(ge=0.0, le=1.0)
    preset: str | None = Field(
        default=None, description="Threshold preset the threshold came from; null when it was given as a number."
    )
    aggregation: str
    identities: list[IdentityScore]
    frames: list[FrameScore]
    models: list[ModelInfo]
    video: VideoInfo
    sampled_frames: int
    decoded_fraction: float = Field(
        default=1.0,
        ge=0.0,
        le=1.0,
        description="Share of the video actually decoded: the time span reached out of the one "
        "the file declares, times the share of packets that decoded. Below 1 for a cut-off or "
        "damaged file, whose score then covers only what was seen.",
    )
    warnings: list[str] = Field(
        default_factory=list, description="Why decoded_fraction is below 1, in words."
    )
    timings: dict[str, float] = Field(
        description="Seconds per stage: decode, detect_faces, crop, classify, aggregate, total."
    )
    fakewatch_version: str | None = Field(
        default=None, description="fakewatch version that scored this (null in older results)."
    )
    registry_sha256: str | None = Field(
        default=None,
        description="sha256 of the model registry file the weights were loaded from: it holds "
        "each weight file's sha256, the thresholds and the presets (null in older results).",
    )

    @computed_field(
        description="Sampled frames in which no face was kept: how much of the video went unjudged."
    )
    @property
    def frames_without_face(self) -> int:
        """Derived from `frames`, so it can never disagree with them."""
        return sum(1 for frame in self.frames if not frame.faces)
