"""The conversation page in a real browser (issue 9, the page itself): raw Markdown for Edit and
Copy, styles that stay out of rendered replies, opening at the latest message, progressive
rendering, math, the model picker and its team/credential rules, message actions, keyboard.

Each changed state is saved at 1280 and 390 px wide (`shots`)."""

from __future__ import annotations

import itertools
import re
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


def test_a_reply_that_grows_by_screenfuls_keeps_the_sender_at_the_newest_text_until_they_scroll_away(
    page, login, shots, alice, fake_a, fake_provider
):
    conversation = services.conversation_start(
        actor=alice, credential=fake_a, model="gpt-4o-mini", title="Screenfuls"
    )
    # Big chunks: each delta adds more than a screen, which is what used to stop the following.
    paragraphs = "\n\n".join(f"Paragraph {i}. " + "More words here. " * 25 for i in range(40))
    fake_provider.configure(reply=paragraphs, tokens_per_chunk=120, tokens_per_second=600)
    login(page, alice)
    open_chat(page, conversation)
    page.fill("#composer-input", "Write a lot.")
    page.get_by_test_id("send").click()
    reply = page.locator("#messages article.msg.role-assistant")
    expect(reply).to_have_attribute("data-status", "complete", timeout=20_000)
    page.wait_for_function(
        "() => window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 2"
    )
    expect(reply.get_by_test_id("stats")).to_be_in_viewport()
    expect(page.get_by_test_id("jump-latest")).to_be_hidden()
    shots(page, "chat-followed-a-long-reply")

    # Scrolled away while a reply streams: the page stays where the reader went.
    fake_provider.configure(reply=paragraphs, tokens_per_chunk=40, tokens_per_second=300)
    page.fill("#composer-input", "Again.")
    page.get_by_test_id("send").click()
    expect(page.locator("#messages article.msg[data-status=streaming]")).to_have_count(1)
    page.mouse.wheel(0, -2500)
    expect(page.get_by_test_id("jump-latest")).to_be_visible()
    expect(reply.last).to_have_attribute("data-status", "complete", timeout=20_000)
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
            expect(bob_page.locator("#model-picker")).to_be_hidden()  # the combobox took over
            picker = bob_page.get_by_role("combobox", name="Model")
            expect(picker).to_have_value("")  # the refused model isn't offered as the choice
            picker.click()
            bob_page.keyboard.type("mini")
            bob_page.keyboard.press("Enter")
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


# --- Bugs 6 and 15: progressive rendering without a jump; math as MathML; task lists -----------

RICH_REPLY = (
    "Here is the plan:\n\n"
    "1. Measure the **baseline**\n2. Change one thing\n3. Measure again\n\n"
    "| Step | Cost |\n|:-----|-----:|\n| one | $1 |\n| two | $2 |\n\n"
    "```python\ndef area(r):\n    return 3.14159 * r ** 2\n```\n\n"
    "The area is $A = \\pi r^2$, and\n\n"
    "$$\n\\sum_{n=1}^{\\infty} \\frac{1}{n^2} = \\frac{\\pi^2}{6}\n$$\n\n"
    "- [x] measured\n- [ ] shipped\n"
)

WATCH_REPLY = """() => {
  window.__seen = [];
  const messages = document.getElementById("messages");
  new MutationObserver(() => {
    const el = messages.querySelector("article.msg.role-assistant");
    const content = el && el.querySelector(".content");
    if (!content) return;
    window.__seen.push({
      status: el.dataset.status,
      height: content.getBoundingClientRect().height,
      list: !!content.querySelector("ol > li"),
      table: !!content.querySelector("table td"),
      code: !!content.querySelector(".code-block pre"),
      math: !!content.querySelector("math"),
    });
  }).observe(messages, { childList: true, subtree: true, characterData: true, attributes: true });
}"""


