"""The playground's part of the access matrix (issue 12): its routes, id-bearing fields,
websockets and websocket id fields, against a team comparison with a finished run and a team
arena battle on alice's side. Kept apart from test_access_matrix.py so the areas grow without
stepping on each other; that module imports these lists."""

from __future__ import annotations

from tests.access_matrix import (
    Case,
    FieldCase,
    SocketCase,
    SocketFieldCase,
    everyone,
    team_rule,
)


def build_playground(world: dict) -> dict:
    """A team comparison (two slots on the team's Echo) with one finished run, alice's
    personal comparison (the foreign ids), a team pool and a finished, unvoted team battle."""
    from django.utils import timezone

    from playground import arena, services
    from playground.models import Answer, Battle, ComparisonCollection, Run, RunKind
    from playground.services import SlotData
    from providers.models import ProviderModel

    alice, team = world["alice"], world["team"]
    credential = world["team_credential"]
    ProviderModel.objects.get_or_create(credential=credential, model_id="echo")
    ProviderModel.objects.get_or_create(credential=credential, model_id="echo-b")
    comparison = services.comparison_create(
        actor=alice,
        owner_team=team,
        title="Team comparison",
        prompt="hello",
        slots=[SlotData(credential, "echo"), SlotData(credential, "echo-b")],
    )
    slot = comparison.slots.order_by("position").first()
    now = timezone.now()
    run = Run.objects.create(
        comparison=comparison,
        owner_team=team,
        created_by=alice,
        prompt="hello",
        finished_at=now,
        wall_ms=10,
    )
    answers = [
        Answer.objects.create(
            run=run,
            position=i,
            credential=credential,
            preset="echo",
            model=model,
            text=f"answer {i}",
            status="complete",
        )
        for i, model in enumerate(("echo", "echo-b"))
    ]
    personal = services.comparison_create(
        actor=alice,
        prompt="mine",
        slots=[
            SlotData(world["alice_credential"], "echo"),
            SlotData(world["alice_credential"], "echo"),
        ],
    )
    personal_run = Run.objects.create(
        comparison=personal, owner_user=alice, created_by=alice, prompt="mine", finished_at=now
    )
    foreign_answer = Answer.objects.create(
        run=personal_run,
        credential=world["alice_credential"],
        preset="echo",
        model="echo",
        text="private",
        status="complete",
    )
    arena.pool_save(actor=alice, owner=team, entries=[(credential, "echo"), (credential, "echo-b")])
    battle_run = Run.objects.create(
        kind=RunKind.ARENA, owner_team=team, created_by=alice, prompt="which?", finished_at=now
    )
    battle = Battle.objects.create(
        run=battle_run,
        owner_team=team,
        created_by=alice,
        credential_a=credential,
        credential_b=credential,
        model_a="echo:echo",
        model_b="echo:echo-b",
        started_at=now,
    )
    battle_answers = [
        Answer.objects.create(
            run=battle_run,
            position=i,
            credential=credential,
            preset="echo",
            model=m,
            text=f"side {i}",
            status="complete",
        )
        for i, m in enumerate(("echo", "echo-b"))
    ]
    # Shared context (issue 14): the team collection attached, the run's retrieval citing its
    # chunk, a judge on the team's Echo.
    ComparisonCollection.objects.create(comparison=comparison, collection=world["rag_collection"])
    comparison.judge_credential, comparison.judge_model = credential, "echo"
    comparison.save(update_fields=["judge_credential", "judge_model"])
    chunk = world["rag_chunk"]
    run.retrieval = {
        "context": "<sources>team text</sources>",
        "sources": [
            {
                "n": 1,
                "chunk": chunk.pk,
                "document": chunk.document_id,
                "collection": chunk.collection_id,
                "title": "a.txt",
                "page": None,
                "heading": "",
            }
        ],
        "notices": [],
        "took_ms": 1.0,
    }
    run.save(update_fields=["retrieval"])
    made = {
        "comparison": comparison,
        "slot": slot,
        "run": run,
        "pg_answer": answers[0],
        "pg_answer_b": answers[1],
        "personal_comparison": personal,
        "foreign_slot": personal.slots.first(),
        "foreign_answer": foreign_answer,
        "battle": battle,
        "battle_answer": battle_answers[0],
    }
    # The editor's fields with alice's personal credential in every slot, for the socket's
    # `run` message (built here: the message is made in async code).
    made["foreign_form"] = _editor({**world, "pg": made}, credential=world["alice_credential"])
    return made


