"""Where a request may go: one URL parser, address rules, resolving once, the allowlist."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import re
import socket
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

import anyio
import httpx
import httpx2
import idna

from workbench.egress.contract import *  # noqa: F403
from workbench.egress.contract import DEFAULT_ALLOW, EgressError, IPAddress, Resolver

log = logging.getLogger("workbench.egress")


@dataclass(frozen=True)
class Target:
    """A validated URL target. `host`: lower-case ASCII (IDNA), no brackets. `ip`: set when the host
    is an IP literal (in any inet_aton spelling). `ips`: the resolved set, filled by `check_url`."""

    scheme: str
    host: str
    port: int
    ip: IPAddress | None = None
    ips: tuple[str, ...] = ()

    @property
    def authority(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


_DEFAULT_PORTS = {"http": 80, "https": 443}
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f-\x9f]")
_HOSTNAME = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?")
_NUMERIC_LABEL = re.compile(r"0x[0-9a-f]*|[0-9]+")
_PORT = re.compile(r"(?::[0-9]{0,5})?")


def _bad_url(reason: str) -> EgressError:
    # Never echo the URL: userinfo, path and query can all carry credentials.
    log.info("egress: bad URL (%s)", reason)
    return EgressError(f"Invalid URL: {reason}.", code="bad_url")


def parse_url(url: str) -> Target:
    """Parse and validate an outbound URL (no DNS). Raises EgressError(code="bad_url")."""
    if not isinstance(url, str) or not url:
        raise _bad_url("it is empty")
    if _CONTROL_OR_SPACE.search(url):
        raise _bad_url("it contains whitespace or control characters")
    try:
        parts = urlsplit(url)
    except ValueError:
        raise _bad_url("it is malformed") from None
    scheme, netloc = parts.scheme.lower(), parts.netloc
    if scheme not in _DEFAULT_PORTS:
        raise _bad_url("only http and https URLs are allowed")
    if "@" in netloc:
        raise _bad_url("credentials in the URL are not allowed")
    if netloc.startswith("["):
        host, _, rest = netloc[1:].partition("]")
        try:
            ip: IPAddress | None = ipaddress.IPv6Address(host)
        except ValueError:
            raise _bad_url("the IPv6 address is malformed") from None
        if ip.scope_id:  # zone ids name local interfaces; nothing public needs one
            raise _bad_url("IPv6 zone ids are not allowed")
        host = str(ip)
    else:
        host, colon, rest = netloc.partition(":")
        rest = colon + rest
        try:  # the same IDNA encoding httpx puts on the wire
            host = host.lower() if host.isascii() else idna.encode(host.lower()).decode("ascii")
        except UnicodeError:
            raise _bad_url("the host name is not valid") from None
        if not _HOSTNAME.fullmatch(host):
            raise _bad_url("the host is missing or not a valid name")
        ip = _numeric_ipv4(host)
    if not _PORT.fullmatch(rest):
        raise _bad_url("the port is not a number")
    port = int(rest[1:]) if rest[1:] else _DEFAULT_PORTS[scheme]
    if not 1 <= port <= 65535:
        raise _bad_url("the port is out of range")
    return Target(scheme=scheme, host=host, port=port, ip=ip)


def _numeric_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The address a numeric host means to libc (getaddrinfo reads it with inet_aton), else None.

    A host whose last label is numeric but that inet_aton rejects (`999.1.1.1`) is refused rather
    than sent to DNS: parsers disagree on such hosts, and disagreement is how SSRF filters fail.
    """
    bare = host.removesuffix(".")
    if not _NUMERIC_LABEL.fullmatch(bare.rsplit(".", 1)[-1]):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(bare))
    except OSError:
        raise _bad_url("the numeric IPv4 address is malformed") from None


# --- Address policy ----------------------------------------------------------------------------------

