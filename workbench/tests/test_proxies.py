"""Client addresses (workbench/proxies.py): X-Forwarded-For counts only as far as the operator said
there are trusted proxies; IPv6 clients are counted by their /64."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from workbench.proxies import address_key, client_address


def request(remote: str, forwarded: str | None = None):
    headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
    return RequestFactory().get("/", REMOTE_ADDR=remote, headers=headers)


def test_without_a_proxy_the_header_is_ignored(settings):
    settings.WORKBENCH_TRUSTED_PROXIES = 0
    assert client_address(request("203.0.113.5", "198.51.100.1")) == "203.0.113.5"


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (1, "198.51.100.1", "198.51.100.1"),
        (1, "6.6.6.6, 198.51.100.1", "198.51.100.1"),  # the client wrote 6.6.6.6
        (2, "6.6.6.6, 198.51.100.1, 10.0.0.3", "198.51.100.1"),
        (2, "198.51.100.1", "10.0.0.1"),  # didn't come through both proxies: the socket
        (1, "", "10.0.0.1"),
        (1, "not-an-address", "10.0.0.1"),
        (1, " 2001:db8::1 ", "2001:db8::1"),
    ],
)
def test_behind_n_proxies_the_client_is_the_nth_entry_from_the_right(
    settings, proxies, forwarded, expected
):
    settings.WORKBENCH_TRUSTED_PROXIES = proxies
    assert client_address(request("10.0.0.1", forwarded)) == expected


def test_ipv6_clients_are_counted_by_their_64_and_mapped_ipv4_as_ipv4():
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:ffff::9")
    assert address_key("2001:db8:1:2::1") != address_key("2001:db8:1:3::1")
    assert address_key("::ffff:203.0.113.5") == "203.0.113.5"
    assert address_key("203.0.113.5") == "203.0.113.5"
