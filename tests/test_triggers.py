"""url_trigger grammar, linear-time wildcard matching and query decoding."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dni_engine.testing.oracle import wildcard_match
from dni_engine.triggers import (
    MAX_TRIGGER_LENGTH,
    Condition,
    Glob,
    parse_query,
    parse_trigger,
    query_of,
)

# ---- grammar ------------------------------------------------------------------------------


def test_presence_and_value_conditions() -> None:
    trigger = parse_trigger("gclid&utm_campaign=WinterTires")
    assert [c.name for c in trigger.conditions] == ["gclid", "utm_campaign"]
    assert trigger.conditions[0].glob is None
    assert trigger.conditions[1].glob == Glob(("wintertires",))
    assert trigger.specificity == 2
    assert trigger.text == "gclid&utm_campaign=WinterTires"


def test_star_and_percent_are_the_same_trigger() -> None:
    assert parse_trigger("gclid=*").conditions == parse_trigger("gclid=%").conditions
    assert parse_trigger("a=x%y").conditions == parse_trigger("A=X*Y").conditions
    assert parse_trigger("a=x**y").conditions == parse_trigger("a=x*%*y").conditions


def test_any_value_means_present() -> None:
    for text in ("gclid=*", "gclid=%", "gclid=**", "gclid"):
        (condition,) = parse_trigger(text).conditions
        assert condition == Condition("gclid", None)
    assert parse_trigger("gclid=*").conditions[0].written == "gclid=*"


def test_repeated_conditions_count_once() -> None:
    trigger = parse_trigger("gclid=*&GCLID&gclid=%&utm_source=g&utm_source=G")
    assert trigger.specificity == 2
    assert parse_trigger("a=x&a=y").specificity == 2


def test_leading_question_mark_and_spaces_are_ignored() -> None:
    assert parse_trigger("  ?gclid=*  ").conditions == parse_trigger("gclid").conditions


def test_empty_value_pattern_matches_only_empty_values() -> None:
    (condition,) = parse_trigger("ref=").conditions
    assert condition.holds({"ref": [""]})
    assert not condition.holds({"ref": ["x"]})


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty url_trigger"),
        ("   ", "empty url_trigger"),
        ("a=1&&b=2", "condition 2 of the trigger is empty"),
        ("a=1&", "is empty"),
        ("=x", "has no parameter name"),
        ("gcl*d=1", "may not contain '*'"),
        ("gcl%id", "may not contain '%'"),
        ("utm campaign=x", "may not contain ' '"),
        ("a=x#y", "contains a control character or '#'"),
        ("a=x\ty", "contains a control character or '#'"),
        ("a=" + "x" * MAX_TRIGGER_LENGTH, "the limit is 512"),
    ],
)
def test_malformed_triggers_are_rejected(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_trigger(text)


def test_trigger_of_exactly_the_limit_is_accepted() -> None:
    assert parse_trigger("a=" + "x" * (MAX_TRIGGER_LENGTH - 2)).specificity == 1


# ---- matching --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("abc", "abc", True),
        ("abc", "abcd", False),
        ("", "", True),
        ("", "x", False),
        ("*", "", True),
        ("*", "anything", True),
        ("ab*", "ab", True),
        ("ab*", "xab", False),
        ("*ab", "xxab", True),
        ("*ab", "abx", False),
        ("a*b*c", "abc", True),
        ("a*b*c", "aXbYc", True),
        ("a*b*c", "acb", False),
        ("a*a", "a", False),
        ("a*a", "aa", True),
        ("*aa*aa*", "aaa", False),
        ("*aa*aa*", "aaaa", True),
        ("spring%", "spring sale", True),
        ("%sale%", "summer-sale-2024", True),
        ("WINTER", "winter", True),
    ],
)
def test_glob_matches(pattern: str, value: str, expected: bool) -> None:
    assert Glob.compile(pattern).matches(value.lower()) is expected


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.text(alphabet="ab*%", max_size=8),
    st.text(alphabet="abAB", max_size=10),
)
def test_glob_agrees_with_dynamic_programming(pattern: str, value: str) -> None:
    assert Glob.compile(pattern).matches(value.lower()) == wildcard_match(pattern, value)


def test_condition_with_repeated_parameter() -> None:
    (condition,) = parse_trigger("utm_campaign=winter*").conditions
    assert condition.holds({"utm_campaign": ["summer", "winter-tyres"]})
    assert not condition.holds({"utm_campaign": ["summer"]})
    assert not condition.holds({"utm_source": ["winter"]})


class CountingText(str):
    """A string that counts how many characters the matcher's searches look at."""

    examined: int
    calls: int

    def __new__(cls, text: str) -> CountingText:
        obj = super().__new__(cls, text)
        obj.examined = 0
        obj.calls = 0
        return obj

    def find(self, sub: str, start: int | None = None, end: int | None = None) -> int:  # type: ignore[override]
        lo = 0 if start is None else start
        hi = len(self) if end is None else end
        found = str.find(self, sub, lo, hi)
        # a search that succeeds looks up to the end of the match, one that fails
        # looks at the whole window
        self.examined += (found + len(sub) - lo) if found >= 0 else (hi - lo)
        self.calls += 1
        return found

    def startswith(self, prefix: object, *args: object) -> bool:  # type: ignore[override]
        assert isinstance(prefix, str)
        self.examined += len(prefix)
        self.calls += 1
        return str.startswith(self, prefix, *args)  # type: ignore[arg-type]

    def endswith(self, suffix: object, *args: object) -> bool:  # type: ignore[override]
        assert isinstance(suffix, str)
        self.examined += len(suffix)
        self.calls += 1
        return str.endswith(self, suffix, *args)  # type: ignore[arg-type]


