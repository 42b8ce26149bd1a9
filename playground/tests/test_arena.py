"""The blind arena: pools, battles drawn from them, the vote, the leaderboard per owner."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.utils import timezone

from playground import arena, runs
from playground.models import Answer, Battle
from providers import services as provider_services
from providers.models import ProviderModel
from tests.websocket import connect


def echo_models(owner, *names, actor=None):
    """An Echo credential (offline) offering `names` — Echo answers for any model id."""
    from accounts.models import Team

    credential = provider_services.credential_create(
        actor=actor or owner,
        preset="echo",
        name="Echo pool",
        owner_team=owner if isinstance(owner, Team) else None,
    )
    for name in names:
        ProviderModel.objects.get_or_create(credential=credential, model_id=name)
    return credential


@pytest.mark.django_db
def test_a_pool_holds_the_owners_models_only(alice, team, bob_teammate, vera_viewer, openai_fake):
    team_echo = echo_models(team, "a", "b", actor=alice)
    pool = arena.pool_save(
        actor=alice, owner=alice, entries=[(openai_fake, "gpt-4o"), (openai_fake, "gpt-4o")]
    )
    assert pool.entries == [{"credential": openai_fake.pk, "model": "gpt-4o"}]  # no duplicates
    with pytest.raises(ValidationError, match="personal comparison runs on your personal"):
        arena.pool_save(actor=alice, owner=alice, entries=[(team_echo, "a")])
    with pytest.raises(ValidationError, match="team comparison runs on the team's"):
        arena.pool_save(actor=alice, owner=team, entries=[(openai_fake, "gpt-4o")])
    arena.pool_save(actor=bob_teammate, owner=team, entries=[(team_echo, "a"), (team_echo, "b")])
    with pytest.raises(PermissionDenied):
        arena.pool_save(actor=vera_viewer, owner=team, entries=[])
    with pytest.raises(ValidationError):
        arena.pool_save(actor=bob_teammate, owner=alice, entries=[])


@pytest.mark.django_db
def test_a_battle_draws_two_different_models_in_a_random_order(alice):
    echo = echo_models(alice, "m1", "m2", "m3")
    arena.pool_save(actor=alice, owner=alice, entries=[(echo, m) for m in ("m1", "m2", "m3")])
    seen_left = set()
    pairs = set()
    for _ in range(40):
        battle = arena.battle_create(actor=alice, prompt="hi", tag="  Coding  Help ")
        assert battle.model_a != battle.model_b
        seen_left.add(battle.model_a)
        pairs.add(frozenset((battle.model_a, battle.model_b)))
    assert battle.tag == "coding help"
    assert seen_left == {"echo:m1", "echo:m2", "echo:m3"}  # every model lands on the left
    assert len(pairs) == 3


@pytest.mark.django_db
def test_the_same_model_through_two_keys_never_faces_itself(alice):
    first = echo_models(alice, "same")
    second = echo_models(alice, "same")
    arena.pool_save(actor=alice, owner=alice, entries=[(first, "same"), (second, "same")])
    with pytest.raises(ValidationError, match="two different models"):
        arena.battle_create(actor=alice, prompt="hi")
    assert not Battle.objects.exists()


@pytest.mark.django_db
def test_a_vote_needs_both_answers_counts_once_and_reveals_the_names(
    alice, team, bob_teammate, vera_viewer, api_for
):
    echo = echo_models(team, "m1", "m2", actor=alice)
    arena.pool_save(actor=alice, owner=team, entries=[(echo, "m1"), (echo, "m2")])
    battle = arena.battle_create(actor=bob_teammate, owner_team=team, prompt="hi")
    with pytest.raises(ValidationError, match="Wait for both"):
        arena.battle_vote(actor=bob_teammate, battle=battle, vote="a")
    plans = arena.battle_start(actor=bob_teammate, battle=battle)
    assert len(plans) == 2 and arena.battle_start(actor=alice, battle=battle) == []
    hidden = api_for(vera_viewer).get(f"/api/arena/battles/{battle.pk}/").json()
    assert hidden["models"] is None
    assert all("model" not in a and "preset" not in a for a in hidden["answers"])
    code = api_for(alice).get(f"/api/answers/{plans[0].answer_id}/code/")
    assert code.status_code == 404  # exporting would name the model
    Answer.objects.filter(run=battle.run).update(status="complete", text="done")
    with pytest.raises(PermissionDenied):
        arena.battle_vote(actor=vera_viewer, battle=battle, vote="a")
    with pytest.raises(ValidationError):
        arena.battle_vote(actor=bob_teammate, battle=battle, vote="c")
    arena.battle_vote(actor=bob_teammate, battle=battle, vote="both_bad")
    with pytest.raises(ValidationError, match="has its vote"):
        arena.battle_vote(actor=alice, battle=battle, vote="a")
    shown = api_for(vera_viewer).get(f"/api/arena/battles/{battle.pk}/").json()
    assert shown["vote"] == "both_bad" and set(shown["models"].values()) == {"echo:m1", "echo:m2"}
    assert {a["model"] for a in shown["answers"]} == {"m1", "m2"}


def _voted(owner, left, right, vote, *, tag="", days_ago=0, creator):
    from accounts.models import Team
    from playground.models import Run, RunKind

    is_team = isinstance(owner, Team)
    run = Run.objects.create(
        kind=RunKind.ARENA,
        owner_user=None if is_team else owner,
        owner_team=owner if is_team else None,
        prompt="p",
    )
    battle = Battle(
        run=run,
        tag=tag,
        model_a=left,
        model_b=right,
        vote=vote,
        voted_at=timezone.now() - timedelta(days=days_ago),
        created_by=creator,
    )
    battle.set_owner(owner)
    battle.save()
    return battle


@pytest.mark.django_db
def test_the_leaderboard_is_per_owner_and_filters_by_topic_and_time(alice, team, charlie_outsider):
    for _ in range(6):
        _voted(alice, "openai:gpt-4o", "openai:gpt-4o-mini", "a", tag="coding", creator=alice)
    for _ in range(4):
        _voted(
            alice,
            "openai:gpt-4o-mini",
            "openai:gpt-4o",
            "a",
            tag="poetry",
            days_ago=40,
            creator=alice,
        )
    _voted(team, "x:team-only", "y:other", "a", creator=alice)
    board = arena.leaderboard_for(user=alice)
    assert board["votes"] == 10 and board["tags"] == ["coding", "poetry"]
    assert board["standings"][0].model == "openai:gpt-4o"
    coding = arena.leaderboard_for(user=alice, tag="coding")
    assert coding["votes"] == 6 and coding["standings"][0].wins == 6
    poetry = arena.leaderboard_for(user=alice, tag="poetry")
    assert poetry["standings"][0].model == "openai:gpt-4o-mini"
    recent = arena.leaderboard_for(user=alice, since=timezone.now() - timedelta(days=30))
    assert recent["votes"] == 6
    team_board = arena.leaderboard_for(user=alice, team=team)
    assert {s.model for s in team_board["standings"]} == {"x:team-only", "y:other"}
    with pytest.raises(Http404):
        arena.leaderboard_for(user=charlie_outsider, team=team)
    assert arena.leaderboard_for(user=charlie_outsider)["votes"] == 0


@pytest.mark.django_db
def test_a_new_vote_refreshes_the_cached_leaderboard(alice, fresh_cache):
    _voted(alice, "a:1", "b:2", "a", creator=alice)
    first = arena.leaderboard_for(user=alice)
    assert first["standings"][0].model == "a:1"
    for _ in range(3):
        _voted(alice, "a:1", "b:2", "b", creator=alice)
    second = arena.leaderboard_for(user=alice)
    assert second["votes"] == 4 and second["standings"][0].model == "b:2"


@pytest.mark.django_db(transaction=True)
async def test_the_battle_socket_starts_the_battle_once_and_streams_both_sides(alice):
    echo = await sync_to_async(echo_models)(alice, "m1", "m2")
    await sync_to_async(arena.pool_save)(
        actor=alice, owner=alice, entries=[(echo, "m1"), (echo, "m2")]
    )
    battle = await sync_to_async(arena.battle_create)(actor=alice, prompt="Name a colour.")
    async with connect(f"/ws/arena/{battle.pk}/", user=alice) as (ws, connected):
        assert connected
        hello = await ws.receive_json_from(timeout=5)
        assert hello["started"] is False and hello["voted"] is False
        await ws.send_json_to({"type": "start"})
        started = await ws.receive_json_from(timeout=5)
        assert started["type"] == "battle_started"
        assert "Model A" in started["html"] and "m1" not in started["html"]
        finals = []
        while len(finals) < 2:
            frame = await ws.receive_json_from(timeout=5)
            assert "echo:m" not in str(frame)  # names stay hidden in every frame
            if frame["type"] == "final":
                finals.append(frame)
        await ws.send_json_to({"type": "start"})  # a second tab: nothing new starts
        await ws.send_json_to({"type": "ping"})
        assert (await ws.receive_json_from(timeout=5))["type"] == "pong"
    for reply in list(runs.ARENA.running.values()):
        await reply.task
    answers = await sync_to_async(list)(
        Answer.objects.filter(run__battle=battle).order_by("position")
    )
    assert [a.status for a in answers] == ["complete", "complete"]
    assert all("Name a colour." in a.text for a in answers)


@pytest.mark.django_db
def test_nothing_names_a_battles_models_before_the_vote(alice, api_for, client_for):
    from django.urls import reverse

    echo = echo_models(alice, "zetamodelx", "omegamodelx")
    arena.pool_save(actor=alice, owner=alice, entries=[(echo, "zetamodelx"), (echo, "omegamodelx")])
    battle = arena.battle_create(actor=alice, prompt="hi")
    plans = arena.battle_start(actor=alice, battle=battle)
    Answer.objects.filter(run=battle.run).update(status="complete", text="done")
    run, answer, other = battle.run_id, plans[0].answer_id, plans[1].answer_id
    api, client = api_for(alice), client_for(alice)
    hidden = [
        lambda: api.get(f"/api/runs/{run}/"),
        lambda: api.get(f"/api/runs/{run}/events/"),
        lambda: api.patch(f"/api/runs/{run}/", {"winner_id": answer}),
        lambda: api.get(f"/api/answers/{answer}/"),
        lambda: api.patch(f"/api/answers/{answer}/", {"rating": 3}),
        lambda: api.get(f"/api/answers/{answer}/code/"),
        lambda: client.get(reverse("playground:run_export", args=[run, "json"])),
        lambda: client.get(reverse("playground:run_diff", args=[run]), {"a": answer, "b": other}),
        lambda: client.get(reverse("playground:answer_code", args=[answer])),
        lambda: client.post(reverse("playground:answer_continue", args=[answer])),
        lambda: client.post(reverse("playground:run_continue", args=[run])),
    ]
    for request in hidden:
        response = request()
        assert response.status_code == 404
        assert b"zetamodelx" not in response.content and b"omegamodelx" not in response.content
    arena.battle_vote(actor=alice, battle=battle, vote="a")
    assert api.get(f"/api/runs/{run}/").json()["answers"][0]["model"] in (
        "zetamodelx",
        "omegamodelx",
    )
    assert client.get(reverse("playground:run_export", args=[run, "md"])).status_code == 200
