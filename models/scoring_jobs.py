"""A video's classification work as one job per (batch of crops, model), on a shared thread.

The detector scores each batch of crops on its classifier thread while the scanning thread runs
MTCNN on the next batch. When the video's last frames are scanned, the scanning thread would only
wait; on a CPU it takes the jobs the classifier thread has not started, newest first, so the last
batches use two cores instead of one (one job per model, so even a single batch splits). On a GPU
it waits: the GPU runs one job at a time anyway, and cuDNN plans are per thread.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, Future, wait

import numpy as np
import torch

from models.crops import CropSpec

Crops = Mapping[CropSpec, torch.Tensor]
Predict = Callable[[Crops, str], np.ndarray]  # P(fake) per crop for one model id


class ScoringJobs:
    """Submit batches as they are cropped; `results` once the video is scanned."""

    def __init__(
        self, executor: Executor, predict: Predict, model_ids: Sequence[str], help_at_end: bool
    ) -> None:
        self._executor = executor
        self._predict = predict
        self._model_ids = list(model_ids)
        self._help_at_end = help_at_end
        self._batches: list[tuple[Crops, dict[str, Future[np.ndarray]]]] = []

    def submit(self, crops: Crops) -> None:
        jobs = {m: self._executor.submit(self._predict, crops, m) for m in self._model_ids}
        self._batches.append((crops, jobs))

    def results(self) -> dict[str, np.ndarray]:
        """P(fake) per model id for every submitted crop, in submission order."""
        if self._help_at_end:
            for crops, jobs in reversed(self._batches):
                for model_id, job in reversed(list(jobs.items())):
                    if job.cancel():  # not started: run it on this thread instead
                        jobs[model_id] = _finished(self._predict(crops, model_id))
        if not self._batches:
            return {}
        return {
            model_id: np.concatenate([jobs[model_id].result() for _, jobs in self._batches])
            for model_id in self._model_ids
        }

    def cancel(self) -> None:
        """Drop the jobs not started, and wait for a running one before its inputs are freed."""
        futures = [job for _, jobs in self._batches for job in jobs.values()]
        for job in futures:
            job.cancel()
        wait(futures)


def _finished(value: np.ndarray) -> Future[np.ndarray]:
    future: Future[np.ndarray] = Future()
    future.set_result(value)
    return future
