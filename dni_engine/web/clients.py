"""Who a request comes from, and a rate limit per client; no I/O, no framework.

A *client* is the network a request came from together with its user agent:
an IPv4 address (``/32``), or an IPv6 ``/64`` (the prefix one household, one
phone or one cloud machine gets; its last 64 bits are the host's own choice and
change at will, so counting single IPv6 addresses would count nothing).

The network is the socket peer's. Behind a reverse proxy, a load balancer or a
CDN every peer is the proxy, so the forwarding header the proxy writes
(``X-Forwarded-For`` by default, or RFC 7239 ``Forwarded``) names the client,
but only when the peer is one of the configured *trusted proxies*: anybody can
send that header, so from any other peer it is ignored. The header is read
right to left, the way proxies append to it: each trusted hop is stepped over,
and the first address that is not a trusted proxy is the client. A hop the
header does not name as an address (``unknown``, an obfuscated ``_name``, a
garbled value) ends the walk at the last trusted proxy, which then counts as
the client. A proxy on a Unix socket has no address: ``"unix"`` among the
trusted proxies trusts such a peer.

What is kept of a client is never the address itself: :func:`client_key` is a
keyed hash (HMAC-SHA256) of the network and the user agent, under a key that
:func:`rotating_key` changes every day, so a stored or logged key cannot be
turned back into an address, nor followed from one day to the next.

:class:`RateLimiter` limits each client's requests per minute with the generic
cell rate algorithm (one number per client, exact, no timers), in a bounded
table.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Final

__all__ = [
    "FORWARDED_HEADERS",
    "KEY_ROTATION",
    "UNIX",
    "Network",
    "RateLimiter",
    "client_address",
    "client_key",
    "client_network",
    "parse_networks",
    "rotating_key",
]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
"""A trusted proxy's network (a single address is a ``/32`` or ``/128``)."""

FORWARDED_HEADERS: Final = ("x-forwarded-for", "forwarded")
"""The forwarding headers a trusted proxy may write, by lower-case name."""

UNIX: Final = "unix"
"""The ``trusted_proxies`` entry for a proxy that reaches the site over a Unix socket."""

KEY_ROTATION: Final = 86_400.0
"""Seconds one client-key hashing key lasts (a day)."""

_IPV6_PREFIX: Final = 64
# How many hops of a forwarding header are read at most: a longer chain is a forgery
# or a loop, and reading it would cost every request its length.
_MAX_HOPS: Final = 32
_FOR: Final = re.compile(r'(?:^|;)\s*for\s*=\s*("(?:[^"\\]|\\.)*"|[^;,\s]*)', re.IGNORECASE)
_PORT_V4: Final = re.compile(r"^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$")
_BRACKETED: Final = re.compile(r"^\[([0-9A-Fa-f:.]+)\](?::\d{1,5})?$")

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_networks(values: object, name: str = "trusted_proxies") -> tuple[Network, ...]:
    """``values`` (addresses or CIDR networks as strings) as networks; ``"unix"`` is skipped.

    ``"unix"`` stands for a proxy on a Unix socket (see :func:`client_address`).
    Raises ``ValueError`` listing every entry that is not an address or a
    network, each named ``name[index]``; a single string instead of a list
    is an error too (it would read as its characters).
    """
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise ValueError(f"{name}: must be a list of addresses or networks, not {values!r}")
    networks: list[Network] = []
    problems: list[str] = []
    for index, value in enumerate(values):
        try:
            if not isinstance(value, str):
                raise TypeError
            if value.strip().lower() == UNIX:
                continue
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except (TypeError, ValueError):
            problems.append(f"{name}[{index}]: {value!r} is not an address or a network")
    if problems:
        raise ValueError("; ".join(problems))
    return tuple(networks)


def _address(text: str | None) -> _Address | None:
    if not text:
        return None
    text = text.strip().strip('"').strip()
    match = _BRACKETED.match(text)
    if match:
        text = match.group(1)
    else:
        match = _PORT_V4.match(text)
        if match:
            text = match.group(1)
    if "%" in text:  # an IPv6 zone: the host's own, not part of the address
        text = text.split("%", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: _Address, trusted: tuple[Network, ...]) -> bool:
    return any(address.version == net.version and address in net for net in trusted)


