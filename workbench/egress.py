"""The one outbound HTTP layer: provider SDKs, webhooks and URL ingestion all connect through it.

Contract (DESIGN §3 "egress guard", §5):

- one URL parser (`parse_url`): http/https only, no userinfo; numeric IPv4 hosts are read the way
  inet_aton/getaddrinfo read them (`2130706433`, `0x7f.1`, `0177.0.0.1`, `127.1`);
- resolve once, decide on the whole resolved set (one forbidden address refuses the request) and
  connect to a checked IP, never re-resolving (DNS rebinding);
- loopback, private, link-local (cloud metadata), CGNAT, multicast, unspecified and reserved
  addresses, also inside IPv4-mapped/compatible, 6to4 and NAT64 IPv6, are refused unless the
  instance allowlist (`settings.WORKBENCH_EGRESS_ALLOW`, "host:port" strings) names the host:port;
- redirects are never followed; response size and time are bounded;
- nothing here logs or echoes a header, body, path, query or credential: only host, port, reason.

Each SDK brings its own httpx flavour:

    openai.AsyncOpenAI(api_key=k, base_url=u, max_retries=0, http_client=async_client(flavor="httpx2"))
    anthropic.AsyncAnthropic(api_key=k, base_url=u, max_retries=0, http_client=async_client(flavor="httpx2"))
    groq.AsyncGroq(api_key=k, base_url=u, max_retries=0, http_client=async_client(flavor="httpx"))
    ollama.AsyncClient(host=u, **ollama_client_kwargs())
    with sync_client(flavor="httpx") as client: client.post(webhook_url, json=payload)

Errors: every refusal or limit is an `EgressError` with a stable `code` (CODES). The transports raise
the flavour's subclass (`HttpxEgressError`/`Httpx2EgressError`), which is also that flavour's
`RequestError`: openai, anthropic and groq then raise their `APIConnectionError` with the EgressError
as `__cause__` (openai 3.x only wraps httpx errors: a plain exception would escape unwrapped);
ollama lets it through as is. Limits hit while a streamed body is read (`response_too_large`,
`deadline_exceeded`) come out of the SDK's iterator wrapped by openai, raw from anthropic and groq.
Map every case with `find_egress_error(exc)`. Idle, connect and write timeouts stay the flavour's
own `TimeoutException`s (the SDKs' `APITimeoutError`).
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import logging
import math
import re
import socket
import ssl
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from types import ModuleType
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

import anyio
import httpx
import httpx2
import idna

log = logging.getLogger(__name__)

Flavor = Literal["httpx", "httpx2"]
# host -> IP strings; raises OSError (or returns nothing) for a name it doesn't know.
Resolver = Callable[[str], Iterable[str]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_MAX_BYTES = 16 * 1024 * 1024
DEFAULT_ALLOW = ["localhost:11434"]  # Ollama's default address
CODES = (
    "bad_url",
    "unresolvable",
    "egress_denied",
    "response_too_large",
    "deadline_exceeded",
    "bad_response",  # compressed although identity was asked for: its size can't be bounded
)


class EgressError(Exception):
    """A refusal or a limit hit. `code` is one of CODES; the message names at most host and port."""

    def __init__(self, message: str, *, code: str, host: str = "", port: int | None = None):
        super().__init__(message)
        self.code, self.host, self.port = code, host, port


class HttpxEgressError(EgressError, httpx.RequestError):
    """Raised by the `httpx` transports; an httpx.RequestError so SDKs chain it, not lose it."""


class Httpx2EgressError(EgressError, httpx2.RequestError):
    """Raised by the `httpx2` transports (openai, anthropic)."""


def find_egress_error(exc: BaseException | None) -> EgressError | None:
    """The EgressError in `exc`'s cause/context chain (SDKs wrap transport errors), or None."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, EgressError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


@dataclass(frozen=True)
class Timeouts:
    """Seconds. `read` is the idle time allowed between bytes; `total` bounds the whole exchange
    (resolve, connect, headers, body). A request never gets longer limits than these, whatever
    timeout an SDK passes per request."""

    connect: float = 5.0
    read: float = 60.0
    write: float = 30.0
    pool: float = 10.0
    total: float = 600.0

    def for_flavor(self, mod: ModuleType) -> Any:
        return mod.Timeout(connect=self.connect, read=self.read, write=self.write, pool=self.pool)


