"""The gateway (issue 11): the real openai and anthropic SDKs and LangChain's ChatOpenAI over
real HTTP against a real Daphne serving the test database, the fake provider upstream."""

from __future__ import annotations

import base64
import json
from decimal import Decimal

import anthropic
import httpx
import openai
import pytest

from billing.models import Budget, UsageRecord
from providers.models import ModelAlias, ProviderModel
from tests import servers

REPLY = "The gateway speaks every dialect, token by token."
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def gateway_server(django_db_setup, django_db_blocker, fake_provider_server, tmp_path_factory):
    """One Daphne for the module, on the test database, the fake provider let through."""
    env = servers.daphne_env(
        WORKBENCH_EGRESS_ALLOW=f"127.0.0.1:{fake_provider_server.port}",
        WORKBENCH_TOKEN_CACHE_SECONDS="0",  # tests revoke and recreate tokens freely
    )
    process, port = servers.start_daphne(env, tmp_path_factory.mktemp("gw") / "daphne.log")
    yield f"http://127.0.0.1:{port}"
    servers.stop(process)


@pytest.fixture
def gateway(gateway_server, fake_provider):
    fake_provider.configure(reply=REPLY)
    return gateway_server


def oai(url: str, token: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=token, max_retries=0)


def claude(url: str, token: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=f"{url}/anthropic", api_key=token, max_retries=0)


@pytest.fixture
def alice_openai(alice, make_credential):
    credential = make_credential(alice, "openai", name="Work OpenAI")
    ProviderModel.objects.create(credential=credential, model_id="gpt-4o-mini")
    return credential


