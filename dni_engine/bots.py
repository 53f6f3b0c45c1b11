"""Crawler detection by user agent.

The patterns come from the maintained ``crawler-user-agents`` list (one regular
expression per crawler, matched case-sensitively, as the list is written). An
empty or missing user agent is a bot too: real browsers always send one.

Searching a user agent with all ~1,500 patterns (one by one, or joined into one
alternation) costs about a millisecond, too much for every page view. So the
patterns are compiled once into a *prefilter*: every pattern is reduced to a
literal string that any match of it must contain (``Googlebot\\/`` ->
``Googlebot/``, ``[wW]get`` -> ``get``), and those literals are indexed by their
first three characters. A user agent is scanned once, three characters at a
time; only patterns whose literal actually occurs in it are then run as regular
expressions. The few patterns with no usable literal are always run. Answers
are kept in a bounded cache, because a site sees the same user agents over and
over.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import crawleruseragents

__all__ = ["CrawlerMatcher", "crawler_examples", "crawler_patterns", "is_bot"]

# Literals shorter than this are not indexed; their patterns are always searched.
_KEY = 3
# User agents longer than this are checked but not cached, so one hostile client
# cannot fill the cache with huge keys.
_MAX_CACHED_LENGTH = 1024


def crawler_patterns() -> tuple[str, ...]:
    """The crawler regular expressions of the bundled ``crawler-user-agents`` list."""
    return tuple(str(item["pattern"]) for item in crawleruseragents.CRAWLER_USER_AGENTS_DATA)


def top_level_branches(pattern: str) -> list[str]:
    """Split ``pattern`` at its top-level ``|`` (outside groups, classes and escapes).

    ``search('a|b')`` finds a match exactly when ``search('a')`` or
    ``search('b')`` does, so each branch can be filtered on its own.
    """
    branches: list[str] = []
    depth = 0
    in_class = False
    start = 0
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
            if pattern.startswith("]", i + 1) or pattern.startswith("^]", i + 1):
                i += 2 if pattern[i + 1] == "]" else 3  # a leading ']' is a member
                continue
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            branches.append(pattern[start:i])
            start = i + 1
        i += 1
    branches.append(pattern[start:])
    return branches


_LITERAL_ESCAPES = frozenset("/.()[]{}*+?|^$\\-! #&~:;,'\"=<>@%_")
_CLASS_ESCAPES = frozenset("dDsSwWbB")


def required_literal(branch: str) -> str | None:
    """The longest literal text that every match of ``branch`` must contain.

    ``branch`` must have no top-level ``|`` (see :func:`top_level_branches`).
    Only consecutive plain characters outside groups and classes count; a
    character followed by ``?``, ``*`` or ``{`` is optional and ends the run.
    Returns ``None`` when the branch uses syntax this reader does not know, so
    the caller falls back to always searching it (never a wrong answer).
    """
    runs: list[str] = []
    run: list[str] = []
    i = 0
    n = len(branch)

    def close() -> None:
        if run:
            runs.append("".join(run))
            run.clear()

    while i < n:
        ch = branch[i]
        if ch == "\\":
            if i + 1 >= n:
                return None
            nxt = branch[i + 1]
            i += 2
            if nxt in _LITERAL_ESCAPES:
                run.append(nxt)
            elif nxt in _CLASS_ESCAPES:
                close()
            else:
                return None  # \x41, \1, \N{...}: not worth reading
            continue
        if ch in "?*{":
            if run:
                run.pop()  # the previous character may be absent
            close()
            if ch == "{":
                end = branch.find("}", i)
                if end < 0:
                    return None
                i = end + 1
            else:
                i += 1
            continue
        if ch == "+":
            close()
            i += 1
            continue
        if ch == "[":
            close()
            j = i + 1
            if j < n and branch[j] == "^":
                j += 1
            if j < n and branch[j] == "]":
                j += 1
            while j < n and branch[j] != "]":
                j += 2 if branch[j] == "\\" else 1
            if j >= n:
                return None
            i = j + 1
            continue
        if ch == "(":
            close()
            depth = 0
            j = i
            in_class = False
            while j < n:
                c = branch[j]
                if c == "\\":
                    j += 2
                    continue
                if in_class:
                    in_class = c != "]"
                elif c == "[":
                    in_class = True
                elif c == "(":
                    depth += 1
                elif c == ")":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            if j >= n:
                return None
            i = j + 1
            continue
        if ch in ")]}|":
            return None
        if ch in ".^$":
            close()
            i += 1
            continue
        run.append(ch)
        i += 1
    close()
    if not runs:
        return None
    return max(runs, key=len)


@dataclass(frozen=True, slots=True)
class CrawlerMatcher:
    """Compiled crawler patterns: a literal prefilter in front of the regexes.

    Build it with :meth:`compile`; :meth:`matches` answers whether a user agent
    is a crawler, exactly as searching it with every pattern would.
    """

    by_key: dict[str, tuple[tuple[str, re.Pattern[str]], ...]]
    always: tuple[re.Pattern[str], ...]

    @classmethod
    def compile(cls, patterns: Iterable[str]) -> CrawlerMatcher:
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
        by_key = self.by_key
        get = by_key.get
        for i in range(len(user_agent) - _KEY + 1):
            bucket = get(user_agent[i : i + _KEY])
            if bucket is None:
                continue
            for literal, regex in bucket:
                if user_agent.startswith(literal, i) and regex.search(user_agent):
                    return True
        return any(regex.search(user_agent) for regex in self.always)

    @property
    def prefiltered(self) -> int:
        """How many pattern branches sit behind the literal prefilter."""
        return sum(len(bucket) for bucket in self.by_key.values())


@functools.cache
def _matcher() -> CrawlerMatcher:
    return CrawlerMatcher.compile(crawler_patterns())


def is_bot(user_agent: object) -> bool:
    """True when ``user_agent`` is a known crawler, or is missing or blank.

    Never raises: a value that is not a string counts as missing. Answers for
    user agents up to 1 KB are remembered (a bounded table).
    """
    known = _answers.get(user_agent) if type(user_agent) is str else None
    if known is not None:
        return known
    if not isinstance(user_agent, str) or not user_agent.strip():
        return True
    answer = _matcher().matches(user_agent)
    if len(user_agent) <= _MAX_CACHED_LENGTH:
        # A plain dict emptied when full: a site sees few distinct agents, and
        # this runs on every page view, where an LRU's bookkeeping shows.
        if len(_answers) >= _MAX_CACHED_AGENTS:
            _answers.clear()
        _answers[user_agent] = answer
    return answer


_answers: dict[str, bool] = {}
_MAX_CACHED_AGENTS = 8192


def crawler_examples() -> Sequence[str]:
    """The example user agents the crawler list gives for its patterns."""
    return tuple(
        str(instance)
        for item in crawleruseragents.CRAWLER_USER_AGENTS_DATA
        for instance in item.get("instances", ())
    )
