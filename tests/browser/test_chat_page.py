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


# --- Bug 3: a conversation runs only on its owner's credentials -----------------------------------


@pytest.fixture
def acme_models(alice, team, make_credential):
    """Acme's own key (gpt-4o-mini) and alice's personal one (gpt-4o), both on the fake."""
    acme = make_credential(team, "openai", name="Acme OpenAI")
    mine = make_credential(alice, "openai", name="Alice's key")
    ProviderModel.objects.create(credential=acme, model_id="gpt-4o-mini", kind="chat")
    ProviderModel.objects.create(credential=mine, model_id="gpt-4o", kind="chat")
    return acme, mine


def picker_options(page) -> list[str]:
    return page.locator("#model-picker option").evaluate_all(
        "els => els.map(o => o.parentElement.label ? o.parentElement.label + ' / ' + o.textContent : o.textContent)"
    )


def test_the_picker_and_the_refusals_follow_who_owns_the_conversation_for_every_role(
    page,
    login,
    shots,
    alice,
    team,
    bob_teammate,
    vera_viewer,
    charlie_outsider,
    acme_models,
    fake_provider,
    live_server_url,
    browser,
):
    acme, mine = acme_models
    fake_provider.configure(tokens_per_second=200)
    conversation = services.conversation_start(
        actor=alice, owner_team=team, credential=acme, model="gpt-4o-mini", title="Team plans"
    )

    # alice (owner): only Acme's models, never her personal key, in a team chat.
    login(page, alice)
    open_chat(page, conversation)
    options = picker_options(page)
    assert any("Acme OpenAI" in o and "gpt-4o-mini" in o for o in options), options
    assert not any("Alice's key" in o for o in options), options
    page.fill("#composer-input", "Hello team")
    page.get_by_test_id("send").click()
    expect(page.locator("#messages article.msg.role-assistant")).to_have_attribute(
        "data-status", "complete"
    )
    shots(page, "chat-team-picker-alice")

    # A team chat pinned to alice's personal key (as the old picker allowed) can't run: bob is
    # told why, in words, and picks one of Acme's models.
    legacy = Conversation(credential=mine, model="gpt-4o", created_by=alice, title="Pinned")
    legacy.set_owner(team)
    legacy.save()
    with browser.new_context(base_url=live_server_url) as context:
        bob_page = context.new_page()
        login(bob_page, bob_teammate)
        open_chat(bob_page, legacy)
        expect(bob_page.get_by_test_id("model-refusal")).to_contain_text(
            "A personal key can't run a conversation of team “Acme”"
        )
        assert not any("Alice's key" in o for o in picker_options(bob_page))
        bob_page.fill("#composer-input", "Does this work?")
        bob_page.get_by_test_id("send").click()
        expect(bob_page.locator("#composer-error")).to_contain_text(
            "A personal key can't run a conversation of team “Acme”"
        )
        expect(bob_page.locator("#messages article.msg")).to_have_count(0)
        shots(bob_page, "chat-team-pinned-refused-bob")
        with bob_page.expect_response(lambda r: r.url.endswith(f"/chat/{legacy.pk}/settings/")):
            bob_page.select_option("#model-picker", f"{acme.pk}|gpt-4o-mini")
        bob_page.get_by_test_id("send").click()
        expect(bob_page.locator("#messages article.msg.role-assistant")).to_have_attribute(
            "data-status", "complete"
        )
        assert "provider_error" not in bob_page.locator("#messages").text_content()
    legacy.refresh_from_db()
    assert legacy.credential == acme

    # vera (viewer): reads, no picker, no composer.
    with browser.new_context(base_url=live_server_url) as context:
        vera_page = context.new_page()
        login(vera_page, vera_viewer)
        open_chat(vera_page, conversation)
        expect(vera_page.get_by_test_id("model-picker")).to_have_count(0)
        expect(vera_page.locator("#composer")).to_have_count(0)

    # charlie (outsider): the conversation doesn't exist for him.
    with browser.new_context(base_url=live_server_url) as context:
        charlie_page = context.new_page()
        login(charlie_page, charlie_outsider)
        response = charlie_page.goto(f"/chat/{conversation.pk}/")
        assert response.status == 404
