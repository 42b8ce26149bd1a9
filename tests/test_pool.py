"""No provider wait holds a database connection (issue 7, "Medium 2"; DESIGN §5).

A real Daphne with a small connection pool (3, waiting at most 3 s for a free one). bob starts
seven model calls against a provider that takes 10 s to answer — on every path that calls a model:
REST JSON and SSE, the chat's REST JSON and SSE, the chat websocket. While they wait, alice's
pages and API calls must answer as usual: before the fix each REST call kept its request's pooled
connection for the whole provider wait, the pool ran dry and every other page failed with
PoolTimeout (500) after the pool timeout."""

from __future__ import annotations

import asyncio
import json
import statistics
import time

import httpx
import pytest
from django.conf import settings
from django.test import Client

from accounts import services as account_services
from chats import services as chat_services
from chats.models import Message, MessageStatus

POOL_SIZE = 3
POOL_TIMEOUT = 3.0  # seconds a request waits for a connection before PoolTimeout
PROVIDER_WAIT = 10.0  # seconds before the fake sends its first token
PAGES = ["/chat/", "/settings/providers/", "/api/usage/", "/api/conversations/", "/api/me/"]


def _cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


async def _timed_pages(client: httpx.AsyncClient) -> list[tuple[str, int, float]]:
    results = []
    for page in PAGES:
        started = time.perf_counter()
        response = await client.get(page)
        results.append((page, response.status_code, time.perf_counter() - started))
    return results


async def _slow_calls(address: str, token: str, cookie: str, credential_id: int, chats: list[int]):
    """Seven slow calls of bob's; returns what each ended with."""
    import websockets

    headers = {"Authorization": f"Bearer {token}"}
    completion = {
        "credential": credential_id,
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "take your time"}],
    }
    sse = {"Accept": "text/event-stream"}

    async def rest(body, extra=None):
        async with httpx.AsyncClient(base_url=f"http://{address}", timeout=60) as client:
            response = await client.post(
                "/api/completions", json=body, headers={**headers, **(extra or {})}
            )
            return response.status_code, response.text

    async def chat(conversation_id, stream):
        async with httpx.AsyncClient(base_url=f"http://{address}", timeout=60) as client:
            response = await client.post(
                f"/api/conversations/{conversation_id}/messages/",
                json={"content": "take your time", "stream": stream},
                headers={**headers, **(sse if stream else {})},
            )
            return response.status_code, response.text

    async def socket(conversation_id):
        async with websockets.connect(
            f"ws://{address}/ws/chat/{conversation_id}/",
            origin=f"http://{address}",
            additional_headers={"Cookie": cookie},
        ) as ws:
            assert json.loads(await ws.recv())["type"] == "hello"
            await ws.send(json.dumps({"type": "send", "content": "take your time"}))
            while (frame := json.loads(await asyncio.wait_for(ws.recv(), 60)))["type"] != "final":
                pass
            return frame["status"], ""

    return await asyncio.gather(
        rest(completion),
        rest(completion),
        rest({**completion, "stream": True}, sse),
        rest({**completion, "stream": True}, sse),
        chat(chats[0], stream=False),
        chat(chats[1], stream=True),
        socket(chats[2]),
        return_exceptions=True,
    )


async def _scenario(address, fake_provider, alice_cookie, bob_token, bob_cookie, credential, chats):
    async with httpx.AsyncClient(
        base_url=f"http://{address}", headers={"Cookie": alice_cookie}, timeout=30
    ) as alice:
        before = await _timed_pages(alice)  # warm-up and the normal speed
        before = await _timed_pages(alice)
        calls = asyncio.create_task(
            _slow_calls(address, bob_token, bob_cookie, credential.pk, chats)
        )
        started = time.monotonic()
        while len(fake_provider.requests) < 7 and time.monotonic() < started + 5:
            await asyncio.sleep(0.05)  # until every call waits on the provider
        waiting = len(fake_provider.requests)
        during = []
        while time.monotonic() < started + PROVIDER_WAIT - 1:
            during += await _timed_pages(alice)
        ended = await calls
    return before, during, waiting, ended


@pytest.mark.django_db(transaction=True)
def test_other_users_pages_answer_while_one_user_waits_on_slow_calls_on_every_path(
    alice, bob_teammate, token_for, make_credential, fake_provider, daphne
):
    credential = make_credential(bob_teammate, "openai")
    chats = [
        chat_services.conversation_start(actor=bob_teammate, credential=credential, model="m").pk
        for _ in range(3)
    ]
    account_services.team_create(user=alice, name="Alice's own")  # a page with some content
    fake_provider.configure(ttft=PROVIDER_WAIT, reply="All done.")
    _process, address = daphne(
        WORKBENCH_DB_POOL_MIN="1",
        WORKBENCH_DB_POOL_MAX=str(POOL_SIZE),
        WORKBENCH_DB_POOL_TIMEOUT=str(POOL_TIMEOUT),
    )

    before, during, waiting, ended = asyncio.run(
        _scenario(
            address,
            fake_provider,
            _cookie(alice),
            token_for(bob_teammate, "write"),
            _cookie(bob_teammate),
            credential,
            chats,
        )
    )

    failed = [(page, status) for page, status, _ in during if status != 200]
    slowest = max(seconds for *_, seconds in during)
    print(
        f"alice's pages before: median {statistics.median(s for *_, s in before) * 1000:.0f} ms; "
        f"during bob's 7 slow calls: median {statistics.median(s for *_, s in during) * 1000:.0f} "
        f"ms, slowest {slowest * 1000:.0f} ms over {len(during)} loads, {len(failed)} failed; "
        f"{waiting} calls waiting on the provider"
    )
    assert waiting == 7, f"only {waiting} of bob's calls reached the provider: {ended}"
    assert not failed, f"alice's pages failed while bob waited on the provider: {failed}"
    assert slowest < POOL_TIMEOUT  # nobody waited for a connection
    # bob's calls all finished normally once the provider answered.
    for status, body in ended[:2]:
        assert status == 200 and json.loads(body)["text"] == "All done.", body
    for status, body in ended[2:4]:
        assert status == 200 and "event: finished" in body, body
    assert ended[4][0] == 201 and json.loads(ended[4][1])["reply"]["status"] == "complete"
    assert ended[5][0] == 200 and '"status": "complete"' in ended[5][1]
    assert ended[6][0] == MessageStatus.COMPLETE
    assert Message.objects.filter(role="assistant", status=MessageStatus.COMPLETE).count() == 3
