"""dni-engine: decide which call-tracking phone number each website visitor sees."""

from dni_engine.bots import is_bot
from dni_engine.errors import ConfigError, DniError, Problem
from dni_engine.rules import Explanation, LintWarning, Match, RuleSet, compile_pools, lint
from dni_engine.schema import (
    CallRoutes,
    NumberPool,
    NumberPoolRequest,
    PhoneNumberRequest,
    PoolNumber,
    Referrer,
    ReplacementConfiguration,
    SmsRoutes,
    TrackingSource,
    load_pools,
)

__all__ = [
    "CallRoutes",
    "ConfigError",
    "DniError",
    "Explanation",
    "LintWarning",
    "Match",
    "NumberPool",
    "NumberPoolRequest",
    "PhoneNumberRequest",
    "PoolNumber",
    "Problem",
    "Referrer",
    "ReplacementConfiguration",
    "RuleSet",
    "SmsRoutes",
    "TrackingSource",
    "compile_pools",
    "is_bot",
    "lint",
    "load_pools",
]
