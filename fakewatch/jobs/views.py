"""Where a job's face crops and heatmaps are cached: `uploads/<job id>/views/` beside the upload.

They live in the job's upload folder so that every way a job goes (deleted, expired, refused)
takes them with it: `delete_upload` calls `delete_views`. The upload itself is what they are
cut from, so it is kept as long as the job's result (`FAKEWATCH_RETENTION_S`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from enum import StrEnum
from pathlib import PurePosixPath

from fakewatch.settings import Settings

VIEWS_FOLDER = "views"


class ViewKind(StrEnum):
    crop = "crop"
    heatmap = "heatmap"


SUFFIXES = {ViewKind.crop: ".jpg", ViewKind.heatmap: "-heatmap.png"}
MEDIA_TYPES = {ViewKind.crop: "image/jpeg", ViewKind.heatmap: "image/png"}


def view_key(upload_key: str, frame: int, face: int, kind: ViewKind) -> str:
    """The cached file's key (relative to the data directory, like the upload's)."""
    folder = PurePosixPath(upload_key).parent / VIEWS_FOLDER
    return str(folder / f"{frame}-{face}{SUFFIXES[kind]}")


def write_view(settings: Settings, key: str, data: bytes) -> None:
    """Write atomically: a reader sees the whole image or none."""
    path = settings.upload_path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False, suffix=".part") as file:
        file.write(data)
    os.replace(file.name, path)


def delete_views(settings: Settings, upload_key: str) -> None:
    folder = settings.upload_path(upload_key).parent / VIEWS_FOLDER
    shutil.rmtree(folder, ignore_errors=True)
