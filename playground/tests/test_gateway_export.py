""" "Export as code" through this Workbench's own OpenAI-compatible endpoint (issue 12's last
export line, on the gateway of issue 11): the exported Python snippet (openai SDK) and cURL
command run as a user would run them — a separate process, a Workbench API token in
WORKBENCH_API_KEY — against a live Daphne serving the test database, the gate calling the fake
provider upstream. The fake records what arrived; the ledger records the call (feature `api`)."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from billing.models import UsageRecord
from playground import snippets
from playground.tests.test_exports import STORED_KEY, answer_for, last_chat_request
from providers.models import ProviderModel
from tests import servers

pytestmark = pytest.mark.django_db(transaction=True)

REPLY = "Through the gateway, token by token."


@pytest.fixture(scope="module")
def site(django_db_setup, django_db_blocker, fake_provider_server, tmp_path_factory):
    """One Daphne on the test database for the module, the fake provider let through."""
    env = servers.daphne_env(
        WORKBENCH_EGRESS_ALLOW=f"127.0.0.1:{fake_provider_server.port}",
        WORKBENCH_TOKEN_CACHE_SECONDS="0",
    )
    process, port = servers.start_daphne(env, tmp_path_factory.mktemp("gwx") / "daphne.log")
    yield f"http://127.0.0.1:{port}"
    servers.stop(process)


def export_for(site, alice, answer):
    found = snippets.gateway_export(
        site_url=site,
        user=alice,
        credential=answer.credential,
        model=answer.model,
        call=snippets.call_for_answer(answer),
    )
    assert found is not None and found.note == ""
    return found


@pytest.mark.parametrize(
    ("preset", "model"), [("openai", "gpt-4o-mini"), ("anthropic", "claude-3-5-haiku-latest")]
)
def test_the_exported_python_snippet_runs_through_our_own_endpoint(
    site, alice, make_credential, fake_provider, token_for, preset, model
):
    fake_provider.configure(reply=REPLY)
    credential = make_credential(alice, preset, name=f"Work {preset}", api_key=STORED_KEY)
    ProviderModel.objects.create(credential=credential, model_id=model, kind="chat")
    params = {"temperature": 0.3, "top_p": 0.9, "max_tokens": 50, "seed": 7}
    answer = answer_for(alice, credential, model, params=params)
    export = export_for(site, alice, answer)
    python = next(s for s in export.snippets if s.language == "python")
    assert export.target.base_url == f"{site}/v1"
    assert export.target.model == f"work-{preset}/{model}"
    assert 'os.environ["WORKBENCH_API_KEY"]' in python.code
    token = token_for(alice, "write")
    assert STORED_KEY not in python.code and token not in python.code

    result = _run(python, token)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == REPLY
    body = last_chat_request(fake_provider).body
    assert body["model"] == model
    if preset == "anthropic":
        # Anthropic takes no seed: the export leaves it out (the gateway would refuse it).
        assert "seed" not in python.code
        assert body["system"] == "Be brief." and body["max_tokens"] == 50
    else:
        assert body["seed"] == 7 and body["messages"][0] == {
            "role": "system",
            "content": "Be brief.",
        }
        assert body["messages"][-1] == {"role": "user", "content": "Say hi in three words."}
    assert body["temperature"] == 0.3
    # The upstream call used the stored key; the ledger row is the gateway's, for alice.
    sent = last_chat_request(fake_provider).headers
    assert STORED_KEY in (sent.get("authorization", "") + sent.get("x-api-key", ""))
    row = UsageRecord.objects.latest("id")
    assert (row.feature, row.status, row.user_id) == ("api", "ok", alice.pk)


def _run(snippet, token):
    import os
    import subprocess
    import sys

    env = {**os.environ, "NO_PROXY": "*", "WORKBENCH_API_KEY": token}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    command = (
        [sys.executable, "-c", snippet.code]
        if snippet.language == "python"
        else ["bash", "-c", snippet.code + " --silent --show-error"]
    )
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=30)


def test_the_exported_curl_command_runs_through_our_own_endpoint_even_for_echo(
    site, alice, token_for
):
    from providers import services as provider_services

    echo = provider_services.credential_create(actor=alice, preset="echo", name="Echo")
    answer = answer_for(alice, echo, "echo", params={"temperature": 0.5}, system="Don't ramble.")
    # Echo has no provider API of its own to export, but it answers through the gateway.
    assert (
        snippets.snippets_for(snippets.target_for_answer(answer), snippets.call_for_answer(answer))
        == []
    )
    export = export_for(site, alice, answer)
    curl = next(s for s in export.snippets if s.language == "curl")
    assert '"Authorization: Bearer $WORKBENCH_API_KEY"' in curl.code
    result = _run(curl, token_for(alice, "write"))
    assert result.returncode == 0, result.stderr
    reply = json.loads(result.stdout)
    assert reply["model"] == export.target.model
    # Echo answers with what it received: the system prompt and the question went through.
    content = reply["choices"][0]["message"]["content"]
    assert "Don't ramble." in content and "Say hi in three words." in content


def test_the_code_page_shows_the_gateway_variant_with_the_sites_address(
    alice, client_for, make_credential, settings
):
    settings.WORKBENCH_SITE_URL = "https://wb.example.com"
    credential = make_credential(alice, "openai", name="Work OpenAI", api_key=STORED_KEY)
    answer = answer_for(alice, credential, "gpt-4o-mini")
    page = client_for(alice).get(reverse("playground:answer_code", args=[answer.pk])).content
    assert b'data-testid="gateway-snippets"' in page
    assert b"https://wb.example.com/v1" in page and b"work-openai/gpt-4o-mini" in page
    assert STORED_KEY.encode() not in page


def test_a_name_the_gateway_would_send_elsewhere_is_said_plainly(alice, team, make_credential):
    mine = make_credential(alice, "openai", name="Shared name")
    theirs = make_credential(team, "openai", name="Shared name")
    assert mine.slug == theirs.slug
    answer = answer_for(alice, theirs, "gpt-4o-mini")
    export = snippets.gateway_export(
        site_url="http://wb",
        user=alice,
        credential=theirs,
        model="gpt-4o-mini",
        call=snippets.call_for_answer(answer),
    )
    assert "your own credential wins" in export.note
