"""Access-matrix cases for the prompt library: every route, id in a URL or query, and id-bearing
field — templates, versions, labels, collections, and credential ids in batch and model fields.

alice's side: a team prompt ("Acme greeting", two versions, `production` on v1) with a running
batch and a finished one, and a personal prompt of alice's (ids nobody else may reach)."""

from __future__ import annotations

from tests.access_matrix import Case, FieldCase
from tests.access_matrix import alice_only as _alice_only
from tests.access_matrix import everyone as _everyone
from tests.access_matrix import team_rule as _team

PROMPT_WORLD_KEYS = ("prompt", "personal_prompt", "batch", "finished_batch", "personal_batch")


def prompts_world(world: dict) -> dict:
    from django.utils import timezone

    from prompts import batches, services
    from prompts.models import BatchRun, BatchStatus, CellStatus
    from prompts.services import Content

    alice, team = world["alice"], world["team"]
    prompt = services.template_create(
        actor=alice,
        owner_team=team,
        name="Acme greeting",
        content=Content(user_text="Hello {{name}}"),
    )
    services.version_create(
        actor=alice, template=prompt, content=Content(user_text="Hi there, {{name}}")
    )
    services.label_set(
        actor=alice, template=prompt, name="production", version=prompt.versions.get(number=1)
    )
    personal = services.template_create(
        actor=alice, name="Alice private", content=Content(user_text="Secret {{x}}")
    )
    targets = [(world["team_credential"], "echo")]
    running = batches.batch_create(
        actor=alice,
        template=prompt,
        version=prompt.versions.get(number=2),
        rows=[{"name": "Ann"}],
        targets=targets,
    )
    finished = batches.batch_create(
        actor=alice,
        template=prompt,
        version=prompt.versions.get(number=2),
        rows=[{"name": "Bo"}],
        targets=targets,
    )
    BatchRun.objects.filter(pk=finished.pk).update(
        status=BatchStatus.DONE, finished_at=timezone.now()
    )
    finished.cells.update(status=CellStatus.DONE, output="Hi there, Bo")
    personal_batch = batches.batch_create(
        actor=alice,
        template=personal,
        version=personal.versions.get(),
        rows=[{"x": "1"}],
        targets=[(world["alice_credential"], "echo")],
    )
    return {
        "prompt": prompt,
        "personal_prompt": personal,
        "batch": running,
        "finished_batch": finished,
        "personal_batch": personal_batch,
    }


prompt = lambda w: {"pk": w["prompt"].pk}  # noqa: E731
personal = lambda w: {"pk": w["personal_prompt"].pk}  # noqa: E731
batch = lambda w: {"pk": w["batch"].pk}  # noqa: E731
finished = lambda w: {"pk": w["finished_batch"].pk}  # noqa: E731
targets = lambda w: [f"{w['team_credential'].pk}|echo"]  # noqa: E731


def _editor(**extra):
    return lambda w: {"name": "Edited", "user_text": "Yo {{name}}", "top_k": 5, **extra}


