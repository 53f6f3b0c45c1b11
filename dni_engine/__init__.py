"""dni-engine: decide which call-tracking phone number each website visitor sees."""

from dni_engine.errors import ConfigError, DniError, Problem
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
    "NumberPool",
    "NumberPoolRequest",
    "PhoneNumberRequest",
    "PoolNumber",
    "Problem",
    "Referrer",
    "ReplacementConfiguration",
    "SmsRoutes",
    "TrackingSource",
    "load_pools",
]
