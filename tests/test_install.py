"""What a website gets from `pip install dni-engine`: the core only, and clear advice for the rest.

The package is built into a wheel once (from a clean copy of the sources, so no
left-over build folder can add to it) and installed into a fresh venv without
any extra. There the core works (the engine, the rules, the rewriter, the client,
the `dni-engine` command), no optional dependency is installed or imported, and
every optional part raises :class:`~dni_engine.extras.MissingExtra` naming its
extra. Then one extra (``redis``) is added and its module imports.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import venv
from dataclasses import dataclass
from pathlib import Path

import pytest

import dni_engine
from tests.conftest import EXAMPLES, ROOT

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(300),
    # One worker builds the wheel and the venv once for every test of this file.
    pytest.mark.xdist_group("install"),
    pytest.mark.skipif(
        dni_engine.COMPILED,
        reason="packaging is checked once, in the pure-Python pass (the wheel built is the same)",
    ),
]

# What the core must never install, as `pip list` names them.
OPTIONAL = (
    "pytest",
    "hypothesis",
    "starlette",
    "uvicorn",
    "matplotlib",
    "redis",
    "hiredis",
    "twilio",
)

# Each optional part, the extra it names, and how it is reached.
PARTS = {
    "dni_engine.stores.redis": "redis",
    "dni_engine.emulator": "emulator",
    "dni_engine.testing.strategies": "testing",
    "dni_engine.testing.state_machine": "testing",
    "dni_engine.testing.redis_server": "testing",
    "dni_engine.web.twilio": "twilio",
}


@dataclass(frozen=True)
class Site:
    """A fresh venv with the wheel installed, as a website would have it."""

    wheel: Path
    python: Path
    bin: Path
    home: Path

    def pip(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The test runner's pip, working on this venv (``pip --python``)."""
        return subprocess.run(
            [sys.executable, "-m", "pip", "--python", str(self.python), *args],
            capture_output=True,
            text=True,
            timeout=240,
            env=_clean_env(),
        )

    def run(self, code: str) -> subprocess.CompletedProcess[str]:
        """Run ``code`` in the venv, isolated from the checkout and from PYTHONPATH."""
        return subprocess.run(
            [str(self.python), "-I", "-c", textwrap.dedent(code)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=self.home,
            env=_clean_env(),
        )

    def command(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bin / "dni-engine"), *args],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=self.home,
            env=_clean_env(),
        )

    def installed(self) -> set[str]:
        listing = self.pip("list", "--format=json")
        assert listing.returncode == 0, listing.stderr
        return {str(item["name"]).lower() for item in json.loads(listing.stdout)}


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _pip(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", *args],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=cwd,
        env=_clean_env(),
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    work = tmp_path_factory.mktemp("install")
    # Building needs setuptools from a package index, installing needs the core's
    # dependencies: without an index pip can use, there is nothing to check here.
    probe = _pip("download", "--no-deps", "--quiet", "--dest", str(work / "probe"), "click")
    if probe.returncode != 0:
        pytest.skip(f"pip cannot fetch packages here, so no wheel can be installed: {probe.stderr}")

    source = work / "source"
    source.mkdir()
    shutil.copytree(
        ROOT / "dni_engine",
        source / "dni_engine",
        ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.pyd", "*.c"),
    )
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    built = _pip("wheel", "--no-deps", "--quiet", "--wheel-dir", str(work / "dist"), str(source))
    assert built.returncode == 0, built.stderr
    (wheel,) = (work / "dist").glob("dni_engine-*.whl")

    env_dir = work / "venv"
    venv.create(env_dir, with_pip=False)
    home = work / "home"
    home.mkdir()
    site = Site(wheel=wheel, python=env_dir / "bin" / "python", bin=env_dir / "bin", home=home)
    core = site.pip("install", "--quiet", str(wheel))
    assert core.returncode == 0, core.stderr
    return site


def test_the_core_installs_no_optional_dependency(site: Site) -> None:
    installed = site.installed()
    assert "dni-engine" in installed
    assert not installed & set(OPTIONAL), sorted(installed)


def test_the_core_works_and_imports_nothing_optional(site: Site) -> None:
    result = site.run(
        f"""
        import sys
        import dni_engine
        from dni_engine import Engine, compile_pools, load_pools
        from dni_engine.client import AsyncClient, Client
        from dni_engine.rewrite import compile_rewriter
        from dni_engine.testing import oracle

        assert dni_engine.__file__.startswith(sys.prefix), dni_engine.__file__
        pools = load_pools(open({str(EXAMPLES / "site" / "pools.json")!r}).read())
        url = "https://shop.example/?gclid=abc"
        google = "https://www.google.co.uk/"
        browser = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
        assert compile_pools(pools).match(url, google, browser).pool_name == "Google Ads"
        assert oracle.match(pools, url, google, browser) is not None
        engine = Engine(pools)
        decision = engine.visit("visitor-1", url=url, referrer=google, user_agent=browser)
        assert decision.outcome == "new", decision
        page = engine.rewrite("<p>Call 0117 496 0000</p>", decision)
        assert "0117 496 0000" not in page, page
        with Client("token", base_url="http://127.0.0.1:9"):
            pass
        loaded = {{name.partition(".")[0] for name in sys.modules}}
        print(sorted(loaded & set({OPTIONAL!r})))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", result.stdout


def test_the_command_works_on_the_core(site: Site) -> None:
    pools = sorted(str(p) for p in (EXAMPLES / "pools").glob("*.json"))
    result = site.command("validate", *pools)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("OK ") == len(pools)


@pytest.mark.parametrize(("part", "extra"), PARTS.items())
def test_an_optional_part_names_its_extra(site: Site, part: str, extra: str) -> None:
    result = site.run(
        f"""
        from dni_engine.extras import MissingExtra
        try:
            import {part}
        except MissingExtra as exc:
            assert isinstance(exc, ImportError)
            print(exc)
        else:
            raise SystemExit("imported without its extra")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f"{part} needs the {extra!r} extra: pip install 'dni-engine[{extra}]'"
    )


def test_plotting_names_its_extra(site: Site) -> None:
    result = site.run(
        """
        from dni_engine.extras import MissingExtra
        from dni_engine.sizing_report import plot_sizing
        try:
            plot_sizing([], "sizing.png")
        except MissingExtra as exc:
            print(exc)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "plotting needs the 'plot' extra: pip install 'dni-engine[plot]'"
    )


def test_commands_that_need_an_extra_say_which(site: Site) -> None:
    emulator = site.command("emulator", "--port", "0")
    assert emulator.returncode == 1, emulator.stderr
    assert emulator.stderr.strip() == (
        "error: dni_engine.emulator needs the 'emulator' extra: pip install 'dni-engine[emulator]'"
    )
    plot = site.command(
        "simulate", str(EXAMPLES / "site" / "pools.json"), "--plot", str(site.home / "s.png")
    )
    assert plot.returncode == 1, plot.stderr
    assert plot.stderr.strip() == (
        "error: --plot needs the 'plot' extra: pip install 'dni-engine[plot]'"
    )
    assert not (site.home / "s.png").exists()


def test_an_extra_brings_its_part(site: Site) -> None:
    # Runs last in this file: it adds to the venv the other tests check.
    added = site.pip("install", "--quiet", f"{site.wheel}[redis,web]")
    assert added.returncode == 0, added.stderr
    assert "does not provide the extra" not in added.stderr, added.stderr
    installed = site.installed()
    assert {"redis", "hiredis"} <= installed
    assert not installed & (set(OPTIONAL) - {"redis", "hiredis"}), sorted(installed)
    result = site.run(
        """
        from dni_engine.stores.redis import RedisStore
        print(RedisStore.__name__)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "RedisStore"
