"""A thinking model in the chat page (issue 8): its reasoning streams into a collapsed block above
the answer and ends as "Thought for N s"; the reply's details show cached and reasoning tokens."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from chats import services
from chats.models import Message
from providers.fakeserver.knobs import lorem
from providers.models import ProviderModel

THOUGHTS = lorem(40)


def test_a_thinking_models_reasoning_streams_collapsed_and_ends_as_thought_for(
    page, login, both_widths, alice, make_credential, fake_provider
):
    credential = make_credential(alice, "anthropic", name="Fake Claude")
    ProviderModel.objects.create(credential=credential, model_id="claude-3-5-haiku-latest")
    conversation = services.conversation_start(
        actor=alice, credential=credential, model="claude-3-5-haiku-latest"
    )
    fake_provider.configure(
        reasoning_tokens=40,
        reply="**Forty-two**, after some thought.",
        tokens_per_second=25,
        prompt_tokens=200,
        cache_read_tokens=1000,
        cache_write_tokens=500,
    )
    login(page, alice)
    page.goto(f"/chat/{conversation.pk}/")
    expect(page.locator("#connection")).to_have_text("Live")
    page.fill("#composer-input", "What is the answer?")
    page.keyboard.press("Enter")

    # While it thinks: a collapsed "Thinking…" block whose text grows.
    thinking = page.locator("#messages article.status-streaming details.reasoning")
    expect(thinking.locator("summary")).to_have_text("Thinking…")
    expect(thinking).not_to_have_attribute("open", "")
    page.wait_for_function(
        """() => (document.querySelector("article.status-streaming .reasoning-text")
                  ?.textContent || "").split(" ").length > 5"""
    )

    # Done: the server's rendering says how long it thought, still collapsed.
    reply = page.locator("#messages article.role-assistant").last
    expect(reply).to_have_attribute("data-status", "complete", timeout=15_000)
    summary = reply.locator("details.reasoning summary")
    expect(summary).to_have_text(re.compile(r"^Thought for \d+(\.\d)? s$"))
    expect(reply.locator(".reasoning-text")).to_be_hidden()
    expect(reply.locator(".content strong")).to_have_text("Forty-two")
    stats = reply.locator("[data-testid=stats]")
    expect(stats).to_contain_text("1700 in (1000 cached, 500 written to cache)")
    expect(stats.locator("[data-testid=reasoning-tokens]")).to_have_text(
        re.compile(r"\(\d+ reasoning\)")
    )
    both_widths(page, "chat-reasoning-collapsed")

    summary.click()
    expect(reply.locator(".reasoning-text")).to_have_text(THOUGHTS)
    both_widths(page, "chat-reasoning-open")

    saved = Message.objects.get(pk=reply.get_attribute("data-id"))
    assert saved.reasoning == THOUGHTS and saved.reasoning_ms > 0
    assert (saved.cache_read_tokens, saved.cache_write_tokens) == (1000, 500)

    # A reload shows the same, from the database.
    page.reload()
    expect(page.locator(f"#message-{saved.pk} details.reasoning summary")).to_have_text(
        re.compile(r"^Thought for ")
    )
    page.emulate_media(color_scheme="dark")
    both_widths(page, "chat-reasoning-dark")


def test_a_reply_bigger_than_a_websocket_message_settles_in_the_page(
    page, login, screenshot, alice, make_credential, fake_provider
):
    # 1.27 MB of text: its final frame (the HTML, and the raw text for Copy) is sent in parts
    # the page joins; before, Daphne dropped it and the reply stayed "streaming".
    credential = make_credential(alice, "openai_compatible", name="Big")
    ProviderModel.objects.create(credential=credential, model_id="big")
    conversation = services.conversation_start(actor=alice, credential=credential, model="big")
    fake_provider.configure(reply=lorem(200_000), tokens_per_chunk=5000)
    login(page, alice)
    page.goto(f"/chat/{conversation.pk}/")
    expect(page.locator("#connection")).to_have_text("Live")
    page.fill("#composer-input", "Everything, please.")
    page.keyboard.press("Enter")

    reply = page.locator("#messages article.role-assistant").last
    expect(reply).to_have_attribute("data-status", "complete", timeout=60_000)
    expect(page.locator("#connection")).to_have_text("Live")  # the socket was never dropped
    assert reply.locator(".content").evaluate("el => el.textContent.length") > 1_250_000
    expect(reply.locator("[data-action=regenerate]")).to_be_visible()
    screenshot(page, "chat-big-reply-settled", full_page=False)
