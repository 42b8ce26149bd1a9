"""Who is on the other end of a request: the client address, honouring X-Forwarded-For only as far
as the operator said there are trusted proxies (`WORKBENCH_BEHIND_PROXY`, a count).

Every throttle keys on `client_address`. With no proxy configured the header is ignored: anyone
can send it, so trusting it would let an attacker rotate it to dodge a throttle, or spoof a
victim's address to lock them out.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings


def client_address(request) -> str:
    """The client's IP address. Behind N trusted proxies, each appends the address it received
    the request from to X-Forwarded-For, so the client is the N-th entry from the right; anything
    further left was written by the client and proves nothing. A header with fewer entries than
    proxies did not come through all of them: we fall back to the socket address."""
    remote = request.META.get("REMOTE_ADDR", "") or ""
    proxies = settings.WORKBENCH_TRUSTED_PROXIES
    if not proxies:
        return remote
    entries = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    entries = [entry for entry in entries if entry]
    if len(entries) < proxies:
        return remote
    candidate = entries[-proxies]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote


def address_key(address: str) -> str:
    """What a per-address throttle counts: the address itself for IPv4, the /64 network for IPv6
    (one subscriber usually gets a whole /64, so counting single IPv6 addresses would let one
    person rotate through billions of them)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address or "unknown"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ip.ipv4_mapped)
    return str(ip)
