"""Bad input gets a clear 4xx, never a 500 (issue 7, DESIGN §5) — the cases the review found;
the schemathesis run (tests/test_api_fuzz.py) and the websocket fuzz (tests/test_socket_fuzz.py)
look for the rest of the class."""

from __future__ import annotations

import json

import pytest

from chats import services as chat_services
from providers import services as provider_services
from providers.models import ProviderCredential
from tests.api_client import assert_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def echo(alice):
    return provider_services.credential_create(actor=alice, preset="echo", name="alice echo")


@pytest.fixture
def conversation(alice, echo):
    return chat_services.conversation_start(actor=alice, credential=echo, model="echo")


def raw_post(api, url, body: str, content_type="application/json"):
    return api.client.post(url, body, content_type=content_type)


# --- Bodies --------------------------------------------------------------------------------------------


def test_json_nested_10000_deep_is_a_400(alice, api_for):
    api = api_for(alice)
    for body in ("[" * 10_000 + "]" * 10_000, '{"title": ' + "[" * 100 + "]" * 100 + "}"):
        response = raw_post(api, "/api/conversations/", body)
        assert_error(response, 400, "parse_error")


def test_malformed_json_is_a_400_that_says_so(alice, api_for):
    api = api_for(alice)
    for body in ("{", '{"title": NaN}', "\xff\xfe", '{"title": "x"} trailing'):
        error = assert_error(raw_post(api, "/api/conversations/", body), 400, "parse_error")
        assert "not valid JSON" in error["message"]


def test_a_body_over_the_upload_limit_is_a_413(alice, api_for, settings, echo):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100_000
    api = api_for(alice)
    huge = "x" * 200_000
    for url, body, content_type in (
        ("/api/conversations/", json.dumps({"title": huge}), "application/json"),
        ("/api/completions", json.dumps({"model": huge}), "application/json"),
        (f"/api/credentials/{echo.pk}/", json.dumps({"name": huge}), "application/json"),
    ):
        method = api.client.patch if "credentials" in url else api.client.post
        response = method(url, body, content_type=content_type)
        error = assert_error(response, 413, "too_large")
        assert "larger than" in error["message"]


def test_the_documented_message_limits_are_reachable_below_the_body_limit(
    alice, api_for, conversation, echo
):
    """200,000 emoji is 2.4 MB of \\u-escaped JSON — over Django's default 2.5 MB with the rest
    of the body, it used to fail as a 500. The limit that answers is the message's own."""
    api = api_for(alice)
    emoji = "😀" * 200_001  # one over the chat limit: its message, not the body size, refuses it
    response = api.post(f"/api/conversations/{conversation.pk}/messages/", {"content": emoji})
    error = assert_error(response, 400, "invalid")
    assert "200000" in error["message"].replace(",", "")
    body = {
        "credential": echo.pk,
        "model": "echo",
        "messages": [{"role": "user", "content": "😀" * 1_000_001}],
    }
    error = assert_error(api.post("/api/completions", body), 400, "invalid")
    assert "1000000" in error["message"].replace(",", "")


# --- Query strings -----------------------------------------------------------------------------------


def test_a_search_with_a_nul_byte_is_a_400_on_the_page_and_the_api(
    alice, api_for, client_for, conversation
):
    error = assert_error(api_for(alice).get("/api/conversations/", {"q": "a\x00b"}), 400, "invalid")
    assert "control characters" in error["message"]
    page = client_for(alice).get("/chat/", {"q": "a\x00b"})
    assert page.status_code == 400
    assert "control characters" in page.content.decode()
    assert api_for(alice).get("/api/conversations/", {"q": "hello"}).status_code == 200


@pytest.mark.parametrize("leaf", ["9" * 5000, "9" * 25, "²", "٣", "-1", "abc"])
def test_a_leaf_that_is_not_a_message_id_is_a_400(alice, client_for, conversation, leaf):
    response = client_for(alice).get(f"/chat/{conversation.pk}/", {"leaf": leaf})
    assert response.status_code == 400
    assert "leaf must be a message id" in response.content.decode()


@pytest.mark.parametrize("team", ["9" * 5000, "9" * 25, "²", "٣", "true"])
def test_a_team_parameter_that_is_not_an_id_is_a_404(alice, api_for, team):
    for url in ("/api/conversations/", "/api/usage/"):
        assert_error(api_for(alice).get(url, {"team": team}), 404, "not_found")


