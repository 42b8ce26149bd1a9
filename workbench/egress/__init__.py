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

import ssl
from collections.abc import Iterable
from types import ModuleType
from typing import Any

import httpx
import httpx2

from workbench.egress.addresses import (  # noqa: F401 - the public API
    Target,
    allowlist,
    check_url,
    forbidden_reason,
    instance_allowlist,
    is_redirect,
    override_resolver,
    parse_url,
    register_allow_source,
    resolve,
    resolve_sync,
    set_resolver,
)
from workbench.egress.contract import (  # noqa: F401 - the public API
    CODES,
    DEFAULT_ALLOW,
    DEFAULT_MAX_BYTES,
    EgressError,
    Flavor,
    Httpx2EgressError,
    HttpxEgressError,
    Resolver,
    Timeouts,
    find_egress_error,
)
from workbench.egress.transports import (  # noqa: F401 - the public API
    Httpx2AsyncTransport,
    Httpx2SyncTransport,
    HttpxAsyncTransport,
    HttpxSyncTransport,
    _AsyncGuard,
    _Guard,
    _SyncGuard,
    shared_ssl_context,
)

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
