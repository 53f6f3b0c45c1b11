"""``is_bot`` per call against the previous release's matcher, in the same run.

Groups, each with the previous matcher (a copy of it below: the crawler list's
patterns as written, behind a literal prefilter read at every position of the
agent; answers up to 1 KB cached, longer agents read in full) as its
baseline and the current ``is_bot`` as the candidate (goal: ratio <= 1.0):

- ``bots-uncached``: a mix of browser agents and crawler-list examples, each
  call on an agent not seen before (a unique suffix per round);
- ``bots-uncached-new-words``: the same, with every word of every agent new too
  (a number appended to each), so nothing the matcher remembers helps: the worst
  case of a site whose visitors' agents share no word;
- ``bots-cached``: the same agents again and again (answers remembered);
- ``bots-8kb``: one 8 KB agent (the previous matcher read it in full every
  call; now it is a crawler unread);
- ``bots-1kb``: a 1 KB agent (the longest that is read), never seen before.

The last test prints every ratio and the goal; timing never fails a run.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from dni_engine.bots import (
    MAX_USER_AGENT_LENGTH,
    crawler_examples,
    crawler_patterns,
    is_bot,
    required_literal,
    top_level_branches,
)
from dni_engine.testing.strategies import BROWSER_USER_AGENTS

# ---- the previous release's matcher: the baseline ----------------------------------

_KEY = 3
_MAX_CACHED_LENGTH = 1024
_MAX_CACHED_AGENTS = 8192


@dataclass(frozen=True, slots=True)
class PreviousMatcher:
    """The previous prefilter: literals indexed by their first three characters."""

    by_key: dict[str, tuple[tuple[str, re.Pattern[str]], ...]]
    always: tuple[re.Pattern[str], ...]

    @classmethod
    def compile(cls, patterns: Iterable[str]) -> PreviousMatcher:
        """Compile ``patterns`` (regular expressions searched case-sensitively)."""
        by_key: dict[str, list[tuple[str, re.Pattern[str]]]] = {}
        always: list[re.Pattern[str]] = []
        for pattern in patterns:
            for branch in top_level_branches(pattern):
                regex = re.compile(branch)
                literal = required_literal(branch)
                if literal is None or len(literal) < _KEY:
                    always.append(regex)
                else:
                    by_key.setdefault(literal[:_KEY], []).append((literal, regex))
        return cls({k: tuple(v) for k, v in by_key.items()}, tuple(always))

    def matches(self, user_agent: str) -> bool:
        """True when some crawler pattern is found in ``user_agent``."""
        get = self.by_key.get
        for i in range(len(user_agent) - _KEY + 1):
            bucket = get(user_agent[i : i + _KEY])
            if bucket is None:
                continue
            for literal, regex in bucket:
                if user_agent.startswith(literal, i) and regex.search(user_agent):
                    return True
        return any(regex.search(user_agent) for regex in self.always)


_MATCHER = PreviousMatcher.compile(crawler_patterns())
_answers: dict[str, bool] = {}


def previous_is_bot(user_agent: object) -> bool:
    """The previous ``is_bot``: blank or matched by the list, cached up to 1 KB."""
    known = _answers.get(user_agent) if type(user_agent) is str else None
    if known is not None:
        return known
    if not isinstance(user_agent, str) or not user_agent.strip():
        return True
    answer = _MATCHER.matches(user_agent)
    if len(user_agent) <= _MAX_CACHED_LENGTH:
        if len(_answers) >= _MAX_CACHED_AGENTS:
            _answers.clear()
        _answers[user_agent] = answer
    return answer


# ---- the benchmarks -----------------------------------------------------------------

AGENTS = (*BROWSER_USER_AGENTS * 8, *crawler_examples()[::40])
LONG_8KB = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) " + "x" * (8192 - 43)
BASE_1KB = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) " + "y" * (MAX_USER_AGENT_LENGTH - 43 - 7)
IMPLEMENTATIONS: dict[str, Callable[[object], bool]] = {
    "previous": previous_is_bot,
    "current": is_bot,
}
_medians: dict[tuple[str, str], float] = {}
_fresh = itertools.count()
for _check in IMPLEMENTATIONS.values():
    _check("warm-up: the patterns are compiled on first use")


def _record(benchmark: BenchmarkFixture, group: str, name: str, calls: int) -> None:
    stats = benchmark.stats
    if stats is not None:
        _medians[group, name] = stats.stats.median / calls


def _fresh_agents() -> tuple[tuple[list[str]], dict[str, object]]:
    n = next(_fresh)
    return ([f"{ua} r{n}" for ua in AGENTS],), {}


def _fresh_words() -> tuple[tuple[list[str]], dict[str, object]]:
    n = next(_fresh)
    return ([" ".join(f"{w}{n}" for w in ua.split(" ")) for ua in AGENTS],), {}


def _run(check: Callable[[object], bool]) -> Callable[[list[str]], int]:
    def run(agents: list[str]) -> int:
        return sum(check(ua) for ua in agents)

    return run


@pytest.mark.parametrize("name", IMPLEMENTATIONS)
def test_uncached(benchmark: BenchmarkFixture, name: str) -> None:
    benchmark.group = "bots-uncached"
    benchmark.extra_info["role"] = "baseline" if name == "previous" else "candidate"
    benchmark.pedantic(_run(IMPLEMENTATIONS[name]), setup=_fresh_agents, rounds=40)  # type: ignore[no-untyped-call]
    _record(benchmark, "bots-uncached", name, len(AGENTS))


@pytest.mark.parametrize("name", IMPLEMENTATIONS)
def test_uncached_new_words(benchmark: BenchmarkFixture, name: str) -> None:
    benchmark.group = "bots-uncached-new-words"
    benchmark.extra_info["role"] = "baseline" if name == "previous" else "candidate"
    benchmark.pedantic(_run(IMPLEMENTATIONS[name]), setup=_fresh_words, rounds=40)  # type: ignore[no-untyped-call]
    _record(benchmark, "bots-uncached-new-words", name, len(AGENTS))


@pytest.mark.parametrize("name", IMPLEMENTATIONS)
def test_cached(benchmark: BenchmarkFixture, name: str) -> None:
    check = IMPLEMENTATIONS[name]
    agents = list(AGENTS)
    _run(check)(agents)
    benchmark.group = "bots-cached"
    benchmark.extra_info["role"] = "baseline" if name == "previous" else "candidate"
    benchmark(_run(check), agents)
    _record(benchmark, "bots-cached", name, len(agents))


@pytest.mark.parametrize("name", IMPLEMENTATIONS)
def test_8kb_agent(benchmark: BenchmarkFixture, name: str) -> None:
    benchmark.group = "bots-8kb"
    benchmark.extra_info["role"] = "baseline" if name == "previous" else "candidate"
    benchmark.pedantic(IMPLEMENTATIONS[name], args=(LONG_8KB,), rounds=30)  # type: ignore[no-untyped-call]
    _record(benchmark, "bots-8kb", name, 1)


def _fresh_1kb() -> tuple[tuple[str], dict[str, object]]:
    return (f"{BASE_1KB} {next(_fresh):06d}"[:MAX_USER_AGENT_LENGTH],), {}


@pytest.mark.parametrize("name", IMPLEMENTATIONS)
def test_1kb_agent(benchmark: BenchmarkFixture, name: str) -> None:
    benchmark.group = "bots-1kb"
    benchmark.extra_info["role"] = "baseline" if name == "previous" else "candidate"
    benchmark.pedantic(IMPLEMENTATIONS[name], setup=_fresh_1kb, rounds=200)  # type: ignore[no-untyped-call]
    _record(benchmark, "bots-1kb", name, 1)


def test_ratios(capsys: pytest.CaptureFixture[str]) -> None:
    """Print each group's current/previous ratio per call and the goal; never fails on timing."""
    lines = []
    for group in sorted({g for g, _ in _medians}):
        if (group, "previous") in _medians and (group, "current") in _medians:
            before, after = _medians[group, "previous"], _medians[group, "current"]
            ratio = after / before
            verdict = "meets" if ratio <= 1.0 else "misses"
            lines.append(
                f"{group}: current/previous = {ratio:.4g} ({after * 1e6:.3f} us vs "
                f"{before * 1e6:.3f} us per call); goal <= 1.0x: {verdict}"
            )
    with capsys.disabled():
        print("\n" + ("\n".join(lines) or "bots benchmarks not measured (disabled or deselected)"))
