"""Behaviour of the chat pages: the list (empty state, model picker, search, pagination), a
conversation (the visible path, sibling navigation, per-message stats and costs, read-only
viewers, stale replies), settings, rename, titles, delete, export, fork and the highlighting
stylesheet. Status codes per persona are in tests/test_access_matrix.py; these tests look at what
the pages say and what they change."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import UsageRecord
from chats import replies, services
from chats.models import Conversation, Message
from chats.templatetags.chat import ms, tps, usd
from providers import services as provider_services
from providers.models import ProviderCredential, ProviderModel


@pytest.fixture(autouse=True)
def _one_attempt(settings):
    settings.WORKBENCH_PROVIDER_MAX_ATTEMPTS = 1


def echo_for(user):
    return provider_services.credentials_ensure_echo(user=user)


def start(user, credential=None, model="echo", **fields) -> Conversation:
    credential = credential if credential is not None else echo_for(user)
    return services.conversation_start(actor=user, credential=credential, model=model, **fields)


def send(client, conversation, content: str, **extra) -> dict:
    """Post a message through the REST API with the page's session (the reply runs to the end)."""
    response = client.post(
        f"/api/conversations/{conversation.pk}/messages/",
        json.dumps({"content": content, **extra}),
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    return response.json()


def page(client, conversation, **query) -> str:
    response = client.get(f"/chat/{conversation.pk}/", query)
    assert response.status_code == 200
    return response.content.decode()


def article(html: str, message_id: int) -> str:
    """The `<article>` of one message on a page."""
    match = re.search(rf'<article [^>]*id="message-{message_id}".*?</article>', html, re.S)
    assert match, f"message {message_id} is not on the page"
    return match.group(0)


def stats(html: str, message_id: int) -> str:
    match = re.search(r'data-testid="stats">(.*?)</span>\s*<', article(html, message_id), re.S)
    assert match
    return " ".join(re.sub(r"<[^>]+>", "", match.group(1)).split())


def add_models(credential, *model_ids: str) -> None:
    for model_id in model_ids:
        ProviderModel.objects.create(credential=credential, model_id=model_id, kind="chat")


# --- The list and new conversations ----------------------------------------------------------------


def test_the_chat_page_is_a_new_chat_composer_with_visibility_and_the_automatic_echo_model(
    alice, team, client_for
):
    response = client_for(alice).get("/chat/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "No conversations yet." in html
    assert "New chat" in html
    assert "The chat is saved when you send the first message." in html
    echo = ProviderCredential.objects.get(owner_user=alice)  # made by the visit
    assert echo.preset == "echo"
    picker = re.search(
        r'<select name="model_choice" id="new-model"[^>]*>(.*?)</select>', html, re.S
    )
    assert picker, "no model picker on the new-chat page"
    assert re.search(
        rf'<option value="{echo.pk}\|echo"[^>]* selected>echo — Echo \(local\)</option>',
        picker.group(1),
    )
    assert "(local) (local)" not in picker.group(1)
    visibility = re.search(r'data-testid="visibility">(.*?)</fieldset>', html, re.S).group(1)
    assert re.search(r'value="" checked>.*Personal', visibility, re.S)
    assert f'value="{team.pk}">' in visibility
    assert "Team “Acme”" in visibility and "visible to 1 member" in visibility


def test_the_current_team_is_the_default_visibility_of_a_new_chat(
    alice, team, bob_teammate, client_for
):
    """BUG 10: after creating a team every new chat silently became a team chat. The choice is
    now on the page, with the current team preselected and its audience spelled out."""
    client = client_for(alice)
    client.post(f"/teams/{team.pk}/switch/")

    html = client.get("/chat/").content.decode()

    assert re.search(rf'value="{team.pk}" checked>.*visible to 2 members', html, re.S)


def test_posting_without_a_message_creates_nothing(alice, client_for):
    """BUG 13: "New chat" created an empty conversation on every click."""
    client = client_for(alice)
    client.get("/chat/")

    response = client.post("/chat/new/", {"content": "   "})

    assert response.status_code == 400
    assert "Write a message first." in response.content.decode()
    assert not Conversation.objects.exists()


async def _new_chat(client, **data):
    from chats import streaming

    response = await client.post("/chat/new/", data)
    for reply in list(streaming.RUNNING.values()):
        await reply.task
    return response


@pytest.mark.django_db(transaction=True)
async def test_the_first_message_creates_the_conversation_and_its_reply_streams_on(
    alice, async_client
):
    from asgiref.sync import sync_to_async

    await async_client.aforce_login(alice)
    await async_client.get("/chat/")

    response = await _new_chat(async_client, content="Hello **there**")

    conversation = await Conversation.objects.aget()
    assert response.status_code == 302
    assert response["Location"] == f"/chat/{conversation.pk}/"
    assert conversation.owner_user_id == alice.pk
    messages = await sync_to_async(list)(conversation.messages.order_by("id"))
    assert [(m.role, m.status) for m in messages] == [
        ("user", "complete"),
        ("assistant", "complete"),
    ]
    assert "Hello **there**" in messages[1].content  # Echo answers with what it received
    assert conversation.title == "Hello there"


@pytest.mark.django_db(transaction=True)
async def test_a_new_chat_can_be_a_team_chat_and_says_so_in_its_header(
    alice, team, bob_teammate, async_client
):
    from asgiref.sync import sync_to_async

    await async_client.aforce_login(alice)
    await async_client.get("/chat/")

    await _new_chat(async_client, content="For the team", owner_team=str(team.pk))

    conversation = await Conversation.objects.aget()
    assert conversation.owner_team_id == team.pk
    html = (await async_client.get(f"/chat/{conversation.pk}/")).content.decode()
    audience = await sync_to_async(
        lambda: re.search(r'data-testid="audience">(.*?)</span>', html, re.S)
    )()
    assert "Team chat — visible to 2 members of “Acme”" in audience.group(1)


def test_a_personal_chat_header_says_only_you_can_see_it(alice, client_for):
    conversation = start(alice)

    html = page(client_for(alice), conversation)

    assert "Personal — only you can see it" in html


def test_a_viewer_cannot_start_a_team_chat(alice, team, vera_viewer, client_for):
    client = client_for(vera_viewer)
    client.get("/chat/")

    response = client.post("/chat/new/", {"content": "hi", "owner_team": team.pk})

    assert response.status_code == 403
    assert not Conversation.objects.filter(owner_team=team).exists()
    html = client.get("/chat/").content.decode()
    assert "Team “Acme”" not in html  # only teams she may post in are offered


def test_a_new_conversation_gets_echo_even_before_the_chat_page_was_visited(
    alice, team, bob_teammate, client_for
):
    """BUG: Echo is only created by the list page. Someone who opens a team conversation from a
    link and starts a new chat from there has no model at all."""
    conversation = services.conversation_start(actor=alice, owner_team=team)
    client = client_for(bob_teammate)
    page(client, conversation)

    client.post("/chat/new/", {"content": "hello"})

    new = Conversation.objects.get(owner_user=bob_teammate)
    assert new.credential is not None
    assert (new.credential.preset, new.model) == ("echo", "echo")


def test_a_new_conversation_defaults_to_the_last_used_model(alice, client_for, make_credential):
    client = client_for(alice)
    client.get("/chat/")  # creates Echo, the first model in the picker
    openai = make_credential(alice, "openai", name="Work OpenAI")
    add_models(openai, "gpt-4o", "gpt-4o-mini")

    client.post("/chat/new/", {"model_choice": f"{openai.pk}|gpt-4o", "content": "one"})
    client.post("/chat/new/", {"content": "two"})

    first, second = Conversation.objects.order_by("id")
    assert (first.credential, first.model) == (openai, "gpt-4o")
    assert (second.credential, second.model) == (openai, "gpt-4o")


def test_the_search_box_filters_by_title_and_by_message_text(alice, client_for):
    client = client_for(alice)
    by_title = start(alice, title="Budget review")
    by_message = start(alice, title="Misc")
    Message.objects.create(
        conversation=by_message, role="user", content="the BUDGET for 2027", author=alice
    )
    other = start(alice, title="Holidays")

    html = client.get("/chat/", {"q": "budget"}).content.decode()
    partial = client.get(
        "/chat/", {"q": "budget", "partial": "list"}, headers={"HX-Request": "true"}
    ).content.decode()
    nothing = client.get(
        "/chat/", {"q": "zebra", "partial": "list"}, headers={"HX-Request": "true"}
    ).content.decode()

    for body in (html, partial):
        assert f'id="conversation-{by_title.pk}"' in body
        assert f'id="conversation-{by_message.pk}"' in body
        assert f'id="conversation-{other.pk}"' not in body
    assert 'value="budget"' in html
    assert partial.lstrip().startswith('<div id="conversation-list">')
    assert "<html" not in partial
    assert "Nothing matches “zebra”." in nothing


def test_the_list_pages_after_thirty_conversations(alice, client_for):
    client = client_for(alice)
    echo = echo_for(alice)
    now = timezone.now()
    conversations = [start(alice, echo, title=f"Chat number {i}") for i in range(31)]
    for i, conversation in enumerate(conversations):  # oldest first
        Conversation.objects.filter(pk=conversation.pk).update(
            updated_at=now - timedelta(minutes=100 - i)
        )

    first = client.get("/chat/").content.decode()
    second = client.get("/chat/", {"page": 2}).content.decode()

    assert len(re.findall(r'id="conversation-\d+"', first)) == 30
    assert f'id="conversation-{conversations[-1].pk}"' in first  # newest on page 1
    assert f'id="conversation-{conversations[0].pk}"' not in first
    assert "1 / 2" in first
    assert 'href="?page=2"' in first
    assert re.findall(r'id="conversation-(\d+)"', second) == [str(conversations[0].pk)]
    assert "2 / 2" in second
    assert 'href="?page=1"' in second


# --- A conversation ------------------------------------------------------------------------------------


def test_the_page_shows_the_visible_path_with_sibling_navigation(alice, client_for):
    client = client_for(alice)
    conversation = start(alice)
    first = send(client, conversation, "first question")
    second = send(client, conversation, "second question", parent_id=None)
    q1, a1 = first["user_message"]["id"], first["reply"]["id"]
    q2, a2 = second["user_message"]["id"], second["reply"]["id"]

    latest = page(client, conversation)
    earlier = page(client, conversation, leaf=a1)

    # The newest branch is shown, second of two, with a way back to the first.
    assert f'id="message-{q2}"' in latest and f'id="message-{a2}"' in latest
    assert f'id="message-{q1}"' not in latest
    assert latest.index(f'id="message-{q2}"') < latest.index(f'id="message-{a2}"')
    nav = article(latest, q2)
    assert '<span class="sib-count">2/2</span>' in nav
    assert f'data-target="{q1}" aria-label="Previous version">‹' in nav
    assert re.search(r'aria-label="Next version" disabled>›', nav)
    assert "sib-count" not in article(latest, a2)  # the reply has no siblings
    # ?leaf= shows the other branch.
    assert f'id="message-{q1}"' in earlier and f'id="message-{a1}"' in earlier
    assert f'id="message-{q2}"' not in earlier
    nav = article(earlier, q1)
    assert '<span class="sib-count">1/2</span>' in nav
    assert f'data-target="{q2}" aria-label="Next version">›' in nav


def test_each_reply_shows_tokens_cost_provenance_ttft_and_speed(
    alice, client_for, make_credential, fake_provider
):
    client = client_for(alice)
    openai = make_credential(alice, "openai")
    conversation = start(alice)
    local = send(client, conversation, "hello echo")["reply"]
    services.conversation_update(
        actor=alice, conversation=conversation, credential=openai, model="gpt-4o-mini"
    )
    fake_provider.enqueue(usage=False)
    estimated = send(client, conversation, "count it yourself")["reply"]
    services.conversation_update(actor=alice, conversation=conversation, model="no-such-model-x")
    unpriced = send(client, conversation, "who prices you?")["reply"]
    services.conversation_update(actor=alice, conversation=conversation, model="gpt-4o-mini")
    priced = send(client, conversation, "and you?")["reply"]

    html = page(client, conversation)

    local_stats = stats(html, local["id"])
    assert f"{local['input_tokens']} in / {local['output_tokens']} out" in local_stats
    assert "$0.00 local" in local_stats
    assert f"TTFT {ms(local['ttft_ms'])}" in local_stats
    est_stats = stats(html, estimated["id"])
    assert estimated["tokens_estimated"] is True
    assert estimated["cost_source"] == "estimated"
    assert re.search(r"\d+ in / \d+ out est\. · \$[0-9.]+ est\.", est_stats), est_stats
    assert "unpriced" in stats(html, unpriced["id"])
    assert unpriced["cost_source"] == "unpriced"
    priced_stats = stats(html, priced["id"])
    assert usd(Decimal(priced["cost"])) in priced_stats
    assert "est." not in priced_stats
    assert f"TTFT {ms(priced['ttft_ms'])}" in priced_stats
    assert priced["tokens_per_second"]
    assert f"{tps(priced['tokens_per_second'])} tok/s" in priced_stats
    assert "+ 1 unpriced call" in html  # the conversation used a model with no price


def test_the_page_shows_what_the_conversation_cost_and_what_this_path_cost(
    alice, client_for, make_credential, fake_provider
):
    client = client_for(alice)
    conversation = start(alice, make_credential(alice, "openai"), model="gpt-4o-mini")
    hidden = send(client, conversation, "a question")["reply"]
    fake_provider.enqueue(reply_tokens=60)
    shown = send(client, conversation, "a longer answer, please", parent_id=None)["reply"]
    total = Decimal(hidden["cost"]) + Decimal(shown["cost"])

    html = page(client, conversation)
    other_path = page(client, conversation, leaf=hidden["id"])

    assert f"This conversation cost <strong>{usd(total)}</strong>" in html
    assert f'data-testid="path-cost">{usd(Decimal(shown["cost"]))}</strong>' in html
    assert f"This conversation cost <strong>{usd(total)}</strong>" in other_path
    assert f'data-testid="path-cost">{usd(Decimal(hidden["cost"]))}</strong>' in other_path
    assert usd(total) != usd(Decimal(shown["cost"]))


def test_a_viewer_reads_a_team_conversation_without_controls(alice, team, vera_viewer, client_for):
    credential = provider_services.credential_create(
        actor=alice, preset="echo", name="Acme echo", owner_team=team
    )
    conversation = services.conversation_start(
        actor=alice, owner_team=team, credential=credential, model="echo"
    )
    send(client_for(alice), conversation, "team question")

    html = page(client_for(vera_viewer), conversation)
    owner_html = page(client_for(alice), conversation)

    assert "read only" in html
    assert 'data-can-use="0"' in html and 'data-can-write="0"' in html
    assert 'id="composer"' not in html
    assert 'id="settings-form"' not in html
    assert f'action="/chat/{conversation.pk}/rename/"' not in html
    assert "Delete…" not in html
    assert "doesn't let you post" in html
    assert "team question" in html  # but the conversation is there to read
    assert 'data-can-use="1"' in owner_html and 'id="composer"' in owner_html
    assert f'action="/chat/{conversation.pk}/rename/"' in owner_html
    assert 'id="settings-form"' in owner_html
    assert "read only" not in owner_html


def test_a_stale_streaming_reply_shows_as_interrupted_while_a_fresh_one_keeps_streaming(
    alice, client_for
):
    client = client_for(alice)
    conversation = start(alice)
    old = timezone.now() - replies.STALE_AFTER - timedelta(seconds=2)

    def streaming_branch(question: str, text: str, heartbeat):
        asked = Message.objects.create(
            conversation=conversation, role="user", content=question, author=alice
        )
        return Message.objects.create(
            conversation=conversation,
            parent=asked,
            role="assistant",
            content=text,
            status="streaming",
            model="echo",
            heartbeat_at=heartbeat,
        )

    stale = streaming_branch("dead process?", "half an ans", old)
    fresh = streaming_branch("live process?", "still typing", timezone.now())

    html = page(client, conversation)
    stale_html = page(client, conversation, leaf=stale.pk)

    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert (stale.status, stale.error_code) == ("interrupted", "interrupted")
    assert stale.content == "half an ans"  # the checkpointed text is kept
    assert fresh.status == "streaming"
    assert 'data-status="streaming"' in article(html, fresh.pk)
    shown = article(stale_html, stale.pk)
    assert 'data-status="interrupted"' in shown
    assert "half an ans" in shown
    assert 'data-action="continue"' in shown and 'data-action="retry"' in shown


def test_message_text_is_escaped_and_sanitized_on_the_page(alice, client_for):
    client = client_for(alice)
    conversation = start(alice)
    nasty = "<script>alert(1)</script> and [x](javascript:alert(1)) <img src=x onerror=alert(2)>"
    sent = send(client, conversation, nasty)
    streaming = Message.objects.create(
        conversation=conversation,
        parent_id=sent["reply"]["id"],
        role="assistant",
        content="<script>alert(3)</script>",
        status="streaming",
        heartbeat_at=timezone.now(),
    )

    html = page(client, conversation)

    for message_id in (sent["user_message"]["id"], sent["reply"]["id"], streaming.pk):
        body = article(html, message_id)
        assert "<script" not in body
        assert "<img" not in body
        assert not re.search(r"""href\s*=\s*["']?\s*javascript:""", body, re.I)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in article(html, sent["user_message"]["id"])
    assert "&lt;script&gt;alert(3)&lt;/script&gt;" in article(html, streaming.pk)


# --- Settings, rename, titles -------------------------------------------------------------------------


def test_the_settings_form_saves_temperature_max_tokens_and_the_system_prompt(alice, client_for):
    client = client_for(alice)
    conversation = start(alice, params={"seed": 3})

    response = client.post(
        f"/chat/{conversation.pk}/settings/",
        {
            "system_prompt": "Answer like a pirate.",
            "temperature": "0.4",
            "top_p": "",
            "max_tokens": "128",
            "seed": "",
        },
    )

    assert response.status_code == 302
    conversation.refresh_from_db()
    assert conversation.system_prompt == "Answer like a pirate."
    assert conversation.params == {"temperature": 0.4, "max_tokens": 128}
    html = page(client, conversation)
    assert 'value="0.4"' in html and 'value="128"' in html
    assert "Answer like a pirate." in html


def test_the_settings_form_refuses_out_of_range_values_with_a_visible_error(alice, client_for):
    client = client_for(alice)
    conversation = start(alice, system_prompt="Keep me", params={"temperature": 1.0})
    bad = {"system_prompt": "Changed", "temperature": "5", "max_tokens": "0"}

    response = client.post(f"/chat/{conversation.pk}/settings/", bad, follow=True)
    htmx = client.post(f"/chat/{conversation.pk}/settings/", bad, headers={"HX-Request": "true"})

    html = response.content.decode()
    assert "Settings not saved" in html
    assert "less than or equal to 2" in html
    assert htmx.status_code == 400
    fragment = htmx.content.decode()
    assert fragment.lstrip().startswith("<form")
    assert "less than or equal to 2" in fragment
    assert "greater than or equal to 1" in fragment
    conversation.refresh_from_db()
    assert conversation.params == {"temperature": 1.0}
    assert conversation.system_prompt == "Keep me"


def test_the_model_picker_changes_the_model_and_keeps_the_parameters(
    alice, client_for, make_credential
):
    client = client_for(alice)
    openai = make_credential(alice, "openai")
    add_models(openai, "gpt-4o")
    conversation = start(alice, system_prompt="Stay", params={"temperature": 0.7, "max_tokens": 50})

    response = client.post(
        f"/chat/{conversation.pk}/settings/",
        {"model_choice": f"{openai.pk}|gpt-4o"},
        headers={"HX-Request": "true"},
    )

    assert response.status_code == 200
    conversation.refresh_from_db()
    assert (conversation.credential, conversation.model) == (openai, "gpt-4o")
    assert conversation.params == {"temperature": 0.7, "max_tokens": 50}
    assert conversation.system_prompt == "Stay"
    html = page(client, conversation)
    assert re.search(rf'<option value="{openai.pk}\|gpt-4o"[^>]* selected>', html)


def test_rename_sets_the_title(alice, client_for):
    client = client_for(alice)
    conversation = start(alice)

    response = client.post(f"/chat/{conversation.pk}/rename/", {"title": "  Trip planning  "})

    assert response.status_code == 302
    conversation.refresh_from_db()
    assert (conversation.title, conversation.title_source) == ("Trip planning", "user")
    assert '<h1 id="chat-title">Trip planning</h1>' in page(client, conversation)


def test_a_too_long_title_is_refused_with_a_visible_error(alice, client_for):
    """BUG (small): DESIGN §5 "bad input anywhere gets a clear error" — an invalid rename (over
    200 characters, e.g. from a script; the input has maxlength) redirects with no message."""
    client = client_for(alice)
    conversation = start(alice, title="Short")

    response = client.post(f"/chat/{conversation.pk}/rename/", {"title": "x" * 201}, follow=True)

    conversation.refresh_from_db()
    assert conversation.title == "Short"
    assert "200 characters" in response.content.decode()


def test_an_empty_title_goes_back_to_the_automatic_title_from_the_first_question(alice, client_for):
    client = client_for(alice)
    conversation = start(alice)
    send(client, conversation, "How do tides work?")
    send(client, conversation, "And on other planets?")
    client.post(f"/chat/{conversation.pk}/rename/", {"title": "Mine"})

    client.post(f"/chat/{conversation.pk}/rename/", {"title": ""})

    conversation.refresh_from_db()
    assert conversation.title_source == "auto"
    # BUG: the title becomes "" ("New conversation") until the next reply, which then titles it
    # from *that* reply's question, not the first one.
    assert conversation.title == "How do tides work?"
    assert '<h1 id="chat-title">How do tides work?</h1>' in page(client, conversation)


def test_the_model_writes_a_title_and_the_call_is_recorded_as_a_title_usage(alice, client_for):
    client = client_for(alice)
    conversation = start(alice)
    send(client, conversation, "Tell me about tides")

    response = client.post(f"/chat/{conversation.pk}/title/", follow=True)

    conversation.refresh_from_db()
    assert conversation.title_source == "model"
    assert conversation.title and conversation.title != "Tell me about tides"
    assert "Echo" in conversation.title  # Echo answers with what it received
    assert "Titled “" in response.content.decode()
    row = UsageRecord.objects.get(feature="title")
    assert row.context == {"conversation": conversation.pk}
    assert (row.status, row.cost_source, row.user) == ("ok", "local", alice)


def test_titling_an_empty_conversation_says_why_not(alice, client_for):
    client = client_for(alice)
    conversation = start(alice)

    response = client.post(f"/chat/{conversation.pk}/title/", follow=True)

    assert "Nothing to title yet" in response.content.decode()
    assert not UsageRecord.objects.filter(feature="title").exists()


# --- Delete, export, fork, stylesheet ------------------------------------------------------------------


def test_delete_asks_first_then_deletes_and_keeps_the_spend(alice, client_for):
    client = client_for(alice)
    conversation = start(alice, title="Doomed")
    send(client, conversation, "hello")

    confirm = client.get(f"/chat/{conversation.pk}/delete/")

    assert confirm.status_code == 200
    html = confirm.content.decode()
    assert "Delete “Doomed”?" in html
    assert "All 2 messages" in html
    assert Conversation.objects.filter(pk=conversation.pk).exists()

    response = client.post(f"/chat/{conversation.pk}/delete/", follow=True)

    assert response.redirect_chain == [("/chat/", 302)]
    assert "Deleted “Doomed”. Its spend stays in Usage." in response.content.decode()
    assert not Conversation.objects.filter(pk=conversation.pk).exists()
    assert UsageRecord.objects.filter(feature="chat").count() == 1


def test_the_markdown_export_holds_the_visible_path_in_order(alice, client_for):
    client = client_for(alice)
    conversation = start(alice, title="Export me", system_prompt="Be kind.")
    send(client, conversation, "hidden branch question")
    send(client, conversation, "visible first", parent_id=None)
    send(client, conversation, "visible second")

    response = client.get(f"/chat/{conversation.pk}/export.md")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="export-me.md"'
    text = response.content.decode()
    assert text.startswith("# Export me\n")
    assert "Be kind." in text
    assert "hidden branch question" not in text
    assert text.index("## You\n\nvisible first") < text.index("## You\n\nvisible second")
    assert text.count("## You") == 2
    assert text.count("## echo") == 2
    assert "4 messages on this path" in text


def test_the_json_export_holds_every_message_with_its_parent(
    alice, client_for, make_credential, fake_provider
):
    client = client_for(alice)
    credential = make_credential(alice, "openai")
    conversation = start(alice, credential, model="gpt-4o-mini", title="Tree")
    first = send(client, conversation, "one")
    second = send(client, conversation, "two", parent_id=None)

    response = client.get(f"/chat/{conversation.pk}/export.json")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == 'attachment; filename="tree.json"'
    data = json.loads(response.content)
    assert (data["format"], data["version"]) == ("workbench.conversation", 1)
    parents = {m["id"]: m["parent"] for m in data["messages"]}
    assert parents == {
        first["user_message"]["id"]: None,
        first["reply"]["id"]: first["user_message"]["id"],
        second["user_message"]["id"]: None,
        second["reply"]["id"]: second["user_message"]["id"],
    }
    assert data["visible_path"] == [second["user_message"]["id"], second["reply"]["id"]]
    reply = next(m for m in data["messages"] if m["id"] == first["reply"]["id"])
    assert Decimal(reply["usage"]["cost_usd"]) == Decimal(first["reply"]["cost"])
    assert credential.api_key not in response.content.decode()


def test_forking_from_the_page_opens_the_new_conversation(alice, client_for):
    client = client_for(alice)
    conversation = start(alice, title="Source")
    first = send(client, conversation, "keep this")
    send(client, conversation, "not this")

    response = client.post(
        f"/chat/{conversation.pk}/fork/", {"message_id": first["reply"]["id"]}, follow=True
    )

    fork = Conversation.objects.exclude(pk=conversation.pk).get()
    assert response.redirect_chain == [(f"/chat/{fork.pk}/", 302)]
    html = response.content.decode()
    assert "Fork of Source" in html
    assert "· forked" in html
    assert "Forked: this is a new conversation" in html
    assert "keep this" in html
    assert "not this" not in html
    assert fork.messages.count() == 2


def test_the_highlighting_stylesheet_is_served_as_css(client):
    response = client.get("/chat/highlight.css")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/css")
    assert ".code" in response.content.decode()


def test_each_list_row_shows_the_model_and_what_the_conversation_cost(
    alice, client_for, make_credential, fake_provider
):
    """BUG: the list formats the total with `floatformat:"-4"`, so a conversation that cost
    $0.000007 reads "0.0000 USD" in its row while its page says "$0.000007"."""
    client = client_for(alice)
    conversation = start(alice, make_credential(alice, "openai"), model="gpt-4o-mini")
    send(client, conversation, "Hi there")
    conversation.refresh_from_db()
    assert 0 < conversation.cost_total < Decimal("0.0001")

    html = client.get("/chat/").content.decode()

    row = re.search(rf'id="conversation-{conversation.pk}">(.*?)</a>', html, re.S).group(1)
    assert "gpt-4o-mini" in row
    assert usd(conversation.cost_total) in row
    assert "0.0000 USD" not in row


def test_a_new_conversation_belongs_to_the_current_team_and_the_list_shows_its_chats(
    alice, team, vera_viewer, client_for
):
    client = client_for(alice)
    session = client.session
    session["current_team_id"] = team.pk
    session.save()
    html = client.get("/chat/").content.decode()
    assert re.search(rf'value="{team.pk}" checked>', html)  # the page preselects the team

    client.post("/chat/new/", {"content": "hi", "owner_team": team.pk})

    conversation = Conversation.objects.get()
    assert conversation.owner_team == team
    html = client.get("/chat/").content.decode()
    assert f'id="conversation-{conversation.pk}"' in html
    assert '<span class="badge">Acme</span>' in html
    # A viewer may read the team's chats but not start one there: theirs is personal.
    viewer = client_for(vera_viewer)
    session = viewer.session
    session["current_team_id"] = team.pk
    session.save()
    html = viewer.get("/chat/").content.decode()
    assert 'name="owner_team" value="" checked>' in html
    assert f'name="owner_team" value="{team.pk}"' not in html
    viewer.post("/chat/new/", {"content": "hi", "owner_team": ""})
    assert Conversation.objects.get(owner_user=vera_viewer).owner_team is None
    assert f'id="conversation-{conversation.pk}"' in viewer.get("/chat/").content.decode()
