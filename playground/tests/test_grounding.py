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
    real_ground = chat_grounding.ground

    async def counted(**kwargs):
        searches.append(kwargs["collection_ids"])
        return await real_ground(**kwargs)

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
    }
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
