"""The ``dni-engine`` command.

Each sub-command is a thin layer over the library: it reads files, calls one
public function and prints the result. Every error is one line ``error: ...`` on
stderr, never a traceback. Exit status: 0 success, 1 the work failed (invalid
file content, a server refusing, a failed write), 2 a usage error (a bad option
or value, a file given as an argument that is missing or unreadable, an output
folder that does not exist). Options, values and file paths are all checked
before any work starts. :func:`fail`, :func:`usage_error` and
:func:`print_error` give commands this style.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import stat
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, cast

import click

from dni_engine.bots import is_bot
from dni_engine.calls import attribution_to_json, lease_to_json
from dni_engine.client import DEFAULT_BASE_URL, ApiError, Client, pool_json
from dni_engine.errors import ConfigError, DniError
from dni_engine.extras import MissingExtra
from dni_engine.leases import DEFAULT_CLIENT_CAP
from dni_engine.rules import RuleSet, compile_pools, lint
from dni_engine.schema import (
    AnyPool,
    NumberPool,
    NumberPoolRequest,
    check_pool_set,
    load_pools,
    status_warning,
)
from dni_engine.summary import pool_summary

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from dni_engine.engine import Engine
    from dni_engine.leases import Lease, Policy, TouchMode
    from dni_engine.simulate import Metric

__all__ = [
    "EXIT_FAILURE",
    "EXIT_USAGE",
    "Command",
    "Group",
    "cli",
    "error_lines",
    "fail",
    "main",
    "print_error",
    "usage_error",
]


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


MAX_INPUT_BYTES = 64 * 1024 * 1024
"""Largest file a command reads (a 10,000-pool site is about 6 MB)."""


def _read_bytes(path: str) -> bytes:
    """The bytes of the file ``path``, at most :data:`MAX_INPUT_BYTES` of them.

    Raises ``click.ClickException`` (one line naming the file) when it cannot
    be read or is larger, so that a device or a runaway file is never read
    into memory whole.
    """
    try:
        with Path(path).open("rb") as handle:
            data = handle.read(MAX_INPUT_BYTES + 1)
    except OSError as exc:
        raise click.ClickException(f"{path}: cannot read file ({exc.strerror or exc})") from None
    if len(data) > MAX_INPUT_BYTES:
        raise click.ClickException(f"{path}: larger than {MAX_INPUT_BYTES:,} bytes; not read")
    return data


EXIT_FAILURE = 1
"""Exit status when the work itself failed (invalid file content, a server refusing...)."""
EXIT_USAGE = 2
"""Exit status of a usage error (a bad option or value, a missing input file...)."""


def error_lines(message: str) -> list[str]:
    """``message`` as ``error: ...`` lines, one per error.

    A line indented under another is a detail of it (a problem of a file, say)
    and joins it: ``"a.json: 2 problems found\\n  x: y\\n  z: w"`` gives the one
    line ``"error: a.json: 2 problems found: x: y; z: w"``.
    """
    errors: list[list[str]] = []
    for line in message.splitlines():
        if not line.strip():
            continue
        if line[:1].isspace() and errors:
            errors[-1].append(line.strip())
        else:
            errors.append([line.strip()])
    if not errors:
        errors = [["failed"]]
    return [
        f"error: {head}" + (f": {'; '.join(details)}" if details else "")
        for head, *details in errors
    ]


def print_error(message: str) -> None:
    """Print ``message`` on stderr as ``error: ...`` lines (see :func:`error_lines`)."""
    for line in error_lines(message):
        click.echo(line, err=True)


def fail(message: str) -> NoReturn:
    """Stop the command: print ``error: message`` and exit with :data:`EXIT_FAILURE`."""
    raise click.ClickException(message)


def usage_error(message: str, option: str | None = None) -> NoReturn:
    """Stop the command as misused: print ``error: ...`` and exit with :data:`EXIT_USAGE`.

    ``option`` (``"--quantity"``) names the option or argument at fault.
    """
    if option is not None:
        raise click.BadParameter(message, param_hint=f"'{option}'")
    raise click.UsageError(message)


class Command(click.Command):
    """A ``dni-engine`` command: checks the files its ``click.Path`` parameters name first.

    Before the command runs, every path it was given (not ``-``) is checked:
    one declared ``writable=True`` is an output, whose folder must exist and be
    writable (and which must not be a folder); any other is an input, which
    must exist, be readable and not be a folder. A failed check is a usage
    error naming the parameter, so no work is done on a command that could
    not finish.
    """

    def invoke(self, ctx: click.Context) -> Any:
        """Check the paths given to the command, then run it."""
        for param in self.params:
            if isinstance(param.type, click.Path):
                for value in _values(ctx.params.get(param.name or "")):
                    problem = _path_problem(value, output=bool(param.type.writable))
                    if problem is not None:
                        raise click.BadParameter(problem, ctx=ctx, param=param)
        return super().invoke(ctx)


def _values(value: object) -> Iterator[str]:
    if isinstance(value, str | os.PathLike):
        yield os.fspath(value)
    elif isinstance(value, tuple | list):
        for item in value:
            yield from _values(item)


def _path_problem(path: str, *, output: bool) -> str | None:
    """Why ``path`` cannot be read (or, for an ``output``, written), or None."""
    if path == "-":
        return None
    try:
        mode: int | None = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        mode = None
    except OSError as exc:
        return f"{path}: {exc.strerror or exc}"
    if mode is not None and stat.S_ISDIR(mode):
        return f"{path} is a folder, not a file"
    if not output:
        if mode is None:
            return f"{path}: no such file"
        if not os.access(path, os.R_OK):
            return f"{path} cannot be read (permission denied)"
        return None
    folder = os.path.dirname(path) or "."
    if os.path.exists(folder) and not os.path.isdir(folder):
        return f"cannot write {path}: {folder} is not a folder"
    if not os.path.isdir(folder):
        return f"cannot write {path}: the folder {folder} does not exist"
    if mode is None and not os.access(folder, os.W_OK | os.X_OK):
        return f"cannot write {path}: the folder {folder} is not writable"
    if mode is not None and not os.access(path, os.W_OK):
        return f"cannot write {path} (permission denied)"
    return None


class Group(click.Group):
    """The ``dni-engine`` group: its commands are :class:`Command`, its errors one line each.

    Run in standalone mode (the console script, ``CliRunner``), every error
    is printed as ``error: ...`` on stderr and the process exits with
    :data:`EXIT_USAGE` for usage errors (click's own included) and
    :data:`EXIT_FAILURE` for failures, library errors (``DniError``) and
    file or network errors (``OSError``) that escaped a command included.
    """

    command_class = Command
    group_class = type  # sub-groups (``pools``) are Groups too

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the command line ``args``; in standalone mode, exit with its status."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            status = super().main(args, prog_name, complete_var, False, **extra)
        except click.ClickException as exc:
            if isinstance(exc, getattr(click.exceptions, "NoArgsIsHelpError", ())):
                exc.show()  # a bare group: its help, not an error
            else:
                print_error(_click_message(exc))
            sys.exit(exc.exit_code)
        except click.Abort:
            print_error("interrupted")
            sys.exit(EXIT_FAILURE)
        except DniError as exc:
            print_error(str(exc))
            sys.exit(EXIT_FAILURE)
        except OSError as exc:
            print_error(_os_message(exc))
            sys.exit(EXIT_FAILURE)
        sys.exit(status if isinstance(status, int) else 0)


def _click_message(exc: click.ClickException) -> str:
    message = exc.format_message()
    if isinstance(exc, click.UsageError) and exc.ctx is not None:
        # One line: the usage and the "Try --help" click prints become a pointer.
        return f"{message} (see '{exc.ctx.command_path} --help')"
    return message


def _os_message(exc: OSError) -> str:
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"{exc.filename}: {reason}" if exc.filename is not None else reason


class Number(click.FloatRange):
    """A finite number within a range (click's ``FloatRange`` lets ``nan`` and ``inf`` pass)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """The number ``value`` reads as; a usage error unless finite and in range."""
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return super().convert(number, param, ctx)


# Bounds of the numeric options: beyond them a run would never end or not fit in memory.
MAX_SEED = 2**63 - 1
MAX_ID = 2**63 - 1  # group ids, as the emulator bounds them
MAX_PRIORITY = 10**9
MAX_HOURS = 366 * 24.0
MAX_VISITORS_PER_HOUR = 1_000_000.0
MAX_SESSIONS = 10_000_000
"""Most sessions (visitors per hour x hours) one simulation run may draw."""
MAX_LOG_SESSIONS = 1_000_000
"""Most sessions ``--write-access-log`` writes (the log is sorted in memory)."""
MAX_COOLDOWN = 43_200.0  # minutes: 30 days, the longest match_period
MAX_ATTRIBUTION_WINDOW = 43_200.0  # minutes: 30 days, the longest match_period
MAX_LATENCY = 600.0
MAX_RETRY_AFTER = 86_400
MAX_STOCK = 10_000_000
MAX_QUANTITY = 1000  # the schema's largest pool
MAX_REPLICATIONS = 1000  # runs of each size in a sizing study
MAX_JOBS = 1024  # processes a sizing study is spread over

SEED = click.IntRange(0, MAX_SEED)
SHARE = Number(0, 1)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dni-engine")
def cli() -> None:
    """dni-engine: decide which call-tracking number each website visitor sees.

    \b
    Exit status:
      0  success
      1  the work failed: invalid pool file content, a server refusing,
         lint warnings, a file that could not be written, ...
      2  usage error: a bad option or value, a missing or unreadable input
         file, an output folder that does not exist
    Every error is one line "error: ..." on stderr. Options and files are
    checked before any work starts.
    """


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON report of every file.")
def validate(files: tuple[str, ...], as_json: bool) -> None:
    """Validate Number Pool JSON files (requests or responses, or lists of them).

    Each file is checked on its own, its pools together (names, ids, numbers).
    Prints ``OK name`` per valid pool, followed by a ``warning:`` line for a
    pool whose status is not active (valid, but it leases no numbers); for an
    invalid file, an ``error: FILE: N problems found`` line and every problem
    with its JSON path. ``OK`` lines go to standard output, errors and warnings
    to standard error. Exits 1 if any file has a problem; warnings alone exit 0.

    With --json, standard output is one object: ``{"valid": bool, "files":
    [{"file", "valid", "pools": [{"name", "key", "kind", "warning"}],
    "problems": [{"path", "reason"}]}]}``; the exit status is the same.
    """
    failed = False
    report: list[dict[str, Any]] = []
    for path in files:
        entry: dict[str, Any] = {"file": path, "valid": True, "pools": [], "problems": []}
        report.append(entry)
        try:
            pools = load_pools(_read_bytes(path), source=path)
        except ConfigError as exc:
            failed = True
            entry["valid"] = False
            entry["problems"] = [{"path": p.path, "reason": p.reason} for p in exc.problems]
            if not as_json:
                click.echo(f"error: {exc}", err=True)
            continue
        except click.ClickException as exc:
            failed = True
            entry["valid"] = False
            entry["problems"] = [{"path": "", "reason": exc.message}]
            if not as_json:
                click.echo(f"error: {exc.message}", err=True)
            continue
        for pool in pools:
            why = status_warning(pool)
            entry["pools"].append(
                {
                    "name": pool.name,
                    "key": pool.key,
                    "kind": "response" if isinstance(pool, NumberPool) else "request",
                    "warning": why,
                }
            )
            if as_json:
                continue
            click.echo(f"OK {pool.name}  ({path})")
            if why is not None:
                click.echo(f"warning: {path}: pool {pool.name!r}: {why}", err=True)
    if as_json:
        click.echo(json.dumps({"valid": not failed, "files": report}, indent=2))
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
@click.option("--json", "as_json", is_flag=True, help="Print the pools' summaries as JSON.")
def show(files: tuple[str, ...], as_json: bool) -> None:
    """Print a one-screen summary of each pool in FILES.

    A pool whose status is not active also gets a ``warning:`` line on stderr.
    With --json, a list with one object per pool: its name, key, kind
    (geographic, tollfree, national), country, quantity, match period,
    numbers (E.164), what it replaces, its tracking sources and the warning.
    """
    pools = read_pools(files)
    if as_json:
        click.echo(json.dumps([_pool_summary_json(pool) for pool in pools], indent=2))
    for pool in pools:
        why = status_warning(pool)
        if not as_json:
            click.echo(pool_summary(pool))
            click.echo()
        if why is not None:
            click.echo(f"warning: pool {pool.name!r}: {why}", err=True)


def _pool_summary_json(pool: AnyPool) -> dict[str, Any]:
    """What ``show`` says of one pool, as JSON."""
    from dni_engine.summary import pool_kind

    rc = pool.replacement_configuration
    response = isinstance(pool, NumberPool)
    return {
        "name": pool.name,
        "key": pool.key,
        "id": pool.id if isinstance(pool, NumberPool) else None,
        "group_id": pool.group_id if isinstance(pool, NumberPool) else None,
        "status": pool.status if isinstance(pool, NumberPool) else None,
        "request": not response,
        "kind": pool_kind(pool),
        "country": pool.country,
        "quantity": pool.quantity,
        "match_period": pool.match_period,
        "numbers": list(pool.e164_numbers) if isinstance(pool, NumberPool) else [],
        "replace_all_numbers": bool(rc.replace_all_numbers),
        "numbers_to_replace": list(rc.numbers_to_replace or []),
        "tracking_sources": [
            {
                "referrer_domain": source.referrer_domain,
                "url_triggers": list(source.url_triggers or []),
                "track_organic": bool(source.track_organic),
            }
            for source in rc.tracking_sources
        ],
        "termination_number": pool.call_routes.route.termination_number,
        "warning": status_warning(pool),
    }


@cli.command("rewrite")
@click.argument("pool_file", metavar="POOL.json", type=click.Path(dir_okay=False))
@click.argument("page", metavar="PAGE.html", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--number", required=True, help="Tracking number to show, e.g. +441174090162.")
@click.option("--pool", "pool_name", help="Name of the pool to use when POOL.json holds several.")
@click.option("--text", "plain_text", is_flag=True, help="PAGE is plain text, not HTML.")
def rewrite_command(
    pool_file: str, page: str, number: str, pool_name: str | None, plain_text: bool
) -> None:
    """Print PAGE (a file, or - for stdin) with the pool's numbers swapped for --number.

    Numbers keep the way the page wrote them; tel: links get E.164. Only text and
    tel:/callto: link targets change, every other byte is written back as read.
    """
    from dni_engine.rewrite import compile_rewriter, parse_tracking_number

    pool = _one_pool(read_pools([pool_file]), pool_name, pool_file)
    if parse_tracking_number(number, pool.country) is None:
        usage_error(
            f"{number!r} is not a phone number (give it in E.164, e.g. +441174090162)", "--number"
        )
    rewriter = compile_rewriter(pool)
    for entry in rewriter.ignored:
        click.echo(
            f"warning: numbers_to_replace {entry!r} is not a phone number; skipped", err=True
        )
    data = sys.stdin.buffer.read() if page == "-" else _read_bytes(page)
    # surrogateescape: bytes that are not UTF-8 go back out exactly as they came in.
    text = data.decode("utf-8", "surrogateescape")
    out = rewriter.rewrite_text(text, number) if plain_text else rewriter.rewrite_html(text, number)
    sys.stdout.buffer.write(out.encode("utf-8", "surrogateescape"))
    sys.stdout.buffer.flush()


def _one_pool(pools: list[AnyPool], name: str | None, source: str) -> AnyPool:
    names = ", ".join(repr(p.name) for p in pools)
    if name is None:
        if len(pools) == 1:
            return pools[0]
        usage_error(f"{source} holds {len(pools)} pools ({names}): pick one with --pool")
    chosen = [p for p in pools if p.name.strip().lower() == name.strip().lower()]
    if not chosen:
        usage_error(f"{source} has no pool named {name!r} (it has {names})", "--pool")
    return chosen[0]


TOKEN_ENV = "DNI_API_TOKEN"


@cli.command("emulator")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--port",
    default=8080,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0: any free port; the URL printed says which).",
)
@click.option(
    "--latency",
    default=0.0,
    type=Number(0, MAX_LATENCY),
    help="Seconds added to every request.",
)
@click.option(
    "--error-rate",
    default=0.0,
    type=SHARE,
    help="Share of requests answered 429 or 503 without being acted on.",
)
@click.option(
    "--drop-rate",
    default=0.0,
    type=SHARE,
    help="Share of requests whose connection is cut after the server acted on them.",
)
@click.option(
    "--retry-after",
    default=1,
    show_default=True,
    type=click.IntRange(0, MAX_RETRY_AFTER),
    help="Seconds sent in Retry-After with 429/503.",
)
@click.option(
    "--stock",
    default=10_000,
    show_default=True,
    type=click.IntRange(0, MAX_STOCK),
    help="Numbers available per city, area code, toll-free or national range.",
)
@click.option(
    "--seed", default=0, show_default=True, type=SEED, help="Seed for numbers and faults."
)
def emulator_command(
    host: str,
    port: int,
    latency: float,
    error_rate: float,
    drop_rate: float,
    retry_after: int,
    stock: int,
    seed: int,
) -> None:
    """Run a local emulator of the vendor's Number Pool API until interrupted.

    Any non-empty x-organization-token is accepted. State is in memory.
    """
    # Imported here: starlette and uvicorn come with the 'emulator' extra.
    try:
        from dni_engine.emulator import Emulator, Faults, serve
    except MissingExtra as exc:
        fail(str(exc))

    # uvicorn configures its own loggers only; this shows the emulator's
    # (pools created, faults injected) in the same style.
    logging.basicConfig(level=logging.INFO, format="%(levelname)-9s %(message)s")

    faults = Faults(
        latency=latency, error_rate=error_rate, drop_rate=drop_rate, retry_after=retry_after
    )
    app = Emulator(faults=faults, stock=stock, seed=seed)

    def ready(url: str) -> None:
        click.echo(f"dni-engine emulator listening on {url} (faults: {faults.describe()})")

    try:
        serve(app, host=host, port=port, on_ready=ready)
    except ConfigError as exc:  # the address cannot be listened on
        fail("; ".join(p.reason for p in exc.problems))
    except KeyboardInterrupt:
        click.echo("emulator stopped")


@cli.group()
def pools() -> None:
    """Create and inspect pools through the vendor's API (token from DNI_API_TOKEN)."""


def _api_client(base_url: str) -> Client:
    """A client of the vendor's API with the token of :data:`TOKEN_ENV` (a usage error without)."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        usage_error(
            f"set {TOKEN_ENV} to your organization's API token "
            "(it is not accepted on the command line, where other users could see it)"
        )
    try:
        return Client(token, base_url=base_url)
    except ConfigError as exc:  # a token that cannot be sent in a header
        usage_error(f"{TOKEN_ENV}: " + "; ".join(p.reason for p in exc.problems))


_BASE_URL_OPTION = click.option(
    "--base-url",
    default=DEFAULT_BASE_URL,
    show_default=True,
    callback=lambda ctx, param, value: _base_url(value),
    help="API base URL.",
)


@pools.command("list")
@click.option(
    "--group",
    "group_id",
    required=True,
    type=click.IntRange(0, MAX_ID),
    help="Group whose pools to list.",
)
@_BASE_URL_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the pools as the API returned them.")
def list_pools(group_id: int, base_url: str, as_json: bool) -> None:
    """List the pools of a group: id, status, quantity, numbers and name (token from DNI_API_TOKEN).

    With --json, the pools as the API returned them (a JSON list).
    """
    with _api_client(base_url) as client:
        try:
            with _warnings_on_stderr():
                found = client.list_number_pools(group_id)
        except ApiError as exc:
            fail(str(exc))
    if as_json:
        click.echo(json.dumps([pool_json(pool) for pool in found], indent=2))
        return
    for pool in found:
        numbers = ", ".join(pool.e164_numbers) or "none"
        click.echo(f"{pool.id}  {pool.status}  {pool.quantity:>4}  {pool.name}  ({numbers})")
    click.echo(f"{_count(len(found), 'pool')} in group {group_id}")


@pools.command("get")
@click.argument("pool_id", metavar="ID", type=click.IntRange(0, MAX_ID))
@_BASE_URL_OPTION
def get_pool(pool_id: int, base_url: str) -> None:
    """Print the pool with this ID as the API returns it (JSON; token from DNI_API_TOKEN)."""
    with _api_client(base_url) as client:
        try:
            with _warnings_on_stderr():
                pool = client.get_number_pool(pool_id)
        except ApiError as exc:
            fail(str(exc))
    click.echo(json.dumps(pool_json(pool), indent=2))


@pools.command("create")
@click.option(
    "--group",
    "group_id",
    required=True,
    type=click.IntRange(0, MAX_ID),
    help="Group to create it in.",
)
@click.option(
    "--base-url",
    default=DEFAULT_BASE_URL,
    show_default=True,
    callback=lambda ctx, param, value: _base_url(value),
    help="API base URL.",
)
@click.argument("file", type=click.Path(dir_okay=False))
def create_pool(group_id: int, base_url: str, file: str) -> None:
    """Create the pool requested in FILE and print it as the API returned it (JSON).

    The token is read from the DNI_API_TOKEN environment variable, never from
    the command line. Safe to run again: if the group already has an identical
    pool of that name (say, an earlier run whose answer was lost), that pool is
    printed; a different pool of that name is an error.
    """
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        usage_error(
            f"set {TOKEN_ENV} to your organization's API token "
            "(it is not accepted on the command line, where other users could see it)"
        )
    try:
        client = Client(token, base_url=base_url)
    except ConfigError as exc:  # a token that cannot be sent in a header
        usage_error(f"{TOKEN_ENV}: " + "; ".join(p.reason for p in exc.problems))
    with client:
        try:
            documents = load_pools(_read_bytes(file), source=file)
        except ConfigError as exc:
            fail(str(exc))
        if len(documents) != 1 or not isinstance(documents[0], NumberPoolRequest):
            fail(f"{file}: expected one pool request (without id or numbers)")
        try:
            with _warnings_on_stderr():
                pool = client.ensure_number_pool(group_id, documents[0])
        except ApiError as exc:
            fail(str(exc))
    click.echo(json.dumps(pool_json(pool), indent=2))


def _base_url(value: str) -> str:
    """``--base-url``: an http(s) URL with a host."""
    import httpx

    try:
        url = httpx.URL(value)
    except httpx.InvalidURL as exc:
        usage_error(f"{value!r} is not a URL ({exc})", "--base-url")
    if url.scheme not in ("http", "https") or not url.host:
        usage_error(f"{value!r} is not an http:// or https:// URL with a host", "--base-url")
    return value


class _StderrLines(logging.Handler):
    """Library warnings (a client retrying, say) as ``warning: ...`` lines on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        click.echo(f"{record.levelname.lower()}: {record.getMessage()}", err=True)


@contextlib.contextmanager
def _warnings_on_stderr() -> Iterator[None]:
    log = logging.getLogger("dni_engine")
    handler = _StderrLines(logging.WARNING)
    log.addHandler(handler)
    try:
        yield
    finally:
        log.removeHandler(handler)


def _priorities(options: tuple[str, ...]) -> dict[str, int]:
    """Read ``--priority KEY=N`` options."""
    chosen: dict[str, int] = {}
    for option in options:
        key, equals, value = option.rpartition("=")
        try:
            number = int(value)
        except ValueError:
            number = None
        if not equals or not key or number is None:
            usage_error(f"{option!r} is not KEY=N (a pool key, '=', a whole number)", "--priority")
        if abs(number) > MAX_PRIORITY:
            usage_error(
                f"{option!r}: a priority is from -{MAX_PRIORITY:,} to {MAX_PRIORITY:,}",
                "--priority",
            )
        chosen[key] = number
    return chosen


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _rule_set(pools: list[AnyPool], priority_options: tuple[str, ...]) -> RuleSet:
    try:
        return compile_pools(pools, _priorities(priority_options))
    except ConfigError as exc:
        if all(p.path.startswith("priorities.") for p in exc.problems):
            usage_error("; ".join(p.reason for p in exc.problems), "--priority")
        fail(str(exc))


_PRIORITY_HELP = (
    "Priority of the pool with key KEY (its id, or its name for a request); higher wins "
    "between equally specific pools. Repeatable."
)


@cli.command("match")
@click.argument(
    "files", nargs=-1, required=True, metavar="POOLS.json...", type=click.Path(dir_okay=False)
)
@click.option("--url", required=True, help="Landing URL of the visit.")
@click.option(
    "--referrer", default=None, help="HTTP referrer, a URL or a bare host. Omit for a direct visit."
)
@click.option(
    "--user-agent",
    default=None,
    help="The visitor's user agent. Without it the crawler check is skipped.",
)
@click.option("--priority", "priority_options", multiple=True, metavar="KEY=N", help=_PRIORITY_HELP)
@click.option("--explain", is_flag=True, help="Report every pool's and source's verdict, and why.")
@click.option("--json", "as_json", is_flag=True, help="Print the match as JSON (null for none).")
def match_command(
    files: tuple[str, ...],
    url: str,
    referrer: str | None,
    user_agent: str | None,
    priority_options: tuple[str, ...],
    explain: bool,
    as_json: bool,
) -> None:
    """Show which pool and tracking source claim one visit.

    Prints the winning pool, source, trigger and referrer class, or "no match".
    The exit status is 0 either way; it is 1 for an invalid pool file and 2
    for a usage error (a missing file, a --priority naming no pool).
    """
    rules = _rule_set(read_pools(files), priority_options)
    check_bots = user_agent is not None
    if explain:
        click.echo(str(rules.explain(url, referrer, user_agent, check_bots=check_bots)))
        return
    found = rules.match(url, referrer, user_agent, check_bots=check_bots)
    if as_json:
        data = dataclasses.asdict(found) if found else None
        if data is not None:
            # The key's name before Match.referrer_domain, still written for one release.
            data["referrer"] = data["referrer_domain"]
        click.echo(json.dumps(data, indent=2))
        return
    if found is None:
        crawler = check_bots and is_bot(user_agent)
        click.echo("no match: the user agent is a crawler" if crawler else "no match")
        return
    how = f"{found.trigger}  ({found.specificity} condition{'s' if found.specificity != 1 else ''})"
    click.echo(f"pool      {found.pool_name} (key {found.pool_key}, pool [{found.pool_index}])")
    click.echo(f"source    {found.source_index} (referrer_domain {found.referrer_domain})")
    click.echo(f"trigger   {how if found.trigger is not None else 'none'}")
    click.echo(f"referrer  {found.referrer_class or 'not in the catalogue, or direct'}")
    click.echo(f"paid      {'yes' if found.paid else 'no (organic)'}")


@cli.command("lint")
@click.argument(
    "files", nargs=-1, required=True, metavar="POOLS.json...", type=click.Path(dir_okay=False)
)
@click.option("--priority", "priority_options", multiple=True, metavar="KEY=N", help=_PRIORITY_HELP)
@click.option("--strict", is_flag=True, help="Exit with status 1 on notices too.")
def lint_command(files: tuple[str, ...], priority_options: tuple[str, ...], strict: bool) -> None:
    """Find pool configurations that cannot work as meant.

    FILES are linted together, as one site. Each finding is printed with the
    JSON path of the value at fault (pool indexes count across all FILES).
    Pools of different FILES must not clash either (ids and keys, tracking
    numbers, number ids), as in one engine. A pool that is not active is a
    warning. Exit status: 0 when there are no warnings (notices alone pass,
    unless --strict), 1 when there is a warning or a file is invalid.
    """
    pools: list[AnyPool] = []
    legend = []
    for path in files:
        loaded = read_pools([path])
        legend.append(f"  [{len(pools)}]-[{len(pools) + len(loaded) - 1}] {path}")
        pools.extend(loaded)
    clashes = check_pool_set(pools) if len(files) > 1 else []
    if clashes:
        together = "the pools of " + ", ".join(line.strip() for line in legend)
        raise click.ClickException(str(ConfigError(clashes, source=together)))
    rules = _rule_set(pools, priority_options)
    findings = lint(rules.pools, rules.priorities)
    if len(files) > 1:
        click.echo("pools:")
        for line in legend:
            click.echo(line)
    for finding in findings:
        click.echo(str(finding))
    warnings = sum(1 for f in findings if f.severity == "warning")
    notices = len(findings) - warnings
    click.echo(
        f"{_count(len(pools), 'pool')}: {_count(warnings, 'warning')}, {_count(notices, 'notice')}"
    )
    if warnings or (strict and notices):
        sys.exit(1)


@cli.command("simulate")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "--visitors-per-hour",
    type=Number(0, MAX_VISITORS_PER_HOUR, min_open=True),
    help="Average arrivals per hour of synthetic traffic (default 120).",
)
@click.option(
    "--access-log",
    type=click.Path(dir_okay=False),
    help="Replay an Apache/Nginx combined access log instead of synthetic traffic.",
)
@click.option(
    "--site",
    help="With --access-log: the site's URL or host, whose referrers are internal page views "
    "(default: the host most pages after a visitor's first come from).",
)
@click.option(
    "--profile",
    type=click.Choice(["flat", "typical"]),
    default="flat",
    show_default=True,
    help="Shape of the day: constant, or a typical business day with the same average.",
)
@click.option(
    "--hours",
    type=Number(0, MAX_HOURS, min_open=True),
    default=24.0,
    show_default=True,
    help="Simulated hours of synthetic traffic (at most a year).",
)
@click.option(
    "--quantity",
    callback=lambda ctx, param, value: _quantities(value),
    help=f"Pool sizes to try, 1 to {MAX_QUANTITY}: 8, 4..20 or 5,10,20 (default: search).",
)
@click.option(
    "--target",
    type=Number(0, 1, min_open=True),
    default=0.99,
    show_default=True,
    help="Accuracy to reach (or blocking not to exceed, with --metric blocking).",
)
@click.option(
    "--metric", type=click.Choice(["accuracy", "blocking"]), default="accuracy", show_default=True
)
@click.option(
    "--policy",
    type=click.Choice(["fallback", "overflow", "recycle"]),
    default="fallback",
    show_default=True,
    help="What an exhausted pool does.",
)
@click.option(
    "--cooldown",
    type=Number(0, MAX_COOLDOWN),
    default=0.0,
    show_default=True,
    help="Minutes a released number rests before reuse.",
)
@click.option(
    "--attribution-window",
    type=Number(0, MAX_ATTRIBUTION_WINDOW, min_open=True),
    default=30.0,
    show_default=True,
    help="Minutes a visitor's landing context lasts after their last page view; later "
    "pages are matched on it, as the web integration does.",
)
@click.option(
    "--call-share",
    type=SHARE,
    default=0.06,
    show_default=True,
    help="Share of human sessions that call.",
)
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option(
    "--replications",
    type=click.IntRange(1, MAX_REPLICATIONS),
    default=10,
    show_default=True,
    help="Runs of each size, each on its own seed: the size chosen is the smallest whose "
    "interval for a fresh run meets --target (1: a single run decides).",
)
@click.option(
    "--confidence",
    type=Number(0, 1, min_open=True, max_open=True),
    default=0.95,
    show_default=True,
    help="Confidence of the interval a fresh run of a size falls in.",
)
@click.option(
    "--jobs",
    type=click.IntRange(1, MAX_JOBS),
    help="Processes the runs are spread over (default: one per core; 1: no extra process).",
)
@click.option("--json", "as_json", is_flag=True, help="Print every run and recommendation as JSON.")
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, writable=True),
    help="Write a PNG of accuracy and blocking.",
)
@click.option(
    "--write-access-log",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the synthetic traffic as a combined-format access log, then stop.",
)
def simulate_command(
    files: tuple[str, ...],
    visitors_per_hour: float | None,
    access_log: str | None,
    site: str | None,
    profile: str,
    hours: float,
    quantity: list[int] | None,
    target: float,
    metric: str,
    policy: str,
    cooldown: float,
    attribution_window: float,
    call_share: float,
    seed: int,
    replications: int,
    confidence: float,
    jobs: int | None,
    as_json: bool,
    plot: str | None,
    write_access_log: str | None,
) -> None:
    """Size pools by playing traffic through the real engine on simulated time.

    Prints per pool and size the offered load, the share of visitors who found
    no free number next to Erlang B, how calls were attributed, and the smallest
    size meeting --target. Each size runs --replications times on independent
    seeds, spread over --jobs processes; a size meets the target when the
    --confidence interval of one fresh run does (accuracy 99.3% [98.9, 99.6]:
    the mean, and where a fresh run falls).
    """
    import time

    from rich.console import Console
    from rich.progress import Progress

    from dni_engine import simulate as sim
    from dni_engine import traffic as tr
    from dni_engine.replications import summarize
    from dni_engine.sizing_report import (
        PlotUnavailable,
        plot_sizing,
        recommendations_table,
        results_table,
    )

    if visitors_per_hour is not None and access_log is not None:
        usage_error("give --visitors-per-hour or --access-log, not both")
    if site is not None and access_log is None:
        usage_error("--site is the site of an --access-log", "--site")
    rate = visitors_per_hour if visitors_per_hour is not None else 120.0
    _check_simulation(
        rate, hours, target, metric, synthetic=access_log is None, writing=write_access_log
    )
    if plot is not None:
        _check_plotting()
    pools = read_pools(files)
    chosen_policy = cast("Policy", policy)
    chosen_metric = cast("Metric", metric)
    campaigns = tuple(sorted(_campaigns_of(pools))) or tr.TrafficModel().campaigns
    model = tr.TrafficModel(
        visitors_per_hour=(
            tr.hourly_profile(tr.TYPICAL_DAY, rate * 24 / sum(tr.TYPICAL_DAY) * max(tr.TYPICAL_DAY))
            if profile == "typical"
            else rate
        ),
        hours=hours,
        call_share=call_share,
        campaigns=campaigns,
    )
    try:
        if write_access_log is not None:
            lines = tr.write_access_log(tr.generate_sessions(model, seed))
            try:
                with open(write_access_log, "w", encoding="utf-8") as log_file:
                    log_file.writelines(f"{line}\n" for line in lines)
            except OSError as exc:
                fail(f"cannot write {write_access_log}: {exc.strerror or exc}")
            click.echo(f"wrote {write_access_log}")
            return
        traffic: tr.TrafficModel | tr.LogReplay = model
        if access_log is not None:
            with open(access_log, encoding="utf-8", errors="replace") as handle:
                traffic = tr.read_access_log(handle, site=site, call_share=call_share, seed=seed)
            if not traffic.sessions:
                raise click.ClickException(f"{access_log}: no page views to replay")
        sizes = quantity
        workers = jobs if jobs is not None else _cores()
        processes = "1 process" if workers == 1 else f"{workers} processes"
        console = Console(stderr=True)
        started = time.perf_counter()
        with (
            _sizing_executor(workers) as executor,
            Progress(
                console=console, transient=True, disable=as_json or not console.is_terminal
            ) as bar,
        ):
            task = bar.add_task(f"simulating on {processes}", total=None)

            def advance(done: int, submitted: int) -> None:
                bar.update(task, completed=done, total=submitted)

            runs = (
                sim.sweep(
                    pools,
                    traffic,
                    sizes,
                    policy=chosen_policy,
                    cooldown=cooldown,
                    seed=seed,
                    attribution_window=attribution_window,
                    replications=replications,
                    executor=executor,
                    on_run=advance,
                )
                if sizes
                else None
            )
            advice, runs = sim.recommend(
                pools,
                traffic,
                metric=chosen_metric,
                target=target,
                policy=chosen_policy,
                cooldown=cooldown,
                seed=seed,
                results=runs,
                attribution_window=attribution_window,
                replications=replications,
                confidence=confidence,
                executor=executor,
                on_run=advance,
            )
        elapsed = time.perf_counter() - started
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(
            json.dumps(
                {
                    "replications": replications,
                    "confidence": confidence,
                    "runs": [r.as_dict() for r in runs],
                    "sizes": [s.as_dict() for s in summarize(runs, confidence)],
                    "recommendations": [a.as_dict() for a in advice],
                },
                indent=2,
            )
        )
    else:
        out = Console(width=None if sys.stdout.isatty() else 160)
        out.print(results_table(runs, confidence))
        out.print(recommendations_table(advice))
        for line in advice:
            out.print(line.summary(), highlight=False)
        sessions = sum(r.sessions for r in runs)
        out.print(
            f"{_count(len(runs), 'run')} ({replications} per size) on "
            f"{processes} in {elapsed:.1f} s: "
            f"{sessions / max(elapsed, 1e-9):,.0f} simulated sessions per second"
        )
    if plot is not None:
        try:
            written = plot_sizing(runs, plot, confidence)
        except PlotUnavailable as exc:
            fail(str(exc))
        except OSError as exc:
            fail(f"cannot write {plot}: {exc.strerror or exc}")
        click.echo(f"plot written to {written}", err=as_json)


