"""The egress guard (workbench/egress.py) against real local HTTP(S) servers and the real SDKs.

"Zero requests" is counted as zero TCP connections accepted, which is stronger than zero requests.
No database is used.
"""

from __future__ import annotations

import datetime
import gzip
import ipaddress
import json
import logging
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import anthropic
import groq
import httpx
import httpx2
import ollama
import openai
import pytest

from workbench import egress
from workbench.egress import EgressError, Timeouts

CANARY = "sk-canary-7f3b9e1d2c4a"
MODULES = {"httpx": httpx, "httpx2": httpx2}


# --- A tiny upstream that counts what reaches it ---------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so connection pooling is exercised
    server: Upstream

    def log_message(self, *args):
        pass

    def do_GET(self):
        self._answer()

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._answer()

    def _answer(self):
        self.server.requests.append((self.path, dict(self.headers)))
        path, _, query = self.path.partition("?")
        if path == "/redirect":
            self._reply(307, b"", {"Location": query})
        elif path == "/declared-big":
            self._reply(200, b"", {"Content-Length": str(10**9)})
        elif path == "/gzip":
            self._reply(200, gzip.compress(b"x" * 1000), {"Content-Encoding": "gzip"})
        elif path in ("/big", "/v1/chat/completions"):
            self._start({"Content-Type": "text/event-stream"})
            chunk = b'data: {"choices": []}\n\n' * 400  # ~9.6 KB
            for _ in range(20):
                self.wfile.write(chunk)
        elif path in ("/drip", "/stall"):
            self._start({"Content-Type": "text/plain"})
            until = time.monotonic() + 3
            while not self.server.stop.is_set() and time.monotonic() < until:
                if path == "/drip":
                    self.wfile.write(b".")
                    self.wfile.flush()
                self.server.stop.wait(0.05)
        else:  # a model list every SDK can parse
            body = {"object": "list", "data": [], "has_more": False, "first_id": None}
            self._reply(200, json.dumps({**body, "last_id": None, "models": []}).encode())

    def _reply(self, status, body, headers=None):
        self.send_response(status)
        for name, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _start(self, headers):  # a body without a length: it ends when the connection closes
        self.close_connection = True
        self.send_response(200)
        for name, value in {**headers, "Connection": "close"}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.flush()


class Upstream(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, tls: ssl.SSLContext | None = None):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.connections = 0
        self.requests: list[tuple[str, dict]] = []
        self.stop = threading.Event()
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}).start()

    def handle_error(self, request, client_address):
        pass  # clients hanging up on /drip, /stall and /big is what those tests do

    def verify_request(self, request, client_address):
        self.connections += 1
        return True

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def authority(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self):
        self.stop.set()
        self.shutdown()
        self.server_close()


@pytest.fixture(scope="module")
def servers():
    pair = Upstream(), Upstream()
    yield pair
    for server in pair:
        server.close()


@pytest.fixture
def upstream(servers):
    """An upstream that tests allowlist or expect to be refused."""
    servers[0].connections, servers[0].requests = 0, []
    return servers[0]


@pytest.fixture
def internal(servers):
    """An internal service nothing may reach."""
    servers[1].connections, servers[1].requests = 0, []
    return servers[1]


@pytest.fixture(params=["httpx", "httpx2"])
def flavor(request) -> str:
    return request.param


def names(table: dict[str, list[str]], calls: list[str] | None = None):
    """An injected resolver: `table` is the whole DNS."""

    def resolve(host: str) -> list[str]:
        if calls is not None:
            calls.append(host)
        if host not in table:
            raise socket.gaierror(f"{host} is not in the test DNS")
        return table[host]

    return resolve


# --- Internal targets get nothing ------------------------------------------------------------------

INTERNAL_HOSTS = [
    "127.0.0.1",
    "127.0.0.2",
    "[::ffff:127.0.0.1]",  # IPv4-mapped
    "[::7f00:1]",  # IPv4-compatible
    "[64:ff9b::7f00:1]",  # NAT64
    "[2002:7f00:1::]",  # 6to4
    "2130706433",  # decimal
    "0x7f000001",  # hex
    "0x7f.0.0.1",
    "127.1",  # short form
    "[::1]",
    "[fe80::1]",
    "169.254.169.254",  # cloud metadata
    "[::ffff:169.254.169.254]",
    "10.0.0.1",
    "172.16.0.1",
    "192.168.1.1",
    "100.64.0.1",  # CGNAT
    "0.0.0.0",
    "0.1.2.3",
    "[::]",
    "[fd00::1]",
    "224.0.0.1",
    "255.255.255.255",
]