comp_kw = lambda w: {"pk": w["pg"]["comparison"].pk}  # noqa: E731
slot_kw = lambda w: {"pk": w["pg"]["comparison"].pk, "slot_pk": w["pg"]["slot"].pk}  # noqa: E731
foreign_slot_kw = lambda w: {"pk": w["pg"]["comparison"].pk, "slot_pk": w["pg"]["foreign_slot"].pk}  # noqa: E731
run_kw = lambda w: {"pk": w["pg"]["run"].pk}  # noqa: E731
answer_kw = lambda w: {"pk": w["pg"]["pg_answer"].pk}  # noqa: E731
battle_kw = lambda w: {"pk": w["pg"]["battle"].pk}  # noqa: E731
team_query = lambda w: {"team": w["team"].pk}  # noqa: E731


def _editor(w, credential=None, model="echo") -> dict:
    """What the comparison page posts: the input and every slot."""
    comparison = w["pg"]["comparison"]
    slots = list(comparison.slots.order_by("position"))
    data = {
        "title": "T",
        "prompt": "hello",
        "system_prompt": "",
        "slot_order": ",".join(str(s.pk) for s in slots),
    }
    for s in slots:
        data[f"slot-{s.pk}-model_choice"] = f"{(credential or s.credential).pk}|{model}"
    return data


WRITE = dict(alice=302, bob=302, vera=403)
READ = dict(alice=200, bob=200, vera=200)