def _quantities(text: str | None) -> list[int] | None:
    """``--quantity``: every size, each checked against the bounds before a range is built."""
    from dni_engine import simulate as sim

    if text is None:
        return None
    for part in text.split(","):
        for end in part.split("..", 1):
            try:
                size = int(end)
            except ValueError:
                continue  # not a number: parse_quantities says what is wrong
            if not 1 <= size <= MAX_QUANTITY:
                usage_error(
                    f"quantities must be between 1 and {MAX_QUANTITY} ({size} is not)",
                    "--quantity",
                )
    try:
        return sim.parse_quantities(text)
    except ConfigError as exc:
        usage_error("; ".join(p.reason for p in exc.problems), "--quantity")


def _check_simulation(
    rate: float, hours: float, target: float, metric: str, *, synthetic: bool, writing: str | None
) -> None:
    """The checks of ``simulate`` that involve two options, before any work."""
    if metric == "blocking" and target >= 1:
        usage_error("a blocking target is below 1 (a share of sessions)", "--target")
    if not synthetic:
        return
    sessions = rate * hours
    limit, what = (MAX_LOG_SESSIONS, "--write-access-log") if writing else (MAX_SESSIONS, "a run")
    if sessions > limit:
        usage_error(
            f"--visitors-per-hour {rate:g} x --hours {hours:g} is {sessions:,.0f} sessions; "
            f"{what} takes at most {limit:,}"
        )