SIZE = 64 * 1024


@pytest.mark.parametrize(
    ("pattern", "value"),
    [
        ("*a" * 250 + "*", "a" * SIZE),
        ("*a" * 250 + "b", "a" * SIZE),
        ("*ab" * 170 + "*c", "ab" * (SIZE // 2)),
        ("a*" * 255 + "z", "a" * SIZE),
        ("*" + "aaab*" * 100, "aaa" * (SIZE // 3)),
        ("%x%" * 100, "y" * SIZE),
    ],
)
def test_many_wildcards_on_64_kb_stay_linear(pattern: str, value: str) -> None:
    assert len(pattern) <= MAX_TRIGGER_LENGTH
    glob = Glob.compile(pattern)
    text = CountingText(value)
    glob.matches(text)
    # every character of the value is looked at about once, plus the pattern itself:
    # no backtracking, whatever the number of wildcards
    assert text.examined <= len(value) + len(pattern)
    assert text.calls <= len(glob.pieces) + 2
    assert glob.matches(value) == glob.matches(text)


def test_many_wildcards_on_64_kb_answer_correctly() -> None:
    glob = Glob.compile("*a" * 250 + "*")
    assert glob.matches("a" * 250)
    assert not glob.matches("a" * 249)
    assert glob.matches("b" * SIZE + "a" * 250)
    assert not Glob.compile("*a" * 250 + "b").matches("a" * SIZE)


# ---- query decoding -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "query"),
    [
        ("https://shop.example/?a=1&b=2", "a=1&b=2"),
        ("https://shop.example/?a=1#frag", "a=1"),
        ("https://shop.example/#frag?gclid=1", ""),
        ("https://shop.example/", ""),
        ("?gclid=1", "gclid=1"),
        ("/x?a=1?b=2", "a=1?b=2"),
        ("", ""),
    ],
)
def test_query_of(url: str, query: str) -> None:
    assert query_of(url) == query


def test_parse_query_decodes_and_lowers() -> None:
    params = parse_query(
        "UTM_Campaign=Winter%20Tyres&promo=spring+sale&utm%5Fsource=G&flag&=x&&a=1&a=2"
    )
    assert params == {
        "utm_campaign": ["winter tyres"],
        "promo": ["spring sale"],
        "utm_source": ["g"],
        "flag": [""],
        "a": ["1", "2"],
    }


def test_parse_query_never_fails_on_bad_escapes() -> None:
    params = parse_query("a=%ZZ&b=%E0%A4&c=%&d=%2")
    assert params == {"a": ["%zz"], "b": ["\ufffd"], "c": ["%"], "d": ["%2"]}


def test_parse_query_keeps_literal_plus_when_encoded() -> None:
    assert parse_query("promo=a%2Bb") == {"promo": ["a+b"]}
    # a '+' in a trigger is literal, so it only matches an encoded plus
    (condition,) = parse_trigger("promo=a+b").conditions
    assert condition.holds(parse_query("promo=a%2Bb"))
    assert not condition.holds(parse_query("promo=a+b"))
