"""The chaos suite's short run (issue 13), as CI runs it: `fakewatch chaos --short` in its own
process (it moves itself into the client's network namespace), then its report is checked.

A few worker kills, a worker host cut off, a Redis kill -9, a gateway restart, a short broker
outage, a slow job store, 20 concurrent uploads, the malformed-media corpus and a schemathesis
smoke: no job lost or scored twice, no server error, every bad input refused or failed with a
reason, and nothing the run made left behind.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHORT_RUN_TIMEOUT_S = 240  # about 70 s on an idle 2-core machine; slack for a loaded one

ALL_FAULTS = ("worker SIGKILL", "redis kill -9 + AOF restart", "gateway restart",
              "worker host cut off", "broker outage", "job store slow")

pytestmark = [pytest.mark.chaos, pytest.mark.service]


def _missing() -> str | None:
    if shutil.which("redis-server") is None:
        return "redis-server is not installed: the suite starts a Redis of its own"
    for module in ("schemathesis", "skimage"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed: pip install -e '.[dev]'"
    return None


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    missing = _missing()
    if missing:
        pytest.skip(missing)
    out = tmp_path_factory.mktemp("chaos") / "short"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", "from fakewatch.cli import main; main()", "chaos", "--short",
         "--out", str(out)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=SHORT_RUN_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(out.with_suffix(".json").read_text())


def test_no_job_is_lost_failed_or_scored_twice(report: dict) -> None:
    ledger = report["ledger"]
    assert ledger["accepted"] >= 20
    assert ledger["lost"] == [] and ledger["scored_twice"] == []
    assert set(ledger["terminal_by_status"]) == {"succeeded"}, ledger
    assert report["rescored_equal_first"]["differ"] == []


def test_every_fault_ran_and_its_jobs_finished(report: dict) -> None:
    kinds = [fault["fault"] for fault in report["faults"]]
    assert kinds.count("worker SIGKILL") == report["plan"]["worker_kills"]
    assert set(ALL_FAULTS) - set(report["faults_not_run"]) == set(kinds)
    if report["mode"] == "network namespaces":
        assert {"worker host cut off", "broker outage"} <= set(kinds)
    for fault in report["faults"]:
        assert fault["finished_s_after_start"] is not None, fault


def test_the_burst_gets_no_server_error_and_duplicates_join_their_job(report: dict) -> None:
    load = report["load"]
    assert load["server_errors"] == 0
    assert load["statuses"] == {"202": load["distinct"], "200": load["duplicates"]}
    assert load["healthz_during_burst_s"]["failures"] == 0


def test_every_malformed_input_is_refused_or_failed_with_a_reason(report: dict) -> None:
    assert len(report["corpus"]) >= 40
    assert [row["case"] for row in report["corpus"] if not row["ok"]] == []
    assert report["schemathesis"]["exit_code"] == 0, report["schemathesis"]["summary"]


def test_nothing_is_left_behind(report: dict) -> None:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    left = [name for name in report["namespaces"] if name in listed.stdout.split()]
    assert left == []
