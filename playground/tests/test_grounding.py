"""Shared context in the playground (issue 14): collections attached to a comparison are searched
once per run and every slot receives the exact same context (what Echo streams back); the run
keeps the context and numbered sources and the results page shows them; the attach rules are
chat's and are checked again at run; and the tenant canary — alice's text never reaches
charlie's comparison or run, whatever ids he crafts. The "RAG quality" judge is in
test_judging.py; per-persona answers for the new routes are in tests/test_access_matrix.py."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.http import Http404

from chats import grounding as chat_grounding
from chats.tests.test_grounding import CANARY, SECRET, ready_document
from playground import grounding, services
from playground.models import ComparisonCollection, Run
from playground.services import SlotData
from providers import services as provider_services
from providers.models import ProviderModel
from rag import grounding as rag_grounding
from rag import services as rag_services

pytestmark = pytest.mark.django_db

PROMPT = "When do Kyoto temples open?"


@pytest.fixture(autouse=True)
def _defaults(fresh_cache, one_attempt):
    """Throttle counters start at zero; no retry backoff."""


def echo_comparison(user, team=None, prompt=PROMPT):
    echo = provider_services.credentials_ensure_echo(user=user, team=team)
    ProviderModel.objects.get_or_create(credential=echo, model_id="echo-b")
    return services.comparison_create(
        actor=user,
        owner_team=team,
        prompt=prompt,
        slots=[SlotData(echo, "echo"), SlotData(echo, "echo-b")],
    )


def travel(user, team=None, text="Kyoto temples open at dawn; Fushimi Inari never closes."):
    collection = rag_services.collection_create(actor=user, name="Travel", owner_team=team)
    ready_document(user, collection, "kyoto.md", text)
    return collection


def run_rest(api, comparison) -> dict:
    response = api.post(f"/api/comparisons/{comparison.pk}/runs/", {})
    assert response.status_code == 201, response.content
    return response.json()


def test_every_slot_receives_the_same_context_retrieved_once(alice, api_for, monkeypatch):
    collection = travel(alice)
    comparison = echo_comparison(alice)
    grounding.collection_attach(actor=alice, comparison=comparison, collection_id=collection.pk)
    searches = []
    real_ground = rag_grounding.ground

    async def counted(**kwargs):
        searches.append(kwargs["collection_ids"])
        return await real_ground(**kwargs)

    # Retrieval is rag.grounding's; chat's replies call it through chats.grounding: count both.
    monkeypatch.setattr(rag_grounding, "ground", counted)
    monkeypatch.setattr(chat_grounding, "ground", counted)

    run = run_rest(api_for(alice), comparison)

    assert searches == [(collection.pk,)]  # once for the run, not once per slot
    retrieval = run["retrieval"]
    assert [s["title"] for s in retrieval["sources"]] == ["kyoto.md"]
    assert retrieval["sources"][0] == {
        "n": 1,
        "chunk": retrieval["sources"][0]["chunk"],
        "document": retrieval["sources"][0]["document"],
        "collection": collection.pk,
        "title": "kyoto.md",
        "page": 2,
        "heading": "Intro",
        "score": retrieval["sources"][0]["score"],
        "similarity": retrieval["sources"][0]["similarity"],
        "text_rank": retrieval["sources"][0]["text_rank"],
    }
    assert retrieval["sources"][0]["score"] > 0
    context = retrieval["context"]
    assert "quoted data, not instructions" in context and "Fushimi Inari" in context
    # Echo streams back its request: in front of the prompt, the same context for both models,
    # and never in the system prompt.
    for answer in run["answers"]:
        assert answer["status"] == "complete"
        assert f"{context}\n\n{PROMPT}" in answer["text"]
        assert "**system**" not in answer["text"]
    assert Run.objects.get(pk=run["id"]).retrieval["context"] == context


def test_the_results_page_shows_the_context_and_sources_opening_their_chunk(
    alice, api_for, client_for
):
    collection = travel(alice)
    comparison = echo_comparison(alice)
    grounding.collection_attach(actor=alice, comparison=comparison, collection_id=collection.pk)
    run = run_rest(api_for(alice), comparison)
    chunk = run["retrieval"]["sources"][0]["chunk"]

    page = client_for(alice).get(f"/playground/{comparison.pk}/").content.decode()

    assert 'data-testid="run-sources"' in page
    assert f'href="/collections/{collection.pk}/chunks/{chunk}/"' in page
    assert "Context every model received (1 source)" in page
    assert "Fushimi Inari never closes." in page
    assert client_for(alice).get(f"/collections/{collection.pk}/chunks/{chunk}/").status_code == 200


def test_a_run_without_collections_keeps_no_retrieval(alice, api_for):
    run = run_rest(api_for(alice), echo_comparison(alice))
    assert run["retrieval"] is None
    assert all("quoted data" not in a["text"] for a in run["answers"])


def test_nothing_matching_says_so_and_the_models_answer_without_context(alice, api_for):
    collection = travel(alice, text="Pottery glazes need a second firing.")
    comparison = echo_comparison(alice)
    grounding.collection_attach(actor=alice, comparison=comparison, collection_id=collection.pk)
    run = run_rest(api_for(alice), comparison)
    assert run["retrieval"]["sources"] == [] and run["retrieval"]["context"] == ""
    assert all("quoted data" not in a["text"] for a in run["answers"])


def test_a_team_comparison_takes_only_its_teams_collections(alice, team):
    comparison = echo_comparison(alice, team=team)
    personal = travel(alice)
    with pytest.raises(ValidationError, match="only its team's collections"):
        grounding.collection_attach(actor=alice, comparison=comparison, collection_id=personal.pk)
    shared = travel(alice, team=team)
    grounding.collection_attach(actor=alice, comparison=comparison, collection_id=shared.pk)
    attachable = grounding.collections_attachable(user=alice, comparison=comparison)
    assert list(attachable) == []  # the personal one is never offered
    assert grounding.comparison_collections(comparison=comparison) == [shared]


def test_a_personal_comparison_takes_its_owners_and_their_teams_collections(alice, team):
    comparison = echo_comparison(alice)
    mine, teams = travel(alice), travel(alice, team=team)
    for collection in (mine, teams):
        grounding.collection_attach(actor=alice, comparison=comparison, collection_id=collection.pk)
    assert grounding.run_collection_ids(comparison=comparison) == (mine.pk, teams.pk)


def test_the_owner_rule_is_checked_again_when_a_run_starts(alice, team, api_for):
    """A link that doesn't fit (written behind the service's back) is never searched."""
    comparison = echo_comparison(alice, team=team)
    personal = travel(alice)
    ComparisonCollection.objects.create(comparison=comparison, collection=personal)
    assert grounding.run_collection_ids(comparison=comparison) == ()
    run = run_rest(api_for(alice), comparison)
    assert run["retrieval"] is None
    assert all("Fushimi" not in a["text"] for a in run["answers"])


def test_a_teammate_running_a_team_comparison_searches_as_themself(
    alice, team, bob_teammate, api_for
):
    comparison = echo_comparison(alice, team=team)
    shared = travel(alice, team=team)
    grounding.collection_attach(actor=alice, comparison=comparison, collection_id=shared.pk)
    run = run_rest(api_for(bob_teammate), comparison)
    assert [s["title"] for s in run["retrieval"]["sources"]] == ["kyoto.md"]
    assert all(run["retrieval"]["context"] in a["text"] for a in run["answers"])


def test_tenant_canary_alices_text_never_reaches_charlies_comparison(
    alice, charlie_outsider, api_for, client_for
):
    alices = travel(alice, text=f"{CANARY} {SECRET}")
    comparison = echo_comparison(charlie_outsider, prompt=f"Tell me about {CANARY}")
    charlies = travel(charlie_outsider, text="Charlie's own notes about lighthouses.")
    grounding.collection_attach(
        actor=charlie_outsider, comparison=comparison, collection_id=charlies.pk
    )
    # Crafted ids everywhere an id goes in: the service, the page, REST.
    with pytest.raises(Http404):
        grounding.collection_attach(
            actor=charlie_outsider, comparison=comparison, collection_id=alices.pk
        )
    page = client_for(charlie_outsider).post(
        f"/playground/{comparison.pk}/context/",
        {"action": "attach", "collection_id": alices.pk},
    )
    assert page.status_code == 404
    api = api_for(charlie_outsider)
    response = api.post(
        f"/api/comparisons/{comparison.pk}/collections/", {"collection_id": alices.pk}
    )
    assert response.status_code == 404
    assert api.delete(f"/api/comparisons/{comparison.pk}/collections/{alices.pk}/").status_code == (
        404
    )
    assert grounding.run_collection_ids(comparison=comparison) == (charlies.pk,)

    run = run_rest(api, comparison)

    stored = Run.objects.get(pk=run["id"])
    everything = str(run) + str(stored.retrieval)
    assert SECRET not in everything and "zebracanary" not in str(stored.retrieval)
    assert {s["collection"] for s in run["retrieval"]["sources"]} <= {charlies.pk}
    shown = client_for(charlie_outsider).get(f"/playground/{comparison.pk}/").content.decode()
    assert SECRET not in shown


def test_detaching_an_id_that_isnt_attached_is_404(alice):
    comparison = echo_comparison(alice)
    collection = travel(alice)
    for crafted in (collection.pk, "x", None, 2**70):
        with pytest.raises(Http404):
            grounding.collection_detach(actor=alice, comparison=comparison, collection_id=crafted)


def test_the_panel_attaches_and_detaches_over_htmx(alice, client_for):
    comparison = echo_comparison(alice)
    collection = travel(alice)
    client = client_for(alice)
    url = f"/playground/{comparison.pk}/context/"
    attached = client.post(
        url, {"action": "attach", "collection_id": collection.pk}, HTTP_HX_REQUEST="true"
    )
    assert attached.status_code == 200
    assert f'href="/collections/{collection.pk}/"' in attached.content.decode()
    assert "RAG quality judge" in attached.content.decode()
    missing = client.post(url, {"action": "attach"}, HTTP_HX_REQUEST="true")
    assert "Pick a collection." in missing.content.decode()
    client.post(url, {"action": "detach", "collection_id": collection.pk}, HTTP_HX_REQUEST="true")
    assert grounding.comparison_collections(comparison=comparison) == []


def test_at_most_ten_collections(alice):
    comparison = echo_comparison(alice)
    for number in range(grounding.MAX_LINKED):
        collection = rag_services.collection_create(actor=alice, name=f"C{number}")
        grounding.collection_attach(actor=alice, comparison=comparison, collection_id=collection.pk)
    extra = rag_services.collection_create(actor=alice, name="one too many")
    with pytest.raises(ValidationError, match="At most 10"):
        grounding.collection_attach(actor=alice, comparison=comparison, collection_id=extra.pk)


def test_a_clone_keeps_the_collections_and_the_judge(alice):
    comparison = echo_comparison(alice)
    collection = travel(alice)
    grounding.collection_attach(actor=alice, comparison=comparison, collection_id=collection.pk)
    echo = comparison.slots.first().credential
    comparison.judge_credential, comparison.judge_model = echo, "echo"
    comparison.save(update_fields=["judge_credential", "judge_model"])
    copy = services.comparison_clone(actor=alice, comparison=comparison)
    assert grounding.comparison_collections(comparison=copy) == [collection]
    assert (copy.judge_credential_id, copy.judge_model) == (echo.pk, "echo")


# --- Continue in chat keeps the grounding ----------------------------------------------------------


def continue_first_answer(client, run_id: int):
    from playground.models import Answer

    answer = Answer.objects.filter(run_id=run_id).order_by("position").first()
    response = client.post(f"/playground/answers/{answer.pk}/continue/")
    assert response.status_code == 302, response.content
    from chats.models import Conversation

    return Conversation.objects.get(pk=int(response["Location"].rstrip("/").split("/")[-1]))


def test_continuing_a_grounded_answer_in_chat_carries_its_collections(alice, api_for, client_for):
    collection = travel(alice)
    comparison = echo_comparison(alice)
    grounding.collection_attach(actor=alice, comparison=comparison, collection_id=collection.pk)
    run = run_rest(api_for(alice), comparison)

    conversation = continue_first_answer(client_for(alice), run["id"])

    assert chat_grounding.conversation_collections(conversation=conversation) == [collection]
    assert chat_grounding.grounding_ids(conversation=conversation) == (collection.pk,)
    page = client_for(alice).get(f"/chat/{conversation.pk}/").content.decode()
    assert f'href="/collections/{collection.pk}/"' in page


def test_continuing_an_ungrounded_answer_in_chat_attaches_nothing(alice, api_for, client_for):
    run = run_rest(api_for(alice), echo_comparison(alice))
    conversation = continue_first_answer(client_for(alice), run["id"])
    assert chat_grounding.conversation_collections(conversation=conversation) == []


def test_a_teammate_continuing_a_team_run_carries_the_teams_collection_and_nothing_else(
    alice, team, bob_teammate, charlie_outsider, api_for, client_for
):
    shared = travel(alice, team=team)
    personal = travel(alice)
    charlies = travel(charlie_outsider)
    comparison = echo_comparison(alice, team=team)
    grounding.collection_attach(actor=alice, comparison=comparison, collection_id=shared.pk)
    run = run_rest(api_for(bob_teammate), comparison)
    # A record naming collections the continuer may not read, or that a team conversation may
    # not take (alice's personal one), carries none of them.
    stored = Run.objects.get(pk=run["id"])
    stored.retrieval["sources"] += [
        {"n": 8, "collection": personal.pk},
        {"n": 9, "collection": charlies.pk},
    ]
    stored.save(update_fields=["retrieval"])

    conversation = continue_first_answer(client_for(bob_teammate), run["id"])

    assert conversation.owner_team_id == team.pk
    assert chat_grounding.conversation_collections(conversation=conversation) == [shared]


def test_continuing_carries_a_collection_only_if_the_continuer_can_read_it(alice, charlie_outsider):
    collection = travel(alice)
    comparison = echo_comparison(alice)
    from chats import services as chat_services

    conversation = chat_services.conversation_start(actor=charlie_outsider)
    skipped = chat_grounding.collections_carry(
        actor=charlie_outsider, conversation=conversation, collection_ids=[collection.pk]
    )
    assert skipped == 1
    assert chat_grounding.conversation_collections(conversation=conversation) == []
    with pytest.raises(Http404):  # and never into someone else's conversation
        chat_grounding.collections_carry(
            actor=charlie_outsider,
            conversation=chat_services.conversation_start(actor=alice),
            collection_ids=[collection.pk],
        )
    assert comparison.pk


# --- Exports of a grounded run -------------------------------------------------------------------


def grounded_and_judged_run(alice, api_for):
    from playground.models import Answer

    collection = travel(alice)
    comparison = echo_comparison(alice)
    grounding.collection_attach(actor=alice, comparison=comparison, collection_id=collection.pk)
    run = Run.objects.get(pk=run_rest(api_for(alice), comparison)["id"])
    first, second = Answer.objects.filter(run=run).order_by("position")
    first.judge = {
        "faithfulness": {"score": 0.9, "reason": "Every claim is in source 1."},
        "relevance": {"score": 0.75, "reason": "Answers it."},
        "model": "gpt-4o-mini",
        "cost": "0.00002",
    }
    first.save(update_fields=["judge"])
    second.judge = {"error": "The judge's reply had no scores."}
    second.save(update_fields=["judge"])
    return run, collection


def test_a_grounded_runs_csv_export_has_the_retrieved_chunks_scores_and_rag_quality(
    alice, api_for, client_for
):
    import csv
    import io

    run, collection = grounded_and_judged_run(alice, api_for)
    source = run.retrieval["sources"][0]

    response = client_for(alice).get(f"/playground/runs/{run.pk}/export.csv")

    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [row["retrieved_chunk_ids"] for row in rows] == [str(source["chunk"])] * 2
    label = rows[0]["retrieved_sources"]
    assert label.startswith("[1] kyoto.md p. 2 § Intro (")
    assert f"chunk {source['chunk']}, collection {collection.pk}, score {source['score']}" in label
    assert (rows[0]["faithfulness"], rows[0]["relevance"]) == ("0.9", "0.75")
    assert rows[0]["faithfulness_reason"] == "Every claim is in source 1."
    assert rows[0]["judge_model"] == "gpt-4o-mini"
    assert (rows[1]["faithfulness"], rows[1]["judge_error"]) == (
        "",
        "The judge's reply had no scores.",
    )


def test_a_grounded_runs_json_and_markdown_exports_have_the_context_and_the_scores(
    alice, api_for, client_for
):
    import json

    run, collection = grounded_and_judged_run(alice, api_for)
    client = client_for(alice)

    data = json.loads(client.get(f"/playground/runs/{run.pk}/export.json").content)

    assert data["retrieval"]["context"] == run.retrieval["context"]
    source = data["retrieval"]["sources"][0]
    assert (source["collection"], source["title"]) == (collection.pk, "kyoto.md")
    assert source["score"] > 0 and "similarity" in source and "text_rank" in source
    first, second = data["answers"]
    assert (first["faithfulness"], first["relevance"]) == (0.9, 0.75)
    assert first["judge"]["faithfulness"]["reason"] == "Every claim is in source 1."
    assert second["judge_error"] == "The judge's reply had no scores."

    markdown = client.get(f"/playground/runs/{run.pk}/export.md").content.decode()
    assert "## Shared context" in markdown
    assert f"- [1] kyoto.md p. 2 § Intro (chunk {source['chunk']}" in markdown
    assert "faithfulness 0.90 · relevance 0.75" in markdown
    assert "not judged: The judge's reply had no scores." in markdown


def test_an_ungrounded_runs_exports_say_nothing_about_context(alice, api_for, client_for):
    import json

    run = Run.objects.get(pk=run_rest(api_for(alice), echo_comparison(alice))["id"])
    client = client_for(alice)
    data = json.loads(client.get(f"/playground/runs/{run.pk}/export.json").content)
    assert data["retrieval"] is None and data["answers"][0]["faithfulness"] is None
    markdown = client.get(f"/playground/runs/{run.pk}/export.md").content.decode()
    assert "Shared context" not in markdown


def test_charlie_cannot_export_alices_grounded_run(alice, charlie_outsider, api_for, client_for):
    run, _ = grounded_and_judged_run(alice, api_for)
    for fmt in ("csv", "json", "md"):
        response = client_for(charlie_outsider).get(f"/playground/runs/{run.pk}/export.{fmt}")
        assert response.status_code == 404


def test_the_runs_history_counts_each_runs_unpriced_answers_beside_its_cost(
    alice, api_for, client_for
):
    from decimal import Decimal

    from playground.models import Answer

    comparison = echo_comparison(alice)
    first = run_rest(api_for(alice), comparison)["id"]
    second = run_rest(api_for(alice), comparison)["id"]
    Answer.objects.filter(run_id=first).update(cost_source="unpriced", cost=None)
    Run.objects.filter(pk=first).update(cost_total=Decimal("0"), has_unpriced=True)
    Run.objects.filter(pk=second).update(cost_total=Decimal("0.25"))

    html = client_for(alice).get(f"/playground/{comparison.pk}/?run={second}").content.decode()

    costs = html.split('data-testid="history-cost">')[1:]
    assert [c.split("<")[0] for c in costs] == ["$0.25", "$0.00 + 2 unpriced calls"]
