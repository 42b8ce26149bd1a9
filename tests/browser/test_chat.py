"""Chat in a real browser (issue 4 acceptance): stream, Stop, Regenerate with another model,
switch siblings, edit to branch, Fork, reload; XSS in the browser; a 500-message conversation;
a viewer's read-only page.

The Daphne under test runs in another process and calls the session's fake provider over HTTP,
so the fake is configured through the session object (`fake_provider` resets it per test).
Credentials use the `openai` preset (pointed at the fake) so replies carry real list prices and
the conversation cost is not $0."""

from __future__ import annotations

import itertools
import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.db.models import Sum
from django.utils import timezone
from playwright.sync_api import expect

from chats import services
from chats.models import Conversation, Message, MessageStatus
from chats.rendering import RENDER_VERSION, render_markdown
from chats.templatetags.chat import usd
from providers.fakeserver.knobs import LOREM
from providers.models import ProviderModel

LONG_REPLY = " ".join(LOREM[i % len(LOREM)] for i in range(60))  # reply_tokens=60
GPT_4O_REPLY = "Hello from the fake gpt-4o! How can I help you today?"

# The number of words shown in the (first) streaming reply.
STREAM_WORDS = """n => {
  const el = document.querySelector("#messages article.status-streaming .content");
  return !!el && el.textContent.split(/\\s+/).filter(Boolean).length >= n;
}"""


@pytest.fixture
def fake_models(alice, make_credential):
    """Two credentials on the session fake, as the picker shows them: Fake A offers gpt-4o-mini,
    Fake B gpt-4o (catalogue rows written directly: no in-process network call needed)."""
    fake_a = make_credential(alice, "openai", name="Fake A")
    fake_b = make_credential(alice, "openai", name="Fake B")
    ProviderModel.objects.create(credential=fake_a, model_id="gpt-4o-mini", kind="chat")
    ProviderModel.objects.create(credential=fake_b, model_id="gpt-4o", kind="chat")
    return fake_a, fake_b


def _chain(conversation, texts, *, author, model="gpt-4o-mini") -> list[Message]:
    """Messages user/assistant/user/… in one chain under `conversation` (3 queries)."""
    start = timezone.now() - timedelta(hours=1)
    rows = Message.objects.bulk_create(
        [
            Message(
                conversation=conversation,
                role="user" if i % 2 == 0 else "assistant",
                content=text,
                content_html=str(render_markdown(text)),
                html_version=RENDER_VERSION,
                author=author if i % 2 == 0 else None,
                model="" if i % 2 == 0 else model,
                created_at=start + timedelta(milliseconds=i),
            )
            for i, text in enumerate(texts)
        ]
    )
    for previous, current in itertools.pairwise(rows):
        current.parent = previous
        previous.active_child = current
    Message.objects.bulk_update(rows, ["parent", "active_child"])
    Conversation.objects.filter(pk=conversation.pk).update(
        active_root=rows[0], message_count=len(rows)
    )
    return rows


def _settings_saved(conversation):
    return lambda r: (
        r.url.endswith(f"/chat/{conversation.pk}/settings/") and r.request.method == "POST"
    )


