"""Crawler detection by user agent.

Who counts as a crawler (see README, "Who counts as a crawler"):

- a missing, blank or non-string user agent: real browsers always send one;
- a user agent longer than :data:`MAX_USER_AGENT_LENGTH` (1 KB), without reading
  it: real browsers' agents are far shorter, and this bounds the work;
- one matched by a pattern of the maintained ``crawler-user-agents`` list
  (case-sensitively, as the list is written), except the patterns that match
  people, which :mod:`dni_engine.crawler_rules` narrows or drops;
- one matched by a signal of :mod:`dni_engine.crawler_rules` (case-insensitively):
  a word such as ``bot`` or ``crawler``, a URL or e-mail address, an HTTP library,
  or a named family (AI agents, ad and social fetchers, Google's tools, monitors,
  scanners, feed readers, configuration tools, headless browsers).

A site adjusts this with :class:`Crawlers`: patterns of its own, exemptions, and
headless browsers counted as people.

Searching a user agent with ~1,700 patterns one by one costs about a
millisecond, too much for every page view. So the patterns are compiled once
into a *prefilter*: every pattern is reduced to a literal string that any match
of it must contain (``Googlebot\\/`` -> ``googlebot/``, ``[wW]get`` -> ``get``),
lower-cased; its longest part without a space is indexed by the
three-character keys at its first two offsets. The lower-cased user agent is
split into words at its spaces, and each word is read at every second
position (a part without a space lies inside one word); only patterns whose
literal actually occurs in the agent are then run as regular expressions. What
a word contains is remembered, since agents are made of the same words
(``Mozilla/5.0``, ``AppleWebKit/537.36``...). Literals of three characters or
fewer are looked for with one substring search each; the few patterns with no
usable literal are always run. Answers are kept in a bounded cache too,
because a site sees the same user agents over and over.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import crawleruseragents

from dni_engine._frozen import Frozen
from dni_engine.crawler_rules import HEADLESS_FAMILY, HEADLESS_PATTERNS, NARROWINGS, SIGNALS

__all__ = [
    "DEFAULT_CRAWLERS",
    "MAX_USER_AGENT_LENGTH",
    "CrawlerMatcher",
    "Crawlers",
    "crawler_examples",
    "crawler_patterns",
    "crawler_rule_patterns",
    "is_bot",
]

# The prefilter's key length and stride: literals longer than _KEY are indexed at
# offsets 0 .. _STRIDE - 1, and the user agent is read at every _STRIDE-th position.
_KEY = 3
_STRIDE = 2
# A user agent longer than this is a crawler without being read (real browsers'
# agents are under 500 characters); it bounds the work, and the cache's keys.
MAX_USER_AGENT_LENGTH = 1024


def crawler_patterns() -> tuple[str, ...]:
    """The crawler regular expressions of the bundled ``crawler-user-agents`` list, as written."""
    return tuple(str(item["pattern"]) for item in crawleruseragents.CRAWLER_USER_AGENTS_DATA)


def crawler_rule_patterns(
    *, headless_is_human: bool = False
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The default policy's patterns: ``(case-sensitive, case-insensitive)``.

    The first are the list's patterns with :data:`~dni_engine.crawler_rules.NARROWINGS`
    applied (narrowed or dropped); the second the added
    :data:`~dni_engine.crawler_rules.SIGNALS`. With ``headless_is_human`` the
    patterns naming automated browsers are left out of both.
    """
    narrowed = {n.pattern: n.replacement for n in NARROWINGS}
    listed: list[str] = []
    for pattern in crawler_patterns():
        if headless_is_human and pattern in HEADLESS_PATTERNS:
            continue
        if pattern in narrowed:
            replacement = narrowed[pattern]
            if replacement is not None:
                listed.append(replacement)
            continue
        listed.append(pattern)
    added = tuple(
        s.pattern for s in SIGNALS if not (headless_is_human and s.family == HEADLESS_FAMILY)
    )
    return tuple(listed), added


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
class CrawlerMatcher(Frozen):
    """Compiled crawler patterns: a literal prefilter in front of the regexes.

    Build it with :meth:`compile`; :meth:`matches` answers whether a user agent
    is a crawler, exactly as searching it with every pattern would.
    ``by_key`` maps a three-character key to ``(offset, piece, literal, regex)``:
    ``piece`` is the longest part without a space of the lower-cased ``literal``,
    and the key starts ``offset`` characters into it. ``words`` remembers, for
    the words (space-separated parts) of agents already read, which literals
    have their piece in the word: a site's agents are made of the same words.
    """

    by_key: dict[str, tuple[tuple[int, str, str, re.Pattern[str]], ...]]
    short: tuple[tuple[str, re.Pattern[str]], ...]
    always: tuple[re.Pattern[str], ...]
    words: dict[str, tuple[tuple[str, re.Pattern[str]], ...]]

    @classmethod
    def compile(cls, patterns: Iterable[str], ignore_case: Iterable[str] = ()) -> CrawlerMatcher:
        """Compile ``patterns`` (searched as written) and ``ignore_case`` (ASCII in any case).

        Raises ``re.error`` for a pattern that is not a regular expression.
        """
        by_key: dict[str, list[tuple[int, str, str, re.Pattern[str]]]] = {}
        short: list[tuple[str, re.Pattern[str]]] = []
        always: list[re.Pattern[str]] = []
        # ASCII case only: a Unicode fold (the long s as s) would match letters the
        # lower-cased literal cannot find.
        any_case = re.IGNORECASE | re.ASCII
        sources = [(p, 0) for p in patterns] + [(p, any_case) for p in ignore_case]
        for pattern, flags in sources:
            for branch in top_level_branches(pattern):
                regex = re.compile(branch, flags)
                literal = required_literal(branch)
                if literal is None:
                    always.append(regex)
                    continue
                lowered = literal.lower()
                piece = max(lowered.split(" "), key=len)
                if len(piece) < _KEY + _STRIDE - 1:
                    short.append((lowered, regex))
                    continue
                for offset in range(_STRIDE):
                    key = piece[offset : offset + _KEY]
                    by_key.setdefault(key, []).append((offset, piece, lowered, regex))
        frozen = {k: tuple(v) for k, v in by_key.items()}
        return cls(frozen, tuple(short), tuple(always), {})

    def matches(self, user_agent: str) -> bool:
        """True when some crawler pattern is found in ``user_agent``."""
        # A piece has no space, so it lies inside one word of the agent.
        text = user_agent.lower()
        words = self.words
        get = self.by_key.get
        for word in text.split(" "):
            found = words.get(word)
            if found is None:
                found = ()
                for i in range(0, len(word) - _KEY + 1, _STRIDE):
                    bucket = get(word[i : i + _KEY])
                    if bucket is None:
                        continue
                    for offset, piece, literal, regex in bucket:
                        start = i - offset
                        if start >= 0 and word.startswith(piece, start):
                            found = (*found, (literal, regex))
                if len(word) <= _MAX_WORD_LENGTH:
                    if len(words) >= _MAX_WORDS:
                        words.clear()
                    words[word] = found
            for literal, regex in found:
                if literal in text and regex.search(user_agent):
                    return True
        for literal, regex in self.short:
            if literal in text and regex.search(user_agent):
                return True
        return any(regex.search(user_agent) for regex in self.always)

    @property
    def prefiltered(self) -> int:
        """How many pattern branches sit behind the literal prefilter (indexed or short)."""
        indexed = sum(1 for bucket in self.by_key.values() for entry in bucket if entry[0] == 0)
        return indexed + len(self.short)


