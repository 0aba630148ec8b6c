"""The client's own record of every job it submitted, and the reconciliation at the end.

Counts and recovery times in the report come from here, never from service logs: a job is lost
if the ledger holds its 202 and the API never shows it terminal; scored twice if its terminal
view changed after the ledger first saw it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

TERMINAL = frozenset({"succeeded", "failed", "expired"})


@dataclass
class Entry:
    """One accepted job as the client saw it."""

    job_id: str
    clip: str
    submitted_at: float
    key: int
    finished_at: float | None = None
    first_terminal: dict[str, Any] | None = None
    last_view: dict[str, Any] | None = None


def terminal_view(job: dict[str, Any]) -> dict[str, Any]:
    """What must never change once a job is terminal."""
    result = job.get("result") or {}
    return {
        "status": job["status"],
        "attempts": job["attempts"],
        "finished_at": job.get("finished_at"),
        "probability": result.get("probability"),
        "error": (job.get("error") or {}).get("type"),
    }


@dataclass
class Ledger:
    """Thread-safe: the load phase records from many threads."""

    entries: dict[str, Entry] = field(default_factory=dict)
    refused: list[dict[str, Any]] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (clip, job id answered)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def accepted(self, job_id: str, clip: str, key: int, status: int) -> None:
        with self.lock:
            if status == 200 or job_id in self.entries:
                self.duplicates.append((clip, job_id))
            if job_id not in self.entries:
                self.entries[job_id] = Entry(job_id, clip, time.monotonic(), key)

    def refuse(self, clip: str, status: int | None, reason: str) -> None:
        with self.lock:
            self.refused.append({"clip": clip, "status": status, "reason": reason[:200]})

    def observe(self, job: dict[str, Any]) -> None:
        """Record a GET /jobs/{id} answer: the first terminal view and the time it was seen."""
        with self.lock:
            entry = self.entries[job["id"]]
            if job["status"] in TERMINAL:
                view = terminal_view(job)
                if entry.first_terminal is None:
                    entry.first_terminal, entry.finished_at = view, time.monotonic()
                entry.last_view = view

    def pending(self) -> list[str]:
        with self.lock:
            return [e.job_id for e in self.entries.values() if e.first_terminal is None]

    def reconcile(self) -> dict[str, Any]:
        """Lost: never terminal. Scored twice: a terminal view that changed later."""
        with self.lock:
            entries = list(self.entries.values())
        lost = [e.job_id for e in entries if e.first_terminal is None]
        changed = [e.job_id for e in entries
                   if e.first_terminal is not None and e.last_view != e.first_terminal]
        statuses: dict[str, int] = {}
        for entry in entries:
            if entry.first_terminal is not None:
                status = entry.first_terminal["status"]
                statuses[status] = statuses.get(status, 0) + 1
        rescored = [e for e in entries if e.first_terminal and e.first_terminal["attempts"] > 1]
        return {
            "accepted": len(entries),
            "refused": len(self.refused),
            "duplicate_answers": len(self.duplicates),
            "terminal_by_status": statuses,
            "lost": lost,
            "scored_twice": changed,
            "rescored": len(rescored),
        }