def _cores() -> int:
    """The cores this process may run on: the default of ``simulate --jobs``."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def _sizing_executor(workers: int) -> Iterator[Executor | None]:
    """A pool of ``workers`` processes for ``simulate``'s runs (none: they run here).

    The processes are started fresh (forkserver, else spawn), not forked from
    this one with its progress-bar thread; they are shut down on the way out,
    and the runs not started yet are cancelled when the command fails.
    """
    if workers < 2:
        yield None
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    executor = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    try:
        yield executor
    except BaseException:
        executor.shutdown(wait=False, cancel_futures=True)
        raise
    executor.shutdown(wait=True)


def _check_plotting() -> None:
    """``--plot`` needs matplotlib: say so before the simulation, not after it."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        fail(str(MissingExtra("--plot", "plot", "matplotlib")))


def _campaigns_of(pools: list[AnyPool]) -> set[str]:
    """Literal utm_campaign values the pools' triggers look for, to put in synthetic ad URLs."""
    from dni_engine.triggers import parse_trigger

    found: set[str] = set()
    for pool in pools:
        for source in pool.replacement_configuration.tracking_sources:
            for text in source.url_triggers or ():
                for condition in parse_trigger(text).conditions:
                    glob = condition.glob
                    if condition.name == "utm_campaign" and glob is not None and glob.is_literal:
                        found.add(glob.pieces[0])
    return found