def test_the_openai_sdk_streams_text_and_usage_through_the_gateway(
    gateway, alice, alice_openai, token_for
):
    client = oai(gateway, token_for(alice, "write"))
    stream = client.chat.completions.create(
        model="work-openai/gpt-4o-mini",
        messages=[{"role": "user", "content": "Say something"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage, finish = [], None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            text.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    assert "".join(text) == REPLY
    assert finish == "stop"
    assert usage.completion_tokens > 0 and usage.prompt_tokens > 0
    record = UsageRecord.objects.get()
    assert record.feature == "api"
    assert (record.output_tokens, record.input_tokens) == (
        usage.completion_tokens,
        usage.prompt_tokens,
    )
    assert record.status == "ok"


def test_the_openai_sdk_gets_a_whole_completion_with_usage(
    gateway, alice, alice_openai, token_for, fake_provider
):
    reply = oai(gateway, token_for(alice, "write")).chat.completions.create(
        model="work-openai/gpt-4o-mini",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        stop=["\n\n"],
        seed=7,
        temperature=0.2,
        response_format={"type": "json_object"},
    )
    assert reply.choices[0].message.content == REPLY
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    assert reply.model == "work-openai/gpt-4o-mini"
    sent = fake_provider.requests[-1].body
    assert sent["seed"] == 7 and sent["stop"] == ["\n\n"]
    assert sent["response_format"] == {"type": "json_object"}
    assert sent["model"] == "gpt-4o-mini"


def test_the_anthropic_sdk_streams_and_gets_whole_messages_through_the_gateway(
    gateway, alice, alice_openai, token_for
):
    client = claude(gateway, token_for(alice, "write"))
    with client.messages.stream(
        model="work-openai/gpt-4o-mini",
        max_tokens=200,
        system="Be brief.",
        messages=[{"role": "user", "content": "Say something"}],
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == REPLY
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0 and final.usage.input_tokens > 0
    whole = client.messages.create(
        model="work-openai/gpt-4o-mini",
        max_tokens=200,
        messages=[{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
    )
    assert whole.content[0].text == REPLY
    assert whole.usage.output_tokens == final.usage.output_tokens
    assert set(UsageRecord.objects.values_list("feature", flat=True)) == {"api"}


def test_langchain_chat_openai_streams_and_invokes_through_the_gateway(
    gateway, alice, alice_openai, token_for
):
    from langchain_openai import ChatOpenAI

    chat = ChatOpenAI(
        model="work-openai/gpt-4o-mini",
        base_url=f"{gateway}/v1",
        api_key=token_for(alice, "write"),
        max_retries=0,
        stream_usage=True,
    )
    chunks = list(chat.stream("Say something"))
    assert "".join(chunk.content for chunk in chunks) == REPLY
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    assert total.usage_metadata["output_tokens"] > 0
    assert chat.invoke("Again").content == REPLY


def test_a_budget_refusal_is_an_openai_insufficient_quota_429_naming_the_budget(
    gateway, alice, alice_openai, token_for
):
    # genai-prices' own price for gpt-4o ($10 per million output tokens; no override, which
    # the module's server would cache): $0.0001 buys 10 tokens, under the 64 a reply needs.
    budget = Budget(name="Tiny monthly", limit=Decimal("0.0001"))
    budget.set_owner(alice)
    budget.save()
    token = token_for(alice, "write")
    with pytest.raises(openai.RateLimitError) as raised:
        oai(gateway, token).chat.completions.create(
            model="work-openai/gpt-4o", messages=[{"role": "user", "content": "Hi"}]
        )
    error = raised.value
    assert error.status_code == 429
    assert error.code == "insufficient_quota" and error.type == "insufficient_quota"
    assert "Tiny monthly" in error.message
    assert error.body["budget"]["name"] == "Tiny monthly"
    assert error.response.headers["x-should-retry"] == "false"
    with pytest.raises(anthropic.APIStatusError) as raised:
        claude(gateway, token).messages.create(
            model="work-openai/gpt-4o",
            max_tokens=50,
            messages=[{"role": "user", "content": "Hi"}],
        )
    assert raised.value.status_code == 402
    assert raised.value.body["error"]["type"] == "billing_error"
    assert "Tiny monthly" in raised.value.body["error"]["message"]
    # Streaming too: the refusal comes before the stream starts, as an HTTP error.
    with pytest.raises(openai.RateLimitError):
        oai(gateway, token).chat.completions.create(
            model="work-openai/gpt-4o",
            messages=[{"role": "user", "content": "Hi"}],
            stream=True,
        )
    assert set(UsageRecord.objects.values_list("status", flat=True)) <= {"error"}


@pytest.fixture
def acme_openai(team, alice, make_credential):
    credential = make_credential(team, "openai", name="Acme OpenAI")
    ProviderModel.objects.create(credential=credential, model_id="gpt-4o-mini")
    return credential


def test_a_viewers_token_gets_403_on_a_team_model_and_a_member_gets_the_reply(
    gateway, acme_openai, vera_viewer, bob_teammate, token_for
):
    with pytest.raises(openai.PermissionDeniedError):
        oai(gateway, token_for(vera_viewer, "write")).chat.completions.create(
            model="acme-openai/gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}]
        )
    reply = oai(gateway, token_for(bob_teammate, "write")).chat.completions.create(
        model="acme-openai/gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}]
    )
    assert reply.choices[0].message.content == REPLY
    record = UsageRecord.objects.get(status="ok")
    assert record.team_id == acme_openai.owner_team_id and record.user_id == bob_teammate.pk


def test_an_outsiders_model_name_is_model_not_found_like_a_name_that_exists_nowhere(
    gateway, acme_openai, charlie_outsider, token_for
):
    client = oai(gateway, token_for(charlie_outsider, "write"))
    answers = []
    for name in ("acme-openai/gpt-4o-mini", "no-such-credential/gpt-4o-mini"):
        with pytest.raises(openai.NotFoundError) as raised:
            client.chat.completions.create(model=name, messages=[{"role": "user", "content": "Hi"}])
        assert raised.value.code == "model_not_found"
        answers.append(raised.value.message.replace(name, "NAME"))
    assert answers[0] == answers[1]
    with pytest.raises(anthropic.NotFoundError):
        claude(gateway, token_for(charlie_outsider, "write")).messages.create(
            model="acme-openai/gpt-4o-mini",
            max_tokens=10,
            messages=[{"role": "user", "content": "Hi"}],
        )
    assert not UsageRecord.objects.exists()


def test_models_lists_what_the_token_user_may_use_with_aliases(
    gateway, alice, alice_openai, acme_openai, vera_viewer, charlie_outsider, token_for
):
    ModelAlias.objects.create(
        owner_user=alice, name="fast", credential=alice_openai, model_id="gpt-4o-mini"
    )
    ModelAlias.objects.create(
        owner_team=acme_openai.owner_team,
        name="team-fast",
        credential=acme_openai,
        model_id="gpt-4o-mini",
    )
    listed = {m.id for m in oai(gateway, token_for(alice)).models.list()}
    assert listed == {"work-openai/gpt-4o-mini", "acme-openai/gpt-4o-mini", "fast", "team-fast"}
    assert {m.id for m in oai(gateway, token_for(vera_viewer)).models.list()} == set()
    assert {m.id for m in oai(gateway, token_for(charlie_outsider)).models.list()} == set()
    reply = oai(gateway, token_for(alice, "write")).chat.completions.create(
        model="team-fast", messages=[{"role": "user", "content": "Hi"}]
    )
    assert reply.choices[0].message.content == REPLY
    assert UsageRecord.objects.get().team_id == acme_openai.owner_team_id


def test_embeddings_through_the_gateway(gateway, alice, make_credential, token_for):
    credential = make_credential(alice, "openai", name="Embedder")
    result = oai(gateway, token_for(alice, "write")).embeddings.create(
        model="embedder/text-embedding-3-small", input=["one", "two"]
    )
    assert [item.index for item in result.data] == [0, 1]
    assert len(result.data[0].embedding) == 16
    assert result.usage.prompt_tokens > 0
    record = UsageRecord.objects.get()
    assert (record.operation, record.feature, record.credential_id) == (
        "embedding",
        "api",
        credential.pk,
    )


@pytest.mark.parametrize(
    "extra, param",
    [
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"frobnicate": 1}, "frobnicate"),
    ],
)
def test_parameters_the_gateway_cannot_honour_are_a_clear_400(
    gateway, alice, alice_openai, token_for, extra, param
):
    with pytest.raises(openai.BadRequestError) as raised:
        oai(gateway, token_for(alice, "write")).chat.completions.create(
            model="work-openai/gpt-4o-mini",
            messages=[{"role": "user", "content": "Hi"}],
            extra_body=extra,
        )
    assert raised.value.code == "unsupported_parameter"
    assert raised.value.param == param
    assert not UsageRecord.objects.exists()


def test_seed_and_response_format_are_refused_for_a_model_whose_adapter_lacks_them(
    gateway, alice, make_credential, token_for
):
    make_credential(alice, "anthropic", name="Claude")
    client = oai(gateway, token_for(alice, "write"))
    for extra in (
        {"seed": 1},
        {"response_format": {"type": "json_object"}},
        {"tools": [WEATHER]},
    ):
        with pytest.raises(openai.BadRequestError) as raised:
            client.chat.completions.create(
                model="claude/claude-3-5-haiku-latest",
                messages=[{"role": "user", "content": "Hi"}],
                **extra,
            )
        assert raised.value.param == next(iter(extra))
    reply = client.chat.completions.create(
        model="claude/claude-3-5-haiku-latest", messages=[{"role": "user", "content": "Hi"}]
    )
    assert reply.choices[0].message.content == REPLY


# --- Function tools and image parts ---------------------------------------------------------------

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather somewhere.",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["location"],
        },
    },
}
CLOCK = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}


