"""The referrer catalogue and the classification of referrer hosts.

A tracking source's ``referrer_domain`` is one of four kinds (see
:class:`ReferrerRule`): ``Any``/``*``; a catalogue name such as ``Google``,
matched by *registrable domain* with the Public Suffix List; a ``%``/``*``
wildcard pattern over the host; or a plain domain, matching that host and its
subdomains. The Public Suffix List comes from tldextract's bundled snapshot and
is never fetched from the network.
"""

from __future__ import annotations

import enum
import functools
import re
from dataclasses import dataclass

import idna
import tldextract

from dni_engine._frozen import Frozen
from dni_engine.triggers import Glob

__all__ = [
    "ANY_VENDOR_DOMAIN",
    "ANY_VENDOR_ID",
    "CATALOGUE",
    "CatalogueEntry",
    "ReferrerRule",
    "RuleKind",
    "catalogue_entry",
    "classify_host",
    "parse_referrer_domain",
    "referrer_host",
    "registrable_domain",
]


@dataclass(frozen=True, slots=True)
class CatalogueEntry(Frozen):
    """A named referrer: which registrable domains belong to it.

    ``labels`` match the registrable label under *any* public suffix
    (``google`` matches ``google.co.uk``); ``domains`` match exact registrable
    domains (``t.co``); ``hosts`` match a host and its subdomains inside a
    registrable domain that is not the entry's as a whole (``search.msn.com``:
    Bing's, while ``msn.com`` is not); ``apps`` are Android package names, the
    host of an ``android-app://<package>`` referrer (the Google app).
    ``vendor_id``/``vendor_domain`` are the vendor API's own catalogue values,
    ``None`` for entries the vendor does not list.
    """

    name: str
    vendor_id: int | None
    vendor_domain: str | None
    labels: frozenset[str] = frozenset()
    domains: frozenset[str] = frozenset()
    hosts: frozenset[str] = frozenset()
    apps: frozenset[str] = frozenset()

    @property
    def example_hosts(self) -> tuple[str, ...]:
        """A few real hosts of this entry, for examples, tests and lint witnesses."""
        hosts = [f"www.{label}.com" for label in sorted(self.labels)]
        hosts += [f"www.{label}.co.uk" for label in sorted(self.labels)]
        hosts += sorted(self.domains)
        return tuple(hosts)

    @property
    def description(self) -> str:
        """The entry's domains in words: ``google.<any suffix>`` or ``twitter.com, x.com``."""
        parts = [f"{label}.<any public suffix>" for label in sorted(self.labels)]
        parts += sorted(self.domains)
        parts += sorted(self.hosts)
        parts += [f"the app {app}" for app in sorted(self.apps)]
        return ", ".join(parts)


ANY_VENDOR_ID = 13
ANY_VENDOR_DOMAIN = "*"

CATALOGUE: tuple[CatalogueEntry, ...] = (
    CatalogueEntry(
        "Google",
        1,
        "%google.%",
        labels=frozenset({"google"}),
        # Google's ad-serving hosts: an ad click passes through them.
        domains=frozenset({"googleadservices.com", "doubleclick.net", "googlesyndication.com"}),
        # The Google app and Google Go.
        apps=frozenset(
            {"com.google.android.googlequicksearchbox", "com.google.android.apps.searchlite"}
        ),
    ),
    CatalogueEntry(
        "Bing",
        2,
        "%bing.%",
        labels=frozenset({"bing"}),
        domains=frozenset({"bingj.com"}),
        hosts=frozenset({"search.msn.com"}),
    ),
    CatalogueEntry("Yahoo", 3, "%yahoo.%", labels=frozenset({"yahoo"})),
    CatalogueEntry(
        "Twitter",
        14,
        "%twitter.com%",
        domains=frozenset({"twitter.com", "x.com", "t.co"}),
        apps=frozenset({"com.twitter.android"}),
    ),
    CatalogueEntry(
        "LinkedIn",
        16,
        "%linkedin.com%",
        domains=frozenset({"linkedin.com", "lnkd.in"}),
        apps=frozenset({"com.linkedin.android"}),
    ),
    CatalogueEntry(
        "Facebook",
        17,
        "%facebook.com%",
        domains=frozenset({"facebook.com", "fb.com", "fb.me"}),
        # Facebook, Facebook Lite and Messenger.
        apps=frozenset({"com.facebook.katana", "com.facebook.lite", "com.facebook.orca"}),
    ),
    CatalogueEntry(
        "DuckDuckGo", None, None, labels=frozenset({"duckduckgo"}), domains=frozenset({"ddg.gg"})
    ),
    CatalogueEntry("Baidu", None, None, labels=frozenset({"baidu"})),
    CatalogueEntry(
        "Yandex", None, None, labels=frozenset({"yandex"}), domains=frozenset({"ya.ru"})
    ),
    CatalogueEntry(
        "Instagram",
        None,
        None,
        domains=frozenset({"instagram.com", "ig.me", "instagr.am"}),
        apps=frozenset({"com.instagram.android"}),
    ),
    CatalogueEntry("YouTube", None, None, domains=frozenset({"youtube.com", "youtu.be"})),
    CatalogueEntry("Reddit", None, None, domains=frozenset({"reddit.com", "redd.it"})),
    CatalogueEntry("TikTok", None, None, domains=frozenset({"tiktok.com"})),
    CatalogueEntry(
        "Pinterest", None, None, labels=frozenset({"pinterest"}), domains=frozenset({"pin.it"})
    ),
)