CASES: list[Case] = [
    Case("playground:index", everyone(200)),
    Case("playground:new", everyone(302), method="POST"),
    Case(
        "playground:from_chat",
        team_rule(**READ),
        query=lambda w: {"conversation": w["conversation"].pk, "message": w["answer"].pk},
    ),
    Case(
        "playground:from_chat",
        team_rule(alice=302, bob=302, vera=302),
        method="POST",
        data=lambda w: {"conversation": w["conversation"].pk, "message": w["answer"].pk},
        note="a viewer compares in a personal comparison",
    ),
    Case(
        "playground:from_chat",
        team_rule(alice=404, bob=404, vera=404),
        query=lambda w: {"conversation": w["conversation"].pk, "message": w["foreign_message"].pk},
        note="a message of another conversation",
    ),
    Case("playground:detail", team_rule(**READ), kwargs=comp_kw),
    Case(
        "playground:detail",
        team_rule(alice=404, bob=404, vera=404),
        kwargs=comp_kw,
        query=lambda w: {"run": w["pg"]["personal_comparison"].runs.first().pk},
        note="a run of another comparison",
    ),
    Case("playground:save", team_rule(**WRITE), method="POST", kwargs=comp_kw, data=_editor),
    Case("playground:slot_add", team_rule(**WRITE), method="POST", kwargs=comp_kw),
    *(
        Case(f"playground:{name}", team_rule(**WRITE), method="POST", kwargs=slot_kw)
        for name in ("slot_duplicate", "slot_move")
    ),
    Case(
        "playground:slot_remove",
        team_rule(alice=302, bob=302, vera=403),
        method="POST",
        kwargs=slot_kw,
    ),
    *(
        Case(
            f"playground:{name}",
            team_rule(alice=404, bob=404, vera=403),
            method="POST",
            kwargs=foreign_slot_kw,
            note="a slot of another comparison",
        )
        for name in ("slot_duplicate", "slot_remove", "slot_move")
    ),
    Case("playground:clone", team_rule(**WRITE), method="POST", kwargs=comp_kw),
    Case("playground:delete", team_rule(alice=200, bob=403, vera=403), kwargs=comp_kw),
    Case(
        "playground:delete", team_rule(alice=302, bob=403, vera=403), method="POST", kwargs=comp_kw
    ),
    *(
        Case(
            "playground:run_export",
            team_rule(**READ),
            kwargs=lambda w, fmt=fmt: {"pk": w["pg"]["run"].pk, "fmt": fmt},
            note=fmt,
        )
        for fmt in ("json", "csv", "md")
    ),
    Case(
        "playground:run_diff",
        team_rule(**READ),
        kwargs=run_kw,
        query=lambda w: {"a": w["pg"]["pg_answer"].pk, "b": w["pg"]["pg_answer_b"].pk},
    ),
    Case(
        "playground:run_diff",
        team_rule(alice=404, bob=404, vera=404),
        kwargs=run_kw,
        query=lambda w: {"a": w["pg"]["pg_answer"].pk, "b": w["pg"]["foreign_answer"].pk},
        note="an answer of another run",
    ),
    Case(
        "playground:run_winner",
        team_rule(**WRITE),
        method="POST",
        kwargs=run_kw,
        data=lambda w: {"answer_id": w["pg"]["pg_answer"].pk},
    ),
    Case("playground:run_continue", team_rule(**WRITE), method="POST", kwargs=run_kw),
    Case(
        "playground:answer_rate",
        team_rule(**WRITE),
        method="POST",
        kwargs=answer_kw,
        data=lambda w: {"rating": "4", "note": "good"},
    ),
    Case("playground:answer_code", team_rule(**READ), kwargs=answer_kw),
    # Prompts from the library (issue 13): the picker's Insert saves through the comparison
    # (JSON), "Test this prompt across N models" and a batch cell's "Open in playground".
    Case(
        "playground:prompt_apply",
        team_rule(alice=200, bob=200, vera=403),
        method="POST",
        kwargs=comp_kw,
        api=True,
        data=lambda w: {"template": w["prompt"].pk, "variables": {"name": "Bo"}},
    ),
    Case(
        "playground:prompt_apply",
        team_rule(alice=200, bob=404, vera=403),
        method="POST",
        kwargs=comp_kw,
        api=True,
        data=lambda w: {"template": w["personal_prompt"].pk, "variables": {"x": "1"}},
        note="alice's personal prompt: only she may fill it in",
    ),
    Case(
        "playground:from_prompt",
        team_rule(alice=302, bob=302, vera=302),
        method="POST",
        data=lambda w: {"template": w["prompt"].pk, "models": "2", "v-name": "Bo"},
        note="a viewer tests it in a personal comparison",
    ),
    Case(
        "playground:from_prompt",
        team_rule(alice=302, bob=404, vera=404),
        method="POST",
        data=lambda w: {"template": w["personal_prompt"].pk, "models": "2", "v-x": "1"},
        note="alice's personal prompt",
    ),
    Case(
        "playground:from_prompt",
        team_rule(alice=302, bob=302, vera=302),
        method="POST",
        data=lambda w: {"cell": w["finished_batch"].cells.first().pk},
        note="a team batch's cell",
    ),
    Case(
        "playground:from_prompt",
        team_rule(alice=302, bob=404, vera=404),
        method="POST",
        data=lambda w: {"cell": w["personal_batch"].cells.first().pk},
        note="a cell of alice's personal batch",
    ),
    Case("playground:answer_continue", team_rule(**WRITE), method="POST", kwargs=answer_kw),
    Case("playground:arena", everyone(200)),
    Case(
        "playground:arena",
        everyone(400),
        method="POST",
        data=lambda w: {"prompt": "hi"},
        note="an empty personal pool",
    ),
    Case("playground:arena_pool", everyone(302), method="POST", data=lambda w: {}),
    Case("playground:leaderboard", everyone(200)),
    Case(
        "playground:leaderboard",
        team_rule(**READ),
        query=lambda w: {"scope": f"team-{w['team'].pk}"},
        note="a team's votes",
    ),
    Case("playground:battle", team_rule(**READ), kwargs=battle_kw),
    Case(
        "playground:battle_vote",
        team_rule(**WRITE),
        method="POST",
        kwargs=battle_kw,
        data=lambda w: {"vote": "a"},
    ),
    # Shared context (issue 14): attach/detach a collection, pick the judge.
    Case(
        "playground:context",
        team_rule(**WRITE),
        method="POST",
        kwargs=comp_kw,
        data=lambda w: {"action": "attach", "collection_id": w["rag_collection"].pk},
    ),
    Case(
        "playground:context",
        team_rule(**WRITE),
        method="POST",
        kwargs=comp_kw,
        data=lambda w: {"action": "detach", "collection_id": w["rag_collection"].pk},
        note="detach",
    ),
    Case(
        "playground:context",
        team_rule(alice=404, bob=404, vera=403),
        method="POST",
        kwargs=comp_kw,
        data=lambda w: {"action": "detach", "collection_id": w["rag_personal"].pk},
        note="detach a collection that isn't attached",
    ),
    Case(
        "playground:context",
        team_rule(**WRITE),
        method="POST",
        kwargs=comp_kw,
        data=lambda w: {"action": "judge", "judge_choice": f"{w['team_credential'].pk}|echo"},
        note="the team's Echo as judge",
    ),
    # --- REST ------------------------------------------------------------------------------------
    Case("api-comparison-collections", team_rule(**READ, anonymous=401), kwargs=comp_kw, api=True),
    Case(
        "api-comparison-collections",
        team_rule(alice=201, bob=201, vera=403, anonymous=401),
        method="POST",
        kwargs=comp_kw,
        api=True,
        data=lambda w: {"collection_id": w["rag_collection"].pk},
    ),
    Case(
        "api-comparison-collection",
        team_rule(alice=204, bob=204, vera=403, anonymous=401),
        method="DELETE",
        kwargs=lambda w: {"pk": w["pg"]["comparison"].pk, "collection_id": w["rag_collection"].pk},
        api=True,
    ),
    Case(
        "api-comparison-collection",
        team_rule(alice=404, bob=404, vera=403, anonymous=401),
        method="DELETE",
        kwargs=lambda w: {"pk": w["pg"]["comparison"].pk, "collection_id": w["rag_personal"].pk},
        api=True,
        note="a collection that isn't attached",
    ),
    Case(
        "api-comparison-judge",
        team_rule(alice=200, bob=200, vera=403, anonymous=401),
        method="PATCH",
        kwargs=comp_kw,
        api=True,
        data=lambda w: {"credential": w["team_credential"].pk, "model": "echo"},
    ),
    Case("api-comparison-list", everyone(200, anonymous=401), api=True),
    Case(
        "api-comparison-list",
        team_rule(**READ, anonymous=401),
        api=True,
        query=team_query,
        note="a team's",
    ),
    Case(
        "api-comparison-list",
        everyone(201, anonymous=401),
        method="POST",
        api=True,
        data=lambda w: {"title": "Mine"},
    ),
    Case("api-comparison-detail", team_rule(**READ, anonymous=401), kwargs=comp_kw, api=True),
    Case(
        "api-comparison-detail",
        team_rule(alice=200, bob=200, vera=403, anonymous=401),
        method="PATCH",
        kwargs=comp_kw,
        api=True,
        data=lambda w: {"title": "X"},
    ),
    Case(
        "api-comparison-detail",
        team_rule(alice=204, bob=403, vera=403, anonymous=401),
        method="DELETE",
        kwargs=comp_kw,
        api=True,
    ),
    Case("api-comparison-estimate", team_rule(**READ, anonymous=401), kwargs=comp_kw, api=True),
    Case("api-comparison-runs", team_rule(**READ, anonymous=401), kwargs=comp_kw, api=True),
    Case(
        "api-comparison-runs",
        team_rule(alice=201, bob=201, vera=403, anonymous=401),
        method="POST",
        kwargs=comp_kw,
        api=True,
        data=lambda w: {},
        note="a run on the team's Echo",
    ),
    Case("api-run-detail", team_rule(**READ, anonymous=401), kwargs=run_kw, api=True),
    Case("api-run-events", team_rule(**READ, anonymous=401), kwargs=run_kw, api=True),
    Case(
        "api-run-stop",
        team_rule(alice=202, bob=202, vera=403, anonymous=401),
        method="POST",
        kwargs=run_kw,
        api=True,
        data=lambda w: {},
    ),
    Case("api-answer-detail", team_rule(**READ, anonymous=401), kwargs=answer_kw, api=True),
    Case(
        "api-answer-detail",
        team_rule(alice=200, bob=200, vera=403, anonymous=401),
        method="PATCH",
        kwargs=answer_kw,
        api=True,
        data=lambda w: {"rating": 3},
    ),
    Case("api-answer-code", team_rule(**READ, anonymous=401), kwargs=answer_kw, api=True),
    Case("api-arena-pool", everyone(200, anonymous=401), api=True),
    Case(
        "api-arena-pool",
        team_rule(**READ, anonymous=401),
        api=True,
        query=team_query,
        note="a team's",
    ),
    Case(
        "api-arena-pool",
        team_rule(alice=200, bob=200, vera=403, anonymous=401),
        method="PUT",
        api=True,
        query=team_query,
        data=lambda w: [{"credential": w["team_credential"].pk, "model": "echo"}],
        note="a team's",
    ),
    Case("api-battle-list", everyone(200, anonymous=401), api=True),
    Case(
        "api-battle-list",
        everyone(400, anonymous=401),
        method="POST",
        api=True,
        data=lambda w: {"prompt": "hi"},
        note="an empty personal pool",
    ),
    Case("api-battle-detail", team_rule(**READ, anonymous=401), kwargs=battle_kw, api=True),
    Case(
        "api-battle-vote",
        team_rule(alice=200, bob=200, vera=403, anonymous=401),
        method="POST",
        kwargs=battle_kw,
        api=True,
        data=lambda w: {"vote": "tie"},
    ),
    Case("api-leaderboard", everyone(200, anonymous=401), api=True),
    Case(
        "api-leaderboard",
        team_rule(**READ, anonymous=401),
        api=True,
        query=team_query,
        note="a team's",
    ),
]