def test_the_openai_sdk_streams_a_tool_call_and_the_loop_closes_with_its_result(
    gateway, fake_provider, alice, alice_openai, token_for
):
    client = oai(gateway, token_for(alice, "write"))
    question = [{"role": "user", "content": "Weather in Paris?"}]
    stream = client.chat.completions.create(
        model="work-openai/gpt-4o-mini",
        messages=question,
        tools=[WEATHER, CLOCK],
        stream=True,
        stream_options={"include_usage": True},
    )
    calls: dict[int, dict] = {}
    finish, usage, text = None, None, []
    for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            text.append(choice.delta.content or "")
            for piece in choice.delta.tool_calls or []:
                call = calls.setdefault(piece.index, {"id": "", "name": "", "arguments": ""})
                call["id"] += piece.id or ""
                call["name"] += (piece.function.name or "") if piece.function else ""
                call["arguments"] += (piece.function.arguments or "") if piece.function else ""
    assert finish == "tool_calls" and "".join(text) == ""
    [call] = calls.values()
    assert call["id"].startswith("call_fake") and call["name"] == "get_weather"
    assert json.loads(call["arguments"]) == {"location": "fake", "days": 1}
    assert usage.completion_tokens > 0
    sent = fake_provider.requests[-1].body
    assert [tool["function"]["name"] for tool in sent["tools"]] == ["get_weather", "get_time"]
    assert sent["tools"][0]["function"]["parameters"] == WEATHER["function"]["parameters"]
    # The result goes back; the model answers in text.
    reply = client.chat.completions.create(
        model="work-openai/gpt-4o-mini",
        messages=[
            *question,
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call["id"],
                        "type": "function",
                        "function": {"name": call["name"], "arguments": call["arguments"]},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": call["id"], "content": '{"temp_c": 21}'},
        ],
        tools=[WEATHER, CLOCK],
    )
    assert reply.choices[0].message.content == REPLY
    assert reply.choices[0].finish_reason == "stop"
    sent = fake_provider.requests[-1].body["messages"]
    assert sent[1]["tool_calls"][0]["id"] == call["id"] and sent[1]["content"] is None
    assert sent[2] == {"role": "tool", "tool_call_id": call["id"], "content": '{"temp_c": 21}'}
    rows = UsageRecord.objects.order_by("pk")
    assert [(row.status, row.feature) for row in rows] == [("ok", "api"), ("ok", "api")]