def _hops(headers: Mapping[str, str], header: str) -> list[str]:
    value = headers.get(header)
    if not value:
        return []
    if header == "forwarded":
        hops = []
        for element in value.split(",")[-_MAX_HOPS:]:
            match = _FOR.search(element)
            hops.append(match.group(1) if match else "")
        return hops
    return value.split(",")[-_MAX_HOPS:]


def client_address(
    peer: str | None,
    headers: Mapping[str, str],
    trusted: tuple[Network, ...] = (),
    header: str = "x-forwarded-for",
    *,
    unix_trusted: bool = False,
) -> str | None:
    """The client's address for a request from socket ``peer``; never raises.

    ``headers`` has lower-case names (repeated headers joined with ``", "``).
    Only when ``peer`` lies in one of the ``trusted`` networks is the
    forwarding ``header`` (``x-forwarded-for`` or ``forwarded``) read, right to
    left, stepping over trusted hops (see the module docstring). ``None`` when
    the peer is not an IP address (a Unix socket, a test client without one).
    IPv4-mapped IPv6 addresses are given as IPv4. A peer that is not an IP
    address (a Unix socket) is ``None``, unless ``unix_trusted``: then it is a
    trusted proxy like the others.
    """
    try:
        address = _address(peer)
        if address is None and not unix_trusted:
            return None
        if address is not None and not (trusted and _trusted(address, trusted)):
            return str(address)
        for hop in reversed(_hops(headers, header)):  # the peer is a trusted proxy
            named = _address(hop)
            if named is None:
                break
            address = named
            if not _trusted(named, trusted):
                break
        return None if address is None else str(address)
    except Exception:
        return None


def client_network(address: str | None) -> str:
    """The network that counts as one client: the IPv4 address, or the IPv6 ``/64``.

    ``""`` for ``None`` or what is not an address (such requests share one client).
    """
    parsed = _address(address)
    if parsed is None:
        return ""
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((parsed, _IPV6_PREFIX), strict=False))
    return str(parsed)


def rotating_key(secret: bytes, now: float, period: float = KEY_ROTATION) -> bytes:
    """The client-hashing key of the ``period`` that holds ``now``, derived from ``secret``."""
    index = math.floor(now / period) if math.isfinite(now) else 0
    return hmac.new(secret, b"dni-client\x00" + str(index).encode(), hashlib.sha256).digest()


def client_key(network: str, user_agent: str | None, key: bytes) -> str:
    """The client as 32 hex characters: HMAC-SHA256 of ``network`` and ``user_agent``."""
    agent = (user_agent or "").encode("utf-8", "replace")
    message = network.encode("ascii", "replace") + b"\x00" + agent
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


class RateLimiter:
    """At most ``per_minute`` requests a minute per client, with a burst of as many.

    The generic cell rate algorithm: each client has a *theoretical arrival
    time*; a request is allowed when it comes no earlier than ``per_minute``
    intervals before it, and moves it on by one interval. The table holds at
    most ``max_clients`` clients; past that, the client not seen for longest
    is dropped (it starts again with a full burst). Thread-safe.
    """

    def __init__(
        self,
        per_minute: int,
        *,
        max_clients: int = 65_536,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if type(per_minute) is not int or per_minute <= 0:
            raise ValueError(f"per_minute: {per_minute!r} is not a whole number > 0")
        if type(max_clients) is not int or max_clients <= 0:
            raise ValueError(f"max_clients: {max_clients!r} is not a whole number > 0")
        self.per_minute = per_minute
        self.max_clients = max_clients
        self._interval = 60.0 / per_minute
        self._tolerance = 60.0 - self._interval
        self._clock = clock
        self._arrivals: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._arrivals)

    def check(self, client: str, now: float | None = None) -> float:
        """``0.0`` when ``client`` may make a request now (it is counted), else the seconds to wait.

        A refused request is not counted, so a client that waits as told gets through.
        """
        when = self._clock() if now is None else now
        with self._lock:
            arrivals = self._arrivals
            due = arrivals.get(client, when)
            if due < when:
                due = when
            allowed_from = due - self._tolerance
            if when < allowed_from:
                arrivals.move_to_end(client)
                return allowed_from - when
            arrivals[client] = due + self._interval
            arrivals.move_to_end(client)
            while len(arrivals) > self.max_clients:
                arrivals.popitem(last=False)
            return 0.0
