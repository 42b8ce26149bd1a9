"""Prompts from the library in the playground (issue 13): a version filled in once for every
slot, runs that count for the version (calls, cost, ratings on its page), "Test this prompt
across N models" from the prompt page and "Open in playground" from a batch cell.

The runs go over the real comparison websocket and the gate to the fake provider; the per-persona
and foreign-id answers of the new routes are in tests/access_matrix_playground.py."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.urls import reverse

from billing.models import UsageRecord
from playground import prompting, selectors, services
from playground.models import Comparison, Run
from playground.services import SlotData
from playground.tests.test_consumers import run_until_done
from prompts import selectors as prompt_selectors
from prompts.models import PromptFeedback
from prompts.tests.conftest import make_prompt
from tests.websocket import connect

VARIABLES = [
    {"name": "topic", "type": "text"},
    {"name": "words", "type": "number", "default": "20"},
]


@pytest.fixture
def haiku(alice, openai_fake):
    """alice's prompt: a system part, a user part with a literal-looking value slot, and a
    preferred model (her fake OpenAI's gpt-4o)."""
    return make_prompt(
        alice,
        name="Haiku",
        system="You are a poet.",
        user="Write {{words}} words about {{topic}}.",
        variables=VARIABLES,
        credential=openai_fake,
        model="gpt-4o",
        params={"temperature": 0.4},
    )


def apply(client, comparison, body):
    return client.post(
        reverse("playground:prompt_apply", args=[comparison.pk]),
        data=json.dumps(body),
        content_type="application/json",
    )


@pytest.mark.django_db
def test_inserting_a_prompt_fills_the_shared_input_once_and_links_the_version(
    alice, client_for, comparison, haiku
):
    response = apply(
        client_for(alice),
        comparison,
        {
            "template": haiku.pk,
            "version": "1",
            "variables": {"topic": "tea {{words}}"},
            "use_system": True,
        },
    )
    assert response.status_code == 200, response.content
    body = response.json()
    # The value is inserted as text, never re-interpreted: {{words}} inside it stays literal.
    assert body["user"] == "Write 20 words about tea {{words}}."
    assert body["system"] == "You are a poet."
    comparison.refresh_from_db()
    assert comparison.prompt == body["user"] and comparison.system_prompt == "You are a poet."
    assert comparison.prompt_version_id == haiku.versions.get().pk == body["version_id"]
    link = selectors.prompt_link(comparison=comparison)
    assert link.holds and link.template == haiku
    page = client_for(alice).get(reverse("playground:detail", args=[comparison.pk]))
    assert b"runs count for that version" in page.content
    assert b'data-apply-url="/playground/' in page.content


@pytest.mark.django_db
def test_bad_variables_are_a_400_naming_each_and_nothing_changes(
    alice, client_for, comparison, haiku
):
    response = apply(
        client_for(alice),
        comparison,
        {"template": haiku.pk, "version": "1", "variables": {"words": "many", "colour": "red"}},
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_variables"
    assert error["fields"]["variables"] == {
        "colour": "unknown",
        "topic": "missing",
        "words": error["fields"]["variables"]["words"],
    }
    assert "topic" in error["message"] and "colour" in error["message"]
    comparison.refresh_from_db()
    assert comparison.prompt == "Write a haiku about tea." and comparison.prompt_version is None
    for junk in (b"[1]", b"not json"):
        response = client_for(alice).post(
            reverse("playground:prompt_apply", args=[comparison.pk]),
            data=junk,
            content_type="application/json",
        )
        assert response.status_code == 400


@pytest.mark.django_db
def test_editing_the_prompt_afterwards_detaches_it_and_the_run_counts_for_no_version(
    alice, comparison, haiku
):
    version = haiku.versions.get()
    prompting.comparison_apply_prompt(
        actor=alice,
        comparison=comparison,
        version=version,
        values={"topic": "tea"},
        use_system=True,
    )
    run, plans = services.run_start(actor=alice, comparison=comparison)
    assert run.prompt_version == version
    assert dict(plans[0].usage_context) == {
        "prompt_template": haiku.pk,
        "prompt_version": version.pk,
    }
    services.comparison_save(actor=alice, comparison=comparison, prompt="Write about coffee.")
    assert not selectors.prompt_link(comparison=comparison).holds
    Run.objects.filter(pk=run.pk).update(finished_at=run.created_at)
    second, plans = services.run_start(actor=alice, comparison=comparison)
    assert second.prompt_version is None and plans[0].usage_context == ()
    # The system prompt taken from the version is part of the link too.
    services.comparison_save(actor=alice, comparison=comparison, prompt=comparison.prompt)
    prompting.comparison_apply_prompt(
        actor=alice,
        comparison=comparison,
        version=version,
        values={"topic": "tea"},
        use_system=True,
    )
    services.comparison_save(actor=alice, comparison=comparison, system_prompt="Be a pirate.")
    assert not selectors.prompt_link(comparison=comparison).holds


@pytest.mark.django_db
def test_a_viewer_cannot_fill_a_team_comparison(vera_viewer, team, client_for, alice, openai_fake):
    team_comparison = services.comparison_create(actor=alice, owner_team=team, slots=[])
    mine = make_prompt(vera_viewer, name="Vera's", user="Hi {{who}}")
    response = apply(
        client_for(vera_viewer),
        team_comparison,
        {"template": mine.pk, "variables": {"who": "x"}},
    )
    assert response.status_code == 403
    team_comparison.refresh_from_db()
    assert team_comparison.prompt == "" and team_comparison.prompt_version is None


@pytest.mark.django_db(transaction=True)
async def test_a_run_of_a_library_prompt_counts_its_calls_cost_and_ratings_for_the_version(
    alice, fake_provider, openai_fake, haiku
):
    fake_provider.configure(reply="Steam curls, leaves unfold.")
    version = await sync_to_async(haiku.versions.get)()
    comparison = await sync_to_async(services.comparison_create)(
        actor=alice,
        slots=[SlotData(openai_fake, "gpt-4o-mini"), SlotData(openai_fake, "gpt-4o")],
    )
    await sync_to_async(prompting.comparison_apply_prompt)(
        actor=alice,
        comparison=comparison,
        version=version,
        values={"topic": "tea"},
        use_system=True,
    )
    async with connect(f"/ws/playground/{comparison.pk}/", user=alice) as (ws, connected):
        assert connected
        await ws.receive_json_from(timeout=8)
        started, _frames = await run_until_done(ws)

    def check():
        run = Run.objects.get(pk=started["run"])
        assert run.prompt_version == version
        rows = list(UsageRecord.objects.filter(context__run=run.pk))
        assert len(rows) == 2
        assert all(
            r.context["prompt_version"] == version.pk and r.context["prompt_template"] == haiku.pk
            for r in rows
        )
        sent = [r.body for r in fake_provider.requests if r.method == "POST"]
        assert all(
            body["messages"]
            == [
                {"role": "system", "content": "You are a poet."},
                {"role": "user", "content": "Write 20 words about tea."},
            ]
            for body in sent
        )
        stats = prompt_selectors.version_stats(template=haiku)[1]
        assert stats.calls == 2 and stats.cost == sum(r.cost for r in rows) > Decimal(0)
        first, second = run.answers.order_by("position")
        services.answer_rate(actor=alice, answer=first, rating=5)
        services.answer_rate(actor=alice, answer=second, rating=2)
        services.answer_rate(actor=alice, answer=second, rating=3)  # replaces, not adds
        stats = prompt_selectors.version_stats(template=haiku)[1]
        assert stats.ratings["playground"] == (2, pytest.approx((1 + 0.5) / 2))
        services.answer_rate(actor=alice, answer=first, rating=None)
        assert list(PromptFeedback.objects.values_list("key", "score")) == [
            (f"answer:{second.pk}", 0.5)
        ]

    await sync_to_async(check)()


@pytest.mark.django_db
def test_rating_an_answer_of_a_run_without_a_prompt_records_no_feedback(alice, comparison, haiku):
    run, _ = services.run_start(actor=alice, comparison=comparison)
    answer = run.answers.first()
    services.answer_rate(actor=alice, answer=answer, rating=4)
    assert not PromptFeedback.objects.exists()


@pytest.mark.django_db
def test_test_this_prompt_across_n_models_makes_n_slots_and_opens_the_comparison(
    alice, client_for, haiku, openai_fake
):
    client = client_for(alice)
    page = client.get(reverse("prompts:detail", args=[haiku.pk]))
    assert b'data-testid="test-across"' in page.content
    response = client.post(
        reverse("playground:from_prompt"),
        {"template": haiku.pk, "version": "1", "models": "4", "v-topic": "rain"},
    )
    comparison = Comparison.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("playground:detail", args=[comparison.pk])
    slots = list(comparison.slots.order_by("position"))
    assert len(slots) == 4
    # The version's preferred model first, then the owner's other models (her fake's other
    # model and the Echo every user has), each once while there are enough.
    picked = [(s.credential_id, s.model) for s in slots]
    assert picked[0] == (openai_fake.pk, "gpt-4o")
    assert (openai_fake.pk, "gpt-4o-mini") in picked and len(set(picked[:3])) == 3
    assert all(s.params == {"temperature": 0.4} for s in slots)
    assert comparison.prompt == "Write 20 words about rain."
    assert comparison.system_prompt == "You are a poet."
    assert selectors.prompt_link(comparison=comparison).holds
    assert comparison.title == "Haiku v1" and comparison.owner_user == alice
    # htmx (the Try it form): the browser is sent there.
    response = client.post(
        reverse("playground:from_prompt"),
        {"template": haiku.pk, "version": "1", "models": "2", "v-topic": "snow"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200 and response["HX-Redirect"].startswith("/playground/")


@pytest.mark.django_db
def test_test_across_with_bad_values_or_counts_says_why_and_makes_nothing(alice, client_for, haiku):
    client = client_for(alice)
    response = client.post(
        reverse("playground:from_prompt"),
        {"template": haiku.pk, "version": "1", "models": "3"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert b'data-testid="render-error"' in response.content and b"topic" in response.content
    response = client.post(
        reverse("playground:from_prompt"),
        {"template": haiku.pk, "models": "9", "v-topic": "x"},
        follow=True,
    )
    assert b"Between 2 and 8 models" in response.content
    assert not Comparison.objects.exists()


@pytest.mark.django_db
def test_a_team_prompt_tested_by_a_viewer_makes_a_personal_comparison(
    alice, team, vera_viewer, client_for
):
    prompt = make_prompt(alice, team=team, name="Team greeting", user="Say hello to {{name}}.")
    response = client_for(vera_viewer).post(
        reverse("playground:from_prompt"), {"template": prompt.pk, "models": "2", "v-name": "Bo"}
    )
    assert response.status_code == 302
    comparison = Comparison.objects.get()
    assert comparison.owner_user == vera_viewer and comparison.owner_team is None
    assert comparison.prompt == "Say hello to Bo."


@pytest.mark.django_db
def test_open_in_playground_from_a_batch_cell_prefills_its_rendering_and_model(
    alice, client_for, haiku, openai_fake
):
    from prompts import batches
    from prompts.models import BatchCell, CellStatus

    version = haiku.versions.get()
    batch = batches.batch_create(
        actor=alice,
        template=haiku,
        version=version,
        rows=[{"topic": "tea"}, {"topic": "fog"}],
        targets=[(openai_fake, "gpt-4o-mini"), (openai_fake, "gpt-4o")],
    )
    batch.cells.update(status=CellStatus.DONE, output="…")
    cell = BatchCell.objects.get(batch=batch, row_index=1, target_index=0)
    page = client_for(alice).get(reverse("prompts:batch_detail", args=[batch.pk]))
    assert page.content.count(b'data-testid="open-in-playground"') == 4
    response = client_for(alice).post(reverse("playground:from_prompt"), {"cell": cell.pk})
    comparison = Comparison.objects.get()
    assert response["Location"] == reverse("playground:detail", args=[comparison.pk])
    assert comparison.prompt == "Write 20 words about fog."
    first = comparison.slots.order_by("position").first()
    assert (first.credential_id, first.model) == (openai_fake.pk, "gpt-4o-mini")
    assert comparison.slots.count() == 2
    assert selectors.prompt_link(comparison=comparison).holds
    assert comparison.prompt_version == version


@pytest.mark.django_db
def test_a_personal_prompts_name_is_not_shown_on_a_team_comparison_to_teammates(
    alice, team, bob_teammate, client_for, haiku
):
    team_comparison = services.comparison_create(actor=alice, owner_team=team, slots=[])
    prompting.comparison_apply_prompt(
        actor=alice,
        comparison=team_comparison,
        version=haiku.versions.get(),
        values={"topic": "tea"},
        use_system=False,
    )
    url = reverse("playground:detail", args=[team_comparison.pk])
    assert b"Haiku v1" in client_for(alice).get(url).content
    page = client_for(bob_teammate).get(url).content
    assert b"Haiku" not in page and b"a library prompt you can" in page