def test_a_streaming_reply_renders_progressively_and_does_not_jump_when_it_ends(
    page, login, shots, alice, fake_a, fake_provider
):
    conversation = services.conversation_start(
        actor=alice, credential=fake_a, model="gpt-4o-mini", title="Rich"
    )
    fake_provider.configure(reply=RICH_REPLY, tokens_per_second=25)
    login(page, alice)
    open_chat(page, conversation)
    page.evaluate(WATCH_REPLY)
    page.fill("#composer-input", "Plan it, with a table, code and math.")
    page.get_by_test_id("send").click()

    streaming = page.locator("#messages article.msg.role-assistant[data-status=streaming]")
    # While it streams: a real list, then a real table, then highlighted-box code.
    expect(streaming.locator(".content ol > li")).to_have_count(3)
    expect(streaming.locator(".content table td").first).to_be_visible()
    shots(page, "chat-streaming-table")
    expect(streaming.locator(".content .code-block pre")).to_be_visible()
    shots(page, "chat-streaming-code")
    reply = page.locator("#messages article.msg.role-assistant")
    expect(reply).to_have_attribute("data-status", "complete")

    seen = page.evaluate("window.__seen")
    during = [s for s in seen if s["status"] == "streaming"]
    assert any(s["list"] and not s["table"] for s in during)
    assert any(s["table"] and not s["code"] for s in during)
    assert any(s["code"] for s in during)
    final_height = reply.locator(".content").evaluate("c => c.getBoundingClientRect().height")
    assert abs(during[-1]["height"] - final_height) < 1, (during[-1], final_height)

    # Math is MathML the browser lays out; the task list has real (disabled) checkboxes.
    content = reply.locator(".content")
    expect(content.locator("math")).to_have_count(2)
    expect(content.locator("math[display=block] mfrac")).to_have_count(2)
    assert (
        content.locator("math[display=block]").evaluate("m => m.getBoundingClientRect().height")
        > 30
    )
    assert "\\frac" not in content.text_content() and "$$" not in content.text_content()
    boxes = content.get_by_role("checkbox")
    expect(boxes).to_have_count(2)
    expect(content.get_by_role("checkbox", name="measured")).to_be_checked()
    expect(content.get_by_role("checkbox", name="shipped")).not_to_be_checked()
    expect(boxes.first).to_be_disabled()
    shots(page, "chat-math-and-tasks")
    assert Message.objects.get(conversation=conversation, role="assistant").content == RICH_REPLY


# --- Bug 7: the settings the user sees are the ones a reply uses --------------------------------


def test_an_unsaved_system_prompt_and_temperature_apply_to_the_next_message_and_are_saved(
    page, login, shots, alice, fake_a, fake_provider
):
    conversation = services.conversation_start(
        actor=alice, credential=fake_a, model="gpt-4o-mini", title="Settings"
    )
    fake_provider.configure(tokens_per_second=200)
    login(page, alice)
    open_chat(page, conversation)
    page.get_by_text("System prompt and parameters").click()
    page.fill("#id_system_prompt", "Answer in one word.")
    page.fill("#id_temperature", "0.3")
    page.fill("#composer-input", "Colour of the sky?")
    shots(page, "chat-unsaved-settings")
    page.get_by_test_id("send").click()
    expect(page.locator("#messages article.msg.role-assistant")).to_have_attribute(
        "data-status", "complete"
    )
    expect(page.locator("[data-settings-state]")).to_have_text("saved with your message")
    [call] = [r for r in fake_provider.requests if r.path.endswith("/chat/completions")]
    assert call.body["messages"][0] == {"role": "system", "content": "Answer in one word."}
    assert call.body["temperature"] == 0.3
    conversation.refresh_from_db()
    assert conversation.system_prompt == "Answer in one word."
    assert conversation.params == {"temperature": 0.3}

    # Settings that can't apply send nothing and lose nothing: the question stays in the box.
    page.fill("#id_temperature", "7")
    page.fill("#composer-input", "And at night?")
    page.get_by_test_id("send").click()
    expect(page.locator("#composer-error")).to_contain_text("Settings not applied")
    expect(page.locator("#composer-input")).to_have_value("And at night?")
    expect(page.locator("#messages article.msg")).to_have_count(2)
    conversation.refresh_from_db()
    assert conversation.params == {"temperature": 0.3}


# --- Bug 12: Stop and Esc whenever the visible reply streams ------------------------------------