_BY_NAME = {entry.name.lower(): entry for entry in CATALOGUE}
_BY_LABEL = {label: entry for entry in CATALOGUE for label in entry.labels}
_BY_DOMAIN = {domain: entry for entry in CATALOGUE for domain in entry.domains}
_BY_APP = {app: entry for entry in CATALOGUE for app in entry.apps}


def _hosts_under() -> dict[str, tuple[tuple[str, CatalogueEntry], ...]]:
    """Catalogue hosts by the registrable domain they sit in (search.msn.com under msn.com)."""
    found: dict[str, tuple[tuple[str, CatalogueEntry], ...]] = {}
    for entry in CATALOGUE:
        for host in sorted(entry.hosts):
            under = ".".join(host.split(".")[-2:])
            found[under] = (*found.get(under, ()), (host, entry))
    return found


_HOSTS_UNDER = _hosts_under()


def catalogue_entry(name: str) -> CatalogueEntry | None:
    """The catalogue entry called ``name`` (any case), or ``None``."""
    return _BY_NAME.get(name.strip().lower())


class RuleKind(enum.Enum):
    """What a ``referrer_domain`` value means."""

    ANY = "any"
    CATALOGUE = "catalogue"
    PATTERN = "pattern"
    DOMAIN = "domain"


@dataclass(frozen=True, slots=True)
class ReferrerRule(Frozen):
    """A parsed ``referrer_domain``.

    ``value`` is the canonical form: ``Any``, the catalogue name (``Google``),
    the lower-cased pattern (``%google.%``) or the ASCII (punycode) domain.
    """

    kind: RuleKind
    value: str
    glob: Glob | None = None

    @property
    def description(self) -> str:
        """What the rule accepts, in words, for explanations and lint messages."""
        if self.kind is RuleKind.ANY:
            return "Any (every visit, direct ones included)"
        if self.kind is RuleKind.CATALOGUE:
            entry = _BY_NAME[self.value.lower()]
            return f"{entry.name} ({entry.description}, and their subdomains)"
        if self.kind is RuleKind.DOMAIN:
            return f"{self.value} or a subdomain of it"
        return f"a host matching the pattern {self.value}"

    @property
    def is_any(self) -> bool:
        """True for ``Any``/``*``, which matches every visit, direct ones included."""
        return self.kind is RuleKind.ANY

    def matches(self, host: str | None, referrer_class: str | None) -> bool:
        """Does this rule match a visit from ``host`` (normalised, or ``None`` if direct)?

        ``referrer_class`` is the catalogue name of ``host`` as given by
        :func:`classify_host`; passing it lets a caller classify a host once for
        many rules.
        """
        kind = self.kind
        if kind is RuleKind.ANY:
            return True
        if host is None:
            return False
        if kind is RuleKind.CATALOGUE:
            return referrer_class == self.value
        if kind is RuleKind.DOMAIN:
            value = self.value
            return host == value or host.endswith("." + value)
        assert self.glob is not None
        return self.glob.matches(host)


_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_PATTERN_CHARS = re.compile(r"^[a-z0-9.\-*%_]+$")
_CATALOGUE_NAMES = ", ".join(["Any", *(e.name for e in CATALOGUE)])


def parse_referrer_domain(value: str) -> ReferrerRule:
    """Read a ``referrer_domain`` value, raising ``ValueError`` with a plain reason.

    ``Any``/``*`` (any case), a catalogue name (any case), a wildcard host
    pattern (contains ``%`` or ``*``), or a domain with a known public suffix.
    """
    if not isinstance(value, str):
        raise ValueError("referrer_domain must be a string")
    text = value.strip()
    if not text:
        raise ValueError("referrer_domain is empty; use Any to match every visitor")
    lowered = text.lower()
    if lowered in ("any", "*"):
        return ReferrerRule(RuleKind.ANY, "Any")
    entry = _BY_NAME.get(lowered)
    if entry is not None:
        return ReferrerRule(RuleKind.CATALOGUE, entry.name)
    if "*" in lowered or "%" in lowered:
        if not _PATTERN_CHARS.match(lowered):
            raise ValueError(
                f"wildcard pattern {text!r} may contain only letters, digits, '.', '-' and "
                "the wildcards '*' or '%'"
            )
        return ReferrerRule(RuleKind.PATTERN, lowered, Glob.compile(lowered))
    if "/" in lowered or ":" in lowered:
        raise ValueError(f"{text!r} looks like a URL; write the host only, e.g. 'example.org'")
    host = _to_ascii_host(lowered)
    if host is None or "." not in host or not all(_LABEL.match(lbl) for lbl in host.split(".")):
        raise ValueError(
            f"{text!r} is neither a known referrer ({_CATALOGUE_NAMES}) nor a valid domain"
        )
    ext = _extractor()(host)
    if not ext.suffix:
        raise ValueError(f"{text!r} does not end in a known public suffix (such as .com or .co.uk)")
    if not ext.domain:
        raise ValueError(f"{text!r} is a public suffix, not a domain anyone can register")
    return ReferrerRule(RuleKind.DOMAIN, host)