FIELD_CASES: list[FieldCase] = [
    FieldCase(
        "playground.forms.ContextForm.collection_id",
        Case(
            "playground:context",
            team_rule(alice=302, bob=404, vera=403),
            method="POST",
            kwargs=comp_kw,
            data=lambda w: {"action": "attach", "collection_id": w["rag_personal"].pk},
            note="alice's personal collection in a team comparison (alice: refused, a message)",
        ),
    ),
    FieldCase(
        "playground.forms.ContextForm.judge_choice",
        Case(
            "playground:context",
            team_rule(alice=302, bob=404, vera=403),
            method="POST",
            kwargs=comp_kw,
            data=lambda w: {"action": "judge", "judge_choice": f"{w['alice_credential'].pk}|echo"},
            note="alice's personal credential judging a team comparison (alice: refused)",
        ),
    ),
    FieldCase(
        "playground.serializers.ComparisonCollectionAttachSerializer.collection_id",
        Case(
            "api-comparison-collections",
            team_rule(alice=400, bob=404, vera=403, anonymous=401),
            method="POST",
            kwargs=comp_kw,
            api=True,
            data=lambda w: {"collection_id": w["rag_personal"].pk},
            note="alice's personal collection in a team comparison",
        ),
    ),
    FieldCase(
        "playground.serializers.JudgeSerializer.credential",
        Case(
            "api-comparison-judge",
            team_rule(alice=400, bob=404, vera=403, anonymous=401),
            method="PATCH",
            kwargs=comp_kw,
            api=True,
            data=lambda w: {"credential": w["alice_credential"].pk, "model": "echo"},
            note="alice's personal credential judging a team comparison",
        ),
    ),
    FieldCase(
        "playground.forms.SlotForm.model_choice",
        Case(
            "playground:save",
            team_rule(alice=302, bob=404, vera=403),
            method="POST",
            kwargs=comp_kw,
            data=lambda w: _editor(w, credential=w["alice_credential"]),
            note="alice's personal credential in a team comparison (alice: refused, not saved)",
        ),
    ),
    FieldCase(
        "playground.forms.WinnerForm.answer_id",
        Case(
            "playground:run_winner",
            team_rule(alice=404, bob=404, vera=403),
            method="POST",
            kwargs=run_kw,
            data=lambda w: {"answer_id": w["pg"]["foreign_answer"].pk},
            note="an answer of another run",
        ),
    ),
    FieldCase(
        "playground.serializers.ComparisonCreateSerializer.owner_team",
        Case(
            "api-comparison-list",
            team_rule(alice=201, bob=201, vera=403, anonymous=401),
            method="POST",
            api=True,
            data=lambda w: {"owner_team": w["team"].pk},
            note="owner_team",
        ),
    ),
    FieldCase(
        "playground.serializers.SlotWriteSerializer.credential",
        Case(
            "api-comparison-detail",
            team_rule(alice=400, bob=404, vera=403, anonymous=401),
            method="PATCH",
            kwargs=comp_kw,
            api=True,
            data=lambda w: {
                "slots": [
                    {"credential": w["alice_credential"].pk, "model": "echo"},
                    {"credential": w["alice_credential"].pk, "model": "echo"},
                ]
            },
            note="alice's personal credential in a team comparison",
        ),
    ),
    FieldCase(
        "playground.serializers.RunWriteSerializer.winner_id",
        Case(
            "api-run-detail",
            team_rule(alice=404, bob=404, vera=403, anonymous=401),
            method="PATCH",
            kwargs=run_kw,
            api=True,
            data=lambda w: {"winner_id": w["pg"]["foreign_answer"].pk},
            note="an answer of another run",
        ),
    ),
    FieldCase(
        "playground.serializers.StopSerializer.answer_id",
        Case(
            "api-run-stop",
            team_rule(alice=404, bob=404, vera=403, anonymous=401),
            method="POST",
            kwargs=run_kw,
            api=True,
            data=lambda w: {"answer_id": w["pg"]["foreign_answer"].pk},
            note="an answer of another run",
        ),
    ),
    FieldCase(
        "playground.serializers.BattleCreateSerializer.owner_team",
        Case(
            "api-battle-list",
            team_rule(alice=201, bob=201, vera=403, anonymous=401),
            method="POST",
            api=True,
            data=lambda w: {"prompt": "hi", "owner_team": w["team"].pk},
            note="owner_team: the team's pool (Echo)",
        ),
    ),
    FieldCase(
        "playground.serializers.PoolEntrySerializer.credential",
        Case(
            "api-arena-pool",
            team_rule(alice=400, bob=404, vera=404, anonymous=401),
            method="PUT",
            api=True,
            query=team_query,
            data=lambda w: [{"credential": w["alice_credential"].pk, "model": "echo"}],
            note="alice's personal credential in the team's pool",
        ),
    ),
]