def test_after_a_reload_mid_reply_stop_shows_and_esc_stops_it_from_anywhere(
    page, login, shots, alice, fake_a, fake_provider
):
    conversation = services.conversation_start(
        actor=alice, credential=fake_a, model="gpt-4o-mini", title="Long"
    )
    fake_provider.configure(tokens_per_second=8, reply_tokens=80)  # ~10 s
    login(page, alice)
    open_chat(page, conversation)
    page.fill("#composer-input", "Tell me a long story.")
    page.get_by_test_id("send").click()
    expect(page.locator("#messages article.msg[data-status=streaming]")).to_have_count(1)

    page.reload()
    expect(page.locator("#connection")).to_have_text("Live")
    streaming = page.locator("#messages article.msg[data-status=streaming]")
    expect(streaming).to_have_count(1)
    expect(page.get_by_test_id("stop")).to_be_visible()
    expect(page.get_by_test_id("send")).to_be_hidden()
    shots(page, "chat-reloaded-mid-reply")

    page.locator("#chat-title").click()  # the focus is not in the composer
    assert page.evaluate("document.activeElement.id") != "composer-input"
    page.keyboard.press("Escape")
    reply = page.locator("#messages article.msg.role-assistant")
    expect(reply).to_have_attribute("data-status", "stopped")
    expect(page.get_by_test_id("send")).to_be_visible()
    assert Message.objects.get(conversation=conversation, role="assistant").status == "stopped"


# --- Bug 17: the composer grows, and is ready on a new chat --------------------------------------


def test_the_composer_has_the_focus_on_a_new_chat_and_grows_with_its_text(
    page, login, shots, alice, fake_a
):
    conversation = services.conversation_start(actor=alice, credential=fake_a, model="gpt-4o-mini")
    login(page, alice)
    open_chat(page, conversation)
    box = page.locator("#composer-input")
    expect(box).to_be_focused()
    one_line = box.evaluate("b => b.getBoundingClientRect().height")
    page.keyboard.type("line 1")
    for i in range(2, 6):
        page.keyboard.press("Shift+Enter")
        page.keyboard.type(f"line {i}")
    five_lines = box.evaluate("b => b.getBoundingClientRect().height")
    assert five_lines > one_line + 40, (one_line, five_lines)
    shots(page, "chat-composer-grown")
    for i in range(6, 30):
        page.keyboard.press("Shift+Enter")
        page.keyboard.type(f"line {i}")
    capped = box.evaluate("b => b.getBoundingClientRect().height")
    assert capped <= 14 * 16 + 2, capped  # 14rem, then it scrolls
    assert box.evaluate("b => b.scrollHeight > b.clientHeight")


# --- Bug 19: reconnecting shows a live countdown and "Retry now"; a returning server is noticed ---


def test_a_restarted_server_is_noticed_within_seconds_and_retry_now_reconnects_at_once(
    browser, login, shots, alice, fake_a, tmp_path, transactional_db
):
    from tests import servers

    conversation = services.conversation_start(actor=alice, credential=fake_a, model="gpt-4o-mini")
    port = servers.free_port()
    process, _ = servers.start_daphne(servers.daphne_env(), tmp_path / "a.log", port=port)
    context = browser.new_context(base_url=f"http://127.0.0.1:{port}")
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        login(page, alice)
        open_chat(page, conversation)

        servers.stop(process)  # the server goes away
        connection = page.locator("#connection")
        expect(connection).to_have_text(re.compile(r"Reconnecting in \d s…"))
        retry_now = page.get_by_test_id("reconnect-now")
        expect(retry_now).to_be_visible()
        # The countdown is live (it counts down) and never waits more than about 5 s.
        seen = set()
        for _ in range(30):
            text = connection.text_content()
            match = re.search(r"in (\d) s", text or "")
            if match:
                seen.add(int(match.group(1)))
            page.wait_for_timeout(100)
        assert seen and max(seen) <= 6, seen
        shots(page, "chat-reconnecting")

        process, _ = servers.start_daphne(servers.daphne_env(), tmp_path / "b.log", port=port)
        retry_now.click()
        expect(connection).to_have_text("Live", timeout=3_000)
        expect(retry_now).to_be_hidden()

        # Without "Retry now": the page notices a returning server by itself within the cap.
        servers.stop(process)
        expect(connection).to_have_text(re.compile(r"Reconnecting"))
        page.wait_for_timeout(6_000)  # let the back-off reach its longest wait
        process, _ = servers.start_daphne(servers.daphne_env(), tmp_path / "c.log", port=port)
        expect(connection).to_have_text("Live", timeout=7_000)
    finally:
        context.close()
        servers.stop(process)