# --- Ids in JSON ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [True, False, "²", "٣", "9" * 25, 1.5, [1], {"id": 1}])
def test_an_id_field_takes_ids_only_never_true_as_1(alice, api_for, echo, value):
    """`{"credential": true}` was read as credential 1."""
    ProviderCredential.objects.filter(pk=echo.pk).update(id=1)  # alice's echo is id 1
    body = {"credential": value, "model": "echo"}
    response = api_for(alice).post("/api/conversations/", body)
    assert response.status_code in (400, 404), response.content
    if value is True:
        assert_error(response, 400, "invalid")


@pytest.mark.parametrize("value", ["²", "9" * 25, 2**70, True, -1])
def test_message_ids_in_bodies_are_checked_before_any_lookup(alice, api_for, conversation, value):
    api = api_for(alice)
    assert_error(
        api.post(f"/api/conversations/{conversation.pk}/fork/", {"message_id": value}),
        400,
        "invalid",
    )
    response = api.post(
        f"/api/conversations/{conversation.pk}/messages/", {"content": "hi", "parent_id": value}
    )
    assert_error(response, 400, "invalid")


# --- Text that can't be a model id or a header ----------------------------------------------------------


@pytest.mark.parametrize("model", ["gpt\x00-4o", "gpt-4o\ud800", "gpt\n4o"])
def test_a_model_id_with_nul_a_lone_surrogate_or_a_line_break_is_a_400(
    alice, api_for, echo, conversation, model
):
    api = api_for(alice)
    body = {"credential": echo.pk, "model": model, "messages": [{"role": "user", "content": "x"}]}
    error = assert_error(api.post("/api/completions", body), 400, "bad_request")
    assert "model" in error["message"]
    response = api.patch(f"/api/conversations/{conversation.pk}/", {"model": model})
    assert_error(response, 400, "invalid")


def test_a_catalogue_listing_unusable_model_ids_keeps_the_usable_ones(
    alice, make_credential, fake_provider
):
    fake_provider.configure(models={"openai": ["good-model", "bad\x00model", "worse\ud800"]})
    credential = make_credential(alice, "openai")
    rows = provider_services.catalogue_refresh(actor=alice, credential=credential)
    assert [row.model_id for row in rows] == ["good-model"]


@pytest.mark.parametrize("field", ["api_key", "organization"])
@pytest.mark.parametrize(
    "value", ["sk-abc\r\nX-Injected: 1", "org\nname", "org\x00", "a\tb", "sk-é", "org\ud800"]
)
def test_line_breaks_and_control_characters_are_refused_in_header_values(
    alice, api_for, client_for, field, value
):
    api = api_for(alice)
    body = {"preset": "openai", "name": "x", "api_key": "sk-fine-1234567", field: value}
    response = api.post("/api/credentials/", body)
    error = assert_error(response, 400, "invalid")
    assert "control characters" in error["message"] or "line breaks" in error["message"]
    credential = provider_services.credential_create(
        actor=alice, preset="openai", name="ok", api_key="sk-fine-1234567"
    )
    assert_error(api.patch(f"/api/credentials/{credential.pk}/", {field: value}), 400, "invalid")
    if "\ud800" not in value:  # a form post can't carry a lone surrogate at all
        page = client_for(alice).post(
            "/settings/providers/add/", {"preset": "openai", "name": "form", **body}
        )
        assert page.status_code == 400
    assert not ProviderCredential.objects.filter(name__in=["x", "form"]).exists()


def test_the_api_takes_json_only(alice, api_for):
    response = api_for(alice).client.post("/api/conversations/", {"title": "form"})
    assert_error(response, 415, "unsupported_media_type")


def test_an_api_address_that_matches_no_route_answers_json(alice, api_for):
    for url in ("/api/conversations/null,null/", "/api/nothing-here/", "/api/teams/%C2%B2/"):
        assert_error(api_for(alice).get(url), 404, "not_found")


def test_options_on_every_api_route_answers_without_running_the_views_object_lookup(alice, api_for):
    """DRF's default OPTIONS metadata calls get_object() on views with PUT: a 500 on views whose
    object isn't a queryset row (the arena pool was one)."""
    api = api_for(alice)
    for url in ("/api/arena/pool/", "/api/me/", "/api/conversations/"):
        response = api.client.options(url)
        assert response.status_code == 200, (url, response.content[:200])
        assert response.json()["name"] and "actions" not in response.json()
