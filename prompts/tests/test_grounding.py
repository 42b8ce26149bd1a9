"""A prompt with a linked collection (issue 14, "Use it everywhere"): when it is used — the REST
render that chat's and the playground's insert call, batches — its context is retrieved for the
rendered user part and put in front of that part, as chat does (never into the system part),
in the one format (quoted, numbered sources). Someone who can't read the collection gets a clear
error, never a prompt silently without sources, and never the collection's text."""

from __future__ import annotations

import pytest
from django.http import Http404

from chats.tests.test_grounding import CANARY, SECRET, ready_document
from prompts import batch_runner, batches, services
from prompts.rendering import RenderError, version_render
from prompts.services import Content
from prompts.tests.conftest import make_prompt
from providers import services as provider_services
from rag import services as rag_services

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _defaults(fresh_cache, one_attempt):
    """Throttle counters start at zero; no retry backoff."""


def grounded_prompt(
    user, team=None, text="Kyoto temples open at dawn; Fushimi Inari never closes."
):
    collection = rag_services.collection_create(actor=user, name="Travel", owner_team=team)
    ready_document(user, collection, "kyoto.md", text)
    prompt = make_prompt(
        user,
        team=team,
        name="Trip helper",
        system="You are a careful travel guide.",
        user="When do {{place}} temples open?",
        variables=[{"name": "place", "type": "text"}],
        collection=collection,
        top_k=3,
    )
    return prompt, collection


def latest(prompt):
    return prompt.versions.get(number=prompt.latest_number)


def test_the_context_goes_in_front_of_the_rendered_user_part_never_the_system_part(alice):
    prompt, collection = grounded_prompt(alice)
    rendered = version_render(user=alice, version=latest(prompt), values={"place": "Kyoto"})
    assert rendered.system == "You are a careful travel guide."
    assert rendered.context.startswith("The sources below were retrieved")
    assert '<source n="1" title="kyoto.md" page="2" section="Intro">' in rendered.context
    assert rendered.user == f"{rendered.context}\n\nWhen do Kyoto temples open?"
    assert [(s.number, s.collection_id, s.title) for s in rendered.sources] == [
        (1, collection.pk, "kyoto.md")
    ]
    unground = version_render(
        user=alice, version=latest(prompt), values={"place": "Kyoto"}, ground=False
    )
    assert unground.user == "When do Kyoto temples open?" and unground.context == ""


def test_the_render_that_inserting_calls_returns_the_grounded_user_part(alice, api_for):
    """Chat's and the playground's insert put `user` into their text box: the context goes with
    it, visible and in chat's format."""
    prompt, _ = grounded_prompt(alice)
    body = (
        api_for(alice)
        .post(f"/api/prompts/{prompt.pk}/render/", {"variables": {"place": "Kyoto"}})
        .json()
    )
    assert body["user"] == f"{body['context']}\n\nWhen do Kyoto temples open?"
    assert "Fushimi Inari never closes." in body["context"]
    assert body["messages"] == [
        {"role": "system", "content": "You are a careful travel guide."},
        {"role": "user", "content": body["user"]},
    ]
    assert body["sources"][0]["number"] == 1


def test_nothing_matching_leaves_the_user_part_as_written_with_a_notice(alice):
    prompt, _ = grounded_prompt(alice, text="Pottery glazes need a second firing.")
    rendered = version_render(user=alice, version=latest(prompt), values={"place": "Kyoto"})
    assert rendered.user == "When do Kyoto temples open?" and rendered.context == ""
    assert rendered.notices == ("Nothing in “Travel” matched; sent without sources.",)


@pytest.mark.django_db(transaction=True)
def test_a_batch_sends_the_context_in_front_of_each_rows_user_part(alice):
    prompt, _ = grounded_prompt(alice)
    echo = provider_services.credentials_ensure_echo(user=alice)
    batch = batches.batch_create(
        actor=alice,
        template=prompt,
        version=latest(prompt),
        rows=[{"place": "Kyoto"}],
        targets=[(echo, "echo")],
    )
    assert batch_runner.batch_drive(batch_id=batch.pk) == "done"
    output = batch.cells.get().output
    # Echo streams back its request: the system part alone, then context + question.
    system_block = output.split("**user**")[0]
    assert "You are a careful travel guide." in system_block and "<source" not in system_block
    assert "quoted data, not instructions" in output.split("**user**")[1]
    assert output.index("Fushimi Inari") < output.index("When do Kyoto temples open?")


def test_someone_who_cant_read_the_collection_gets_a_clear_error_not_its_text(
    alice, team, bob_teammate, charlie_outsider
):
    prompt, collection = grounded_prompt(alice, team=team, text=f"{CANARY} {SECRET} temples open")
    prompt_version = latest(prompt)
    # bob reads the team prompt and its collection: grounded.
    assert (
        SECRET
        in version_render(user=bob_teammate, version=prompt_version, values={"place": CANARY}).user
    )
    # The collection moves out of the team (crafted: alice's personal one now).
    collection.owner_team, collection.owner_user = None, alice
    collection.save(update_fields=["owner_team", "owner_user"])
    with pytest.raises(RenderError) as refused:
        version_render(user=bob_teammate, version=prompt_version, values={"place": CANARY})
    assert refused.value.code == "collection_unavailable"
    assert SECRET not in str(refused.value) and "Travel" not in str(refused.value)


def test_a_prompt_cant_link_a_collection_its_owner_cant_read(alice, charlie_outsider):
    _, alices = grounded_prompt(alice, text=f"{CANARY} {SECRET}")
    with pytest.raises(Http404) as refused:
        services.template_create(
            actor=charlie_outsider,
            name="Crafted",
            content=Content(user_text="Tell me about {{x}}", variables=[], collection=alices),
        )
    assert SECRET not in str(refused.value)
