"""The suite's HTTP client: submits clips (recording each answer in the ledger) and polls every
accepted job until it is terminal."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from bench.chaos.ledger import Ledger

REQUEST_TIMEOUT_S = 30
POLL_S = 0.25


class Client:
    """One API key's view of the gateway."""

    def __init__(self, base_url: str, keys: list[str], ledger: Ledger) -> None:
        self.base_url, self.keys, self.ledger = base_url, keys, ledger

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=REQUEST_TIMEOUT_S)

    def headers(self, key: int = 0) -> dict[str, str]:
        return {"X-API-Key": self.keys[key]}

    def submit(self, http: httpx.Client, clip: Path, key: int = 0) -> tuple[int | None, float]:
        """POST /detect; returns (status or None when unreachable, seconds it took)."""
        started = time.monotonic()
        try:
            with clip.open("rb") as file:
                response = http.post("/detect", files={"file": (clip.name, file)},
                                     headers=self.headers(key))
        except httpx.HTTPError as error:
            self.ledger.refuse(clip.name, None, f"{type(error).__name__}: {error}")
            return None, time.monotonic() - started
        took = time.monotonic() - started
        if response.status_code in (200, 202):
            self.ledger.accepted(response.json()["id"], clip.name, key, response.status_code)
        else:
            self.ledger.refuse(clip.name, response.status_code, response.text)
        return response.status_code, took

    def poll_once(self, http: httpx.Client) -> None:
        for job_id in self.ledger.pending():
            key = self.ledger.entries[job_id].key
            try:
                response = http.get(f"/jobs/{job_id}", headers=self.headers(key))
            except httpx.HTTPError:
                return  # the gateway is down for now; the next round asks again
            if response.status_code == 200:
                self.ledger.observe(response.json())

    def drain(self, timeout_s: float) -> float:
        """Poll until every accepted job is terminal; returns the seconds it took."""
        started = time.monotonic()
        with self.http() as http:
            while self.ledger.pending() and time.monotonic() - started < timeout_s:
                self.poll_once(http)
                time.sleep(POLL_S)
        return time.monotonic() - started

    def recheck(self) -> None:
        """Read every terminal job again: a view that changed since means it was scored again."""
        with self.http() as http:
            for entry in list(self.ledger.entries.values()):
                response = http.get(f"/jobs/{entry.job_id}", headers=self.headers(entry.key))
                if response.status_code == 200:
                    self.ledger.observe(response.json())
