"""Fuzzing: the malformed-media corpus sent the ways a hostile client would, and schemathesis
against the gateway's own /openapi.json with a fixed seed and a bounded number of examples."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.chaos.client import Client
from bench.chaos.corpus import Case
from bench.chaos.ledger import TERMINAL

BOUNDARY = "chaosboundary13"
RAW_TIMEOUT_S = 60  # past the suite's upload idle timeout, so a stalled body must be answered
HUGE_HEADER_BYTES = 256 * 1024
SCHEMATHESIS_TIMEOUT_S = 600


def _multipart(case: Case, extra_headers: str = "", close: bool = True) -> bytes:
    head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"x.mp4\"\r\n{extra_headers}Content-Type: video/mp4\r\n\r\n").encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode() if close else b"\r\n"
    return head + case.data + tail


def _raw(base_url: str, key: str, case: Case) -> int | None:
    """Send a hand-made request; returns the HTTP status, or None if the server hung up."""
    url = urlsplit(base_url)
    body = _multipart(case, f"X-Pad: {'a' * HUGE_HEADER_BYTES}\r\n"
                      if case.send == "huge-part-headers" else "",
                      close=case.send != "no-closing-boundary")
    length = {"long-content-length": len(body) + 100_000,
              "short-content-length": len(body) // 2}.get(case.send, len(body))
    sent = body[: len(body) // 2] if case.send == "stall" else body
    head = (f"POST /detect HTTP/1.1\r\nHost: {url.hostname}\r\nX-API-Key: {key}\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
            f"Content-Length: {length}\r\nConnection: close\r\n\r\n").encode()
    with socket.create_connection((url.hostname, url.port), timeout=RAW_TIMEOUT_S) as conn:
        try:
            conn.sendall(head + sent)
        except (ConnectionResetError, BrokenPipeError):
            pass  # the server may answer and close before the body is all sent: read its answer
        try:
            answer = conn.recv(1024)
        except ConnectionResetError:
            return None
    if not answer.startswith(b"HTTP/1.1 "):
        return None
    return int(answer[9:12])


def send_corpus(client: Client, cases: list[Case], wait_s: float) -> list[dict[str, Any]]:
    """Send every case; accepted ones are polled until terminal. One row per case."""
    rows: list[dict[str, Any]] = []
    jobs: dict[str, str] = {}
    with client.http() as http:
        for case in cases:
            row: dict[str, Any] = {"case": case.name, "valid_payload": case.valid}
            if case.send != "multipart":
                row["status"] = _raw(client.base_url, client.keys[1], case)
            else:
                response = http.post("/detect", files={"file": (case.filename, case.data)},
                                     headers=client.headers(1))
                row["status"] = response.status_code
                body = response.json() if response.headers.get(
                    "content-type", "").startswith("application/json") else {}
                if response.status_code in (200, 202):
                    jobs[case.name] = body["id"]
                else:
                    row["error"] = (body.get("error") or {}).get("type")
            rows.append(row)
        deadline = time.monotonic() + wait_s
        for row in rows:
            job_id = jobs.get(row["case"])
            if job_id is None:
                continue
            job = {"status": "queued"}
            while job["status"] not in TERMINAL and time.monotonic() < deadline:
                job = http.get(f"/jobs/{job_id}", headers=client.headers(1)).json()
                time.sleep(0.2)
            row.update(job_status=job["status"], error=(job.get("error") or {}).get("type"),
                       reason=(job.get("error") or {}).get("message"),
                       filename=(job.get("upload") or {}).get("filename"),
                       result_status=(job.get("result") or {}).get("status"))
    for row in rows:
        row["ok"] = _acceptable(row)
    return rows


def _acceptable(row: dict[str, Any]) -> bool:
    """A 4xx, or a failed job with a reason; a valid payload under a hostile name succeeds with
    a name free of control characters."""
    status = row["status"]
    if row["valid_payload"]:
        name = row.get("filename") or ""
        clean = not any(ord(c) < 32 or c in "\u202e\x7f" for c in name)
        return row.get("job_status") == "succeeded" and clean or status is not None and (
            400 <= status < 500)
    if status is not None and 400 <= status < 500:
        return True
    return row.get("job_status") == "failed" and bool(row.get("reason")) or (
        row.get("result_status") == "no_face")


def schemathesis(base_url: str, key: str, seed: int, examples: int, work: Path
                 ) -> dict[str, Any]:
    """Run schemathesis's CLI: no server errors, responses as the schema says."""
    argv = [sys.executable, "-c", "from schemathesis.cli import schemathesis; schemathesis()",
            "run", f"{base_url}/openapi.json", "--seed", str(seed), "--max-examples",
            str(examples), "--checks", "not_a_server_error,response_schema_conformance",
            "--header", f"X-API-Key: {key}", "--phases", "examples,coverage,fuzzing",
            "--workers", "1", "--no-color", "--generation-database", "none"]
    started = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=SCHEMATHESIS_TIMEOUT_S,
                          check=False, cwd=work)
    summary = [line for line in done.stdout.splitlines() if line.strip()][-12:]
    return {"exit_code": done.returncode, "seed": seed, "max_examples": examples,
            "seconds": round(time.monotonic() - started, 1), "summary": summary}

