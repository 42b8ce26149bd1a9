"""Settings → Providers in a real browser.

Acceptance: add an OpenAI-compatible credential pointing at the fake server (as `manage.py
fakeprovider` would be), see its models, try it with a streamed reply; use Echo with no network.

Needs the Daphne under test to let the session's fake provider server through the egress guard
(tests/browser/conftest.py: `live_server_url` depends on `fake_provider_server` and passes
`WORKBENCH_EGRESS_ALLOW=localhost:11434,127.0.0.1:<its port>`)."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from billing.models import UsageRecord
from providers.models import ProviderCredential

FAKE_REPLY = "Hello from the fake gpt-4o-mini! How can I help you today?"


def test_alice_adds_an_openai_compatible_server_sees_its_models_tries_it_and_uses_echo_offline(
    page, login, screenshot, alice, fake_provider
):
    # Slow enough to watch the reply arrive token by token (12 tokens ≈ 1 s).
    fake_provider.configure(tokens_per_second=12)
    login(page, alice)

    page.get_by_role("navigation", name="Settings and tools").get_by_role(
        "link", name="Settings"
    ).click()
    page.get_by_role("navigation", name="Settings sections").get_by_role(
        "link", name="Providers"
    ).click()
    expect(page.get_by_role("heading", name="Provider credentials")).to_be_visible()
    # Everyone gets the Echo credential, so the workbench works with no keys at all.
    expect(page.get_by_role("link", name="Echo (local)")).to_be_visible()
    screenshot(page, "providers-list")

    page.get_by_role("link", name="Add a provider").click()
    # The form's script ticks "Local" when a local preset is picked: pick only once it has run
    # (deferred scripts run before DOMContentLoaded) — under load the click's navigation may
    # not have got that far, and the change would go unseen.
    page.wait_for_load_state("domcontentloaded")
    page.select_option("#id_preset", label="OpenAI-compatible server")
    expect(page.locator("[name=is_local]")).to_be_checked()
    page.fill("#id_name", "GPU box")
    page.fill("#id_base_url", f"{fake_provider.url}/v1")
    screenshot(page, "providers-add")
    page.get_by_role("button", name="Save and test connection").click()

    expect(page.get_by_test_id("credential-name")).to_have_text("GPU box")
    expect(page.locator(".messages")).to_contain_text("Saved “GPU box”. Connected in")
    expect(page.locator("#test-result")).to_contain_text("connected")
    models = page.get_by_test_id("models")
    for model_id in ("gpt-4o-mini", "gpt-4o", "text-embedding-3-small"):
        expect(
            models.locator("code", has_text=re.compile(rf"^{re.escape(model_id)}$"))
        ).to_be_visible()
    expect(models.get_by_text("local · $0.00")).to_have_count(3)
    screenshot(page, "providers-detail-connected")
    credential = ProviderCredential.objects.get(name="GPU box")
    assert credential.preset == "openai_compatible"
    assert credential.base_url == f"{fake_provider.url}/v1"

    # Try it: the reply streams in, then the meta line shows tokens and cost.
    try_box = page.locator("#try")
    reply, meta = try_box.locator(".reply"), try_box.locator(".try-meta")
    page.fill("#try-model", "gpt-4o-mini")
    page.fill("#try-message", "Say hello in five words.")
    try_box.get_by_role("button", name="Send").click()
    expect(meta).to_have_text("Streaming…")
    expect(reply).not_to_have_text("")
    assert reply.text_content() != FAKE_REPLY  # caught mid-stream
    screenshot(page, "providers-try-streaming")
    expect(reply).to_have_text(FAKE_REPLY)
    expect(meta).to_contain_text(
        re.compile(r"^\d+ in / 11 out tokens · \$0\.00 local · TTFT \d+ ms")
    )
    screenshot(page, "providers-try-finished")
    chat_calls = [r for r in fake_provider.requests if r.path == "/v1/chat/completions"]
    assert len(chat_calls) == 1
    assert chat_calls[0].body["messages"] == [
        {"role": "user", "content": "Say hello in five words."}
    ]
    row = UsageRecord.objects.get(credential=credential)
    assert (row.status, row.cost_source, row.output_tokens) == ("ok", "local", 11)

    # Echo: no network at all — the fake server hears nothing.
    page.get_by_role("link", name="← All providers").click()
    page.get_by_role("link", name="Echo (local)").click()
    expect(page.get_by_test_id("credential-name")).to_have_text("Echo (local)")
    expect(page.get_by_text("none — runs inside Workbench")).to_be_visible()
    heard = len(fake_provider.requests)
    page.fill("#try-model", "echo")
    page.fill("#try-system", "You are a terse pirate.")
    page.fill("#try-message", "Where is the treasure?")
    page.locator("#try-message").press("Control+Enter")
    expect(meta).to_contain_text("$0.00 local")
    expect(reply).to_contain_text("You are a terse pirate.")
    expect(reply).to_contain_text("Where is the treasure?")
    expect(reply).to_contain_text("**system**")
    screenshot(page, "providers-echo")
    assert len(fake_provider.requests) == heard
    echo_row = UsageRecord.objects.get(credential__preset="echo", user=alice)
    assert (echo_row.status, echo_row.cost_source) == ("ok", "local")


def test_a_provider_error_in_try_it_shows_the_code(
    page, login, screenshot, alice, make_credential, fake_provider
):
    credential = make_credential(
        alice, "openai_compatible", name="Flaky box", api_key="", is_local=True
    )
    fake_provider.configure(echo_auth=True)
    login(page, alice)

    page.goto(f"/settings/providers/{credential.pk}/")
    page.fill("#try-model", "gpt-4o-mini")
    page.fill("#try-message", "Hello?")
    page.locator("#try").get_by_role("button", name="Send").click()

    meta = page.locator("#try .try-meta")
    expect(meta).to_contain_text("auth_failed: ")
    expect(page.locator("#try .try-output")).to_have_class(re.compile(r"\bfailed\b"))
    expect(page.locator("#try").get_by_role("button", name="Send")).to_be_enabled()
    screenshot(page, "providers-try-error")


def test_a_team_viewer_sees_the_team_credential_read_only(
    page, login, screenshot, team, vera_viewer, make_credential
):
    credential = make_credential(team, "openai", name="Acme OpenAI")
    login(page, vera_viewer)

    page.click("#team-switcher summary")
    page.get_by_role("menuitem", name=re.compile("Acme")).click()
    page.goto("/settings/providers/")
    row = page.locator(f"#credential-{credential.pk}")
    expect(row).to_contain_text("Acme OpenAI")
    expect(row).to_contain_text("sk-…6789")
    screenshot(page, "providers-viewer-list")

    row.get_by_role("link", name="Acme OpenAI").click()
    expect(page.get_by_test_id("credential-name")).to_have_text("Acme OpenAI")
    expect(page.get_by_text("team “Acme”")).to_be_visible()
    expect(page.get_by_role("link", name="Edit")).to_have_count(0)
    expect(page.get_by_role("link", name="Delete…")).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("Deactivate|Test connection"))).to_have_count(
        0
    )
    expect(page.locator("#try")).to_have_count(0)
    screenshot(page, "providers-viewer-detail")
    assert "0123456789" not in page.content()