# --- Parsing -----------------------------------------------------------------------------------------


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


def allowlist(allow: Iterable[str] | None = None) -> Allowlist:
    """(host, port) pairs from "host:port" strings; None: `settings.WORKBENCH_EGRESS_ALLOW`.
    An IP entry also matches other spellings of that IP ("127.0.0.1:80" covers 2130706433:80)."""
    if allow is None:
        from django.conf import settings

        allow = DEFAULT_ALLOW
        if settings.configured:
            allow = getattr(settings, "WORKBENCH_EGRESS_ALLOW", DEFAULT_ALLOW)
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
            raise EgressError(
                f"Refusing to connect to {target.authority}: it resolves to a {reason} address "
                "and is not on the egress allowlist.",
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


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """One verifying TLS context for every client. Building one loads the CA bundle (~20 ms);
    a context is safe to share between connections and threads."""
    return ssl.create_default_context()


class _Guard:
    """What the four transports share: policy, the request rewrite, the response limits."""

    _mod: ClassVar[ModuleType]
    _error: ClassVar[type[EgressError]]

    def __init__(
        self,
        *,
        timeouts: Timeouts | None = None,
        max_bytes: int | None = None,
        resolver: Resolver | None = None,
        allow: Iterable[str] | None = None,
        verify: ssl.SSLContext | bool = True,
    ):
        self.timeouts = timeouts or Timeouts()
        self.max_bytes = DEFAULT_MAX_BYTES if max_bytes is None else max_bytes
        self.resolver = resolver
        self.allowed = allowlist(allow)
        self._verify = verify
        # https pools are kept per host name: one pool keyed by IP would let a connection whose
        # certificate was verified for one name carry requests for another name on that IP.
        self._pools: dict[str, Any] = {}
        self._pools_lock = threading.Lock()  # a sync client may be shared by worker threads

    def _pool(self, target: Target, factory: Callable[..., Any]) -> Any:
        key = target.host if target.scheme == "https" else ""
        with self._pools_lock:
            if key not in self._pools:
                verify = shared_ssl_context() if self._verify is True else self._verify
                self._pools[key] = factory(retries=0, verify=verify)
            return self._pools[key]

    def _fail(self, code: str, target: Target) -> EgressError:
        what = {
            "response_too_large": f"is larger than {self.max_bytes} bytes",
            "deadline_exceeded": f"took longer than {self.timeouts.total:g} s",
            "bad_response": "is compressed although none was asked for",
        }[code]
        log.warning("egress stopped: host=%s port=%s reason=%s", target.host, target.port, code)
        message = f"The response from {target.authority} {what}."
        return self._error(message, code=code, host=target.host, port=target.port)

    def _flavored(self, exc: EgressError) -> EgressError:
        if isinstance(exc, self._error):
            return exc
        return self._error(str(exc), code=exc.code, host=exc.host, port=exc.port)

    def _rewrite(self, request: Any, target: Target, ip: str, left: float) -> Any:
        """A copy of `request` aimed at `ip`; the caller's request stays as it was (SDKs log it)."""
        headers = request.headers.copy()  # the Host header keeps the name, not the IP
        headers.setdefault("Host", request.url.netloc.decode("ascii"))
        # The size bound is on what the caller ends up holding. A compressed body could inflate a
        # thousandfold past it, so ask for none and refuse one sent anyway (`_check_head`).
        headers["Accept-Encoding"] = "identity"
        extensions = dict(request.extensions)
        given = extensions.get("timeout") or {}
        extensions["timeout"] = {
            key: min(
                v for v in (getattr(self.timeouts, key), given.get(key), left) if v is not None
            )
            for key in ("connect", "read", "write", "pool")
        }
        if target.scheme == "https":  # httpcore verifies the certificate against this name
            extensions["sni_hostname"] = target.host if target.ip is None else str(target.ip)
        else:
            extensions.pop("sni_hostname", None)
        url = request.url.copy_with(host=ip)
        return self._mod.Request(
            request.method, url, headers=headers, stream=request.stream, extensions=extensions
        )

    def _check_head(self, response: Any, target: Target) -> EgressError | None:
        if response.headers.get("content-encoding", "").strip().lower() not in ("", "identity"):
            return self._fail("bad_response", target)
        length = response.headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_bytes:
            return self._fail("response_too_large", target)
        return None


class _AsyncBody:
    """The response stream with the byte budget and the total deadline enforced per chunk."""

    def __init__(self, inner: Any, guard: _Guard, target: Target, deadline: float):
        self._inner, self._guard, self._target, self._deadline = inner, guard, target, deadline

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunks, used = aiter(self._inner), 0
        idle = self._guard.timeouts.read
        while True:
            chunk = None
            if self._deadline - time.monotonic() > idle:
                # The socket's idle timeout fires before the deadline could: no cancel scope
                # needed (it costs more than anything else per chunk).
                chunk = await anext(chunks, None)
            else:
                with anyio.CancelScope(deadline=self._deadline) as scope:
                    chunk = await anext(chunks, None)
                if scope.cancelled_caught:
                    raise self._guard._fail("deadline_exceeded", self._target)
            if chunk is None:
                return
            used += len(chunk)
            if used > self._guard.max_bytes:
                raise self._guard._fail("response_too_large", self._target)
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


class _SyncBody:
    """Sync twin of _AsyncBody. A blocking read can't be interrupted, so the deadline is checked
    between chunks; each read was capped at the time left when the request was sent."""

    def __init__(self, inner: Any, guard: _Guard, target: Target, deadline: float):
        self._inner, self._guard, self._target, self._deadline = inner, guard, target, deadline

    def __iter__(self) -> Iterator[bytes]:
        used = 0
        for chunk in self._inner:
            if time.monotonic() > self._deadline:
                raise self._guard._fail("deadline_exceeded", self._target)
            used += len(chunk)
            if used > self._guard.max_bytes:
                raise self._guard._fail("response_too_large", self._target)
            yield chunk

    def close(self) -> None:
        self._inner.close()


class _AsyncGuard(_Guard):
    _body: ClassVar[type[_AsyncBody]]

    async def handle_async_request(self, request: Any) -> Any:
        """Parse, resolve once, decide, send to the first reachable checked address (e.g. [::1]
        refused, then 127.0.0.1). Never follows a redirect: a 3xx comes back as it is."""
        deadline = anyio.current_time() + self.timeouts.total
        try:
            target, response = parse_url(str(request.url)), None
            with anyio.CancelScope(deadline=deadline):
                ips = await _addresses_of(target, self.resolver)
                _decide(target, ips, self.allowed)
                pool = self._pool(target, self._mod.AsyncHTTPTransport)
                *others, last = ips
                for ip in others:
                    with contextlib.suppress(self._mod.ConnectError):
                        response = await pool.handle_async_request(
                            self._rewrite(request, target, ip, math.inf)
                        )
                        break
                else:
                    response = await pool.handle_async_request(
                        self._rewrite(request, target, last, math.inf)
                    )
            if response is None:
                raise self._fail("deadline_exceeded", target)
            if (problem := self._check_head(response, target)) is not None:
                await response.aclose()
                raise problem
        except EgressError as exc:
            raise self._flavored(exc) from None
        response.stream = self._body(response.stream, self, target, deadline)
        return response

    async def aclose(self) -> None:
        for pool in self._pools.values():
            await pool.aclose()


class _SyncGuard(_Guard):
    _body: ClassVar[type[_SyncBody]]

    def handle_request(self, request: Any) -> Any:
        """Sync twin of `_AsyncGuard.handle_async_request` (webhook deliveries)."""
        deadline = time.monotonic() + self.timeouts.total
        try:
            target = parse_url(str(request.url))
            ips = _addresses_of_sync(target, self.resolver)
            _decide(target, ips, self.allowed)
            pool = self._pool(target, self._mod.HTTPTransport)
            *others, last = ips
            for ip in others:
                with contextlib.suppress(self._mod.ConnectError):
                    response = pool.handle_request(
                        self._rewrite(request, target, ip, _left(deadline))
                    )
                    break
            else:
                response = pool.handle_request(
                    self._rewrite(request, target, last, _left(deadline))
                )
            if (problem := self._check_head(response, target)) is not None:
                response.close()
                raise problem
        except EgressError as exc:
            raise self._flavored(exc) from None
        response.stream = self._body(response.stream, self, target, deadline)
        return response

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()


def _left(deadline: float) -> float:
    return max(deadline - time.monotonic(), 0.001)


# httpx checks the stream's type, so each flavour needs its own subclass.
_HttpxAsyncBody = type("_HttpxAsyncBody", (_AsyncBody, httpx.AsyncByteStream), {})
_Httpx2AsyncBody = type("_Httpx2AsyncBody", (_AsyncBody, httpx2.AsyncByteStream), {})
_HttpxSyncBody = type("_HttpxSyncBody", (_SyncBody, httpx.SyncByteStream), {})
_Httpx2SyncBody = type("_Httpx2SyncBody", (_SyncBody, httpx2.SyncByteStream), {})


class HttpxAsyncTransport(_AsyncGuard, httpx.AsyncBaseTransport):
    """The guard as an `httpx` async transport (groq, ollama). Same keywords as `async_client`."""

    _mod, _error, _body = httpx, HttpxEgressError, _HttpxAsyncBody


class Httpx2AsyncTransport(_AsyncGuard, httpx2.AsyncBaseTransport):
    """The guard as an `httpx2` async transport (openai, anthropic)."""

    _mod, _error, _body = httpx2, Httpx2EgressError, _Httpx2AsyncBody


class HttpxSyncTransport(_SyncGuard, httpx.BaseTransport):
    _mod, _error, _body = httpx, HttpxEgressError, _HttpxSyncBody


class Httpx2SyncTransport(_SyncGuard, httpx2.BaseTransport):
    _mod, _error, _body = httpx2, Httpx2EgressError, _Httpx2SyncBody


# --- Clients -----------------------------------------------------------------------------------------

_FLAVORS: dict[str, tuple[ModuleType, type[_AsyncGuard], type[_SyncGuard]]] = {
    "httpx": (httpx, HttpxAsyncTransport, HttpxSyncTransport),
    "httpx2": (httpx2, Httpx2AsyncTransport, Httpx2SyncTransport),
}


def async_client(
    *,
    flavor: Flavor,
    timeout: Timeouts | None = None,
    max_bytes: int | None = None,
    resolver: Resolver | None = None,
    allow: Iterable[str] | None = None,
    headers: Any = None,
    verify: ssl.SSLContext | bool = True,
) -> Any:
    """An `httpx.AsyncClient` or `httpx2.AsyncClient` whose every request passes the guard.
    `allow` None: the instance allowlist, read now. `verify`: for private CAs and tests.
    No redirects; trust_env=False, so no proxy or credentials come from the environment."""
    mod, transport, _ = _FLAVORS[flavor]
    options = {"max_bytes": max_bytes, "resolver": resolver, "allow": allow, "verify": verify}
    return _client(mod.AsyncClient, transport, timeout or Timeouts(), headers, options)


def sync_client(
    *,
    flavor: Flavor,
    timeout: Timeouts | None = None,
    max_bytes: int | None = None,
    resolver: Resolver | None = None,
    allow: Iterable[str] | None = None,
    headers: Any = None,
    verify: ssl.SSLContext | bool = True,
) -> Any:
    """The sync twin of `async_client` (webhook deliveries in a worker)."""
    mod, _, transport = _FLAVORS[flavor]
    options = {"max_bytes": max_bytes, "resolver": resolver, "allow": allow, "verify": verify}
    return _client(mod.Client, transport, timeout or Timeouts(), headers, options)


def _client(
    cls: Any, transport: type[_Guard], timeouts: Timeouts, headers: Any, options: dict
) -> Any:
    return cls(
        transport=transport(timeouts=timeouts, **options),
        timeout=timeouts.for_flavor(transport._mod),
        follow_redirects=False,
        trust_env=False,
        headers=headers,
    )


def ollama_client_kwargs(
    *,
    timeout: Timeouts | None = None,
    max_bytes: int | None = None,
    resolver: Resolver | None = None,
    allow: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Keywords for `ollama.AsyncClient(host=url, **ollama_client_kwargs())`.

    ollama builds its own `httpx.AsyncClient(base_url=host, follow_redirects=True, timeout=None,
    **kwargs)`, so it takes our transport rather than a client; its redirect and timeout defaults
    are overridden here."""
    timeouts = timeout or Timeouts()
    guard = HttpxAsyncTransport(
        timeouts=timeouts, max_bytes=max_bytes, resolver=resolver, allow=allow
    )
    return {
        "transport": guard,
        "timeout": timeouts.for_flavor(httpx),
        "follow_redirects": False,
        "trust_env": False,
    }
