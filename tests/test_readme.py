"""The README's Python examples, run as tests.

Each ```python block of README.md is one test, named by its index and the
heading it falls under. The README reads like a tutorial, so the blocks run in
order in one shared namespace: a block may use what an earlier one made
(``pool``, ``pools``, ``engine``, the decision ``d``). A test first runs the
blocks before its own that have not run yet, so a single block can be selected
on its own (``-k``); when one of them fails, the test fails naming it.

The blocks run in a temporary working directory whose ``examples`` is the
repository's own folder (a symbolic link), so the README's relative paths
resolve and whatever a block writes lands in the temporary directory. A block
that names a ``redis://`` URL is pointed at the test session's real
redis-server (the ``redis_server`` fixture) instead of the host it names. A
block defining ``test_*`` functions (the README's example property test) has
them called, so they are run and not only defined.

A block that cannot run here is marked in the README by an HTML comment just
before it, ``<!-- readme-test: skip REASON -->``, and reported as skipped with
that reason.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dni_engine.stores.redis import RedisStore
from dni_engine.testing.redis_server import RedisServer
from tests.conftest import EXAMPLES, ROOT

README = ROOT / "README.md"
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
_MARKER = re.compile(r"^<!--\s*readme-test:\s*(?P<directive>\S+)\s*(?P<reason>.*?)\s*-->$")
_REDIS_URL = re.compile(r"redis://[^\s\"']+")


@dataclass(frozen=True)
class Block:
    """One ```python block of the README."""

    index: int
    heading: str
    line: int  # of the block's first line of code, 1-based
    code: str
    skip: str | None

    @property
    def test_id(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", self.heading.lower()).strip("-")
        return f"{self.index:02d}-{slug or 'top'}"

    def describe(self) -> str:
        return f"block {self.index} under {self.heading!r} (README.md line {self.line})"


def readme_blocks(text: str) -> list[Block]:
    """Every ```python block of ``text``, with its heading and any readme-test marker."""
    blocks: list[Block] = []
    heading = ""
    marker: str | None = None
    fence: str | None = None  # the info string of the open fence
    code: list[str] = []
    start = 0
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if fence is not None:
            if stripped.startswith("```"):
                if fence == "python":
                    blocks.append(Block(len(blocks), heading, start, "\n".join(code), marker))
                fence, code, marker = None, [], None
            else:
                code.append(line)
            continue
        if stripped.startswith("```"):
            fence, start = stripped[3:].strip(), number + 1
        elif (heading_match := _HEADING.match(line)) is not None:
            heading, marker = heading_match[1], None
        elif (marker_match := _MARKER.match(stripped)) is not None:
            if marker_match["directive"] != "skip":
                raise ValueError(f"README.md line {number}: unknown readme-test directive")
            marker = marker_match["reason"] or "marked in the README"
        elif stripped:
            marker = None  # a marker applies only to the block right after it
    assert fence is None, "README.md ends inside a code block"
    return blocks


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))


@dataclass
class Tutorial:
    """The README's blocks run in order in one namespace, each at most once."""

    workdir: Path
    namespace: dict[str, object] = field(default_factory=lambda: {"__name__": "readme"})
    failures: dict[int, BaseException] = field(default_factory=dict)
    done: set[int] = field(default_factory=set)

    def run_through(self, block: Block, request: pytest.FixtureRequest) -> None:
        """Run the blocks before ``block`` (once), then ``block`` itself."""
        for earlier in BLOCKS[: block.index]:
            self._run(earlier, request)
            if earlier.index in self.failures:
                pytest.fail(f"an earlier example failed: {earlier.describe()}", pytrace=False)
        if block.skip is not None:
            pytest.skip(block.skip)
        self._run(block, request)
        if block.index in self.failures:
            raise self.failures[block.index]

    def _run(self, block: Block, request: pytest.FixtureRequest) -> None:
        if block.index in self.done or block.skip is not None:
            return
        self.done.add(block.index)
        code = block.code
        if _REDIS_URL.search(code):
            server: RedisServer = request.getfixturevalue("redis_server")
            code = _REDIS_URL.sub(server.url, code)
        # Padded so that tracebacks point at the README's own lines.
        compiled = compile("\n" * (block.line - 1) + code, str(README), "exec")
        before = dict(self.namespace)
        try:
            with contextlib.chdir(self.workdir):
                exec(compiled, self.namespace)
                for name, value in list(self.namespace.items()):
                    made_here = before.get(name) is not value
                    if name.startswith("test") and callable(value) and made_here:
                        value()
        except Exception as exc:
            self.failures[block.index] = exc

    def close(self) -> None:
        for value in self.namespace.values():
            if isinstance(value, RedisStore):
                value.close()


@pytest.fixture(scope="module")
def tutorial(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tutorial]:
    """A working directory with the repository's examples in it, and an empty namespace."""
    workdir = tmp_path_factory.mktemp("readme")
    (workdir / "examples").symlink_to(EXAMPLES, target_is_directory=True)
    tutorial = Tutorial(workdir)
    yield tutorial
    tutorial.close()


def test_the_readme_has_python_examples() -> None:
    assert len(BLOCKS) >= 5
    assert all(block.code.strip() for block in BLOCKS)


@pytest.mark.parametrize("block", BLOCKS, ids=[block.test_id for block in BLOCKS])
def test_readme_example(block: Block, tutorial: Tutorial, request: pytest.FixtureRequest) -> None:
    tutorial.run_through(block, request)


def test_a_marker_skips_only_the_block_after_it() -> None:
    text = "\n".join(
        [
            "# Title",
            "<!-- readme-test: skip needs a phone line -->",
            "",
            "```python",
            "dial()",
            "```",
            "```sh",
            "make demo",
            "```",
            "## Next",
            "```python",
            "x = 1",
            "```",
        ]
    )
    first, second = readme_blocks(text)
    assert (first.heading, first.line, first.code, first.skip) == (
        "Title",
        5,
        "dial()",
        "needs a phone line",
    )
    assert (second.heading, second.skip, second.test_id) == ("Next", None, "01-next")