# Words remembered per matcher (emptied when full), and the longest remembered: an
# agent's words are short, and a hostile one must not fill the table with long keys.
_MAX_WORDS = 16384
_MAX_WORD_LENGTH = 64


def _compile_site_patterns(field: str, patterns: object) -> tuple[str, ...]:
    if isinstance(patterns, str) or not isinstance(patterns, Iterable):
        raise ValueError(f"crawlers {field} must be a list of regular expressions")
    checked: list[str] = []
    for i, pattern in enumerate(patterns):
        if not isinstance(pattern, str) or not pattern:
            raise ValueError(f"crawlers {field}[{i}] must be a non-empty string")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(
                f"crawlers {field}[{i}] {pattern!r} is not a regular expression: {exc}"
            ) from None
        checked.append(pattern)
    return tuple(checked)


# Answers kept per policy: a plain dict emptied when full. A site sees few distinct
# agents, and this runs on every page view, where an LRU's bookkeeping shows.
_MAX_CACHED_AGENTS = 8192


class Crawlers:
    """Who counts as a crawler for one site: the default policy, adjusted.

    ``extra``: regular expressions (searched as written, case-sensitively; use
    ``(?i)`` for any case) of more crawlers. ``exempt``: regular expressions of
    agents that are people for this site even when a crawler pattern matches
    them (its own monitoring, a partner's in-app browser). ``headless_is_human``:
    automated browsers (HeadlessChrome, Puppeteer, Playwright, Selenium, PhantomJS)
    count as people, for the site's own end-to-end tests. A missing, blank or
    over-long user agent is a crawler whatever the options. Bad options raise
    ``ValueError`` naming the field. The patterns are compiled on first use.
    """

    def __init__(
        self,
        extra: Iterable[str] = (),
        exempt: Iterable[str] = (),
        headless_is_human: bool = False,
    ) -> None:
        if not isinstance(headless_is_human, bool):
            raise ValueError("crawlers headless_is_human must be true or false")
        self.extra: tuple[str, ...] = _compile_site_patterns("extra", extra)
        self.exempt: tuple[str, ...] = _compile_site_patterns("exempt", exempt)
        self.headless_is_human: bool = headless_is_human
        self._matcher: CrawlerMatcher | None = None
        self._exempt: CrawlerMatcher | None = None
        self._answers: dict[str, bool] = {}

    @property
    def is_default(self) -> bool:
        """True when no option changes the default policy."""
        return not self.extra and not self.exempt and not self.headless_is_human

    def __repr__(self) -> str:
        return (
            f"Crawlers(extra={list(self.extra)!r}, exempt={list(self.exempt)!r}, "
            f"headless_is_human={self.headless_is_human!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Crawlers):
            return NotImplemented
        return (self.extra, self.exempt, self.headless_is_human) == (
            other.extra,
            other.exempt,
            other.headless_is_human,
        )

    def __hash__(self) -> int:
        return hash((self.extra, self.exempt, self.headless_is_human))

    def _compile(self) -> CrawlerMatcher:
        listed, added = crawler_rule_patterns(headless_is_human=self.headless_is_human)
        matcher = CrawlerMatcher.compile((*listed, *self.extra), added)
        if self.exempt:
            self._exempt = CrawlerMatcher.compile(self.exempt)
        self._matcher = matcher
        return matcher

    def is_bot(self, user_agent: object) -> bool:
        """True when ``user_agent`` is a crawler under this policy, or is missing or blank.

        Never raises: a value that is not a string counts as missing. Agents
        longer than :data:`MAX_USER_AGENT_LENGTH` are crawlers without being
        read. Answers are remembered (a bounded table).
        """
        answers = self._answers
        known = answers.get(user_agent) if type(user_agent) is str else None
        if known is not None:
            return known
        if not isinstance(user_agent, str) or not user_agent.strip():
            return True
        if len(user_agent) > MAX_USER_AGENT_LENGTH:
            return True
        matcher = self._matcher
        if matcher is None:
            matcher = self._compile()
        answer = matcher.matches(user_agent)
        exempt = self._exempt
        if answer and exempt is not None and exempt.matches(user_agent):
            answer = False
        if len(answers) >= _MAX_CACHED_AGENTS:
            answers.clear()
        answers[user_agent] = answer
        return answer


DEFAULT_CRAWLERS = Crawlers()
# The default policy's answers, looked up here first: a remembered answer then
# costs one dictionary look-up, as before the policy became an object.
_default_answers = DEFAULT_CRAWLERS._answers


def is_bot(user_agent: object) -> bool:
    """True when ``user_agent`` is a crawler by the default policy, or is missing or blank.

    The same as ``DEFAULT_CRAWLERS.is_bot``. Never raises: a value that is not
    a string counts as missing; agents over 1 KB are crawlers unread.
    """
    known = _default_answers.get(user_agent) if type(user_agent) is str else None
    if known is not None:
        return known
    return DEFAULT_CRAWLERS.is_bot(user_agent)


def crawler_examples() -> Sequence[str]:
    """The example user agents the crawler list gives for its patterns.

    Examples of the patterns the project drops (people's agents, see
    :data:`~dni_engine.crawler_rules.NARROWINGS`) are left out.
    """
    dropped = {n.pattern for n in NARROWINGS if n.replacement is None}
    return tuple(
        str(instance)
        for item in crawleruseragents.CRAWLER_USER_AGENTS_DATA
        if str(item["pattern"]) not in dropped
        for instance in item.get("instances", ())
    )
