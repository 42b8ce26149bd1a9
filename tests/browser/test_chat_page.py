"""The conversation page in a real browser (issue 9, the page itself): raw Markdown for Edit and
Copy, styles that stay out of rendered replies, opening at the latest message, progressive
rendering, math, the model picker and its team/credential rules, message actions, keyboard.

Each changed state is saved at 1280 and 390 px wide (`shots`)."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from chats import services
from chats.models import Conversation, Message
from chats.rendering import RENDER_VERSION, render_markdown
from providers.models import ProviderModel

NARROW = {"width": 390, "height": 844}
WIDE = {"width": 1280, "height": 800}


@pytest.fixture
def shots(screenshot):
    """`shots(page, name)`: the same state at 1280 and 390 px wide (viewport only)."""

    def take(page, name: str) -> None:
        size = page.viewport_size
        for label, viewport in (("1280", WIDE), ("390", NARROW)):
            page.set_viewport_size(viewport)
            page.wait_for_timeout(50)  # one layout and paint at the new width
            screenshot(page, f"{name}-{label}", full_page=False)
        page.set_viewport_size(size)

    return take


@pytest.fixture
def fake_a(alice, make_credential):
    credential = make_credential(alice, "openai", name="Fake A")
    ProviderModel.objects.create(credential=credential, model_id="gpt-4o-mini", kind="chat")
    return credential


def chain(conversation, texts, *, author, model="gpt-4o-mini") -> list[Message]:
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


def open_chat(page, conversation):
    page.goto(f"/chat/{conversation.pk}/")
    expect(page.locator("#connection")).to_have_text("Live")


def at_bottom(page) -> bool:
    return page.evaluate(
        "() => window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 2"
    )


# --- Bugs 1 and 2: Edit and Copy start from the stored Markdown ----------------------------------

QUESTION = (
    "Fix this **please**:\n\n"
    "```js\n"
    "const x = 1;  // <b>not bold</b>\n"
    "console.log(`x = ${x}`);\n"
    "```\n\n"
    "- keep *this*\n"
    "- and `that`"
)
ANSWER = (
    "Here it is:\n\n"
    "```python\n"
    "def greet(name):\n"
    '    return f"Hello {name}!"\n'
    "```\n\n"
    "| a | b |\n|---|---|\n| 1 | 2 |\n\n"
    "Done \\o/ — *really*."
)


def test_edit_and_copy_keep_the_raw_markdown_including_code_fences(
    page, login, shots, alice, fake_a, live_server_url
):
    conversation = services.conversation_start(
        actor=alice, credential=fake_a, model="gpt-4o-mini", title="Raw"
    )
    chain(conversation, [QUESTION, ANSWER], author=alice)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server_url)
    login(page, alice)
    open_chat(page, conversation)
    question, answer = page.locator("#messages article.msg").all()
    # The rendering has code-block chrome ("js", "Copy") that must never reach the text.
    expect(question.locator(".code-lang")).to_have_text("js")

    question.get_by_role("button", name="Edit").click()
    box = question.locator(".edit-form textarea")
    expect(box).to_be_focused()
    assert box.input_value() == QUESTION
    shots(page, "chat-edit-raw")
    question.get_by_role("button", name="Cancel").click()

    actions = answer.locator(".msg-actions")
    actions.get_by_role("button", name="Copy", exact=True).click()
    expect(actions.get_by_role("button", name="Copied", exact=True)).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == ANSWER
    actions = question.locator(".msg-actions")
    actions.get_by_role("button", name="Copy", exact=True).click()
    expect(actions.get_by_role("button", name="Copied", exact=True)).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == QUESTION

    # The code block's own Copy still copies just the code.
    answer.locator("[data-copy-code]").click()
    assert page.evaluate("navigator.clipboard.readText()") == (
        'def greet(name):\n    return f"Hello {name}!"\n'
    )


# --- Bug 4: app chrome styles stay out of rendered Markdown --------------------------------------


def test_a_markdown_list_in_a_reply_is_a_plain_list_not_a_flash_message(
    page, login, shots, alice, fake_a
):
    conversation = services.conversation_start(
        actor=alice, credential=fake_a, model="gpt-4o-mini", title="Lists"
    )
    rows = chain(
        conversation,
        ["Steps?", "1. one\n2. two\n\n- dot\n- dash\n\n| Col | Other |\n|---|---|\n| x | y |"],
        author=alice,
    )
    login(page, alice)
    open_chat(page, conversation)
    reply = page.locator(f"#message-{rows[1].pk} .markdown")
    styles = reply.locator("li").evaluate_all(
        """els => els.map(li => {
            const s = getComputedStyle(li);
            return [s.backgroundColor, s.borderTopWidth, s.paddingTop, s.listStyleType];
        })"""
    )
    assert styles == [
        ["rgba(0, 0, 0, 0)", "0px", "0px", "decimal"],
        ["rgba(0, 0, 0, 0)", "0px", "0px", "decimal"],
        ["rgba(0, 0, 0, 0)", "0px", "0px", "disc"],
        ["rgba(0, 0, 0, 0)", "0px", "0px", "disc"],
    ], styles
    # Table headers are not the app's uppercase table chrome.
    assert reply.locator("th").first.evaluate("th => getComputedStyle(th).textTransform") == "none"
    shots(page, "chat-markdown-list")

    # Flash messages still look like flash messages.
    page.goto(f"/chat/{conversation.pk}/delete/")
    page.get_by_role("button", name="Delete").click()
    flash = page.locator("ul.messages > li")
    expect(flash).to_contain_text("Deleted")
    assert flash.evaluate("li => getComputedStyle(li).backgroundColor") != "rgba(0, 0, 0, 0)"


# --- Bug 5: open at the latest message, "jump to latest" when scrolled up ------------------------


def test_a_100_message_chat_opens_at_the_bottom_and_jumps_back_to_the_latest(
    page, login, shots, alice, fake_a
):
    conversation = services.conversation_start(
        actor=alice, credential=fake_a, model="gpt-4o-mini", title="Hundred"
    )
    texts = [
        f"Question {i // 2}" if i % 2 == 0 else f"Answer {i // 2}\n\n" + "Some text. " * 30
        for i in range(100)
    ]
    rows = chain(conversation, texts, author=alice)
    login(page, alice)
    open_chat(page, conversation)

    assert page.evaluate("document.documentElement.scrollHeight") > 10_000
    assert at_bottom(page)
    expect(page.locator(f"#message-{rows[-1].pk}")).to_be_in_viewport()
    expect(page.locator(f"#message-{rows[0].pk}")).not_to_be_in_viewport()
    jump = page.get_by_test_id("jump-latest")
    expect(jump).to_be_hidden()
    shots(page, "chat-100-opened")

    page.mouse.wheel(0, -3000)
    expect(jump).to_be_visible()
    shots(page, "chat-100-scrolled-up")
    jump.click()
    page.wait_for_function(
        "() => window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 2"
    )
    expect(jump).to_be_hidden()

    # A link to one message opens there instead.
    page.goto("/chat/")
    page.goto(f"/chat/{conversation.pk}/#message-{rows[10].pk}")
    expect(page.locator(f"#message-{rows[10].pk}")).to_be_in_viewport()
    assert not at_bottom(page)