_IPV4_NAMED = (
    (ipaddress.IPv4Network("0.0.0.0/8"), "this-network"),
    (ipaddress.IPv4Network("100.64.0.0/10"), "shared (CGNAT)"),
    (ipaddress.IPv4Network("255.255.255.255/32"), "broadcast"),
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64 or int(ip) >> 32 == 0:  # NAT64, and the deprecated IPv4-compatible ::a.b.c.d
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def forbidden_reason(ip: IPAddress) -> str | None:
    """Why connecting to `ip` is refused (a short reason for logs and messages), or None."""
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if isinstance(ip, ipaddress.IPv6Address) and (v4 := _embedded_ipv4(ip)) is not None:
        # Judge the IPv4 address the packets reach: ::ffff:8.8.8.8 is fine, ::ffff:127.0.0.1 and
        # 64:ff9b::a9fe:a9fe (the metadata service through NAT64) are not.
        reason = forbidden_reason(v4)
        return f"{reason} (IPv4 inside IPv6)" if reason else None
    for network, name in _IPV4_NAMED if isinstance(ip, ipaddress.IPv4Address) else ():
        if ip in network:
            return name
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:  # before is_global: ipaddress counts 224.0.0.0/4 as global
        return "multicast"
    if ip.is_private:
        return "private"
    if ip.is_reserved:
        return "reserved"
    return None if ip.is_global else "non-global"


# --- Resolution --------------------------------------------------------------------------------------

_resolver_override: Resolver | None = None


def set_resolver(resolver: Resolver | None) -> None:
    """Replace the system resolver for every client without its own (tests); None restores it."""
    global _resolver_override  # a test hook: one process-wide switch by design
    _resolver_override = resolver


@contextlib.contextmanager
def override_resolver(resolver: Resolver) -> Iterator[None]:
    """`with override_resolver({"api.test": ["127.0.0.1"]}.__getitem__): ...` (tests)."""
    previous = _resolver_override
    set_resolver(resolver)
    try:
        yield
    finally:
        set_resolver(previous)


def _unresolvable(host: str) -> EgressError:
    log.info("egress: %s does not resolve", host)
    return EgressError(f"{host} does not resolve to an address.", code="unresolvable", host=host)


def _addresses(host: str, raw: Iterable[str]) -> list[str]:
    try:
        ips = list(dict.fromkeys(str(ipaddress.ip_address(a)) for a in raw))
    except ValueError:
        ips = []
    if not ips:
        raise _unresolvable(host)
    return ips


async def resolve(host: str, *, resolver: Resolver | None = None) -> list[str]:
    """Every address `host` resolves to, deduplicated, in resolver order: the injected resolver,
    else the global override, else the event loop's getaddrinfo. Raises code "unresolvable"."""
    if resolver or _resolver_override:
        return resolve_sync(host, resolver=resolver)
    try:
        infos = await anyio.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        raise _unresolvable(host) from None
    return _addresses(host, (str(info[4][0]) for info in infos))


def resolve_sync(host: str, *, resolver: Resolver | None = None) -> list[str]:
    """`resolve` for sync code (socket.getaddrinfo, blocking)."""
    try:
        if (injected := resolver or _resolver_override) is not None:
            return _addresses(host, injected(host) or ())
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, LookupError):
        raise _unresolvable(host) from None
    return _addresses(host, (str(info[4][0]) for info in infos))


async def _addresses_of(target: Target, resolver: Resolver | None) -> list[str]:
    return (
        [str(target.ip)] if target.ip is not None else await resolve(target.host, resolver=resolver)
    )


def _addresses_of_sync(target: Target, resolver: Resolver | None) -> list[str]:
    return (
        [str(target.ip)] if target.ip is not None else resolve_sync(target.host, resolver=resolver)
    )


# --- Decision ----------------------------------------------------------------------------------------

Allowlist = frozenset[tuple[str, int]]


# Entries added in the app (providers registers the superusers' list); the environment
# variable stays the base. `instance_allowlist()` reads them (sync code: it may query the
# database) and remembers the result for `allowlist(None)`, which async transports call.
_allow_sources: list[Callable[[], Iterable[str]]] = []
_last_extra: tuple[str, ...] = ()