@pytest.mark.parametrize("host", INTERNAL_HOSTS)
async def test_internal_addresses_are_refused_before_any_connection(flavor, upstream, host):
    async with egress.async_client(flavor=flavor, allow=[]) as client:
        with pytest.raises(EgressError) as excinfo:
            await client.get(f"http://{host}:{upstream.port}/")

    assert excinfo.value.code == "egress_denied"
    assert isinstance(excinfo.value, MODULES[flavor].RequestError)
    assert upstream.connections == 0


async def test_refusals_are_logged_with_host_port_and_reason_only(upstream, caplog):
    caplog.set_level(logging.DEBUG)
    async with egress.async_client(flavor="httpx2", allow=[]) as client:
        with pytest.raises(EgressError) as excinfo:
            await client.get(
                f"http://10.9.8.7:{upstream.port}/secret-path?key={CANARY}",
                headers={"Authorization": f"Bearer {CANARY}"},
            )
    assert f"host=10.9.8.7 port={upstream.port} reason=private" in caplog.text
    for text in (caplog.text, str(excinfo.value)):
        assert CANARY not in text
        assert "secret-path" not in text


async def test_octal_ipv4_is_read_the_way_inet_aton_reads_it(flavor, upstream):
    url = f"http://0177.0.0.1:{upstream.port}/"
    with pytest.raises(EgressError) as excinfo:
        egress.check_url(url, allow=[])
    assert excinfo.value.code == "egress_denied"

    async with egress.async_client(flavor=flavor, allow=[]) as client:
        with pytest.raises((EgressError, MODULES[flavor].InvalidURL)):  # httpx refuses it too
            await client.get(url)
    assert upstream.connections == 0


async def test_a_name_resolving_to_a_private_address_is_refused(flavor, upstream):
    resolver = names({"sneaky.example": ["127.0.0.1"], "intranet.example": ["10.1.2.3"]})
    async with egress.async_client(flavor=flavor, resolver=resolver, allow=[]) as client:
        for host in ("sneaky.example", "intranet.example"):
            with pytest.raises(EgressError) as excinfo:
                await client.get(f"http://{host}:{upstream.port}/")
            assert excinfo.value.code == "egress_denied"
            assert host in str(excinfo.value)
    assert upstream.connections == 0


async def test_a_name_resolving_to_one_public_and_one_private_address_is_refused(flavor, upstream):
    resolver = names({"rebind.example": ["93.184.216.34", "127.0.0.1"]})
    async with egress.async_client(flavor=flavor, resolver=resolver, allow=[]) as client:
        with pytest.raises(EgressError) as excinfo:
            await client.get(f"http://rebind.example:{upstream.port}/")
    assert excinfo.value.code == "egress_denied"
    assert upstream.connections == 0


async def test_a_redirect_to_an_internal_target_is_returned_never_followed(
    flavor, upstream, internal
):
    async with egress.async_client(flavor=flavor, allow=[upstream.authority]) as client:
        url = f"http://{upstream.authority}/redirect?http://{internal.authority}/"
        response = await client.get(url)
        assert response.status_code == 307
        assert egress.is_redirect(response)

        # Even a caller asking to follow gets the next hop checked like any request.
        with pytest.raises(EgressError) as excinfo:
            await client.get(url, follow_redirects=True)
        assert excinfo.value.code == "egress_denied"

    assert len(upstream.requests) == 2
    assert internal.connections == 0


# --- Allowlisted targets work, connected by IP ------------------------------------------------------


async def test_an_allowlisted_ip_and_port_is_reached(flavor, upstream):
    async with egress.async_client(flavor=flavor, allow=[upstream.authority]) as client:
        response = await client.get(f"http://{upstream.authority}/models")
    assert response.status_code == 200
    assert upstream.requests[0][1]["Host"] == upstream.authority