def test_alice_streams_stops_regenerates_switches_branches_forks_and_reloads(
    page, login, screenshot, pick_model, alice, fake_models, fake_provider
):
    fake_a, fake_b = fake_models
    # Slow enough to watch and to stop: 60 tokens at 25 tokens/s ≈ 2.4 s.
    fake_provider.configure(tokens_per_second=25, reply_tokens=60)
    login(page, alice)

    # Chat → a new chat with a fake-server model from the picker: the first message creates
    # the conversation, and its page picks up the reply as it streams.
    page.get_by_role("navigation", name="Main navigation").get_by_role("link", name="Chat").click()
    pick_model(page, "mini fake a")
    assert page.locator("#new-model").input_value() == f"{fake_a.pk}|gpt-4o-mini"
    screenshot(page, "chat-new")
    page.fill("#new-content", "Tell me a long story.")
    page.get_by_test_id("new-chat-send").click()
    page.wait_for_url(re.compile(r"/chat/\d+/$"))
    conversation = Conversation.objects.get(owner_user=alice)
    conversation_url = page.url
    assert (conversation.credential_id, conversation.model) == (fake_a.pk, "gpt-4o-mini")
    expect(page.get_by_test_id("model-picker")).to_have_value(f"{fake_a.pk}|gpt-4o-mini")
    expect(page.locator("#connection")).to_have_text("Live")

    messages = page.locator("#messages")
    articles = messages.locator("article.msg")
    send, stop = page.get_by_test_id("send"), page.get_by_test_id("stop")

    # Watch the reply stream in.
    streaming = messages.locator("article.msg.role-assistant.status-streaming")
    expect(streaming).to_have_count(1)
    expect(stop).to_be_visible()
    expect(send).to_be_hidden()
    page.wait_for_function(STREAM_WORDS, arg=5)
    early = streaming.locator(".content").text_content().strip()
    page.wait_for_function(STREAM_WORDS, arg=len(early.split()) + 3)
    later = streaming.locator(".content").text_content().strip()
    assert len(later) > len(early) and later.startswith(early)
    assert LONG_REPLY.startswith(later.strip())
    screenshot(page, "chat-streaming")

    # Stop mid-reply: the composer is usable at once; the partial text is kept as `stopped`.
    stop.click()
    expect(send).to_be_visible()
    expect(stop).to_be_hidden()
    expect(page.locator("#composer-input")).to_be_editable()
    stopped = messages.locator("article.msg.role-assistant[data-status=stopped]")
    expect(stopped).to_have_count(1)
    expect(stopped.get_by_test_id("status")).to_have_text("stopped")
    partial = stopped.locator(".content").text_content().strip()
    assert len(later.split()) <= len(partial.split()) < 60, partial
    assert LONG_REPLY.startswith(partial)
    screenshot(page, "chat-stopped")
    first_reply = Message.objects.get(conversation=conversation, role="assistant")
    assert first_reply.status == MessageStatus.STOPPED
    assert first_reply.content.strip() == partial
    assert first_reply.model == "gpt-4o-mini"

    # Pick another model, then Regenerate: a sibling reply written by that model, ‹ 2/2 ›.
    fake_provider.reset()
    fake_provider.configure(tokens_per_second=40)  # the default reply names the model
    with page.expect_response(_settings_saved(conversation)) as saved:
        pick_model(page, "gpt-4o fake b")
    assert saved.value.ok
    assert page.locator("#model-picker").input_value() == f"{fake_b.pk}|gpt-4o"
    stopped.get_by_role("button", name="Regenerate").click()
    reply = messages.locator("article.msg.role-assistant")
    expect(reply).to_have_count(1)  # the new sibling took the stopped one's place on the path
    expect(reply).to_have_attribute("data-status", "complete")
    expect(reply.locator(".content")).to_have_text(GPT_4O_REPLY)
    expect(reply.locator(".who")).to_contain_text(re.compile(r"gpt-4o\s+· Fake B"))
    expect(reply.get_by_test_id("siblings")).to_contain_text("2/2")
    expect(reply.get_by_test_id("stats")).to_contain_text(re.compile(r"\d+ in / 11 out"))
    expect(send).to_be_visible()
    screenshot(page, "chat-regenerated")
    chat_calls = [r for r in fake_provider.requests if r.path.endswith("/chat/completions")]
    assert len(chat_calls) == 1
    assert chat_calls[0].body["model"] == "gpt-4o"
    assert chat_calls[0].body["messages"] == [{"role": "user", "content": "Tell me a long story."}]

    # Switch siblings with ‹ ›.
    reply.get_by_role("button", name="Previous version").click()
    expect(reply).to_have_attribute("data-status", "stopped")
    expect(reply.locator(".content")).to_have_text(partial)
    expect(reply.get_by_test_id("siblings")).to_contain_text("1/2")
    expect(reply.get_by_test_id("status")).to_have_text("stopped")
    screenshot(page, "chat-sibling-1-of-2")
    reply.get_by_role("button", name="Next version").click()
    expect(reply.locator(".content")).to_have_text(GPT_4O_REPLY)
    expect(reply.get_by_test_id("siblings")).to_contain_text("2/2")

    # A second exchange on this branch (so there is an earlier message to edit).
    page.fill("#composer-input", "And another?")
    page.locator("#composer-input").press("Enter")
    expect(articles).to_have_count(4)
    expect(articles.nth(2)).to_contain_text("And another?")
    expect(articles.nth(3)).to_have_attribute("data-status", "complete")
    expect(articles.nth(3).locator(".content")).to_have_text(GPT_4O_REPLY)
    second_answer_id = articles.nth(3).get_attribute("data-id")

    # Edit the first question: a new branch (new root) with its own reply.
    articles.first.get_by_role("button", name="Edit").click()
    articles.first.locator(".edit-form textarea").fill("Tell me a short story instead.")
    articles.first.get_by_role("button", name="Save and ask again").click()
    expect(articles).to_have_count(2)
    expect(articles.first.locator(".content")).to_have_text("Tell me a short story instead.")
    expect(articles.first.get_by_test_id("siblings")).to_contain_text("2/2")
    expect(articles.nth(1)).to_have_attribute("data-status", "complete")
    expect(articles.nth(1).locator(".content")).to_have_text(GPT_4O_REPLY)
    screenshot(page, "chat-edited-branch")
    assert Message.objects.filter(conversation=conversation, parent__isnull=True).count() == 2

    # Back to the first branch (it remembers its chosen reply and the exchange after it).
    articles.first.get_by_role("button", name="Previous version").click()
    expect(articles).to_have_count(4)
    expect(articles.first.locator(".content")).to_have_text("Tell me a long story.")
    expect(articles.nth(3)).to_have_attribute("data-id", second_answer_id)

    # Fork at the regenerated reply: a new conversation holding the path up to there.
    regenerated_id = int(articles.nth(1).get_attribute("data-id"))
    articles.nth(1).get_by_role("button", name="Fork").click()
    page.wait_for_url(lambda url: url.rstrip("/") != conversation_url.rstrip("/"))
    fork = Conversation.objects.get(forked_from_id=regenerated_id)
    assert page.url.endswith(f"/chat/{fork.pk}/")
    expect(articles).to_have_count(2)
    expect(articles.first.locator(".content")).to_have_text("Tell me a long story.")
    expect(articles.nth(1).locator(".content")).to_have_text(GPT_4O_REPLY)
    expect(page.locator(".chat-head")).to_contain_text("forked")
    expect(page.get_by_test_id("conversation-cost")).to_have_text("This conversation cost $0.00")
    screenshot(page, "chat-forked")
    assert list(fork.messages.order_by("created_at", "id").values_list("role", "content")) == [
        ("user", "Tell me a long story."),
        ("assistant", GPT_4O_REPLY),
    ]

    # Reload the original: tree, texts, costs and statuses as left.
    page.go_back()
    page.wait_for_url(conversation_url)
    page.reload()
    expect(page.locator("#connection")).to_have_text("Live")
    expect(articles).to_have_count(4)
    expect(articles.first.locator(".content")).to_have_text("Tell me a long story.")
    expect(articles.first.get_by_test_id("siblings")).to_contain_text("1/2")
    expect(articles.nth(1).locator(".content")).to_have_text(GPT_4O_REPLY)
    expect(articles.nth(1).get_by_test_id("siblings")).to_contain_text("2/2")
    expect(articles.nth(2).locator(".content")).to_have_text("And another?")
    expect(articles.nth(3).locator(".content")).to_have_text(GPT_4O_REPLY)
    expect(messages.get_by_test_id("status")).to_have_count(0)  # every shown reply complete

    conversation.refresh_from_db()
    replies = list(conversation.messages.filter(role="assistant").order_by("created_at", "id"))
    assert [(m.status, m.model) for m in replies] == [
        ("stopped", "gpt-4o-mini"),
        ("complete", "gpt-4o"),
        ("complete", "gpt-4o"),
        ("complete", "gpt-4o"),
    ]
    assert all(m.cost is not None and m.cost > 0 for m in replies[1:])
    total = conversation.messages.aggregate(total=Sum("cost"))["total"]
    assert conversation.cost_total == total > 0
    expect(page.get_by_test_id("conversation-cost")).to_have_text(
        f"This conversation cost {usd(conversation.cost_total)}"
    )
    path_cost = replies[1].cost + replies[2].cost
    # Summed in the browser (billing/money.js) exactly as the server formats it.
    expect(page.get_by_test_id("path-cost")).to_have_text(usd(path_cost))
    expect(articles.nth(1).get_by_test_id("stats")).to_contain_text(
        re.compile(r"\d+ in / 11 out\s+· \$0\.\d+\s+· TTFT \d+ ms\s+· [\d.]+ tok/s")
    )
    screenshot(page, "chat-reloaded")

    # The stopped sibling is still there, stopped, with its partial text.
    articles.nth(1).get_by_role("button", name="Previous version").click()
    expect(articles).to_have_count(2)  # the stopped reply has nothing after it
    expect(articles.nth(1)).to_have_attribute("data-status", "stopped")
    expect(articles.nth(1).get_by_test_id("status")).to_have_text("stopped")
    expect(articles.nth(1).locator(".content")).to_have_text(partial)
    expect(articles.nth(1).get_by_role("button", name="Continue")).to_be_visible()
    screenshot(page, "chat-reloaded-stopped-sibling")