PROMPT_CASES: list[Case] = [
    Case("prompts:new", _everyone(200)),
    Case(
        "prompts:new",
        _everyone(302),
        method="POST",
        data=lambda w: {"name": "Mine", "user_text": "Hi {{who}}"},
        note="personal",
    ),
    Case("prompts:import", _everyone(200)),
    Case(
        "prompts:import",
        _everyone(200),
        method="POST",
        data=lambda w: {"text": '{"prompts": [{"name": "P", "versions": [{"user": "x"}]}]}'},
        note="personal",
    ),
    Case("prompts:variables", _everyone(200), method="POST", data=lambda w: {"user_text": "{{a}}"}),
    Case("prompts:picker", _everyone(200), query=lambda w: {"q": "acme"}),
    Case("prompts:detail", _team(200, 200, 200), kwargs=prompt),
    Case("prompts:detail", _alice_only(200), kwargs=personal, note="personal"),
    Case(
        "prompts:detail",
        _team(200, 200, 200),
        kwargs=prompt,
        query=lambda w: {"v": "production"},
        note="a label",
    ),
    Case("prompts:edit", _team(200, 200, 403), kwargs=prompt),
    Case("prompts:edit", _alice_only(200), kwargs=personal, note="personal"),
    Case("prompts:edit", _team(302, 302, 403), method="POST", kwargs=prompt, data=_editor()),
    Case("prompts:delete", _team(200, 403, 403), kwargs=prompt),
    Case("prompts:delete", _team(302, 403, 403), method="POST", kwargs=prompt),
    Case("prompts:delete", _alice_only(302), method="POST", kwargs=personal, note="personal"),
    Case(
        "prompts:try",
        _team(200, 200, 200),
        method="POST",
        kwargs=prompt,
        data=lambda w: {"version": "1", "v-name": "Ann"},
    ),
    Case(
        "prompts:try",
        _alice_only(200),
        method="POST",
        kwargs=personal,
        data=lambda w: {"version": "1", "v-x": "1"},
        note="personal",
    ),
    Case("prompts:insert_form", _team(200, 200, 200), kwargs=prompt),
    Case("prompts:insert_form", _alice_only(200), kwargs=personal, note="personal"),
    Case(
        "prompts:version",
        _team(200, 200, 200),
        kwargs=lambda w: {"pk": w["prompt"].pk, "number": 1},
    ),
    Case(
        "prompts:version",
        _alice_only(200),
        kwargs=lambda w: {"pk": w["personal_prompt"].pk, "number": 1},
        note="personal",
    ),
    Case(
        "prompts:version",
        _team(404, 404, 404),
        kwargs=lambda w: {"pk": w["prompt"].pk, "number": 99},
        note="no such version",
    ),
    Case("prompts:diff", _team(200, 200, 200), kwargs=prompt, query=lambda w: {"a": 1, "b": 2}),
    Case("prompts:diff", _alice_only(200), kwargs=personal, note="personal"),
    Case(
        "prompts:label_set",
        _team(302, 302, 403),
        method="POST",
        kwargs=prompt,
        data=lambda w: {"name": "staging", "version": 2},
    ),
    Case(
        "prompts:label_set",
        _alice_only(302),
        method="POST",
        kwargs=personal,
        data=lambda w: {"name": "staging", "version": 1},
        note="personal",
    ),
    Case(
        "prompts:label_delete",
        _team(302, 302, 403),
        method="POST",
        kwargs=lambda w: {"pk": w["prompt"].pk, "name": "production"},
    ),
    Case(
        "prompts:export",
        _team(200, 200, 200),
        kwargs=lambda w: {"pk": w["prompt"].pk, "fmt": "yaml"},
    ),
    Case(
        "prompts:export",
        _alice_only(200),
        kwargs=lambda w: {"pk": w["personal_prompt"].pk, "fmt": "json"},
        note="personal",
    ),
    Case("prompts:batch_new", _team(200, 200, 403), kwargs=prompt),
    Case("prompts:batch_new", _alice_only(200), kwargs=personal, note="personal"),
    Case(
        "prompts:batch_new",
        _team(200, 200, 403),
        method="POST",
        kwargs=prompt,
        data=lambda w: {
            "version": "2",
            "targets": targets(w),
            "row-0-name": "Ann",
            "intent": "estimate",
        },
    ),
    Case("prompts:batch_detail", _team(200, 200, 200), kwargs=batch),
    Case(
        "prompts:batch_detail",
        _alice_only(200),
        kwargs=lambda w: {"pk": w["personal_batch"].pk},
        note="personal",
    ),
    Case("prompts:batch_cancel", _team(302, 302, 403), method="POST", kwargs=batch),
    Case(
        "prompts:batch_cancel",
        _alice_only(302),
        method="POST",
        kwargs=lambda w: {"pk": w["personal_batch"].pk},
        note="personal",
    ),
    Case("prompts:batch_delete", _team(302, 403, 403), method="POST", kwargs=finished),
    Case(
        "prompts:batch_export",
        _team(200, 200, 200),
        kwargs=lambda w: {"pk": w["finished_batch"].pk, "fmt": "csv"},
    ),
    Case(
        "prompts:batch_export",
        _alice_only(200),
        kwargs=lambda w: {"pk": w["personal_batch"].pk, "fmt": "json"},
        note="personal",
    ),
    # --- REST ------------------------------------------------------------------------------------
    Case("api-prompt-list", _everyone(200, anonymous=401), api=True),
    Case(
        "api-prompt-list",
        _team(200, 200, 200, anonymous=401),
        api=True,
        query=lambda w: {"team": w["team"].pk},
        note="team by query id",
    ),
    Case(
        "api-prompt-list",
        _everyone(201, anonymous=401),
        method="POST",
        api=True,
        data=lambda w: {"name": "Mine", "user_text": "Hi {{who}}"},
        note="personal",
    ),
    Case("api-prompt-detail", _team(200, 200, 200, anonymous=401), kwargs=prompt, api=True),
    Case(
        "api-prompt-detail",
        _alice_only(200, anonymous=401),
        kwargs=personal,
        api=True,
        note="personal",
    ),
    Case(
        "api-prompt-detail",
        _team(200, 200, 403, anonymous=401),
        method="PATCH",
        kwargs=prompt,
        api=True,
        data=lambda w: {"name": "X"},
    ),
    Case(
        "api-prompt-detail",
        _team(204, 403, 403, anonymous=401),
        method="DELETE",
        kwargs=prompt,
        api=True,
    ),
    Case("api-prompt-versions", _team(200, 200, 200, anonymous=401), kwargs=prompt, api=True),
    Case(
        "api-prompt-versions",
        _team(201, 201, 403, anonymous=401),
        method="POST",
        kwargs=prompt,
        api=True,
        data=lambda w: {"user_text": "Hey {{name}}"},
    ),
    Case(
        "api-prompt-version",
        _team(200, 200, 200, anonymous=401),
        kwargs=lambda w: {"pk": w["prompt"].pk, "number": 1},
        api=True,
    ),
    Case(
        "api-prompt-version",
        _alice_only(200, anonymous=401),
        kwargs=lambda w: {"pk": w["personal_prompt"].pk, "number": 1},
        api=True,
        note="personal",
    ),
    Case("api-prompt-labels", _team(200, 200, 200, anonymous=401), kwargs=prompt, api=True),
    Case(
        "api-prompt-labels",
        _team(200, 200, 403, anonymous=401),
        method="POST",
        kwargs=prompt,
        api=True,
        data=lambda w: {"name": "production", "version": 2},
    ),
    Case(
        "api-prompt-label",
        _team(204, 204, 403, anonymous=401),
        method="DELETE",
        kwargs=lambda w: {"pk": w["prompt"].pk, "name": "production"},
        api=True,
    ),
    Case(
        "api-prompt-diff",
        _team(200, 200, 200, anonymous=401),
        kwargs=prompt,
        api=True,
        query=lambda w: {"from": "1", "to": "production"},
    ),
    Case(
        "api-prompt-render",
        _team(200, 200, 200, anonymous=401),
        method="POST",
        kwargs=prompt,
        api=True,
        data=lambda w: {"version": "production", "variables": {"name": "Ann"}},
    ),
    Case(
        "api-prompt-render",
        _alice_only(200, anonymous=401),
        method="POST",
        kwargs=personal,
        api=True,
        data=lambda w: {"variables": {"x": "1"}},
        note="personal",
    ),
    Case("api-prompt-export", _team(200, 200, 200, anonymous=401), kwargs=prompt, api=True),
    Case(
        "api-prompt-export",
        _alice_only(200, anonymous=401),
        kwargs=personal,
        api=True,
        note="personal",
    ),
    Case("api-prompt-export-all", _everyone(200, anonymous=401), api=True),
    Case(
        "api-prompt-import",
        _everyone(201, anonymous=401),
        method="POST",
        api=True,
        data=lambda w: {"data": '{"prompts": [{"name": "P", "versions": [{"user": "x"}]}]}'},
        note="personal",
    ),
    Case(
        "api-batch-list",
        _team(200, 200, 200, anonymous=401),
        api=True,
        query=lambda w: {"template": w["prompt"].pk},
        note="a prompt's batches by query id",
    ),
    Case(
        "api-batch-list",
        _alice_only(200, anonymous=401),
        api=True,
        query=lambda w: {"template": w["personal_prompt"].pk},
        note="personal prompt's batches",
    ),
    Case(
        "api-batch-estimate",
        _team(200, 200, 403, anonymous=401),
        method="POST",
        api=True,
        data=lambda w: {
            "template": w["prompt"].pk,
            "rows": [{"name": "A"}],
            "targets": [{"credential": w["team_credential"].pk, "model": "echo"}],
        },
    ),
    Case("api-batch-detail", _team(200, 200, 200, anonymous=401), kwargs=batch, api=True),
    Case(
        "api-batch-detail",
        _alice_only(200, anonymous=401),
        kwargs=lambda w: {"pk": w["personal_batch"].pk},
        api=True,
        note="personal",
    ),
    Case(
        "api-batch-detail",
        _team(204, 403, 403, anonymous=401),
        method="DELETE",
        kwargs=finished,
        api=True,
    ),
    Case(
        "api-batch-cancel",
        _team(200, 200, 403, anonymous=401),
        method="POST",
        kwargs=batch,
        api=True,
    ),
    Case("api-batch-cells", _team(200, 200, 200, anonymous=401), kwargs=batch, api=True),
    Case("api-batch-export", _team(200, 200, 200, anonymous=401), kwargs=finished, api=True),
]


