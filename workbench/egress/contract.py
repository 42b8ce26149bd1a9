"""What callers of the egress guard see: the error type and its codes, the limits."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

import httpx
import httpx2

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