async def test_an_allowlisted_name_is_resolved_once_and_keeps_its_host_header(flavor, upstream):
    calls: list[str] = []
    resolver = names({"ollama.internal": ["127.0.0.1"]}, calls)
    allow = [f"ollama.internal:{upstream.port}"]
    async with egress.async_client(flavor=flavor, resolver=resolver, allow=allow) as client:
        response = await client.get(f"http://ollama.internal:{upstream.port}/api/tags")

    assert response.status_code == 200
    assert str(response.request.url).startswith("http://ollama.internal:")  # caller's view intact
    assert calls == ["ollama.internal"]
    headers = upstream.requests[0][1]
    assert headers["Host"] == f"ollama.internal:{upstream.port}"
    assert headers["Accept-Encoding"] == "identity"


async def test_the_allowlist_matches_only_the_named_port(flavor, upstream):
    async with egress.async_client(flavor=flavor, allow=["127.0.0.1:1"]) as client:
        with pytest.raises(EgressError):
            await client.get(f"http://{upstream.authority}/")
    assert upstream.connections == 0


def test_an_ip_allowlist_entry_covers_other_spellings_of_that_ip():
    target = egress.check_url("http://2130706433:8080/v1", allow=["127.0.0.1:8080"])
    assert (target.host, target.port, str(target.ip)) == ("2130706433", 8080, "127.0.0.1")


def test_the_instance_allowlist_comes_from_settings(settings):
    localhost = names({"localhost": ["::1", "127.0.0.1"]})
    del settings.WORKBENCH_EGRESS_ALLOW  # works before the setting exists: Ollama's default
    assert egress.check_url("http://localhost:11434", resolver=localhost).ips == (
        "::1",
        "127.0.0.1",
    )
    with pytest.raises(EgressError):
        egress.check_url("http://localhost:11435", resolver=localhost)

    settings.WORKBENCH_EGRESS_ALLOW = ["llm.lan:8000"]
    egress.check_url("http://LLM.lan:8000/v1", resolver=names({"llm.lan": ["192.168.1.20"]}))
    with pytest.raises(EgressError):
        egress.check_url("http://localhost:11434", resolver=localhost)


async def test_the_resolver_can_be_overridden_globally_for_tests(flavor, upstream):
    with egress.override_resolver(names({"api.test": ["127.0.0.1"]})):
        async with egress.async_client(
            flavor=flavor, allow=[f"api.test:{upstream.port}"]
        ) as client:
            response = await client.get(f"http://api.test:{upstream.port}/")
    assert response.status_code == 200
    with pytest.raises(EgressError) as excinfo:
        egress.check_url("http://api.test/")
    assert excinfo.value.code == "unresolvable"


async def test_a_refused_address_is_skipped_for_the_next_checked_one(flavor, upstream):
    port = upstream.port
    resolver = names({"dual.lan": ["::1", "127.0.0.1"]})  # nothing listens on [::1]:port
    async with egress.async_client(
        flavor=flavor, resolver=resolver, allow=[f"dual.lan:{port}"]
    ) as client:
        response = await client.get(f"http://dual.lan:{port}/")
    assert response.status_code == 200


# --- Bad URLs --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "",
        "ftp://example.com/",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "http://user:hunter2@example.com/",
        "http://example.com@127.0.0.1/",
        "http:///path",
        "http://exa mple.com/",
        "http://example.com\n/",
        "http://example.com:99999/",
        "http://example.com:0/",
        "http://example.com:-1/",
        "http://example.com:80a/",
        "http://[::1/",
        "http://[fe80::1%25eth0]/",
        "http://999.1.1.1/",
        "http://1.2.3.4.5/",
        "http://exa$mple.com/",
        "http://example.com\\@127.0.0.1/",
    ],
)
def test_malformed_urls_are_refused_without_echoing_them(url, caplog):
    caplog.set_level(logging.DEBUG)
    with pytest.raises(EgressError) as excinfo:
        egress.parse_url(url)
    assert excinfo.value.code == "bad_url"
    assert "hunter2" not in str(excinfo.value)
    assert "hunter2" not in caplog.text


def test_urls_are_normalised():
    assert egress.parse_url("HTTPS://Example.COM/v1") == egress.Target("https", "example.com", 443)
    assert egress.parse_url("http://bücher.de:8080").host == "xn--bcher-kva.de"
    assert egress.parse_url("http://[::1]:11434").authority == "[::1]:11434"
    assert str(egress.parse_url("http://0x7f.1/").ip) == "127.0.0.1"
    assert egress.parse_url("http://1e100.net/").ip is None  # a name, not a number