def _batch_body(w, **changes):
    body = {
        "template": w["prompt"].pk,
        "rows": [{"name": "A"}],
        "targets": [{"credential": w["team_credential"].pk, "model": "echo"}],
    }
    body.update(changes)
    return body


PROMPT_FIELD_CASES: list[FieldCase] = [
    FieldCase(
        "prompts.forms.PromptForm.owner_team",
        Case(
            "prompts:new",
            _team(302, 302, 403),
            method="POST",
            data=lambda w: {"name": "T", "user_text": "x", "owner_team": w["team"].pk},
            note="owner_team",
        ),
    ),
    FieldCase(
        "prompts.forms.PromptForm.collection",
        Case(
            "prompts:new",
            _alice_only(302),
            method="POST",
            data=lambda w: {"name": "T", "user_text": "x", "collection": w["rag_personal"].pk},
            note="alice's personal collection",
        ),
    ),
    FieldCase(
        "prompts.forms.PromptForm.model_choice",
        Case(
            "prompts:new",
            _alice_only(302),
            method="POST",
            data=lambda w: {
                "name": "T",
                "user_text": "x",
                "model_choice": f"{w['alice_credential'].pk}|echo",
            },
            note="alice's personal credential",
        ),
    ),
    FieldCase(
        "prompts.forms.BatchForm.targets",
        Case(
            "prompts:batch_new",
            _team(400, 404, 403),
            method="POST",
            kwargs=prompt,
            data=lambda w: {
                "version": "2",
                "targets": [f"{w['alice_credential'].pk}|echo"],
                "row-0-name": "Ann",
                "intent": "estimate",
            },
            note="alice's personal credential for a team prompt: refused with the reason for "
            "her (400), not found for others",
        ),
    ),
    FieldCase(
        "prompts.forms.ImportForm.owner_team",
        Case(
            "prompts:import",
            _team(200, 200, 403),
            method="POST",
            data=lambda w: {
                "text": '{"prompts": [{"name": "P", "versions": [{"user": "x"}]}]}',
                "owner_team": w["team"].pk,
            },
            note="owner_team",
        ),
    ),
    *(
        FieldCase(
            f"prompts.serializers.{cls}.collection",
            Case(
                name,
                _alice_only(code, anonymous=401),
                method="POST",
                kwargs=kwargs,
                api=True,
                data=lambda w, body=body: {**body, "collection": w["rag_personal"].pk},
                note="alice's personal collection",
            ),
        )
        for cls, name, code, kwargs, body in (
            (
                "PromptCreateSerializer",
                "api-prompt-list",
                201,
                lambda w: {},
                {"name": "T", "user_text": "x"},
            ),
            (
                "VersionCreateSerializer",
                "api-prompt-versions",
                201,
                personal,
                {"user_text": "Secret {{x}}!"},
            ),
        )
    ),
    *(
        FieldCase(
            f"prompts.serializers.{cls}.credential",
            Case(
                name,
                _alice_only(code, anonymous=401),
                method="POST",
                kwargs=kwargs,
                api=True,
                data=lambda w, body=body: {
                    **body,
                    "credential": w["alice_credential"].pk,
                    "model": "echo",
                },
                note="alice's personal credential",
            ),
        )
        for cls, name, code, kwargs, body in (
            (
                "PromptCreateSerializer",
                "api-prompt-list",
                201,
                lambda w: {},
                {"name": "T", "user_text": "x"},
            ),
            (
                "VersionCreateSerializer",
                "api-prompt-versions",
                201,
                personal,
                {"user_text": "Secret {{x}}!"},
            ),
        )
    ),
    FieldCase(
        "prompts.serializers.ContentSerializer.credential",
        Case(
            "api-prompt-versions",
            _team(400, 404, 403, anonymous=401),
            method="POST",
            kwargs=prompt,
            api=True,
            data=lambda w: {"credential": w["alice_credential"].pk, "model": "echo"},
            note="alice's personal credential on the team prompt: her own is refused with the reason",
        ),
    ),
    FieldCase(
        "prompts.serializers.ContentSerializer.collection",
        Case(
            "api-prompt-versions",
            _team(400, 404, 403, anonymous=401),
            method="POST",
            kwargs=prompt,
            api=True,
            data=lambda w: {"collection": w["rag_personal"].pk},
            note="alice's personal collection on the team prompt",
        ),
    ),
    FieldCase(
        "prompts.serializers.PromptCreateSerializer.owner_team",
        Case(
            "api-prompt-list",
            _team(201, 201, 403, anonymous=401),
            method="POST",
            api=True,
            data=lambda w: {"name": "T", "user_text": "x", "owner_team": w["team"].pk},
            note="owner_team",
        ),
    ),
    FieldCase(
        "prompts.serializers.ImportSerializer.owner_team",
        Case(
            "api-prompt-import",
            _team(201, 201, 403, anonymous=401),
            method="POST",
            api=True,
            data=lambda w: {
                "data": '{"prompts": [{"name": "P", "versions": [{"user": "x"}]}]}',
                "owner_team": w["team"].pk,
            },
            note="owner_team",
        ),
    ),
    FieldCase(
        "prompts.serializers.BatchCreateSerializer.template",
        Case(
            "api-batch-list",
            _alice_only(201, anonymous=401),
            method="POST",
            api=True,
            data=lambda w: _batch_body(
                w,
                template=w["personal_prompt"].pk,
                rows=[{"x": "1"}],
                targets=[{"credential": w["alice_credential"].pk, "model": "echo"}],
            ),
            note="alice's personal prompt",
        ),
    ),
    FieldCase(
        "prompts.serializers.TargetSerializer.credential",
        Case(
            "api-batch-list",
            _team(400, 404, 403, anonymous=401),
            method="POST",
            api=True,
            data=lambda w: _batch_body(
                w, targets=[{"credential": w["alice_credential"].pk, "model": "echo"}]
            ),
            note="alice's personal credential for a team prompt: her own is refused with the reason",
        ),
    ),
    FieldCase(
        "prompts.serializers.TargetSerializer.credential",
        Case(
            "api-batch-estimate",
            _team(200, 200, 403, anonymous=401),
            method="POST",
            api=True,
            data=lambda w: _batch_body(w),
            note="the team's credential",
        ),
    ),
]