# ---- live operations: the store of a running site ------------------------------------

REDIS_ENV = "DNI_REDIS_URL"
"""Environment variable read when ``--redis`` is not given."""
LIVE_CONNECT_TIMEOUT = 2.0
"""Seconds a live command waits to connect to Redis (a site's workers wait far less)."""
LIVE_TIMEOUT = 10.0
"""Seconds a live command waits for one Redis answer."""


@dataclasses.dataclass(frozen=True)
class _Site:
    """What a live command needs to build the site's engine: its pools, store and options."""

    pool_files: tuple[str, ...]
    redis_url: str | None
    namespace: str
    policy: str
    overflow_number: str | None
    cooldown: float
    touch: str
    client_cap: int


def _site_options(function: Any) -> Any:
    """The options every live command shares: the site's pools, its Redis and lease terms."""
    options = [
        click.option(
            "--pools",
            "pool_files",
            multiple=True,
            required=True,
            metavar="FILE",
            type=click.Path(dir_okay=False),
            help="Pool file of the site, as its workers load it (repeatable).",
        ),
        click.option(
            "--redis",
            "redis_url",
            envvar=REDIS_ENV,
            metavar="URL",
            help=f"The site's Redis (redis://host:port/db; default ${REDIS_ENV}).",
        ),
        click.option(
            "--namespace",
            default="dni",
            show_default=True,
            help="The RedisStore namespace of the site.",
        ),
        click.option(
            "--policy",
            type=click.Choice(["fallback", "overflow", "recycle"]),
            default="fallback",
            show_default=True,
            help="The site's policy (the same terms as its workers register).",
        ),
        click.option("--overflow-number", default=None, help="The site's overflow number."),
        click.option(
            "--cooldown",
            type=Number(0, MAX_COOLDOWN),
            default=0.0,
            show_default=True,
            help="The site's cooldown in minutes.",
        ),
        click.option(
            "--touch",
            type=click.Choice(["first_touch", "last_touch"]),
            default="first_touch",
            show_default=True,
            help="The site's touch mode.",
        ),
        click.option(
            "--client-cap",
            type=click.IntRange(0),
            default=DEFAULT_CLIENT_CAP,
            show_default=True,
            help="The site's client cap: live leases one client may hold per pool (0: none).",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _site(options: dict[str, Any]) -> _Site:
    """The :class:`_Site` of a live command's shared options (removed from ``options``)."""
    return _Site(
        pool_files=options.pop("pool_files"),
        redis_url=options.pop("redis_url"),
        namespace=options.pop("namespace"),
        policy=options.pop("policy"),
        overflow_number=options.pop("overflow_number"),
        cooldown=options.pop("cooldown"),
        touch=options.pop("touch"),
        client_cap=options.pop("client_cap"),
    )


def _live_engine(site: _Site) -> Engine:
    """The site's engine on its Redis store: another worker, registering the same terms.

    Without a Redis URL this is a usage error: the embedded store lives in the
    memory of the site's process, and no other process can read it.
    """
    from dni_engine.engine import Engine

    command = click.get_current_context().info_name
    if not site.redis_url:
        usage_error(
            f"'{command}' reads the store of a running site: give --redis URL (or set "
            f"{REDIS_ENV}); the embedded store lives inside the site's process, where "
            "Engine.stats(), leases(), attribute_call() and end_session() read it",
            "--redis",
        )
    url = site.redis_url
    if not url.startswith(("redis://", "rediss://", "unix://")):
        usage_error(f"{url!r} is not a redis://, rediss:// or unix:// URL", "--redis")
    try:
        from dni_engine.stores.redis import RedisStore
    except MissingExtra as exc:
        fail(str(exc))
    pools = read_pools(site.pool_files)
    try:
        store = RedisStore(
            url,
            namespace=site.namespace,
            connect_timeout=LIVE_CONNECT_TIMEOUT,
            timeout=LIVE_TIMEOUT,
        )
    except ConfigError as exc:
        usage_error("; ".join(str(p) for p in exc.problems), "--namespace")
    except ValueError as exc:  # a URL redis-py cannot read
        usage_error(f"{url!r}: {exc}", "--redis")
    try:
        with _warnings_on_stderr():
            engine = Engine(
                pools,
                store,
                policy=cast("Policy", site.policy),
                overflow_number=site.overflow_number,
                cooldown=site.cooldown,
                touch=cast("TouchMode", site.touch),
                client_cap=site.client_cap,
            )
            ready = engine.ready()
    except ConfigError as exc:
        fail(str(exc))
    if not ready:
        fail(f"the Redis store at {_safe_url(url)} does not answer, or refused the site's pools")
    return engine


def _safe_url(url: str) -> str:
    """``url`` without its password, for messages."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at:
        return url
    user = credentials.partition(":")[0]
    return f"{scheme}{sep}{user + ':***' if user else '***'}@{host}"


def _parse_time(text: str, option: str) -> float:
    """A time given on the command line: epoch seconds, or ISO 8601 with its UTC offset."""
    from datetime import datetime

    try:
        value = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(value) or value < 0:
            usage_error(f"{text!r} is not a time (epoch seconds >= 0)", option)
        return value
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        usage_error(
            f"{text!r} is not a time: give epoch seconds or ISO 8601 (2026-03-01T09:30:00+00:00)",
            option,
        )
    if moment.tzinfo is None:
        usage_error(f"{text!r} has no UTC offset (add +00:00 or Z)", option)
    return moment.timestamp()


def _iso(seconds: float | None) -> str:
    """Epoch seconds as ISO 8601 UTC, to the second (``-`` for none)."""
    from datetime import UTC, datetime

    if seconds is None:
        return "-"
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


def _jsonable(value: object) -> object:
    """Dataclasses, tuples and mappings of the library as plain JSON values."""
    to_json = getattr(value, "to_json", None)
    if callable(to_json):
        return to_json()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): _jsonable(v) for k, v in cast("dict[Any, Any]", value).items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _print_json(value: object) -> None:
    click.echo(json.dumps(_jsonable(value), indent=2, ensure_ascii=False))


def _lease_line(lease: Lease) -> str:
    state = "live" if lease.ended is None else f"ended {_iso(lease.ended)} ({lease.end_reason})"
    return (
        f"{lease.lease_id}  {lease.number}  visitor {lease.visitor_id}  "
        f"from {_iso(lease.started)}  window to {_iso(lease.expires)}  {state}"
    )


@cli.command("stats")
@_site_options
@click.option("--json", "as_json", is_flag=True, help="Print the stats as JSON.")
def stats_command(as_json: bool, **options: Any) -> None:
    """Print every pool's occupancy and counters, read from the site's store.

    The counters are the store's own, shared by every worker: any process on
    the same Redis prints the same figures. The site's store needs --redis
    (see the README's 'Live operations').
    """
    engine = _live_engine(_site(options))
    stats = engine.stats()
    if stats.store_error is not None:
        fail(f"the store failed: {stats.store_error}")
    if as_json:
        _print_json(
            {
                "at": stats.at,
                "outcomes": {
                    k: stats.outcomes[k] for k in ("new", "kept", "overflow", "recycled", "capped")
                },
                "pools": [
                    {"name": engine.pool(p.pool_key).name, **cast("dict[str, Any]", _jsonable(p))}
                    for p in stats.pools
                ],
            }
        )
        return
    click.echo(f"at {_iso(stats.at)}")
    click.echo(
        f"{'pool':<12} {'name':<28} {'size':>5} {'live':>5} {'cool':>5} {'free':>5} "
        f"{'new':>7} {'kept':>8} {'overflow':>8} {'recycled':>8} {'capped':>7}"
    )
    for p in stats.pools:
        name = engine.pool(p.pool_key).name
        click.echo(
            f"{p.pool_key:<12} {name[:28]:<28} {p.size:>5} {p.live:>5} {p.cooling:>5} "
            f"{p.free:>5} {p.new:>7} {p.kept:>8} {p.overflows:>8} {p.recycled:>8} {p.capped:>7}"
        )


@cli.command("leases")
@click.argument("pool")
@_site_options
@click.option("--all", "everything", is_flag=True, help="The whole lease log, not live leases.")
@click.option("--since", help="With --all: leases whose window ends after TIME.")
@click.option("--until", help="With --all: leases that started before TIME.")
@click.option("--json", "as_json", is_flag=True, help="Print the leases as JSON.")
def leases_command(
    pool: str,
    everything: bool,
    since: str | None,
    until: str | None,
    as_json: bool,
    **options: Any,
) -> None:
    """List the live leases of POOL (its id or name), oldest first; --all: its lease log.

    TIME is epoch seconds or ISO 8601 with a UTC offset.
    """
    start = None if since is None else _parse_time(since, "--since")
    end = None if until is None else _parse_time(until, "--until")
    if not everything and (start is not None or end is not None):
        usage_error("--since and --until select from the log: give --all too")
    engine = _live_engine(_site(options))
    try:
        key = engine.pool_key(pool)
    except KeyError:
        names = ", ".join(f"{k} ({p.name})" for k, p in engine.pools.items())
        usage_error(f"no pool {pool!r} in the pool files (they hold {names})", "POOL")
    now = engine.clock()
    if everything:
        found = engine.leases(pool=key, since=start, until=end)
    else:
        found = [lease for lease in engine.leases(pool=key, since=now) if lease.live_at(now)]
    if as_json:
        _print_json([lease_to_json(lease) for lease in found])
        return
    for lease in found:
        click.echo(_lease_line(lease))
    what = "lease" if everything else "live lease"
    click.echo(f"{_count(len(found), what)} in pool {key} ({engine.pool(key).name})")


@cli.command("attribute")
@click.argument("number")
@_site_options
@click.option("--at", "at_text", metavar="TIME", help="When the call came (default: now).")
@click.option("--json", "as_json", is_flag=True, help="Print the attribution as JSON.")
def attribute_command(number: str, at_text: str | None, as_json: bool, **options: Any) -> None:
    """Say which visit a call to NUMBER at TIME came from, from the site's lease log.

    NUMBER in any form of a pool's country, E.164 or a tel:/sip: URI; TIME is
    epoch seconds or ISO 8601 with a UTC offset. Reads only: nothing is recorded.
    """
    at = None if at_text is None else _parse_time(at_text, "--at")
    engine = _live_engine(_site(options))
    found = engine.attribute_call(number, at)
    if found.kind == "store_unavailable":
        fail("the store failed; the call could not be attributed")
    if as_json:
        _print_json(attribution_to_json(found))
        return
    click.echo(f"number      {found.number}  at {_iso(found.at)}")
    click.echo(f"attributed  {found.kind}")
    if found.pool_key is not None:
        click.echo(f"pool        {found.pool_key} ({engine.pool(found.pool_key).name})")
    if found.lease is not None:
        click.echo(f"lease       {_lease_line(found.lease)}")
        click.echo(
            f"confidence  {found.confidence:.2f} ({_count(len(found.candidates), 'candidate')})"
        )
    if found.caveat:
        click.echo(f"caveat      {found.caveat}")


@cli.command("release")
@click.argument("who", metavar="VISITOR|LEASE")
@_site_options
@click.option("--json", "as_json", is_flag=True, help="Print the released lease as JSON.")
def release_command(who: str, as_json: bool, **options: Any) -> None:
    """End the live lease of a visitor (their id) or the live lease with this id, now.

    The number goes cooling (or free) for every worker at once. Exits 1 when
    there is no such live lease.
    """
    engine = _live_engine(_site(options))
    now = engine.clock()
    visitor = who
    named = [lease for lease in engine.leases(since=now) if lease.lease_id == who]
    if named:
        lease = named[0]
        if not lease.live_at(now):
            fail(f"lease {who} has already ended ({lease.end_reason or 'its window ran out'})")
        visitor = lease.visitor_id
    released = engine.end_session(visitor, now)
    if released is None:
        fail(f"no live lease for visitor or lease {who!r}")
    if as_json:
        _print_json(lease_to_json(released))
        return
    click.echo(f"released {_lease_line(released)}")


@cli.command("forget")
@click.argument("visitor")
@_site_options
@click.option("--json", "as_json", is_flag=True, help="Print what was removed as JSON.")
def forget_command(visitor: str, as_json: bool, **options: Any) -> None:
    """Erase VISITOR (their id) from the site's store, for a privacy request.

    Their live lease ends (the number goes back to the pool, cooling), their
    leases leave the lease log with their attribution facts, and the calls
    attributed to them leave the call log. Idempotent: an unknown visitor
    removes nothing. Exits 1 when the store fails (run it again).
    """
    engine = _live_engine(_site(options))
    try:
        forgotten = engine.forget(visitor)
    except ValueError as exc:
        usage_error(str(exc), "VISITOR")
    if as_json:
        _print_json(forgotten.to_json())
    else:
        entries = forgotten.log_entries_removed
        click.echo(
            f"forgot visitor {visitor!r}: "
            f"{_count(forgotten.leases_released, 'live lease')} released, "
            f"{entries} lease-log {'entry' if entries == 1 else 'entries'} and "
            f"{_count(forgotten.calls_removed, 'call')} removed"
        )
    if forgotten.error is not None:
        fail(f"the store failed; run the command again: {forgotten.error}")


@cli.command("calls")
@_site_options
@click.option("--since", metavar="TIME", help="Calls that started at or after TIME.")
@click.option("--until", metavar="TIME", help="Calls that started before TIME.")
@click.option("--pool", "pool", help="Calls attributed to this pool (id or name).")
@click.option("--number", help="Calls to this number (any form a pool's country reads).")
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON.")
def calls_command(
    since: str | None,
    until: str | None,
    pool: str | None,
    number: str | None,
    as_json: bool,
    **options: Any,
) -> None:
    """List the site's call log, oldest first: each call and who it is attributed to.

    TIME is epoch seconds or ISO 8601 with a UTC offset. Calls come in through
    the call webhook (see the README's 'Reporting calls').
    """
    start = None if since is None else _parse_time(since, "--since")
    end = None if until is None else _parse_time(until, "--until")
    engine = _live_engine(_site(options))
    if pool is not None:
        try:
            engine.pool_key(pool)
        except KeyError:
            usage_error(f"no pool {pool!r} in the pool files", "--pool")
    try:
        records = engine.calls(start, end, pool=pool, number=number)
    except DniError as exc:
        fail(f"the store failed: {exc}")
    if as_json:
        _print_json([record.to_json() for record in records])
        return
    for record in records:
        call = record.call
        found = record.attribution
        who = (
            f"visitor {found.lease.visitor_id} ({found.confidence:.2f})"
            if found.lease is not None
            else (record.reason or found.kind)
        )
        pool_text = f"pool {found.pool_key}" if found.pool_key else "no pool"
        duration = "-" if call.duration is None else f"{call.duration:.0f}s"
        click.echo(
            f"{_iso(call.started)}  {call.call_id}  {call.number}  from {call.caller or '-'}  "
            f"{duration}  {found.kind}  {pool_text}  {who}"
        )
    click.echo(_count(len(records), "call"))


_EXPORT_OPTIONS = {
    "conversion_name": "--conversion-name",
    "time_zone": "--time-zone",
    "value": "--value",
    "currency": "--currency",
    "min_duration": "--min-duration",
    "min_confidence": "--min-confidence",
    "region": "--region",
}
"""The option of each argument of the library's reports and exports, for their errors."""


def _argument_error(exc: ValueError) -> NoReturn:
    """A library ``ValueError`` (``"time_zone: ..."``) as a usage error naming the option."""
    name, _, reason = str(exc).partition(": ")
    option = _EXPORT_OPTIONS.get(name)
    if option is None:
        fail(str(exc))
    usage_error(reason, option)


def _write_text(text: str, output: str) -> None:
    """``text`` to the file ``output`` (``-``: standard output), as UTF-8."""
    if output == "-":
        _write_out(text)
        sys.stdout.buffer.flush()
        return
    try:
        with open(output, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror or exc}")


@cli.command("report")
@_site_options
@click.option("--since", metavar="TIME", help="Calls that started at or after TIME.")
@click.option("--until", metavar="TIME", help="Calls that started before TIME.")
@click.option(
    "--time-zone",
    default="UTC",
    show_default=True,
    help="IANA time zone of the report's days (Europe/London).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--csv", "as_csv", is_flag=True, help="Print the report as CSV (one row per figure).")
@click.option(
    "-o",
    "--output",
    default="-",
    type=click.Path(dir_okay=False, writable=True, allow_dash=True),
    help="Write the report to FILE instead of standard output.",
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, writable=True),
    help="Also write a PNG of calls by day and pool, the confidence mix and pool overflow.",
)
def report_command(
    since: str | None,
    until: str | None,
    time_zone: str,
    as_json: bool,
    as_csv: bool,
    output: str,
    plot: str | None,
    **options: Any,
) -> None:
    """Report the site's calls: by pool, source, campaign and day, and how they were attributed.

    Attributed, pool-level and late shares, the confidence mix, and each
    pool's overflow share of sessions (is the pool too small?). TIME is epoch
    seconds or ISO 8601 with a UTC offset.
    """
    if as_json and as_csv:
        usage_error("give --json or --csv, not both")
    start = None if since is None else _parse_time(since, "--since")
    end = None if until is None else _parse_time(until, "--until")
    if plot is not None:
        _check_plotting()
    engine = _live_engine(_site(options))
    try:
        report = engine.report(start, end, time_zone=time_zone)
    except ValueError as exc:
        _argument_error(exc)
    except DniError as exc:
        fail(f"the store failed: {exc}")
    if as_json:
        text = report.to_json_text() + "\n"
    elif as_csv:
        text = report.to_csv()
    else:
        text = str(report) + "\n"
    _write_text(text, output)
    if output != "-":
        click.echo(f"wrote {output}", err=True)
    if plot is not None:
        from dni_engine.report import plot_report
        from dni_engine.sizing_report import PlotUnavailable

        try:
            written = plot_report(report, plot)
        except PlotUnavailable as exc:
            fail(str(exc))
        except OSError as exc:
            fail(f"cannot write {plot}: {exc.strerror or exc}")
        click.echo(f"plot written to {written}", err=True)


@cli.command("export")
@click.argument(
    "platform", type=click.Choice(["google-ads-clicks", "google-ads-calls", "microsoft-ads"])
)
@_site_options
@click.option(
    "--conversion-name", required=True, help="The conversion action's name in the ad account."
)
@click.option(
    "--time-zone",
    default=None,
    help="Time zone of the file's times: an IANA name or +HHMM for Google (default UTC), "
    "+HHMM for Microsoft (default +0000).",
)
@click.option(
    "--min-duration",
    type=Number(0, 86_400.0),
    default=0.0,
    show_default=True,
    help="Leave out calls shorter than this many seconds (and calls of unknown duration).",
)
@click.option(
    "--min-confidence",
    type=Number(0, 1),
    default=0.0,
    show_default=True,
    help="Leave out calls attributed with a lower confidence.",
)
@click.option("--value", type=Number(0, 1e12), default=None, help="Conversion value of each call.")
@click.option("--currency", default=None, help="ISO 4217 currency of --value (GBP, USD...).")
@click.option(
    "--braids",
    is_flag=True,
    help="google-ads-clicks: add the GBRAID and WBRAID columns and export calls with those.",
)
@click.option(
    "--region",
    default=None,
    help="google-ads-calls: country (ISO code) of callers' numbers written nationally.",
)
@click.option("--since", metavar="TIME", help="Calls that started at or after TIME.")
@click.option("--until", metavar="TIME", help="Calls that started before TIME.")
@click.option(
    "-o",
    "--output",
    default="-",
    type=click.Path(dir_okay=False, writable=True, allow_dash=True),
    help="Write the file to FILE instead of standard output.",
)
def export_command(
    platform: str,
    conversion_name: str,
    time_zone: str | None,
    min_duration: float,
    min_confidence: float,
    value: float | None,
    currency: str | None,
    braids: bool,
    region: str | None,
    since: str | None,
    until: str | None,
    output: str,
    **options: Any,
) -> None:
    """Write the site's tracked calls as an ad platform's offline-conversion import file.

    \b
    google-ads-clicks  Google Ads conversions from clicks (Google Click ID)
    google-ads-calls   Google Ads conversions from calls (caller, call start)
    microsoft-ads      Microsoft Advertising offline conversions (MSCLKID)

    The file follows the platform's template (its parameters row, header and
    time format). Calls without a click id of the platform (or otherwise left
    out) are counted on standard error, by reason.
    """
    from dni_engine import exports

    if braids and platform != "google-ads-clicks":
        usage_error("--braids is an option of google-ads-clicks", "--braids")
    if region is not None and platform != "google-ads-calls":
        usage_error("--region is an option of google-ads-calls", "--region")
    start = None if since is None else _parse_time(since, "--since")
    end = None if until is None else _parse_time(until, "--until")
    zone = time_zone or ("+0000" if platform == "microsoft-ads" else "UTC")
    common: dict[str, Any] = {
        "conversion_name": conversion_name,
        "time_zone": zone,
        "value": value,
        "currency": currency,
        "min_duration": min_duration,
        "min_confidence": min_confidence,
    }
    try:  # the options are checked before the store is asked
        if platform == "google-ads-clicks":
            exports.google_ads_clicks([], braids=braids, **common)
        elif platform == "google-ads-calls":
            exports.google_ads_calls([], region=region, **common)
        else:
            exports.microsoft_ads([], **common)
    except ValueError as exc:
        _argument_error(exc)
    engine = _live_engine(_site(options))
    try:
        records = engine.calls(start, end)
    except DniError as exc:
        fail(f"the store failed: {exc}")
    if platform == "google-ads-clicks":
        made = exports.google_ads_clicks(records, braids=braids, **common)
    elif platform == "google-ads-calls":
        made = exports.google_ads_calls(records, region=region, **common)
    else:
        made = exports.microsoft_ads(records, **common)
    _write_text(made.text, output)
    left_out = "; ".join(f"{count} {reason}" for reason, count in sorted(made.skipped.items()))
    click.echo(
        f"{_count(made.exported, 'call')} exported"
        + (f", {made.skipped_total} left out ({left_out})" if made.skipped_total else "")
        + ("" if output == "-" else f" to {output}"),
        err=True,
    )


# ---- audit -----------------------------------------------------------------------------

PAGE_SUFFIXES = (".html", ".htm")
"""Files a folder given to ``audit`` is searched for (any case); files named are read whatever
their name."""


def _page_files(page: str, problems: list[tuple[str, str]]) -> list[str]:
    """The files ``audit`` reads for the argument ``page`` (a file, a folder, or ``-``).

    A problem (a missing or unreadable file, a folder that cannot be listed or
    holds no page, a file larger than :data:`MAX_INPUT_BYTES`) is added to
    ``problems`` as ``(parameter, message)``.
    """
    if page == "-" or not os.path.isdir(page):
        problem = _path_problem(page, output=False)
        if problem is None and page != "-":
            problem = _size_problem(page)
        if problem is not None:
            problems.append(("PAGE...", problem))
            return []
        return [page]
    found: list[str] = []

    def unlistable(exc: OSError) -> None:
        problems.append(("PAGE...", f"{exc.filename}: cannot list folder ({exc.strerror or exc})"))

    for folder, subfolders, names in os.walk(page, onerror=unlistable):
        subfolders.sort()
        for name in sorted(names):
            if name.lower().endswith(PAGE_SUFFIXES):
                path = os.path.join(folder, name)
                problem = _path_problem(path, output=False) or _size_problem(path)
                if problem is not None:
                    problems.append(("PAGE...", problem))
                else:
                    found.append(path)
    if not found and not any(p.startswith(page) for _, p in problems):
        problems.append(("PAGE...", f"{page}: the folder holds no .html or .htm file"))
    return found


def _size_problem(path: str) -> str | None:
    try:
        size = os.stat(path).st_size
    except OSError as exc:
        return f"{path}: {exc.strerror or exc}"
    if size > MAX_INPUT_BYTES:
        return f"{path}: larger than {MAX_INPUT_BYTES:,} bytes; not read"
    return None


def _read_page(path: str) -> bytes:
    """The bytes of one page (``-``: standard input), at most :data:`MAX_INPUT_BYTES`."""
    if path != "-":
        return _read_bytes(path)
    data = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
    if len(data) > MAX_INPUT_BYTES:
        fail(f"standard input: larger than {MAX_INPUT_BYTES:,} bytes; not read")
    return data


def _write_out(text: str) -> None:
    """``text`` on standard output, bytes the pages held that are not UTF-8 as they were."""
    sys.stdout.buffer.write(text.encode("utf-8", "surrogateescape"))


@cli.command("audit")
@click.argument("pages", nargs=-1, required=True, metavar="PAGE...")
@click.option(
    "--pools",
    "pool_files",
    multiple=True,
    required=True,
    metavar="FILE",
    help="Pool file of the site (repeatable: the files' pools together, as one site).",
)
@click.option(
    "--country",
    "countries",
    multiple=True,
    metavar="CC",
    help="Also search for numbers of this country (ISO code) that no pool swaps. Repeatable.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the audit as JSON.")
@click.option(
    "--fail-on-untracked",
    is_flag=True,
    help="Exit with status 1 when a number no pool swaps is found (for CI).",
)
def audit_command(
    pages: tuple[str, ...],
    pool_files: tuple[str, ...],
    countries: tuple[str, ...],
    as_json: bool,
    fail_on_untracked: bool,
) -> None:
    """List every phone number on PAGEs, which pools swap it, and which none does.

    A PAGE is an HTML file (whatever its name), a folder (searched recursively
    for .html and .htm files) or - for standard input. Numbers are read as the
    rewriter reads them: in text and tel:/callto: link targets. For each, the
    report gives its line:column, E.164, form, and every pool that swaps it with
    how it would be written (with the pool's first tracking number); a number
    no pool swaps is UNTRACKED. Numbers no pool swaps are searched for in every
    country of the pools (and --country).

    \b
    Exit status:
      0  the audit ran, whatever it found
      1  an invalid pool file, a page that could not be audited, or with
         --fail-on-untracked a number no pool swaps
      2  usage error: every missing or unreadable PAGE or --pools FILE, and
         every unknown --country, is listed
    """
    from dni_engine.audit import Auditor, known_country, page_lines, report_json, summary_line

    problems: list[tuple[str, str]] = []
    for code in countries:
        if not known_country(code):
            problems.append(("--country", f"{code!r} is not a country phonenumbers knows"))
    for path in pool_files:
        problem = _path_problem(path, output=False)
        if problem is not None:
            problems.append(("--pools", problem))
    files: list[str] = []
    for page in pages:
        files.extend(_page_files(page, problems))
    if problems:
        ctx = click.get_current_context()
        for hint, message in problems:
            print_error(_click_message(click.BadParameter(message, ctx, param_hint=f"'{hint}'")))
        sys.exit(EXIT_USAGE)
    unique: dict[str, str] = {}  # a page named twice (or in two folders given) is read once
    for path in files:
        unique.setdefault("-" if path == "-" else os.path.realpath(path), path)
    pools = read_pools(pool_files)
    if len(pool_files) > 1:
        clashes = check_pool_set(pools)
        if clashes:
            fail(str(ConfigError(clashes, source="the pools of " + ", ".join(pool_files))))
    auditor = Auditor(pools, countries)
    for pool in auditor.pools:
        for entry in pool.ignored:
            click.echo(
                f"warning: pool {pool.name!r}: numbers_to_replace {entry!r} "
                "is not a phone number; skipped",
                err=True,
            )
    for original in pools:
        why = status_warning(original)
        if why is not None:
            click.echo(f"warning: pool {original.name!r}: {why}; it swaps nothing", err=True)
    audits = []
    for path in unique.values():
        # surrogateescape, as rewrite reads pages: bytes that are not UTF-8 are kept.
        audit = auditor.audit(path, _read_page(path).decode("utf-8", "surrogateescape"))
        audits.append(audit)
        if not as_json:
            _write_out("\n".join(page_lines(auditor, audit)) + "\n\n")
    if as_json:
        _write_out(json.dumps(report_json(auditor, audits), indent=2, ensure_ascii=False) + "\n")
    else:
        searched = ", ".join(auditor.countries) or "none"
        active = sum(1 for p in auditor.pools if p.active)
        _write_out(
            f"{_count(len(auditor.pools), 'pool')} ({active} active), "
            f"countries searched: {searched}\n{summary_line(audits)}\n"
        )
    sys.stdout.buffer.flush()
    failed = [a for a in audits if a.error is not None]
    for audit in failed:
        print_error(f"{audit.page}: not audited: {audit.error}")
    untracked = sum(a.untracked for a in audits)
    if fail_on_untracked and untracked:
        on = sum(1 for a in audits if a.untracked)
        print_error(
            f"{_count(untracked, 'untracked number')} on {_count(on, 'page')}: "
            "calls to them are not tracked"
        )
    if failed or (fail_on_untracked and untracked):
        sys.exit(EXIT_FAILURE)


def main() -> None:
    """Entry point of the ``dni-engine`` console script: exits with the command's status."""
    cli.main(prog_name="dni-engine")


if __name__ == "__main__":
    main()
