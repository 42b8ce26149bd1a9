"""API fuzzing (issue 7, "make the class impossible"): schemathesis generates requests for every
operation of `/api/schema/` — valid and invalid bodies, odd parameters, foreign and huge ids —
and sends them as an authenticated member (bob, a read-write token) of a team with real objects.
Every answer must be a non-5xx that conforms to the schema (status code, content type, body).

In-process through Django's WSGI handler, inside the test's transaction: fast, and nothing
leaves the machine (the egress guard refuses every address here). Examples are bounded per
operation so the run stays well under a minute."""

from __future__ import annotations

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from chats import services as chat_services
from providers import services as provider_services
from workbench.egress import EgressError

MAX_EXAMPLES = 8  # per operation
# No 5xx; status code, content type, headers and body as documented; no operation that ignores
# a wrong token. (Not schemathesis's "positive data accepted" / "negative data rejected": those
# judge validation strictness — DRF reads "0" as a name — not robustness.)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    ignored_auth,
]


@pytest.fixture
def fuzz_world(alice, team, bob_teammate, vera_viewer, charlie_outsider):
    """Objects of every kind bob may see (and some he may not), so generated ids sometimes hit."""
    team_echo = provider_services.credential_create(
        actor=alice, preset="echo", name="Acme echo", owner_team=team
    )
    bob_echo = provider_services.credential_create(actor=bob_teammate, preset="echo", name="bob")
    for actor, owner, credential in ((alice, team, team_echo), (bob_teammate, None, bob_echo)):
        conversation = chat_services.conversation_start(
            actor=actor, owner_team=owner, credential=credential, model="echo"
        )
        chat_services.message_send(
            actor=actor, conversation=conversation, parent_id=None, content="hello"
        )
    provider_services.credential_create(actor=charlie_outsider, preset="echo", name="charlie")


@pytest.fixture
def bob_token(bob_teammate, token_for) -> str:
    return token_for(bob_teammate, "write")


@pytest.fixture(autouse=True)
def _no_failed_token_throttle(monkeypatch):
    """schemathesis sends wrong tokens on purpose (to see them refused with 401); from one test
    address they would soon be throttled (429) instead. The throttle has its own tests."""
    from accounts import authentication, throttles

    monkeypatch.setattr(
        authentication, "FAILED_TOKENS", throttles.Limit("failed-token", limit=10**9, window=60)
    )


@pytest.fixture
def no_network(monkeypatch):
    """Generated base URLs must never reach the network: no DNS, every address refused."""
    from workbench.egress import transports

    def refuse(target, ips, allowed):
        raise EgressError("not in this test", code="egress_denied")

    async def addresses(target, resolver):
        return ["192.0.2.1"]

    monkeypatch.setattr(transports, "_decide", refuse)
    monkeypatch.setattr(transports, "_addresses_of", addresses)
    monkeypatch.setattr(transports, "_addresses_of_sync", lambda target, resolver: ["192.0.2.1"])


@pytest.fixture(autouse=True)
def _in_the_tests_transaction():
    """Django closes "old" connections as a request starts and ends; inside the test's
    transaction that would end it (Django's own test client disconnects them the same way)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


# Loaded at import through the app itself (the schema view needs no database).
APP = WSGIHandler()
schema = schemathesis.openapi.from_wsgi("/api/schema/", APP)


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_operation_answers_without_5xx_and_as_its_schema_says(
    case, fuzz_world, no_network, bob_token
):
    case.call_and_validate(headers={"Authorization": f"Bearer {bob_token}"}, checks=CHECKS)
