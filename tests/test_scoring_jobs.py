"""A video's classification jobs: results in submission order, whichever thread ran them."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from models.crops import CropSpec
from models.scoring_jobs import ScoringJobs

SPEC = CropSpec(name="t", size=4, margin=0.0, square=True, color_order="RGB", scale=1.0,
                mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))


def _batch(first: int, count: int) -> dict[CropSpec, torch.Tensor]:
    """Crops whose pixels all equal their global row number, so a result shows its source."""
    rows = torch.arange(first, first + count, dtype=torch.float32)
    return {SPEC: rows.reshape(-1, 1, 1, 1).expand(-1, 3, 4, 4).contiguous()}


def _predict(threads: list[str]):
    def predict(crops: dict[CropSpec, torch.Tensor], model_id: str) -> np.ndarray:
        threads.append(threading.current_thread().name)
        offset = 1000.0 if model_id == "b" else 0.0
        return crops[SPEC][:, 0, 0, 0].numpy().astype(np.float64) + offset

    return predict


def test_jobs_not_started_run_on_the_calling_thread_in_order() -> None:
    """The classifier thread is busy: at the end the caller runs every job itself."""
    busy, threads = threading.Event(), []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="classifier") as executor:
        executor.submit(busy.wait)
        jobs = ScoringJobs(executor, _predict(threads), ["a", "b"], help_at_end=True)
        jobs.submit(_batch(0, 3))
        jobs.submit(_batch(3, 2))
        results = jobs.results()
        busy.set()
    assert np.array_equal(results["a"], np.arange(5.0))
    assert np.array_equal(results["b"], np.arange(5.0) + 1000)
    assert threads == [threading.current_thread().name] * 4


def test_without_help_every_job_runs_on_the_classifier_thread() -> None:
    """On a GPU the caller only waits: cuDNN plans live in the classifier thread."""
    threads: list[str] = []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="classifier") as executor:
        jobs = ScoringJobs(executor, _predict(threads), ["a", "b"], help_at_end=False)
        jobs.submit(_batch(0, 2))
        jobs.submit(_batch(2, 2))
        results = jobs.results()
    assert np.array_equal(results["a"], np.arange(4.0))
    assert len(threads) == 4 and all(name.startswith("classifier") for name in threads)


def test_no_batches_means_no_scores() -> None:
    with ThreadPoolExecutor(max_workers=1) as executor:
        assert ScoringJobs(executor, _predict([]), ["a"], help_at_end=True).results() == {}