SOCKET_CASES: list[SocketCase] = [
    SocketCase(
        "ws/playground/<int:comparison_id>/",
        path=lambda w: f"/ws/playground/{w['pg']['comparison'].pk}/",
        expect={
            "anonymous": False,
            "alice": True,
            "bob_teammate": True,
            "vera_viewer": True,
            "charlie_outsider": False,
        },
    ),
    SocketCase(
        "ws/arena/<int:battle_id>/",
        path=lambda w: f"/ws/arena/{w['pg']['battle'].pk}/",
        expect={
            "anonymous": False,
            "alice": True,
            "bob_teammate": True,
            "vera_viewer": True,
            "charlie_outsider": False,
        },
    ),
]

COMPARE_ROUTE = "ws/playground/<int:comparison_id>/"
ARENA_ROUTE = "ws/arena/<int:battle_id>/"
REFUSED = {"alice": "not_found", "bob_teammate": "not_found", "vera_viewer": "forbidden"}

SOCKET_FIELD_CASES: list[SocketFieldCase] = [
    SocketFieldCase(
        COMPARE_ROUTE,
        "stop.answer_id",
        lambda w: {"type": "stop", "answer_id": w["pg"]["foreign_answer"].pk},
        REFUSED,
    ),
    SocketFieldCase(
        COMPARE_ROUTE,
        "stop_all.run_id",
        lambda w: {"type": "stop_all", "run_id": w["pg"]["foreign_answer"].run_id},
        REFUSED,
    ),
    SocketFieldCase(
        COMPARE_ROUTE,
        "run.form",
        lambda w: {"type": "run", "form": w["pg"]["foreign_form"]},
        {"alice": "invalid", "bob_teammate": "not_found", "vera_viewer": "forbidden"},
    ),
    SocketFieldCase(
        ARENA_ROUTE,
        "stop.answer_id",
        lambda w: {"type": "stop", "answer_id": w["pg"]["foreign_answer"].pk},
        REFUSED,
    ),
]
