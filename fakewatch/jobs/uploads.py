"""Where a job's upload lives: `uploads/<job id>/<file name>` under the data directory.

A folder per job keeps the client's file name, so a decoder's error message names the file the
user sent, and deleting a job removes exactly its folder.
"""

from __future__ import annotations

from fakewatch.jobs.views import delete_views
from fakewatch.settings import Settings


def upload_key(job_id: str, file_name: str) -> str:
    """The key stored on the job and sent to the worker (relative to the data directory)."""
    return f"uploads/{job_id}/{file_name}"


def delete_upload(settings: Settings, key: str) -> None:
    """Delete the upload and the face crops and heatmaps cut from it."""
    delete_views(settings, key)
    path = settings.upload_path(key)
    path.unlink(missing_ok=True)
    folder = path.parent
    if folder != settings.uploads_dir and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
