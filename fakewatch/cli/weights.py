"""`fakewatch weights`: what checkpoints the registry knows, and whether their files are intact."""

from __future__ import annotations

import json
from pathlib import Path

import click

registry_option = click.option(
    "--registry", "registry_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
    envvar="FAKEWATCH_REGISTRY_PATH", help="Weights registry TOML (default: weights/registry.toml).",
)


@click.group()
def weights() -> None:
    """List and verify the registered model weights."""


@weights.command("list")
@registry_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per model.")
def list_weights(registry_path: Path | None, as_json: bool) -> None:
    """Every known model: architecture, source, license, size, sha256 and whether its file is present."""
    registry = _load(registry_path)
    ensembles = {m: [name for name, members in registry.ensembles.items() if m in members]
                 for m in registry.models}
    for entry in registry.models.values():
        present = registry.path_of(entry).is_file()
        row = {
            "id": entry.id,
            "architecture": entry.architecture,
            "preprocessing": entry.preprocessing.name,
            "file": entry.file,
            "present": present,
            "size_bytes": entry.size_bytes,
            "sha256": entry.sha256,
            "license": entry.license,
            "training_data": entry.training_data,
            "sources": list(entry.sources),
            "ensembles": ensembles[entry.id],
        }
        if as_json:
            click.echo(json.dumps(row))
            continue
        size = f"{entry.size_bytes / 1e6:.1f} MB" if entry.size_bytes else "size unknown"
        click.echo(f"{entry.id}  [{'present' if present else 'missing'}]  {entry.architecture}, {size}")
        click.echo(f"    file     {registry.path_of(entry)}")
        click.echo(f"    sha256   {entry.sha256 or 'not recorded'}")
        click.echo(f"    license  {entry.license or 'unknown'};  data: {entry.training_data or 'unknown'}")
        click.echo(f"    source   {', '.join(entry.sources) or 'trained by this project'}")
        click.echo(f"    in       {', '.join(ensembles[entry.id]) or '-'}")


@weights.command()
@registry_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per preset.")
def presets(registry_path: Path | None, as_json: bool) -> None:
    """Each ensemble's threshold presets with the rates measured on sources it never saw."""
    registry = _load(registry_path)
    for ensemble, measured in registry.presets.items():
        for preset in measured.listing():
            if as_json:
                click.echo(json.dumps({"ensemble": ensemble, **preset.model_dump()}))
                continue
            default = "  (default)" if preset.default else ""
            click.echo(f"{ensemble}  {preset.name:<10} threshold {preset.threshold:.3f}: flags "
                       f"{preset.real_flagged:.0%} of real videos, catches {preset.fakes_caught:.0%} "
                       f"of fakes{default}")
    if not registry.presets:
        click.echo("no ensemble has measured presets: scores are judged at the threshold given (0.5)")


@weights.command()
@registry_option
@click.option("--all", "include_missing", is_flag=True, help="Also fail when a registered file is missing.")
def verify(registry_path: Path | None, include_missing: bool) -> None:
    """Check the sha256 of every present weights file against the registry."""
    registry = _load(registry_path)
    failed = False
    for entry in registry.models.values():
        status = registry.check(entry)
        if status.state == "sha256_mismatch":
            failed = True
            click.echo(f"MISMATCH    {entry.id}: {status.path} has sha256 {status.actual_sha256}, "
                       f"registry says {status.expected_sha256}")
        elif status.state == "missing":
            failed = failed or include_missing
            click.echo(f"missing     {entry.id}: {status.path}")
        elif status.state == "unverified":
            click.echo(f"unverified  {entry.id}: present, no sha256 recorded (actual {status.actual_sha256})")
        else:
            click.echo(f"ok          {entry.id}")
    if failed:
        raise SystemExit(1)


def _load(registry_path: Path | None):  # -> models.registry.Registry
    from models.errors import FakewatchError
    from models.registry import Registry

    try:
        return Registry.load(registry_path)
    except FakewatchError as error:
        raise click.ClickException(str(error)) from error
