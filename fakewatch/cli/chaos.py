"""`fakewatch chaos`: the fault, load and fuzz suite of bench/chaos, from a repository checkout."""

from __future__ import annotations

from pathlib import Path

import click

from fakewatch.cli.common import bench_checkout


@click.command()
@click.option("--short", is_flag=True, help="A few faults, 20 uploads, a fuzz smoke (CI's size).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("bench/results/chaos"),
              show_default=True, help="Report path without suffix: writes .json and .md.")
@click.option("--logs", type=click.Path(path_type=Path), default=None,
              help="Copy the services' logs into this directory.")
@click.option("--loopback", is_flag=True,
              help="Run every host on 127.0.0.1 even where namespaces could be made.")
def chaos(short: bool, out: Path, logs: Path | None, loopback: bool) -> None:
    """Fault, load and fuzz the service on hosts of its own, then reconcile every job."""
    with bench_checkout():
        from bench.chaos import report, run

    result = run.run(run.SHORT if short else run.FULL, logs, loopback)
    json_path, md_path = report.write(result, out)
    for key, value in report.headline(result).items():
        click.echo(f"{key}: {value}")
    click.echo(f"report: {json_path} {md_path}")
