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
from dni_engine.client import DEFAULT_BASE_URL, ApiError, Client, pool_json
from dni_engine.errors import ConfigError, DniError
from dni_engine.extras import MissingExtra
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

    from dni_engine.leases import Policy
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
def validate(files: tuple[str, ...]) -> None:
    """Validate Number Pool JSON files (requests or responses, or lists of them).

    Each file is checked on its own, its pools together (names, ids, numbers).
    Prints ``OK name`` per valid pool, followed by a ``warning:`` line for a
    pool whose status is not active (valid, but it leases no numbers); for an
    invalid file, an ``error: FILE: N problems found`` line and every problem
    with its JSON path. ``OK`` lines go to standard output, errors and warnings
    to standard error. Exits 1 if any file has a problem; warnings alone exit 0.
    """
    failed = False
    for path in files:
        try:
            pools = load_pools(_read_bytes(path), source=path)
        except ConfigError as exc:
            failed = True
            click.echo(f"error: {exc}", err=True)
            continue
        except click.ClickException as exc:
            failed = True
            click.echo(f"error: {exc.message}", err=True)
            continue
        for pool in pools:
            click.echo(f"OK {pool.name}  ({path})")
            why = status_warning(pool)
            if why is not None:
                click.echo(f"warning: {path}: pool {pool.name!r}: {why}", err=True)
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
    """Print a one-screen summary of each pool in FILES.

    A pool whose status is not active also gets a ``warning:`` line on stderr.
    """
    for pool in read_pools(files):
        click.echo(pool_summary(pool))
        click.echo()
        why = status_warning(pool)
        if why is not None:
            click.echo(f"warning: pool {pool.name!r}: {why}", err=True)


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
