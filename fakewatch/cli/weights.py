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
            "variant_of": entry.variant_of,
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
        if entry.variant_of is not None:
            click.echo(f"    variant  of {entry.variant_of}, on crop {entry.preprocessing.name!r}")
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
        policy = measured.measured_policy
        if not as_json:
            click.echo(f"{ensemble}  (rates measured under aggregation {policy!r}, which scoring "
                       f"this ensemble whole uses unless a request or setting names another)")
        for preset in measured.listing():
            if as_json:
                click.echo(json.dumps({"ensemble": ensemble, "aggregation": policy,
                                       **preset.model_dump()}))
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


@weights.command()
@click.argument("scores", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--candidate", "candidate_specs", multiple=True, required=True, metavar="NAME=ID[,ID...]",
              help="A candidate ensemble (repeatable): a name, '=', and the model ids it averages.")
@click.option("--ensemble", default="default", show_default=True,
              help="Registry ensemble to point at the chosen candidate.")
@click.option("--folds", type=click.IntRange(2), default=5, show_default=True,
              help="Leave-sources-out folds.")
@registry_option
def adopt(scores: Path, candidate_specs: tuple[str, ...], ensemble: str, folds: int,
          registry_path: Path | None) -> None:
    """Choose among pretrained candidates on SCORES (from `fakewatch eval --compare --scores`),
    calibrate and set the presets under the leave-sources-out protocol, register the winner as
    ENSEMBLE and write its card beside the registry.

    Only for checkpoints never trained on the scored clips: their scores must be out of sample.
    """
    from models.comparison import load_clip_scores
    from models.errors import FakewatchError
    from models.protocol.tables import table
    from models.training.adopt import adopt as adopt_candidates
    from models.training.adopt import adoption_card, register_adoption
    from models.training.adoption_card import render_adoption
    from models.training.card import write_card
    from models.training.run import command_line

    registry = _load(registry_path)
    candidates: dict[str, list[str]] = {}
    for spec in candidate_specs:
        name, _, ids = spec.partition("=")
        models = [m.strip() for m in ids.split(",") if m.strip()]
        if not name.strip() or not models:
            raise click.BadParameter(f"{spec!r} is not NAME=ID[,ID...]", param_hint="--candidate")
        unknown = [m for m in models if m not in registry.models]
        if unknown:
            raise click.BadParameter(f"unknown model ids {unknown}", param_hint="--candidate")
        candidates[name.strip()] = models
    if ensemble not in registry.ensembles:
        raise click.BadParameter(f"no ensemble {ensemble!r} in the registry", param_hint="--ensemble")
    path = registry_path or registry.directory / "registry.toml"
    try:
        adoption = adopt_candidates(load_clip_scores(scores), candidates, folds)
        card = adoption_card(adoption, candidates, registry, ensemble, command_line())
        register_adoption(Path(path), ensemble, adoption)
    except FakewatchError as error:
        raise click.ClickException(str(error)) from error
    _, markdown = write_card(card, render_adoption(card), Path(path).parent, f"{ensemble}-ensemble")
    click.echo(table("nested choice", {"all videos": adoption.nested}))
    click.echo(f"chose {adoption.chosen} ({', '.join(adoption.models)}); registered as '{ensemble}' "
               f"with presets {[p.name for p in adoption.presets.listing()]}; card {markdown.name}")
