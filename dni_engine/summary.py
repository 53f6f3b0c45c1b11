"""Plain-text summaries of pools, for the command line and the demo."""

from __future__ import annotations

import phonenumbers

from dni_engine.phone import number_kind
from dni_engine.schema import AnyPool, NumberPool

__all__ = ["pool_kind", "pool_summary"]


def pool_kind(pool: AnyPool) -> str:
    """``geographic``/``tollfree``/``national``: from the request, else from the numbers."""
    if pool.phone_number_request is not None:
        return pool.phone_number_request.match_type
    if isinstance(pool, NumberPool) and pool.numbers:
        return number_kind(phonenumbers.parse(pool.numbers[0].phone_number, None))
    return "unknown"


def pool_summary(pool: AnyPool) -> str:
    """A few lines describing ``pool``: name, kind, country, numbers, sources and triggers."""
    rc = pool.replacement_configuration
    if isinstance(pool, NumberPool):
        head = f"pool {pool.name!r} (id {pool.id}, group {pool.group_id}, {pool.status})"
        numbers = ", ".join(pool.e164_numbers) or "none yet"
    else:
        head = f"pool request {pool.name!r}"
        numbers = f"{pool.quantity} to be assigned"
    where = ""
    request = pool.phone_number_request
    if request is not None and request.match_type == "geographic":
        where = f" near {request.city}" if request.city else f" area code {request.area_code}"
    lines = [
        head,
        f"  kind      {pool_kind(pool)}{where}, country {pool.country or 'unknown'}",
        f"  numbers   {numbers}  (quantity {pool.quantity}, match period {pool.match_period} min)",
        "  replaces  "
        + (
            "every number on the page"
            if rc.replace_all_numbers
            else ", ".join(rc.numbers_to_replace or [])
        ),
    ]
    for index, source in enumerate(rc.tracking_sources):
        triggers = " or ".join(source.url_triggers) if source.url_triggers else "any landing URL"
        organic = ", or any organic visit" if source.track_organic and source.url_triggers else ""
        lines.append(f"  source {index}  from {source.referrer_domain}: {triggers}{organic}")
    lines.append(f"  calls to  {pool.call_routes.route.termination_number}")
    return "\n".join(lines)