XSS_PAYLOAD = (
    "Attempts follow.\n\n"
    "<script>window.__xss=1</script>\n\n"
    '<img src=x onerror="window.__xss=2">\n\n'
    "[click](javascript:window.__xss=3)\n\n"
    "![t](http://127.0.0.1:9/track.png)\n"
)


def test_hostile_replies_run_no_script_and_load_nothing_external(
    page, login, screenshot, alice, fake_models, fake_provider
):
    fake_a, _ = fake_models
    conversation = services.conversation_start(
        actor=alice, credential=fake_a, model="gpt-4o-mini", title="XSS"
    )
    fake_provider.configure(reply=XSS_PAYLOAD, tokens_per_second=60)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    login(page, alice)
    page.goto(f"/chat/{conversation.pk}/")
    expect(page.locator("#connection")).to_have_text("Live")

    page.fill("#composer-input", XSS_PAYLOAD)  # the user's own text goes the same way
    page.get_by_test_id("send").click()
    reply = page.locator("#messages article.msg.role-assistant")
    expect(reply).to_have_attribute("data-status", "complete")
    page.wait_for_timeout(300)  # give any stray image or script time to load

    assert page.evaluate("typeof window.__xss") == "undefined"
    dangerous = page.locator("#messages").locator("script, img, iframe, object, embed")
    expect(dangerous).to_have_count(0)
    # SVG only as our own icons (the rating buttons), never inside what a message says.
    expect(page.locator("#messages .content svg")).to_have_count(0)
    expect(page.locator("#messages svg")).to_have_count(
        page.locator("#messages .rating svg").count()
    )
    for article in (reply, page.locator("#messages article.msg.role-user")):
        # Raw HTML is shown as text; the javascript: link keeps its text and loses its anchor.
        expect(article).to_contain_text("<script>window.__xss=1</script>")
        expect(article).to_contain_text('<img src=x onerror="window.__xss=2">')
        expect(article.locator(".content")).to_contain_text("click")
        # The external image is a link to it (opened only on purpose), never an <img>.
        image_link = article.get_by_role("link", name="🖼 t")
        expect(image_link).to_have_attribute("href", "http://127.0.0.1:9/track.png")
        expect(image_link).to_have_attribute("rel", re.compile(r"\bnoopener\b"))
    hrefs = page.locator("#messages a").evaluate_all("els => els.map(a => a.protocol)")
    assert set(hrefs) <= {"http:", "https:", "mailto:"}, hrefs
    handlers = page.locator("#messages *").evaluate_all(
        "els => els.flatMap(el => [...el.attributes].map(a => a.name)).filter(n => n.startsWith('on'))"
    )
    assert handlers == []
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "chat-xss")

    assert not [u for u in requested if urlsplit(u).netloc == "127.0.0.1:9"], requested
    assert not [u for u in requested if urlsplit(u).path.endswith("/x")], requested
    assert Message.objects.get(conversation=conversation, role="assistant").content == XSS_PAYLOAD