@functools.cache
def _extractor() -> tldextract.TLDExtract:
    # suffix_list_urls=() and cache_dir=None: only the bundled snapshot, no
    # network, no files written.
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


def _to_ascii_host(host: str) -> str | None:
    host = host.strip().rstrip(".").lower()
    if not host:
        return None
    if host.isascii():
        return host
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError):
        return None


def referrer_host(referrer: object) -> str | None:
    """Normalise an HTTP referrer (a URL or a bare host) to its host, or ``None``.

    Lower-cased, IDNA-encoded to ASCII, port, credentials and trailing dot
    dropped. ``https://www.Google.co.uk:443/search`` and ``www.google.co.uk``
    both give ``www.google.co.uk``. Empty, unparseable or binary referrers,
    URIs without a host (``about:blank``) and IP-v6 literals give ``None``: the
    visit counts as direct. Only the first 4 KB are read. Never raises.
    """
    if not referrer or not isinstance(referrer, str):
        return None
    try:
        if len(referrer) > _MAX_REFERRER_READ:
            referrer = referrer[:_MAX_REFERRER_READ]
        return _referrer_host(referrer)
    except Exception:  # a malformed referrer must never reach the host application
        return None


_MAX_REFERRER_READ = 4096
_MAX_HOST_LENGTH = 253
# scheme ":" — a bare "host:port" also looks like this, told apart by the digits.
_SCHEME = re.compile(r"[a-zA-Z][a-zA-Z0-9+.\-]*:")
_AUTHORITY_END = re.compile(r"[/?#\\]")


@functools.lru_cache(maxsize=4096)
def _referrer_host(referrer: str) -> str | None:
    text = referrer.strip()
    scheme = _SCHEME.match(text)
    if scheme is not None:
        rest = text[scheme.end() :]
        if rest.startswith(("//", "\\\\")):
            text = rest[2:]
        elif rest[:1].isdigit():
            pass  # "host:8080/path": a bare host with a port
        else:
            return None  # about:blank, data:..., mailto:...: no host
    elif text.startswith(("//", "\\\\")):
        text = text[2:]
    end = _AUTHORITY_END.search(text)
    authority = text if end is None else text[: end.start()]
    host = authority.rpartition("@")[2]
    if host.startswith("["):
        return None  # IPv6 literal: never a catalogue member or a configured domain
    ascii_host = _to_ascii_host(host.partition(":")[0])
    if ascii_host is None or len(ascii_host) > _MAX_HOST_LENGTH:
        return None  # longer than DNS allows: not a real host
    return ascii_host


@functools.lru_cache(maxsize=8192)
def classify_host(host: str | None) -> str | None:
    """The catalogue name (``'Google'``...) that ``host`` belongs to, or ``None``.

    Uses the registrable domain, so ``www.google.co.uk`` is Google and
    ``google.com.evil.net`` is not. The host of an ``android-app://`` referrer is
    the app's package name: a catalogued app (``com.google.android.googlequicksearchbox``)
    is its network. Cached (bounded).
    """
    if host is None:
        return None
    app = _BY_APP.get(host)
    if app is not None:
        return app.name
    registrable = registrable_domain(host)
    if registrable is None:
        return None
    entry = _BY_DOMAIN.get(registrable) or _BY_LABEL.get(registrable.partition(".")[0])
    if entry is None:
        for member, owner in _HOSTS_UNDER.get(registrable, ()):
            if host == member or host.endswith("." + member):
                return owner.name
        return None
    return entry.name


def registrable_domain(host: str | None, *, private: bool = False) -> str | None:
    """The registrable domain of ``host`` by the Public Suffix List, or ``None``.

    ``www.google.co.uk`` -> ``google.co.uk``; a bare public suffix, an IP
    address or a dotless name has none. With ``private``, the list's private
    section counts too, as browsers count it for "same site":
    ``shop.github.io`` -> ``shop.github.io`` rather than ``github.io``.
    """
    if not host:
        return None
    ext = _extractor()(host, include_psl_private_domains=private)
    if not ext.suffix or not ext.domain:
        return None
    return f"{ext.domain}.{ext.suffix}"
