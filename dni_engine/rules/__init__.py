"""Which pool, and which of its tracking sources, claims a visit.

:func:`compile_pools` turns every pool of a site into a :class:`RuleSet` once;
:meth:`RuleSet.match` then decides each visit (SPEC sections 2-4):

* a source matches when its referrer matches and it has no ``url_triggers``,
  or one of its triggers matches, or it has ``track_organic`` and the visit is
  organic (carries no ad click id and no paid ``utm_medium``);
* between matching pools the most specific wins: more trigger conditions, then
  a specific referrer over ``Any``, then the embedding application's priority,
  then registration order (:class:`Precedence`).

:meth:`RuleSet.explain` says, for one visit, why each pool and source matched
or lost; :func:`lint` finds configurations that cannot work as written.

The package is split the way a URL router is. The per-visit path, compiled
in the optional compiled build:

* :mod:`~dni_engine.rules.precedence`: the rank, :class:`Precedence`;
* :mod:`~dni_engine.rules.visit`: reading a visit once (query, referrer host, paid);
* :mod:`~dni_engine.rules.compile`: compiling sources into ranked entries and
  the index the matcher walks; :class:`Match`;
* :mod:`~dni_engine.rules.matcher`: :func:`compile_pools`, :class:`RuleSet`
  and its walk.

And off it, plain Python: :mod:`~dni_engine.rules.explain` (:class:`Explanation`
and its verdicts) and :mod:`~dni_engine.rules.linter` (:func:`lint`).
"""

from dni_engine.rules.compile import CompiledSource as CompiledSource
from dni_engine.rules.compile import Match, pool_key
from dni_engine.rules.compile import Via as Via
from dni_engine.rules.explain import Explanation, PoolVerdict, SourceVerdict
from dni_engine.rules.linter import LINT_CODES, LintWarning, lint
from dni_engine.rules.matcher import RuleSet, compile_pools
from dni_engine.rules.precedence import STEP_NAMES as STEP_NAMES
from dni_engine.rules.precedence import Precedence
from dni_engine.rules.visit import CLICK_IDS, PAID_MEDIA, paid_reason

__all__ = [
    "CLICK_IDS",
    "LINT_CODES",
    "PAID_MEDIA",
    "STEP_NAMES",
    "Explanation",
    "LintWarning",
    "Match",
    "PoolVerdict",
    "Precedence",
    "RuleSet",
    "SourceVerdict",
    "compile_pools",
    "lint",
    "paid_reason",
    "pool_key",
]
