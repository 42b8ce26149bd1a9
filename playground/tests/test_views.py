"""Playground pages and their htmx fragments: what a user sees and what a click changes."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from chats import services as chat_services
from chats.models import Conversation
from playground import arena, services
from playground.models import Answer, Comparison, Run
from playground.services import SlotData

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def editor_data(comparison, **changes) -> dict:
    slots = list(comparison.slots.order_by("position"))
    data = {
        "title": comparison.title,
        "system_prompt": comparison.system_prompt,
        "prompt": comparison.prompt,
        "slot_order": ",".join(str(s.pk) for s in slots),
    }
    for s in slots:
        data[f"slot-{s.pk}-model_choice"] = (
            f"{s.credential_id}|{s.model}" if s.credential_id else ""
        )
    data.update(changes)
    return data


def finished_run(comparison, texts=("The quick brown fox", "The quick red fox")) -> Run:
    run = Run.objects.create(
        comparison=comparison,
        owner_user=comparison.owner_user,
        owner_team=comparison.owner_team,
        prompt=comparison.prompt,
        finished_at=comparison.created_at,
        wall_ms=1234,
        cost_total=Decimal("0.003"),
    )
    for i, (slot, text) in enumerate(
        zip(comparison.slots.order_by("position"), texts, strict=False)
    ):
        Answer.objects.create(
            run=run,
            position=i,
            slot=slot,
            credential=slot.credential,
            credential_name=slot.credential.name,
            preset=slot.credential.preset,
            model=slot.model,
            text=text,
            status="complete",
            input_tokens=5,
            output_tokens=4 + i,
            cost=Decimal("0.001") * (i + 1),
            cost_source="provider",
            ttft_ms=100 + i,
            duration_ms=900 + 100 * i,
            tokens_per_second=20,
        )
    return run


def test_the_list_shows_comparisons_searches_and_starts_empty(alice, client_for, openai_fake):
    client = client_for(alice)
    empty = client.get(reverse("playground:index"))
    assert b"Compare models side by side" in empty.content
    created = client.post(reverse("playground:new"))
    comparison = Comparison.objects.get()
    assert created.url == reverse("playground:detail", args=[comparison.pk])
    services.comparison_save(actor=alice, comparison=comparison, title="Tea haiku")
    page = client.get(reverse("playground:index"), {"q": "haiku"})
    assert b"Tea haiku" in page.content and b"gpt-4o" in page.content
    assert (
        b"No comparison is named" in client.get(reverse("playground:index"), {"q": "zzz"}).content
    )


def test_the_page_shows_the_editor_the_estimate_and_the_latest_run(alice, client_for, comparison):
    run = finished_run(comparison)
    page = client_for(alice).get(reverse("playground:detail", args=[comparison.pk]))
    html = page.content.decode()
    assert page.status_code == 200 and page["Cache-Control"].startswith("max-age=0")
    assert html.count('data-testid="slot"') == 2 and "Estimated" in html
    assert f'id="run-{run.pk}"' in html and "1.23 s" in html
    assert "fastest" in html and "cheapest" in html and "most tokens" in html
    assert 'data-testid="chart"' in html and "<svg" in html
    assert "style=" not in html  # strict CSP: no inline styles
    assert "<script>" not in html


def test_autosave_keeps_what_is_valid_and_says_what_is_not(alice, client_for, comparison):
    client = client_for(alice)
    url = reverse("playground:save", args=[comparison.pk])
    ok = client.post(url, editor_data(comparison, title="New name", prompt="Changed"), **HTMX)
    assert ok.status_code == 200 and b"Saved" in ok.content and b"Estimated" in ok.content
    comparison.refresh_from_db()
    assert (comparison.title, comparison.prompt) == ("New name", "Changed")
    first = comparison.slots.order_by("position").first()
    bad = client.post(url, editor_data(comparison, **{f"slot-{first.pk}-temperature": "9"}), **HTMX)
    assert bad.status_code == 400 and b"Not saved" in bad.content
    assert b"Slot 1 temperature" in bad.content
    comparison.refresh_from_db()
    assert comparison.prompt == "Changed"


def test_slots_are_added_duplicated_moved_and_removed_from_the_page(alice, client_for, comparison):
    client = client_for(alice)
    first, second = comparison.slots.order_by("position")
    add = client.post(
        reverse("playground:slot_add", args=[comparison.pk]),
        editor_data(comparison, prompt="Kept while adding"),
        **HTMX,
    )
    assert add.status_code == 200 and add.content.count(b'data-testid="slot"') == 3
    comparison.refresh_from_db()
    assert comparison.prompt == "Kept while adding"  # the page's fields were saved first
    client.post(reverse("playground:slot_duplicate", args=[comparison.pk, first.pk]), **HTMX)
    client.post(
        reverse("playground:slot_move", args=[comparison.pk, first.pk]),
        {"direction": "right"},
        **HTMX,
    )
    order = list(comparison.slots.order_by("position").values_list("pk", flat=True))
    assert order.index(first.pk) == 1
    removed = client.post(
        reverse("playground:slot_remove", args=[comparison.pk, second.pk]), **HTMX
    )
    assert removed.status_code == 200 and comparison.slots.count() == 3
    for slot in list(comparison.slots.all())[:1]:
        client.post(reverse("playground:slot_remove", args=[comparison.pk, slot.pk]), **HTMX)
    refused = client.post(
        reverse("playground:slot_remove", args=[comparison.pk, comparison.slots.first().pk]), **HTMX
    )
    assert b"at least 2" in refused.content and comparison.slots.count() == 2


def test_the_diff_rating_and_winner_fragments(alice, client_for, comparison):
    run = finished_run(comparison)
    a, b = run.answers.order_by("position")
    client = client_for(alice)
    diff = client.get(reverse("playground:run_diff", args=[run.pk]), {"a": a.pk, "b": b.pk})
    assert b"<del>brown </del>" in diff.content and b"<ins>red </ins>" in diff.content
    assert b"75 %" in diff.content  # 3 of 4 words shared on each side
    rated = client.post(
        reverse("playground:answer_rate", args=[a.pk]), {"rating": "5", "note": "best"}, **HTMX
    )
    assert rated.status_code == 200 and b"Saved" in rated.content
    bad = client.post(reverse("playground:answer_rate", args=[a.pk]), {"rating": "9"}, **HTMX)
    assert bad.status_code == 400
    a.refresh_from_db()
    assert (a.rating, a.note) == (5, "best")
    winner = client.post(
        reverse("playground:run_winner", args=[run.pk]), {"answer_id": b.pk}, **HTMX
    )
    assert winner.status_code == 200 and b"is-winner" in winner.content
    run.refresh_from_db()
    assert run.winner_id == b.pk
    # The rating shows up on the cost-vs-rating chart.
    page = client.get(reverse("playground:detail", args=[comparison.pk]))
    assert b"Cost and rating" in page.content


def test_a_diff_of_text_with_markup_is_escaped(alice, client_for, comparison):
    run = finished_run(comparison, texts=("<script>alert(1)</script> a", "<img src=x onerror=y> b"))
    a, b = run.answers.order_by("position")
    diff = client_for(alice).get(
        reverse("playground:run_diff", args=[run.pk]), {"a": a.pk, "b": b.pk}
    )
    assert b"<script>" not in diff.content and b"<img" not in diff.content
    assert b"&lt;script&gt;" in diff.content


def test_continue_in_chat_and_compare_this_conversation_round_trip(alice, client_for, comparison):
    run = finished_run(comparison)
    answer = run.answers.order_by("position").last()
    client = client_for(alice)
    response = client.post(reverse("playground:answer_continue", args=[answer.pk]))
    conversation = Conversation.objects.get()
    assert response.url == reverse("chats:detail", args=[conversation.pk])
    chat = client.get(response.url).content.decode()
    assert "The quick red fox" in chat and "Compare" in chat
    reply = conversation.messages.get(role="assistant")
    preview = client.get(
        reverse("playground:from_chat"), {"conversation": conversation.pk, "message": reply.pk}
    )
    assert (
        b"Write a haiku about tea." in preview.content
        and b"Open in the playground" in preview.content
    )
    made = client.post(
        reverse("playground:from_chat"), {"conversation": conversation.pk, "message": reply.pk}
    )
    compared = Comparison.objects.exclude(pk=comparison.pk).get()
    assert made.url == reverse("playground:detail", args=[compared.pk])
    assert (
        compared.prompt == "Write a haiku about tea."
        and compared.source_conversation == conversation
    )
    everyone = client.post(reverse("playground:run_continue", args=[run.pk]))
    assert everyone.status_code == 302 and Conversation.objects.count() == 3


def test_exports_download_with_a_name(alice, client_for, comparison):
    run = finished_run(comparison)
    client = client_for(alice)
    for fmt, kind in (("json", "application/json"), ("csv", "text/csv"), ("md", "text/markdown")):
        response = client.get(reverse("playground:run_export", args=[run.pk, fmt]))
        assert response["Content-Type"].startswith(kind)
        assert response["Content-Disposition"] == f'attachment; filename="haiku-test-run-1.{fmt}"'
    code = client.get(reverse("playground:answer_code", args=[run.answers.first().pk]))
    # Four languages for the provider, then cURL and Python through our own gateway.
    assert b"OPENAI_API_KEY" in code.content and code.content.count(b'class="snippet card"') == 6
    assert code.content.count(b'data-target="workbench"') == 2


def test_deleting_asks_first(alice, client_for, comparison):
    client = client_for(alice)
    url = reverse("playground:delete", args=[comparison.pk])
    assert b"Delete" in client.get(url).content and Comparison.objects.exists()
    assert client.post(url).url == reverse("playground:index")
    assert not Comparison.objects.exists()


def test_a_viewer_sees_a_read_only_page(alice, team, vera_viewer, client_for, models_on):
    credential = models_on(team, "openai", "gpt-4o", name="Acme")
    comparison = services.comparison_create(
        actor=alice, owner_team=team, prompt="hi", slots=[SlotData(credential, "gpt-4o")] * 2
    )
    finished_run(comparison)
    html = (
        client_for(vera_viewer)
        .get(reverse("playground:detail", args=[comparison.pk]))
        .content.decode()
    )
    assert "read only" in html and "no-use" in html and "no-write" in html
    assert 'data-testid="run"' not in html and 'data-testid="add-slot"' not in html


def test_the_arena_pages_pool_battle_and_leaderboard(alice, client_for, openai_fake, fresh_cache):
    client = client_for(alice)
    page = client.get(reverse("playground:arena"))
    assert b"Put at least two different models" in page.content
    client.post(
        reverse("playground:arena_pool"),
        {"entries": [f"{openai_fake.pk}|gpt-4o", f"{openai_fake.pk}|gpt-4o-mini"]},
    )
    assert len(arena.pool_for(owner=alice).entries) == 2
    refused = client.post(reverse("playground:arena"), {"prompt": ""})
    assert refused.status_code == 400
    made = client.post(reverse("playground:arena"), {"prompt": "Which is bigger?", "tag": "maths"})
    battle = alice.playground_battle_owned.get()
    assert made.url == reverse("playground:battle", args=[battle.pk])
    html = client.get(made.url).content.decode()
    assert "Which answer is better?" in html and "gpt-4o" not in html
    board = client.get(reverse("playground:leaderboard")).content.decode()
    assert "No votes yet" in board


def test_the_leaderboard_page_shows_ratings_intervals_and_bias(alice, client_for, fresh_cache):
    from playground.tests.test_arena import _voted

    for _ in range(8):
        _voted(
            alice,
            "openai:gpt-4o",
            "anthropic:claude-3-5-haiku-latest",
            "a",
            tag="code",
            creator=alice,
        )
    _voted(
        alice,
        "anthropic:claude-3-5-haiku-latest",
        "openai:gpt-4o",
        "tie",
        tag="code",
        creator=alice,
    )
    html = (
        client_for(alice).get(reverse("playground:leaderboard"), {"tag": "code"}).content.decode()
    )
    assert html.index("gpt-4o · OpenAI") < html.index("claude-3-5-haiku-latest · Anthropic")
    assert 'class="ci"' in html and "Position bias" in html and "100 %" in html
    assert "style=" not in html


def test_an_unknown_or_foreign_id_is_a_404_page(alice, charlie_outsider, client_for, comparison):
    client = client_for(charlie_outsider)
    assert client.get(reverse("playground:detail", args=[comparison.pk])).status_code == 404
    assert client_for(alice).get(reverse("playground:detail", args=[999999])).status_code == 404
    chat = chat_services.conversation_start(actor=alice)
    assert (
        client.get(
            reverse("playground:from_chat"), {"conversation": chat.pk, "message": 1}
        ).status_code
        == 404
    )