def test_public_addresses_pass_including_mapped_forms_of_public_ipv4():
    for address in ("93.184.216.34", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"):
        assert egress.forbidden_reason(ipaddress.ip_address(address)) is None


def test_a_name_that_does_not_resolve_is_unresolvable():
    for resolver in (names({}), names({"empty.example": []})):
        with pytest.raises(EgressError) as excinfo:
            egress.check_url("https://empty.example/", resolver=resolver)
        assert excinfo.value.code == "unresolvable"


# --- Size and time limits --------------------------------------------------------------------------


async def test_a_body_over_max_bytes_is_cut_off_while_streaming(flavor, upstream):
    async with (
        egress.async_client(flavor=flavor, allow=[upstream.authority], max_bytes=50_000) as client,
        client.stream("GET", f"http://{upstream.authority}/big") as response,
    ):
        assert response.status_code == 200
        received = 0
        with pytest.raises(EgressError) as excinfo:
            async for chunk in response.aiter_bytes():
                received += len(chunk)
    assert excinfo.value.code == "response_too_large"
    assert received <= 50_000


async def test_a_declared_length_over_max_bytes_is_refused_before_reading(flavor, upstream):
    async with egress.async_client(flavor=flavor, allow=[upstream.authority]) as client:
        with pytest.raises(EgressError) as excinfo:
            await client.get(f"http://{upstream.authority}/declared-big")
    assert excinfo.value.code == "response_too_large"


async def test_a_compressed_body_is_refused_because_its_size_cannot_be_bounded(flavor, upstream):
    async with egress.async_client(flavor=flavor, allow=[upstream.authority]) as client:
        with pytest.raises(EgressError) as excinfo:
            await client.get(f"http://{upstream.authority}/gzip")
    assert excinfo.value.code == "bad_response"


async def test_a_slow_drip_hits_the_total_deadline(flavor, upstream):
    timeouts = Timeouts(read=2.0, total=0.4)
    started = time.monotonic()
    async with egress.async_client(
        flavor=flavor, allow=[upstream.authority], timeout=timeouts
    ) as client:
        with pytest.raises(EgressError) as excinfo:
            await client.get(f"http://{upstream.authority}/drip")
    assert excinfo.value.code == "deadline_exceeded"
    assert time.monotonic() - started < 1.5


async def test_a_stall_hits_the_read_timeout(flavor, upstream):
    timeouts = Timeouts(read=0.3, total=5.0)
    async with egress.async_client(
        flavor=flavor, allow=[upstream.authority], timeout=timeouts
    ) as client:
        with pytest.raises(MODULES[flavor].ReadTimeout):
            await client.get(f"http://{upstream.authority}/stall", timeout=60)  # ours still win


# --- Sync clients (webhooks) -----------------------------------------------------------------------


def test_the_sync_client_applies_the_same_guard(flavor, upstream, internal):
    timeouts = Timeouts(read=0.3, total=0.4)
    with egress.sync_client(
        flavor=flavor, allow=[upstream.authority], max_bytes=50_000, timeout=timeouts
    ) as client:
        assert client.get(f"http://{upstream.authority}/").status_code == 200
        assert client.get(
            f"http://{upstream.authority}/redirect?http://{internal.authority}/"
        ).is_redirect
        with pytest.raises(EgressError) as excinfo:
            client.get(f"http://{internal.authority}/")
        assert excinfo.value.code == "egress_denied"
        with pytest.raises(EgressError) as excinfo:
            client.get(f"http://{upstream.authority}/big")
        assert excinfo.value.code == "response_too_large"
        with pytest.raises(EgressError) as excinfo:
            client.get(f"http://{upstream.authority}/drip")
        assert excinfo.value.code == "deadline_exceeded"
    assert internal.connections == 0


# --- TLS: connect to the IP, verify the name ---------------------------------------------------------


def _certificate(tmp_path, name: str) -> tuple[str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False
        )
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, False, False, False),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