def test_a_whole_reply_carries_the_forced_tool_call(gateway, alice, alice_openai, token_for):
    reply = oai(gateway, token_for(alice, "write")).chat.completions.create(
        model="work-openai/gpt-4o-mini",
        messages=[{"role": "user", "content": "What time is it?"}],
        tools=[WEATHER, CLOCK],
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    [call] = choice.message.tool_calls
    assert (call.type, call.function.name, call.function.arguments) == (
        "function",
        "get_time",
        "{}",
    )
    assert call.id.startswith("call_fake")


@pytest.mark.parametrize(
    "extra, param",
    [
        ({"tools": [{"type": "function", "function": {"name": "no spaces"}}]}, "tools[0]"),
        ({"tools": [{"type": "retrieval"}]}, "tools[0]"),
        (
            {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "x"}}},
            "tool_choice",
        ),
        ({"tool_choice": "auto"}, "tool_choice"),
    ],
)
def test_malformed_tools_are_a_400_naming_the_field(
    gateway, alice, alice_openai, token_for, extra, param
):
    with pytest.raises(openai.BadRequestError) as raised:
        oai(gateway, token_for(alice, "write")).chat.completions.create(
            model="work-openai/gpt-4o-mini",
            messages=[{"role": "user", "content": "Hi"}],
            extra_body=extra,
        )
    assert raised.value.param == param
    assert not UsageRecord.objects.exists()


def _png(width: int = 6, height: int = 4) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), "red").save(out, "PNG")
    return out.getvalue()


def _image_part(data: bytes, media_type: str = "image/png") -> dict:
    url = f"data:{media_type};base64,{base64.b64encode(data).decode()}"
    return {"type": "image_url", "image_url": {"url": url, "detail": "low"}}


def test_image_parts_reach_a_vision_model_as_our_own_re_encoding(
    gateway, fake_provider, alice, alice_openai, token_for
):
    reply = oai(gateway, token_for(alice, "write")).chat.completions.create(
        model="work-openai/gpt-4o-mini",
        messages=[
            {
                "role": "user",
                "content": [{"type": "text", "text": "What is this?"}, _image_part(_png())],
            }
        ],
    )
    assert reply.choices[0].message.content == REPLY
    [text, image] = fake_provider.requests[-1].body["messages"][0]["content"]
    assert text == {"type": "text", "text": "What is this?"}
    url = image["image_url"]["url"]
    assert url.startswith("data:image/jpeg;base64,")  # re-encoded (no alpha → JPEG)
    assert base64.b64decode(url.split(",", 1)[1])[:3] == b"\xff\xd8\xff"


