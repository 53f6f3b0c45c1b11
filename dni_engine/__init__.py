"""dni-engine: decide which call-tracking phone number each website visitor sees."""

import sys as _sys
from importlib.machinery import EXTENSION_SUFFIXES as _EXTENSION_SUFFIXES

from dni_engine.bots import DEFAULT_CRAWLERS, Crawlers, is_bot
from dni_engine.calls import Call, CallRecord
from dni_engine.engine import Engine, EngineStats, PoolOptions
from dni_engine.errors import ConfigError, DniError, Problem
from dni_engine.extras import MissingExtra
from dni_engine.leases import (
    Attribution,
    Claim,
    Decision,
    Facts,
    Lease,
    PoolStats,
    PoolTerms,
    SimulatedClock,
)
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
from dni_engine.stores import MemoryStore, Store, StoreError

#: True when the per-visit path and the simulation run as compiled extension
#: modules (a build made with ``DNI_ENGINE_COMPILE=1``), False for pure Python.
COMPILED: bool = str(getattr(_sys.modules[Engine.__module__], "__file__", "")).endswith(
    tuple(_EXTENSION_SUFFIXES)
)

__all__ = [
    "COMPILED",
    "DEFAULT_CRAWLERS",
    "Attribution",
    "Call",
    "CallRecord",
    "CallRoutes",
    "Claim",
    "ConfigError",
    "Crawlers",
    "Decision",
    "DniError",
    "Engine",
    "EngineStats",
    "Explanation",
    "Facts",
    "Lease",
    "LintWarning",
    "Match",
    "MemoryStore",
    "MissingExtra",
    "NumberPool",
    "NumberPoolRequest",
    "PhoneNumberRequest",
    "PoolNumber",
    "PoolOptions",
    "PoolStats",
    "PoolTerms",
    "Problem",
    "Referrer",
    "ReplacementConfiguration",
    "RuleSet",
    "SimulatedClock",
    "SmsRoutes",
    "Store",
    "StoreError",
    "TrackingSource",
    "compile_pools",
    "is_bot",
    "lint",
    "load_pools",
]
