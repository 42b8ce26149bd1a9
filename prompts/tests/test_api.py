"""REST: prompts, versions, labels, diff, render, import/export, batches."""

from __future__ import annotations

import json

import pytest
import yaml

from prompts.models import BatchRun, PromptTemplate
from prompts.tests.conftest import make_prompt
from providers import services as provider_services
from tests.api_client import assert_error

CONTENT = {
    "system_text": "You answer as {{persona}}.",
    "user_text": "Question: {{question}}",
    "variables": [
        {
            "name": "persona",
            "type": "choice",
            "choices": ["a pirate", "a poet"],
            "default": "a poet",
        },
        {"name": "question", "type": "long_text", "example": "Why is the sky blue?"},
    ],
    "params": {"temperature": 0.5},
}


@pytest.fixture
def api(alice, api_for):
    return api_for(alice)


def create(api, **extra):
    response = api.post("/api/prompts/", {"name": "Ask", "tags": ["Fun"], **CONTENT, **extra})
    assert response.status_code == 201, response.content
    return response.json()


def test_create_read_list_and_update_a_prompt(api):
    created = create(api)
    assert created["latest_number"] == 1 and created["labels"] == {"latest": 1}
    assert created["tags"] == ["fun"] and created["owner"] == {"type": "user", "team_id": None}
    listed = api.get("/api/prompts/", {"q": "as"}).json()
    assert [p["id"] for p in listed["results"]] == [created["id"]]
    assert api.get("/api/prompts/", {"tag": "nope"}).json()["results"] == []
    patched = api.patch(f"/api/prompts/{created['id']}/", {"name": "Ask me", "tags": []}).json()
    assert patched["name"] == "Ask me" and patched["latest_number"] == 1
    version = api.get(f"/api/prompts/{created['id']}/versions/1/").json()
    assert version["variables"][0]["choices"] == ["a pirate", "a poet"]
    assert version["params"] == {"temperature": 0.5} and version["labels"] == ["latest"]


def test_a_new_version_keeps_what_it_doesnt_name_and_refuses_stale_or_empty_saves(api):
    prompt = create(api)
    url = f"/api/prompts/{prompt['id']}/versions/"
    v2 = api.post(url, {"user_text": "Q: {{question}}", "change_note": "shorter", "based_on": 1})
    assert v2.status_code == 201
    body = v2.json()
    assert body["number"] == 2 and body["system_text"] == CONTENT["system_text"]
    assert body["variables"][0]["name"] == "persona" and body["params"] == {"temperature": 0.5}
    assert_error(api.post(url, {"user_text": "Other {{question}}", "based_on": 1}), 409, "conflict")
    assert_error(api.post(url, {"change_note": "again"}), 400, "nothing_changed")
    listed = api.get(url).json()["results"]
    assert [v["number"] for v in listed] == [2, 1] and listed[0]["labels"] == ["latest"]


def test_labels_diff_and_rollback(api):
    prompt = create(api)
    base = f"/api/prompts/{prompt['id']}"
    api.post(f"{base}/versions/", {"user_text": "Q: {{question}}"})
    assert api.post(f"{base}/labels/", {"name": "production", "version": 2}).json()["version"] == 2
    rolled = api.post(f"{base}/labels/", {"name": "production", "version": 1}).json()
    assert rolled["version"] == 1
    labels = {label["name"]: label["version"] for label in api.get(f"{base}/labels/").json()}
    assert labels == {"latest": 2, "production": 1}
    diff = api.get(f"{base}/diff/", {"from": "production", "to": "latest"}).json()
    user = next(f for f in diff if f["name"] == "user_text")
    assert user["changed"] and {"kind": "added", "text": "Q: {{question}}"} in user["lines"]
    assert not next(f for f in diff if f["name"] == "system_text")["changed"]
    assert api.delete(f"{base}/labels/production/").status_code == 204
    assert_error(api.delete(f"{base}/labels/latest/"), 400, "invalid")
    assert_error(api.post(f"{base}/labels/", {"name": "x", "version": 9}), 404, "not_found")


def test_render_names_problems_and_keeps_values_literal(api):
    prompt = create(api)
    url = f"/api/prompts/{prompt['id']}/render/"
    ok = api.post(url, {"variables": {"question": "What is {{persona}}?"}}).json()
    assert ok["system"] == "You answer as a poet."
    assert ok["user"] == "Question: What is {{persona}}?"
    assert ok["messages"] == [
        {"role": "system", "content": "You answer as a poet."},
        {"role": "user", "content": "Question: What is {{persona}}?"},
    ]
    assert ok["version"] == 1 and ok["values"]["persona"] == "a poet"
    error = assert_error(
        api.post(url, {"variables": {"persona": "a cat", "extra": "1"}}), 400, "invalid_variables"
    )
    assert error["fields"]["variables"] == {
        "extra": "unknown",
        "persona": "must be one of “a pirate”, “a poet”",
        "question": "missing",
    }
    assert_error(api.post(url, {"version": "v9"}), 404, "not_found")
    assert_error(api.post(url, {"variables": "nope"}), 400, "invalid")


def test_export_then_import_as_json_and_yaml(api, alice):
    prompt = create(api)
    exported = api.get(f"/api/prompts/{prompt['id']}/export/", {"format": "yaml"})
    assert exported.status_code == 200
    document = yaml.safe_load(exported.content)
    assert document["format"] == "workbench.prompts/1"
    imported = api.post(
        "/api/prompts/import/", {"format": "yaml", "data": exported.content.decode()}
    )
    assert imported.status_code == 201, imported.content
    new_id = imported.json()["imported"][0]["id"]
    assert PromptTemplate.objects.get(pk=new_id).versions.get().user_text == CONTENT["user_text"]
    everything = api.get("/api/prompts/export/", {"format": "json"}).json()
    assert len(everything["prompts"]) == 2