def test_a_500_message_conversation_loads_and_streams_without_rerendering_history(
    page, login, screenshot, alice, fake_models, fake_provider
):
    fake_a, _ = fake_models
    conversation = services.conversation_start(
        actor=alice, credential=fake_a, model="gpt-4o-mini", title="Long haul"
    )
    rows = _chain(
        conversation,
        [f"Question {i // 2}" if i % 2 == 0 else f"Answer {i // 2}" for i in range(500)],
        author=alice,
    )
    fake_provider.configure(tokens_per_second=30, reply_tokens=30)
    login(page, alice)
    page.goto(f"/chat/{conversation.pk}/")
    articles = page.locator("#messages article.msg")
    expect(articles).to_have_count(500)
    expect(articles.first).to_have_attribute("data-id", str(rows[0].pk))
    expect(articles.last.locator(".content")).to_have_text("Answer 249")
    expect(page.locator("#connection")).to_have_text("Live")

    # Mark every history article, and watch for any change inside one.
    page.evaluate(
        """() => {
          const messages = document.getElementById("messages");
          window.__history = [...messages.querySelectorAll("article.msg")];
          window.__history.forEach((el) => { el.__kept = true; });
          window.__touched = 0;
          new MutationObserver((records) => {
            for (const r of records) {
              const target = r.target.nodeType === 1 ? r.target : r.target.parentElement;
              const el = target && target.closest("article.msg");
              if (el && el.__kept) window.__touched += 1;
              r.removedNodes.forEach((n) => { if (n.__kept) window.__touched += 1; });
            }
          }).observe(messages, { childList: true, subtree: true, characterData: true, attributes: true });
        }"""
    )

    page.fill("#composer-input", "One more, please.")
    page.get_by_test_id("send").click()
    page.wait_for_function(STREAM_WORDS, arg=5)
    screenshot(page, "chat-500-streaming", full_page=False)
    reply = articles.last
    expect(reply).to_have_attribute("data-status", "complete")
    expect(reply.locator(".content")).to_have_text(
        " ".join(LOREM[i % len(LOREM)] for i in range(30))
    )
    expect(articles).to_have_count(502)
    assert page.evaluate(
        """() => {
          const now = [...document.querySelectorAll("#messages article.msg")].slice(0, 500);
          return now.every((el, i) => el === window.__history[i] && el.__kept);
        }"""
    )
    assert page.evaluate("window.__touched") == 0
    screenshot(page, "chat-500-finished", full_page=False)
    new_user = Message.objects.get(conversation=conversation, content="One more, please.")
    assert new_user.parent_id == rows[-1].pk


