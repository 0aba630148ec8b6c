"""Decide before queueing whether an upload can be worked on: options, container, probe, limits.

Everything here answers 4xx with a message the user can act on; nothing reaches a worker that
the gateway can already tell will fail.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from pydantic import AnyHttpUrl, TypeAdapter, ValidationError

from app.errors import ApiError
from app.uploads import ReceivedUpload
from fakewatch.settings import Settings
from models.config import DetectOptions
from models.errors import FrameTooLarge, VideoError
from models.schema import VideoInfo
from models.video.decode import measured_duration, probe_video
from models.video.sampling import MAX_SAMPLED_FRAMES
from models.video.sniff import IMAGE_CONTAINERS, sniff_container

ACCEPTED = "mp4, mov, webm, mkv, avi, mpeg-ts, mpeg, flv, ogg, asf, or a jpeg/png/webp/gif image"
_URL = TypeAdapter(AnyHttpUrl)


@dataclass(frozen=True)
class DetectRequest:
    options: DetectOptions
    callback_url: str | None


@dataclass(frozen=True)
class Media:
    kind: Literal["video", "image"]
    container: str
    info: VideoInfo


def _single(fields: dict[str, list[str]], name: str) -> str | None:
    values = fields.get(name)
    if not values:
        return None
    if len(values) > 1 and name != "models":
        raise ApiError(422, "RepeatedField", f"give form field {name!r} once")
    return values[0].strip() or None


def _invalid(error: ValidationError) -> ApiError:
    details = [
        {"location": ["body", *map(str, item["loc"])], "problem": item["msg"]}
        for item in error.errors()
    ]
    return ApiError(
        422,
        "InvalidParameters",
        "some options are invalid: see details for each one",
        details=details,
    )


def parse_request(fields: dict[str, list[str]], known_models: set[str] | None) -> DetectRequest:
    """Options from the form fields; `known_models` (what workers loaded) checks `models`."""
    models = [m.strip() for value in fields.get("models", []) for m in value.split(",")]
    models = [m for m in models if m]
    raw = {
        "frames": _single(fields, "frames"),
        "fps": _single(fields, "fps"),
        "policy": _single(fields, "policy"),
        "threshold": _single(fields, "threshold"),
        "preset": _single(fields, "preset"),
        "models": models or None,
    }
    try:
        options = DetectOptions.model_validate({k: v for k, v in raw.items() if v is not None})
    except ValidationError as error:
        raise _invalid(error) from error
    if options.frames is not None and options.fps is not None:
        raise ApiError(422, "InvalidParameters", "give either frames or fps, not both")
    if options.models and known_models is not None:
        unknown = sorted(set(options.models) - known_models)
        if unknown:
            raise ApiError(
                422,
                "UnknownModel",
                f"unknown model id(s) {', '.join(unknown)}; the workers serve "
                f"{', '.join(sorted(known_models))} (GET /models)",
            )
    callback = _single(fields, "callback_url")
    if callback is not None:
        try:
            callback = str(_URL.validate_python(callback))
        except ValidationError as error:
            raise _invalid(error) from error
    return DetectRequest(options=options, callback_url=callback)


def inspect_media(upload: ReceivedUpload, settings: Settings) -> Media:
    """Sniff the container from the first bytes (415), probe it with PyAV and apply the limits
    (422). Blocking: call it from a thread."""
    if upload.size == 0:
        raise ApiError(422, "EmptyUpload", "the uploaded file is empty")
    container = sniff_container(upload.head)
    if container is None:
        raise ApiError(
            415,
            "UnsupportedMediaType",
            f"the file is not a video or image this service reads; send {ACCEPTED}",
        )
    try:
        info = probe_video(upload.path, max_side=settings.max_side_px)
    except FrameTooLarge as error:
        raise ApiError(422, "ResolutionTooHigh", str(error)) from error
    except VideoError as error:
        raise ApiError(
            422, "UnreadableVideo", f"the {container} file cannot be read: {error}"
        ) from error
    kind: Literal["video", "image"] = (
        "image" if info.is_image or container in IMAGE_CONTAINERS else "video"
    )
    if kind == "video" and info.duration is None:
        # A live WebM states no duration: measure it, or the duration limit would not apply.
        info = info.model_copy(update={"duration": measured_duration(upload.path)})
    if info.duration is not None and info.duration > settings.max_duration_s:
        raise ApiError(
            422,
            "VideoTooLong",
            f"the video lasts {info.duration:.0f} s, over the limit of "
            f"{settings.max_duration_s:.0f} s; trim it and send the part to check",
        )
    if max(info.width, info.height) > settings.max_side_px:
        raise ApiError(
            422,
            "ResolutionTooHigh",
            f"frames are {info.width}x{info.height}, over the limit of {settings.max_side_px} "
            "pixels on the longer side; downscale the video first",
        )
    return Media(kind=kind, container=container, info=info)


def check_sampling(options: DetectOptions, media: Media) -> None:
    """422 when `fps` over the whole video would sample more frames than one request may."""
    if options.fps is None or media.info.duration is None:
        return
    frames = math.floor(media.info.duration * options.fps) + 1
    if frames > MAX_SAMPLED_FRAMES:
        raise ApiError(
            422,
            "TooManyFrames",
            f"fps={options.fps:g} over {media.info.duration:.0f} s samples {frames} frames, over "
            f"the limit of {MAX_SAMPLED_FRAMES}; ask for a lower fps or a frame count",
        )