@pytest.mark.parametrize(
    ("fmt", "data", "message"),
    [
        ("json", "{", "Not readable JSON"),
        ("json", "[]", "Expected an object"),
        ("json", json.dumps({"format": "other/9", "prompts": []}), "Unknown format"),
        ("json", json.dumps({"prompts": []}), "no prompts"),
        ("json", "[" * 5000 + "]" * 5000, "Nested deeper"),
        ("yaml", "a: &x [1]\nb: *x\n", "anchors"),
        ("yaml", "prompts: !!python/object/apply:os.system [echo]", "Not readable YAML"),
        ("yaml", "prompts:\n  - name: x\n    versions: 3\n", "give at least one version"),
    ],
)
def test_a_bad_import_is_a_clear_400_and_imports_nothing(api, fmt, data, message):
    error = assert_error(
        api.post("/api/prompts/import/", {"format": fmt, "data": data}), 400, "invalid"
    )
    assert message in json.dumps(error, ensure_ascii=False)
    assert not PromptTemplate.objects.exists()


def test_an_import_matches_models_and_collections_by_name_and_says_when_it_cant(api, alice):
    echo = provider_services.credentials_ensure_echo(user=alice)
    document = {
        "prompts": [
            {
                "name": "Linked",
                "versions": [
                    {"user": "x", "model": "echo", "credential": echo.name},
                    {
                        "user": "y",
                        "model": "gpt-9",
                        "credential": "Elsewhere",
                        "collection": "Gone",
                    },
                ],
            }
        ]
    }
    body = api.post("/api/prompts/import/", {"data": json.dumps(document)}).json()
    notes = body["imported"][0]["notes"]
    assert len(notes) == 2 and "no credential named “Elsewhere”" in notes[0]
    versions = PromptTemplate.objects.get().versions.order_by("number")
    assert (versions[0].credential, versions[0].model) == (echo, "echo")
    assert (versions[1].credential, versions[1].model, versions[1].collection) == (None, "", None)


def test_batches_over_rest_with_rows_or_csv(api, alice):
    prompt = create(api)
    echo = provider_services.credentials_ensure_echo(user=alice)
    body = {
        "template": prompt["id"],
        "version": "latest",
        "rows": [{"question": "Why?"}, {"question": "How?", "persona": "a pirate"}],
        "targets": [{"credential": echo.pk, "model": "echo"}],
        "params": {"max_tokens": 50},
    }
    estimate = api.post("/api/prompt-batches/estimate/", body).json()
    assert estimate["cells"] == 2 and estimate["total"] == "0" and estimate["output_assumed"] == 50
    assert not BatchRun.objects.exists()
    created = api.post("/api/prompt-batches/", body)
    assert created.status_code == 201
    batch = created.json()
    assert batch["status"] == "queued" and batch["cell_count"] == 2
    detail = api.get(f"/api/prompt-batches/{batch['id']}/").json()
    assert detail["progress"]["total"] == 2 and detail["progress"]["counts"] == {"pending": 2}
    cells = api.get(f"/api/prompt-batches/{batch['id']}/cells/").json()["results"]
    assert [(c["row"], c["target"], c["status"]) for c in cells] == [
        (0, 0, "pending"),
        (1, 0, "pending"),
    ]
    listed = api.get("/api/prompt-batches/", {"template": prompt["id"]}).json()["results"]
    assert [b["id"] for b in listed] == [batch["id"]]
    cancelled = api.post(f"/api/prompt-batches/{batch['id']}/cancel/").json()
    assert cancelled["status"] == "cancelled"
    exported = api.get(f"/api/prompt-batches/{batch['id']}/export/", {"format": "csv"})
    assert exported["Content-Type"].startswith("text/csv")
    assert api.delete(f"/api/prompt-batches/{batch['id']}/").status_code == 204

    from_csv = {**body, "rows": None, "csv": "question\nWhat?\nWhen?\nWho?\n"}
    del from_csv["rows"]
    assert api.post("/api/prompt-batches/", from_csv).json()["row_count"] == 3
    bad = assert_error(
        api.post("/api/prompt-batches/", {**body, "rows": [{"persona": "a cat"}]}), 400, "invalid"
    )
    assert "Row 1" in bad["message"] and "Missing “question”" in bad["message"]


def test_a_viewer_reads_and_renders_a_team_prompt_but_cant_change_or_run_it(
    alice, team, vera_viewer, api_for
):
    prompt = make_prompt(alice, team=team, name="Team", user="Hi {{name}}")
    vera = api_for(vera_viewer)
    assert vera.get(f"/api/prompts/{prompt.pk}/").status_code == 200
    assert (
        vera.post(f"/api/prompts/{prompt.pk}/render/", {"variables": {"name": "V"}}).json()["user"]
        == "Hi V"
    )
    assert_error(
        vera.post(f"/api/prompts/{prompt.pk}/versions/", {"user_text": "Yo {{name}}"}),
        403,
        "permission_denied",
    )
    echo = provider_services.credentials_ensure_echo(user=alice, team=team)
    assert_error(
        vera.post(
            "/api/prompt-batches/",
            {
                "template": prompt.pk,
                "rows": [{"name": "x"}],
                "targets": [{"credential": echo.pk, "model": "echo"}],
            },
        ),
        403,
        "permission_denied",
    )
