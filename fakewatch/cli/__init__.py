"""`fakewatch` command line: one module per command group; heavy imports happen inside commands."""

from __future__ import annotations

import importlib

import click

from fakewatch import __version__

# (module, attribute) of each command; a module owns its command's options and imports lazily.
COMMANDS: tuple[tuple[str, str], ...] = (
    ("fakewatch.cli.scan", "scan"),
    ("fakewatch.cli.evaluate", "evaluate"),
    ("fakewatch.cli.weights", "weights"),
    ("fakewatch.cli.serve", "serve"),
    ("fakewatch.cli.serve", "worker"),
    ("fakewatch.cli.train", "train"),
    ("fakewatch.cli.bench", "bench"),
    ("fakewatch.cli.bench_faces", "bench_faces"),
    ("fakewatch.cli.bench_face_speed", "bench_face_speed"),
    ("fakewatch.cli.chaos", "chaos"),
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fakewatch")
def main() -> None:
    """Deepfake video detection: scan videos, evaluate, train, serve the API and run workers."""


for module_name, attribute in COMMANDS:
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name != module_name:
            raise
        continue  # command not built yet
    main.add_command(getattr(module, attribute))