@pytest.mark.parametrize(
    "content, code",
    [
        ([_image_part(b"GIF89a not really")], "invalid_image"),
        (
            [{"type": "image_url", "image_url": {"url": "http://10.0.0.1/cat.png"}}],
            "image_url_not_supported",
        ),
        (
            [{"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}],
            "invalid_value",
        ),
        ([{"type": "input_audio", "input_audio": {}}], "invalid_value"),
    ],
)
def test_bad_image_parts_are_a_clear_400(
    gateway, fake_provider, alice, alice_openai, token_for, content, code
):
    with pytest.raises(openai.BadRequestError) as raised:
        oai(gateway, token_for(alice, "write")).chat.completions.create(
            model="work-openai/gpt-4o-mini", messages=[{"role": "user", "content": content}]
        )
    assert raised.value.code == code
    assert fake_provider.requests == [] and not UsageRecord.objects.exists()


def test_images_for_a_model_that_does_not_see_them_are_a_400(
    gateway, fake_provider, alice, alice_openai, token_for
):
    ProviderModel.objects.create(credential=alice_openai, model_id="gpt-3.5-turbo")
    client = oai(gateway, token_for(alice, "write"))
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(
            model="work-openai/gpt-3.5-turbo",
            messages=[{"role": "user", "content": [_image_part(_png())]}],
        )
    assert raised.value.code == "image_input_not_supported"
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(
            model="work-openai/gpt-4o-mini",
            messages=[
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": [_image_part(_png())]},
            ],
        )
    assert "only user messages carry images" in raised.value.message
    assert fake_provider.requests == [] and not UsageRecord.objects.exists()


def test_tokens_a_read_only_token_and_a_bad_token_are_refused(
    gateway, alice, alice_openai, token_for
):
    with pytest.raises(openai.PermissionDeniedError) as raised:
        oai(gateway, token_for(alice, "read")).chat.completions.create(
            model="work-openai/gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}]
        )
    assert raised.value.code == "read_only_token"
    with pytest.raises(openai.AuthenticationError):
        oai(gateway, "wb_not-a-token").models.list()
    answer = httpx.get(f"{gateway}/v1/models")
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "invalid_api_key"


def test_malformed_bodies_are_400_in_each_vendors_shape(gateway, alice, token_for):
    headers = {"Authorization": f"Bearer {token_for(alice, 'write')}"}
    answer = httpx.post(f"{gateway}/v1/chat/completions", content=b"{nope", headers=headers)
    assert answer.status_code == 400
    assert answer.json()["error"]["type"] == "invalid_request_error"
    answer = httpx.post(
        f"{gateway}/anthropic/v1/messages", json={"model": "x", "messages": []}, headers=headers
    )
    assert answer.status_code == 400
    assert answer.json()["type"] == "error"
    assert answer.json()["error"]["type"] == "invalid_request_error"
    answer = httpx.post(f"{gateway}/v1/chat/completions", json=[1, 2], headers=headers)
    assert answer.status_code == 400


def test_a_provider_error_mid_stream_arrives_in_band_and_the_row_says_error(
    gateway, alice, alice_openai, token_for, fake_provider
):
    fake_provider.configure(reply=REPLY, error_event_after=3)
    stream = oai(gateway, token_for(alice, "write")).chat.completions.create(
        model="work-openai/gpt-4o-mini",
        messages=[{"role": "user", "content": "Hi"}],
        stream=True,
    )
    received = []
    with pytest.raises(openai.APIError):
        for chunk in stream:
            received += [c.delta.content or "" for c in chunk.choices]
    assert REPLY.startswith("".join(received)) and received
    assert UsageRecord.objects.get().status == "error"


def test_a_client_that_leaves_mid_stream_is_recorded_as_disconnected(
    gateway, alice, alice_openai, token_for, fake_provider
):
    import time

    fake_provider.configure(reply_tokens=2000, tokens_per_second=100)
    with httpx.stream(
        "POST",
        f"{gateway}/v1/chat/completions",
        json={
            "model": "work-openai/gpt-4o-mini",
            "messages": [{"role": "user", "content": "Hi"}],
            "stream": True,
        },
        headers={"Authorization": f"Bearer {token_for(alice, 'write')}"},
    ) as answer:
        for line in answer.iter_lines():
            if line.startswith("data: {") and '"content":"' in line:
                break
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        record = UsageRecord.objects.get()
        if record.status != "running":
            break
        time.sleep(0.1)
    assert record.status == "disconnected"


def test_token_requests_to_the_rest_api_take_the_lean_path_and_sessions_the_full_one(
    gateway, alice, alice_openai, token_for, client_for
):
    token = {"Authorization": f"Bearer {token_for(alice, 'write')}"}
    lean = httpx.get(f"{gateway}/api/me/", headers=token)
    assert lean.status_code == 200 and lean.json()["username"] == "alice"
    assert "X-Frame-Options" not in lean.headers  # the browser middleware was skipped
    assert lean.headers["X-Content-Type-Options"] == "nosniff"
    # A write with a token needs no CSRF token (as before), and errors keep our shape.
    created = httpx.post(
        f"{gateway}/api/completions",
        json={
            "credential": alice_openai.pk,
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "Hi"}],
        },
        headers=token,
    )
    assert created.status_code == 200 and created.json()["text"] == REPLY
    missing = httpx.get(f"{gateway}/api/credentials/999999/", headers=token)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    unknown = httpx.get(f"{gateway}/v1/nowhere", headers=token)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
    # Swagger UI stays on the full chain (its CSP and framing headers), token or not.
    docs = httpx.get(f"{gateway}/api/docs/", headers=token)
    assert "X-Frame-Options" in docs.headers
