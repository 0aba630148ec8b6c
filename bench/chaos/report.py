"""The report: the run's JSON as it is, and a Markdown page with the headline figures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def headline(report: dict[str, Any]) -> dict[str, Any]:
    """The figures the README quotes, and whether each target of issue 13 was met."""
    ledger, burst = report["ledger"], report["load"]
    stale = report["settings"]["stale_after_s"]
    recoveries = [f["recovered_s_after_end"] for f in report["faults"]]
    worst = max((r for r in recoveries if r is not None), default=None)
    corpus_bad = [row["case"] for row in report["corpus"] if not row["ok"]]
    return {
        "jobs_accepted": ledger["accepted"],
        "jobs_lost": len(ledger["lost"]),
        "good_clips_failed": ledger["terminal_by_status"].get("failed", 0),
        "jobs_scored_twice": len(ledger["scored_twice"]),
        "rescored_differ": len(report["rescored_equal_first"]["differ"]),
        "worst_recovery_s": worst,
        "every_fault_job_within_2x_stale": all(r is not None and r <= 2 * stale
                                               for r in recoveries),
        "load_5xx": burst["server_errors"],
        "healthz_p99_s": burst["healthz_during_burst_s"]["p99"],
        "corpus_cases": len(report["corpus"]),
        "corpus_not_ok": corpus_bad,
        "schemathesis_passed": report["schemathesis"]["exit_code"] == 0,
    }


def markdown(report: dict[str, Any]) -> str:
    head = headline(report)
    burst = report["load"]
    lines = [
        f"# fakewatch chaos suite: {report['plan']['name']} run",
        "",
        f"Machine: {report['machine']['processor']}, {report['machine']['cpus']} CPUs. "
        f"Mode: {report['mode']}" + (f" ({report['mode_reason']})" if report["mode_reason"]
                                     else "") + f". Took {report['seconds']} s. Faults not run: "
        f"{', '.join(report['faults_not_run']) or 'none'}.",
        "",
        "## Headline",
        "",
        "| figure | value |",
        "| --- | --- |",
        *(f"| {k.replace('_', ' ')} | {v} |" for k, v in head.items()),
        "",
        "## Faults (recovery from the client's ledger)",
        "",
        ("Recovery: from the fault's end (a kill's or a link cut's is its start: the job must "
         "finish on the other worker meanwhile) until the last job it hit was terminal, as the "
         "client's ledger saw it."),
        "",
        "| fault | jobs hit | held s | recovery s | s after fault start | detail |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in report["faults"]:
        detail = {k: v for k, v in row.items() if k not in
                  ("fault", "jobs_hit", "held_s", "recovered_s_after_end",
                   "finished_s_after_start")}
        lines.append(f"| {row['fault']} | {row['jobs_hit']} | {row['held_s']} | "
                     f"{row['recovered_s_after_end']} | {row['finished_s_after_start']} | "
                     f"{detail} |")
    lines += [
        "",
        "## Load",
        "",
        (f"{burst['uploads']} uploads at once ({burst['distinct']} distinct clips, "
        f"{burst['duplicates']} duplicates): statuses {burst['statuses']}; POST latency "
        f"{burst['post_latency_s']}; all posted in {burst['all_posted_s']} s, drained in "
        f"{burst['drain_s']} s; /healthz during the burst {burst['healthz_during_burst_s']}; "
        f"gateway peak RSS {burst['gateway_peak_rss_mib']} MiB."),
        "",
        "## Malformed media",
        "",
        "| case | HTTP | job | error | ok |",
        "| --- | ---: | --- | --- | --- |",
        *(f"| {r['case']} | {r['status']} | {r.get('job_status', '')} | {r.get('error') or ''} |"
          f" {'yes' if r['ok'] else 'NO'} |" for r in report["corpus"]),
        "",
        "## Schemathesis",
        "",
        (f"seed {report['schemathesis']['seed']}, {report['schemathesis']['max_examples']} "
        f"examples per operation, exit code {report['schemathesis']['exit_code']}:"),
        "",
        "```",
        *report["schemathesis"]["summary"],
        "```",
        "",
        f"Ledger: {report['ledger']}",
        "",
    ]
    return "\n".join(lines)


def write(report: dict[str, Any], stem: Path) -> tuple[Path, Path]:
    """Write `stem`.json and `stem`.md."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    json_path, md_path = stem.with_suffix(".json"), stem.with_suffix(".md")
    json_path.write_text(json.dumps({**report, "headline": headline(report)}, indent=2) + "\n")
    md_path.write_text(markdown(report))
    return json_path, md_path
