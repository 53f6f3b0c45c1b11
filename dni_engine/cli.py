"""The ``dni-engine`` command.

Each sub-command is a thin layer over the library: it reads files, calls one
public function and prints the result. Errors in user input are printed as
plain lines (never a traceback) and give exit status 1.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from dni_engine.errors import ConfigError, DniError
from dni_engine.schema import AnyPool, NumberPool, NumberPoolRequest, load_pools
from dni_engine.summary import pool_summary


def read_pools(paths: tuple[str, ...] | list[str]) -> list[AnyPool]:
    """Load every pool in ``paths`` (files holding one pool or a list of pools).

    Problems from all files are gathered into one :class:`ConfigError`.
    """
    pools: list[AnyPool] = []
    problems: list[str] = []
    for path in paths:
        try:
            pools.extend(load_pools(_read_bytes(path), source=path))
        except ConfigError as exc:
            problems.append(str(exc))
    if problems:
        raise click.ClickException("\n".join(problems))
    return pools


def _read_bytes(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise click.ClickException(f"{path}: cannot read file ({exc.strerror})") from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dni-engine")
def cli() -> None:
    """dni-engine: decide which call-tracking number each website visitor sees."""


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
def validate(files: tuple[str, ...]) -> None:
    """Validate Number Pool JSON files (requests or responses, or lists of them).

    Prints ``OK name`` per valid pool, or every problem with its JSON path;
    exits 1 if any file has a problem.
    """
    failed = False
    for path in files:
        try:
            pools = load_pools(_read_bytes(path), source=path)
        except ConfigError as exc:
            failed = True
            click.echo(str(exc), err=False)
            continue
        except click.ClickException as exc:
            failed = True
            click.echo(f"error: {exc.message}")
            continue
        for pool in pools:
            click.echo(f"OK {pool.name}  ({path})")
    if failed:
        sys.exit(1)


@cli.command()
@click.argument("kind", type=click.Choice(["request", "response"]), default="request")
def schema(kind: str) -> None:
    """Print the JSON Schema of a Number Pool request or response."""
    model: type[NumberPoolRequest] | type[NumberPool] = (
        NumberPoolRequest if kind == "request" else NumberPool
    )
    document: dict[str, Any] = model.model_json_schema(by_alias=True)
    click.echo(json.dumps(document, indent=2))


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
def show(files: tuple[str, ...]) -> None:
    """Print a one-screen summary of each pool in FILES."""
    for pool in read_pools(files):
        click.echo(pool_summary(pool))
        click.echo()


def main() -> None:
    """Entry point of the ``dni-engine`` console script."""
    try:
        cli(standalone_mode=True)
    except DniError as exc:  # a library error that escaped a command: no traceback
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