def test_a_viewer_reads_a_team_conversation_with_no_composer(
    page, login, screenshot, alice, team, vera_viewer, make_credential
):
    credential = make_credential(team, "openai", name="Acme OpenAI")
    conversation = services.conversation_start(
        actor=alice, owner_team=team, credential=credential, model="gpt-4o-mini", title="Plans"
    )
    _chain(conversation, ["What's the plan?", "**Ship it** on Friday."], author=alice)
    login(page, vera_viewer)
    page.goto(f"/chat/{conversation.pk}/")

    expect(page.locator("#chat-title")).to_have_text("Plans")
    expect(page.locator(".chat-head .badge.viewer")).to_have_text("read only")
    expect(page.locator("#messages article.msg")).to_have_count(2)
    expect(page.locator("#messages strong")).to_have_text("Ship it")
    expect(page.locator("#connection")).to_have_text("Live")  # may watch replies live
    expect(page.locator("#composer")).to_have_count(0)
    expect(page.locator("#composer-input")).to_have_count(0)
    expect(page.get_by_test_id("model-picker")).to_have_count(0)
    expect(page.locator(".read-only-note")).to_contain_text("doesn't let you post")
    expect(page.locator(".chat-settings")).to_have_count(0)
    for action in ("Edit", "Regenerate", "Fork", "Continue", "Retry", "Stop"):
        expect(page.get_by_role("button", name=action, exact=True)).to_have_count(0)
    expect(page.get_by_role("button", name="Copy", exact=True)).to_have_count(2)
    screenshot(page, "chat-viewer")
