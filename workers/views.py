"""The face-view task: cut a finished job's face crops, or one face's heatmap, for the review page.

Runs where the models are (the gateway never imports torch) and writes into the job's cache
folder; the gateway waits for the answer and serves the file. Crops are cut all at once (one
decoding pass serves the thumbnails and every timeline point); a heatmap is made per face.
"""

from __future__ import annotations

import logging

from fakewatch.jobs.model import JobStatus
from fakewatch.jobs.names import FACE_VIEW_TASK
from fakewatch.jobs.views import ViewKind, view_key, write_view
from models.detector import frame_sampling
from models.errors import FakewatchError
from models.face_views import FaceRef, ViewError, face_crops, face_heatmap
from models.overlay import encode, overlay_heat
from workers import runtime
from workers.celery_app import celery, settings
from workers.tasks import _verified_upload

log = logging.getLogger(__name__)
ViewOutcome = dict[str, object]  # {"key": ...} or {"error": {"type": ..., "message": ...}}


def _make_view(job_id: str, ref: FaceRef, kind: ViewKind) -> str:
    job = runtime.store().get(job_id)
    if job is None or job.status is not JobStatus.succeeded or job.result is None:
        raise ViewError(f"job {job_id} has no finished result to show faces from")
    path = _verified_upload(job.upload_key, job.upload.sha256)
    sampling = frame_sampling(job.options, settings.detector_config())
    ensemble = runtime.holder.get().ensemble
    model_ids = [model.id for model in job.result.models]
    key = view_key(job.upload_key, ref.frame, ref.face, kind)
    if kind is ViewKind.heatmap:
        crop, heat = face_heatmap(path, sampling, job.result, ref, ensemble, model_ids)
        write_view(settings, key, encode(overlay_heat(crop, heat), "PNG"))
        return key
    spec = ensemble.select(model_ids)[0].entry.preprocessing
    crops = face_crops(path, sampling, job.result, spec)
    if ref not in crops:
        raise ViewError(f"frame {ref.frame} has no face {ref.face} in this result")
    for other, crop in crops.items():
        write_view(settings, view_key(job.upload_key, other.frame, other.face, kind), encode(crop, "JPEG"))
    return key


@celery.task(name=FACE_VIEW_TASK)
def face_view(job_id: str, frame: int, face: int, kind: str) -> ViewOutcome:
    """The cached file's key, or the reason there is none (the gateway answers with it)."""
    try:
        return {"key": _make_view(job_id, FaceRef(frame, face), ViewKind(kind))}
    except FakewatchError as error:
        log.info("job %s: no %s for face %s/%s: %s", job_id, kind, frame, face, error)
        return {"error": {"type": type(error).__name__, "message": str(error)}}