def register_allow_source(source: Callable[[], Iterable[str]]) -> None:
    if source not in _allow_sources:
        _allow_sources.append(source)


def _base_allow() -> Iterable[str]:
    from django.conf import settings

    if settings.configured:
        return getattr(settings, "WORKBENCH_EGRESS_ALLOW", DEFAULT_ALLOW)
    return DEFAULT_ALLOW


def instance_allowlist() -> tuple[str, ...]:
    """The instance allowlist now: WORKBENCH_EGRESS_ALLOW plus the entries added in the app.
    Call it from sync code (before the event loop work) and pass it on as `allow`."""
    global _last_extra
    extra: list[str] = []
    for source in _allow_sources:
        extra += list(source())
    _last_extra = tuple(extra)
    base = _base_allow()
    base = base.split(",") if isinstance(base, str) else list(base)
    return tuple(dict.fromkeys([*base, *extra]))


def allowlist(allow: Iterable[str] | None = None) -> Allowlist:
    """(host, port) pairs from "host:port" strings; None: `settings.WORKBENCH_EGRESS_ALLOW` plus
    the app's entries as last read by `instance_allowlist()`.
    An IP entry also matches other spellings of that IP ("127.0.0.1:80" covers 2130706433:80)."""
    if allow is None:
        base = _base_allow()
        base = base.split(",") if isinstance(base, str) else list(base)
        allow = [*base, *_last_extra]
    pairs: set[tuple[str, int]] = set()
    for entry in (e.strip() for e in (allow.split(",") if isinstance(allow, str) else allow)):
        if not entry:
            continue
        target = None
        if re.search(r":[0-9]+$", entry):  # an explicit port: no silent default of 80
            with contextlib.suppress(EgressError):
                target = parse_url(f"http://{entry}")
        if target is None:
            log.warning("egress: ignoring allowlist entry %r (not host:port)", entry)
            continue
        pairs.add((target.host, target.port))
        if target.ip is not None:
            pairs.add((str(target.ip), target.port))
    return frozenset(pairs)


HOW_TO_ALLOW = (
    "To allow it, a superuser adds {} under Settings → Egress allowlist (or the operator "
    "adds it to WORKBENCH_EGRESS_ALLOW)."
)


def _decide(target: Target, ips: list[str], allowed: Allowlist) -> None:
    """Pass if the allowlist names the target, else refuse (egress_denied) if any address is
    forbidden. Allowlisted hosts skip the address check only: they are still connected by IP."""
    if (target.host, target.port) in allowed:
        return
    if target.ip is not None and (str(target.ip), target.port) in allowed:
        return
    for ip in ips:
        if (reason := forbidden_reason(ipaddress.ip_address(ip))) is not None:
            log.warning(
                "egress refused: host=%s port=%s reason=%s", target.host, target.port, reason
            )
            # The reason (loopback, private, metadata…) stays in the log: telling users which
            # kind of address an internal name resolves to maps the network for them.
            raise EgressError(
                f"Workbench is not allowed to connect to {target.authority}. "
                f"{HOW_TO_ALLOW.format(target.authority)}",
                code="egress_denied",
                host=target.host,
                port=target.port,
            )


def check_url(
    url: str, *, resolver: Resolver | None = None, allow: Iterable[str] | None = None
) -> Target:
    """Validate, resolve and decide without connecting (forms use it to reject a base URL early).
    Blocks on DNS (async code: `sync_to_async`). Raises EgressError."""
    target = parse_url(url)
    ips = _addresses_of_sync(target, resolver)
    _decide(target, ips, allowlist(allow))
    return replace(target, ips=tuple(ips))


def is_redirect(response: httpx.Response | httpx2.Response) -> bool:
    """True for a 3xx other than 304. Never followed here; adapters report it as an error."""
    return 300 <= response.status_code < 400 and response.status_code != 304


# --- Transports --------------------------------------------------------------------------------------
