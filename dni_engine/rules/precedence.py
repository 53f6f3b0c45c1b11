"""The precedence rank: how one way of matching a visit ranks against every other.

Between pools that match one visit the most specific wins (SPEC section 4):
more trigger conditions (step 1), then a specific referrer over ``Any``
(step 2), then the embedding application's priority (step 3), then
registration order (step 4). A :class:`Precedence` holds those four steps for
one way a source can match, and two more fields that order one pool's own
ways, so comparing two ranks as tuples picks the winner. Like werkzeug's
``Weighting``, it is built once, when the rules are compiled: the matcher
compares only the integers the ranks were sorted into.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["STEP_NAMES", "Precedence"]

#: The precedence steps that decide between pools, by number (see :class:`Precedence`).
STEP_NAMES = {
    1: "trigger conditions",
    2: "specific referrer beats Any",
    3: "priority",
    4: "registration order",
}


class Precedence(NamedTuple):
    """How one way of matching a visit ranks: compared as a tuple, the higher wins.

    The first four fields are the precedence steps between pools, in order
    (:data:`STEP_NAMES`): the trigger's conditions, a specific referrer (1)
    over ``Any`` (0), the pool's priority, then registration order as the
    negated pool index, so that an earlier pool ranks higher. The last two,
    the negated source index and the negated index of the way among the
    source's ways, only order one pool's own ways.
    """

    conditions: int
    specific_referrer: int
    priority: int
    earlier_pool: int
    earlier_source: int
    earlier_way: int

    @property
    def steps(self) -> tuple[int, int, int, int]:
        """The four fields that decide between pools (steps 1-4), in order."""
        return (self.conditions, self.specific_referrer, self.priority, self.earlier_pool)

    def deciding_step(self, other: Precedence) -> int | None:
        """The first step (1-4) on which ``self`` and ``other`` differ.

        ``None`` when they agree on all four, which only two ways of one pool do.
        """
        for step, (mine, theirs) in enumerate(zip(self.steps, other.steps, strict=True), 1):
            if mine != theirs:
                return step
        return None