async def test_https_connects_to_the_ip_but_verifies_the_certificate_against_the_name(
    flavor, tmp_path
):
    cert, key = _certificate(tmp_path, "api.example.test")
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    sni: list[str | None] = []
    server_tls.sni_callback = lambda _socket, name, _context: sni.append(name)
    server = Upstream(tls=server_tls)
    try:
        resolver = names({"api.example.test": ["127.0.0.1"], "other.example.test": ["127.0.0.1"]})
        allow = [f"api.example.test:{server.port}", f"other.example.test:{server.port}"]
        client = egress.async_client(
            flavor=flavor,
            resolver=resolver,
            allow=allow,
            verify=ssl.create_default_context(cafile=cert),
        )
        async with client:
            response = await client.get(f"https://api.example.test:{server.port}/")
            assert response.status_code == 200
            assert sni == ["api.example.test"]
            assert server.requests[0][1]["Host"] == f"api.example.test:{server.port}"

            # Same IP, other name: the verified connection to api.example.test is not reused,
            # and a certificate that doesn't name other.example.test is rejected.
            with pytest.raises(MODULES[flavor].ConnectError, match="certificate"):
                await client.get(f"https://other.example.test:{server.port}/")
        assert len(server.requests) == 1
    finally:
        server.close()


# --- Through the real SDKs ---------------------------------------------------------------------------


def _openai(url, **egress_kwargs):
    client = egress.async_client(flavor="httpx2", **egress_kwargs)
    sdk = openai.AsyncOpenAI(
        base_url=f"{url}/v1", api_key=CANARY, http_client=client, max_retries=0
    )
    return sdk, sdk.models.list


def _anthropic(url, **egress_kwargs):
    client = egress.async_client(flavor="httpx2", **egress_kwargs)
    sdk = anthropic.AsyncAnthropic(base_url=url, api_key=CANARY, http_client=client, max_retries=0)
    return sdk, sdk.models.list


def _groq(url, **egress_kwargs):
    client = egress.async_client(flavor="httpx", **egress_kwargs)
    sdk = groq.AsyncGroq(base_url=url, api_key=CANARY, http_client=client, max_retries=0)
    return sdk, sdk.models.list


def _ollama(url, **egress_kwargs):
    headers = {"Authorization": f"Bearer {CANARY}"}
    sdk = ollama.AsyncClient(
        host=url, headers=headers, **egress.ollama_client_kwargs(**egress_kwargs)
    )
    return sdk, sdk.list


SDKS = {"openai": _openai, "anthropic": _anthropic, "groq": _groq, "ollama": _ollama}
CONNECTION_ERRORS = {
    "openai": openai.APIConnectionError,
    "anthropic": anthropic.APIConnectionError,
    "groq": groq.APIConnectionError,
    "ollama": egress.HttpxEgressError,  # ollama lets transport errors through as they are
}


@pytest.mark.parametrize("sdk_name", SDKS)
async def test_sdks_refuse_a_forbidden_address_with_the_egress_error_in_the_chain(
    sdk_name, upstream, caplog
):
    caplog.set_level(logging.DEBUG)
    sdk, call = SDKS[sdk_name](f"http://{upstream.authority}", allow=[])

    with pytest.raises(CONNECTION_ERRORS[sdk_name]) as excinfo:
        await call()
    await sdk.close()

    error = egress.find_egress_error(excinfo.value)
    assert error is not None and error.code == "egress_denied"
    assert error in (excinfo.value, excinfo.value.__cause__)
    assert upstream.connections == 0
    chain = [excinfo.value, excinfo.value.__cause__, excinfo.value.__context__]
    assert all(CANARY not in str(exc) for exc in chain)
    assert CANARY not in caplog.text


@pytest.mark.parametrize("sdk_name", SDKS)
async def test_sdks_reach_an_allowlisted_address(sdk_name, upstream, caplog):
    caplog.set_level(logging.DEBUG)
    sdk, call = SDKS[sdk_name](f"http://{upstream.authority}", allow=[upstream.authority])
    await call()
    await sdk.close()
    assert len(upstream.requests) == 1
    assert CANARY in json.dumps(upstream.requests[0][1])  # the key header went through
    assert CANARY not in caplog.text


async def test_a_limit_hit_inside_an_sdk_stream_surfaces_as_the_egress_error(upstream):
    sdk, _ = _openai(f"http://{upstream.authority}", allow=[upstream.authority], max_bytes=30_000)
    stream = await sdk.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    with pytest.raises(openai.APIConnectionError) as excinfo:  # openai wraps mid-stream too
        async for _ in stream:
            pass
    await sdk.close()
    error = egress.find_egress_error(excinfo.value)
    assert error is not None and error.code == "response_too_large"
