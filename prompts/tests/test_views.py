"""The prompt pages: list, editor (versions on save, conflicts), detail, labels, diff, Try it,
import/export, the new-batch form and the batch page, and the picker fragments."""

from __future__ import annotations

import json

import pytest
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from prompts.models import BatchRun, PromptTemplate
from prompts.tests.conftest import make_prompt
from providers import services as provider_services


@pytest.fixture
def alice_client(alice, client_for):
    return client_for(alice)


def editor_post(**fields):
    data = {"name": "Greeter", "system_text": "", "user_text": "Hello {{who}}", "change_note": ""}
    data.update(fields)
    return data


def test_the_list_shows_an_empty_state_then_prompts_with_search_and_tags(alice, alice_client):
    response = alice_client.get(reverse("prompts:index"))
    assert b"No prompts yet" in response.content and b"Create your first prompt" in response.content
    make_prompt(alice, name="Summarize news", user="{{x}}")
    prompt = make_prompt(alice, name="Translate", user="{{x}}")
    prompt.tags = ["language"]
    prompt.save()
    response = alice_client.get(reverse("prompts:index"))
    assert b"Summarize news" in response.content and b"Translate" in response.content
    partial = alice_client.get(
        reverse("prompts:index"), {"q": "summ", "partial": "results"}, HTTP_HX_REQUEST="true"
    )
    assert b"Summarize news" in partial.content and b"Translate" not in partial.content
    assert b"<html" not in partial.content
    by_tag = alice_client.get(reverse("prompts:index"), {"tag": "language"})
    assert b"Translate" in by_tag.content and b"Summarize news" not in by_tag.content
    nothing = alice_client.get(reverse("prompts:index"), {"q": "zzz"})
    assert "No prompt matches “zzz”".encode() in nothing.content


def test_creating_a_prompt_from_the_editor(alice, alice_client):
    response = alice_client.post(
        reverse("prompts:new"),
        {
            **editor_post(tags="Greeting, demo", temperature="0.3"),
            "var-who-type": "choice",
            "var-who-required": "1",
            "var-who-choices": "world\nfriends\n",
            "var-who-default": "world",
        },
    )
    prompt = PromptTemplate.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/prompts/{prompt.pk}/"
    version = prompt.versions.get()
    assert prompt.tags == ["greeting", "demo"]
    assert version.variables == [
        {
            "name": "who",
            "type": "choice",
            "description": "",
            "required": True,
            "default": "world",
            "example": "",
            "choices": ["world", "friends"],
        }
    ]
    assert version.params == {"temperature": 0.3}


def test_the_editor_keeps_everything_typed_when_a_save_is_refused(alice_client):
    response = alice_client.post(
        reverse("prompts:new"),
        {**editor_post(user_text="Hi {{n}}"), "var-n-type": "number", "var-n-default": "many"},
    )
    assert response.status_code == 400
    content = response.content.decode()
    assert "the default must be a number" in content
    assert 'value="many"' in content and "Hi {{n}}" in content
    assert not PromptTemplate.objects.exists()


def test_the_variables_table_follows_the_text(alice_client):
    response = alice_client.post(
        reverse("prompts:variables"),
        {
            "system_text": "Be {{tone}}",
            "user_text": "About {{topic}} and {{tone}}",
            "var-tone-type": "choice",
            "var-tone-choices": "calm",
        },
        HTTP_HX_REQUEST="true",
    )
    content = response.content.decode()
    assert content.count("data-variable=") == 2
    assert 'data-variable="tone"' in content and 'data-variable="topic"' in content
    assert '<option value="choice" selected>' in content and ">calm</textarea>" in content


def test_save_as_prompt_from_chat_opens_the_editor_filled_in_and_saves_nothing(alice_client):
    response = alice_client.post(
        reverse("prompts:new"),
        {"prefill": "1", "name": "From chat", "user_text": "Explain {{thing}} simply"},
    )
    assert response.status_code == 200
    content = response.content.decode()
    assert "Explain {{thing}} simply" in content and 'value="From chat"' in content
    assert 'data-variable="thing"' in content
    assert not PromptTemplate.objects.exists()


def test_editing_saves_a_new_version_and_renaming_alone_does_not(alice, alice_client, summarize):
    url = reverse("prompts:edit", args=[summarize.pk])
    page = alice_client.get(url)
    assert b"Save as v2" in page.content and b'name="based_on" value="1"' in page.content
    version = summarize.versions.get()
    base = {
        "name": "Summaries",
        "description": "",
        "tags": "",
        "system_text": version.system_text,
        "user_text": version.user_text,
        "based_on": "1",
        "top_k": "5",
        **{
            f"var-{v['name']}-{key}": (
                "\n".join(v["choices"]) if key == "choices" else ("1" if v[key] is True else v[key])
            )
            for v in version.variables
            for key in ("type", "default", "example", "description", "choices", "required")
            if v[key] not in (False, "", [])
        },
    }
    response = alice_client.post(url, base)
    assert response.status_code == 302
    summarize.refresh_from_db()
    assert (summarize.name, summarize.latest_number) == ("Summaries", 1)
    response = alice_client.post(
        url,
        {**base, "user_text": "Summarize {{topic}} in {{words}} words!", "change_note": "excited"},
    )
    summarize.refresh_from_db()
    assert response.status_code == 302 and summarize.latest_number == 2
    assert summarize.versions.get(number=2).change_note == "excited"
    # A third save still based on v1 is a conflict: nothing saved, the text kept.
    response = alice_client.post(url, {**base, "user_text": "Other {{topic}} {{words}}"})
    assert response.status_code == 409
    assert b"Version 2 was saved while you were editing version 1" in response.content
    assert b"Other {{topic}} {{words}}" in response.content
    summarize.refresh_from_db()
    assert summarize.latest_number == 2


def test_the_detail_page_shows_the_version_labels_versions_and_try_it(
    alice, alice_client, summarize
):
    response = alice_client.get(reverse("prompts:detail", args=[summarize.pk]))
    content = response.content.decode()
    assert '<mark class="var">{{topic}}</mark>' in content
    assert 'id="label-latest"' in content and 'data-testid="try-form"' in content
    tried = alice_client.post(
        reverse("prompts:try", args=[summarize.pk]),
        {"version": "1", "v-topic": "{{tone}} & <b>", "v-words": "7", "v-tone": "formal"},
        HTTP_HX_REQUEST="true",
    )
    assert tried.status_code == 200
    assert b"Summarize {{tone}} &amp; &lt;b&gt; in 7 words." in tried.content
    failed = alice_client.post(reverse("prompts:try", args=[summarize.pk]), {"version": "1"})
    assert failed.status_code == 400 and "Missing “topic”".encode() in failed.content


def test_a_prompt_is_shown_with_its_text_escaped(alice, alice_client):
    prompt = make_prompt(
        alice, name="<script>x</script>", user="<img src=x onerror=alert(1)> {{v}}"
    )
    content = alice_client.get(reverse("prompts:detail", args=[prompt.pk])).content.decode()
    assert "<script>x</script>" not in content and "<img src=x" not in content
    assert "&lt;img src=x onerror=alert(1)&gt;" in content


def test_labels_are_set_moved_and_removed_from_the_page(alice, alice_client, summarize):
    url = reverse("prompts:label_set", args=[summarize.pk])
    response = alice_client.post(url, {"name": "production", "version": "1"})
    assert response.status_code == 302
    assert summarize.labels.get(name="production").version.number == 1
    bad = alice_client.post(url, {"name": "Not OK!", "version": "1"}, follow=True)
    assert b"lowercase letters" in bad.content
    missing = alice_client.post(url, {"name": "x", "version": "9"})
    assert missing.status_code == 404
    alice_client.post(reverse("prompts:label_delete", args=[summarize.pk, "production"]))
    assert not summarize.labels.filter(name="production").exists()
    nope = alice_client.post(
        reverse("prompts:label_delete", args=[summarize.pk, "latest"]), follow=True
    )
    assert b"can be moved, not deleted" in nope.content


def test_the_diff_page_shows_changed_lines(alice, alice_client, summarize):
    from prompts import services
    from prompts.services import Content

    content = Content.of(summarize.versions.get())
    content.user_text = "Summarize {{topic}}\nin {{words}} words."
    services.version_create(actor=alice, template=summarize, content=content)
    page = alice_client.get(reverse("prompts:diff", args=[summarize.pk]), {"a": 1, "b": 2})
    text = page.content.decode()
    assert '<span class="diff-line removed">' in text and '<span class="diff-line added">' in text
    assert "<ins>in {{words}} words.</ins>" in text
    assert (
        alice_client.get(reverse("prompts:diff", args=[summarize.pk]), {"a": 7}).status_code == 404
    )


def test_export_and_import_round_trip_with_history_and_labels(alice, alice_client, summarize):
    from prompts import services

    services.label_set(
        actor=alice, template=summarize, name="production", version=summarize.versions.get()
    )
    exported = alice_client.get(reverse("prompts:export", args=[summarize.pk, "yaml"]))
    assert exported["Content-Disposition"] == f'attachment; filename="prompt-{summarize.pk}.yaml"'
    document = yaml.safe_load(exported.content)
    assert document["prompts"][0]["labels"] == {"latest": 1, "production": 1}
    upload = SimpleUploadedFile("prompts.yaml", exported.content)
    response = alice_client.post(reverse("prompts:import"), {"file": upload, "format": "auto"})
    assert response.status_code == 200 and b"Imported 1 prompt" in response.content
    copy = PromptTemplate.objects.exclude(pk=summarize.pk).get()
    assert (
        copy.name == summarize.name
        and copy.versions.get().variables == summarize.versions.get().variables
    )
    assert {label.name for label in copy.labels.all()} == {"latest", "production"}


def test_a_bad_import_lists_every_problem_and_imports_nothing(alice_client):
    document = {
        "format": "workbench.prompts/1",
        "prompts": [
            {"name": "Good", "versions": [{"user": "Hi {{x}}"}]},
            {"name": "", "versions": [{"user": "x"}]},
            {"name": "Bad vars", "versions": [{"user": "{{x}}", "variables": [{"name": "y"}]}]},
        ],
    }
    response = alice_client.post(
        reverse("prompts:import"), {"text": json.dumps(document), "format": "json"}
    )
    assert response.status_code == 400
    content = response.content.decode()
    assert "Prompt 2: Give the prompt a name." in content
    assert "Prompt 3 (“Bad vars”), version 1: Defined but not used" in content
    assert not PromptTemplate.objects.exists()


def test_the_new_batch_page_estimates_then_runs(alice, alice_client, summarize):
    echo = provider_services.credentials_ensure_echo(user=alice)
    url = reverse("prompts:batch_new", args=[summarize.pk])
    page = alice_client.get(url)
    assert page.status_code == 200 and b'name="row-0-topic"' in page.content
    data = {
        "version": "1",
        "targets": [f"{echo.pk}|echo"],
        "row-0-topic": "tides",
        "row-1-topic": "",
        "row-2-topic": "moons",
        "row-2-words": "12",
    }
    estimated = alice_client.post(url, {**data, "intent": "estimate"})
    assert estimated.status_code == 200
    assert b'data-testid="estimate"' in estimated.content and b"Run 2 calls" in estimated.content
    assert not BatchRun.objects.exists()
    started = alice_client.post(url, {**data, "intent": "run"})
    batch = BatchRun.objects.get()
    assert started.status_code == 302 and started["Location"] == f"/prompts/batches/{batch.pk}/"
    assert batch.row_count == 2 and list(batch.rows.values_list("values", flat=True)) == [
        {"tone": "plain", "topic": "tides", "words": "50"},
        {"tone": "plain", "topic": "moons", "words": "12"},
    ]
    page = alice_client.get(started["Location"])
    assert (
        b'data-testid="batch-progress"' in page.content and b"Waiting for a worker" in page.content
    )
    live = alice_client.get(started["Location"], {"partial": "live"}, HTTP_HX_REQUEST="true")
    assert b'hx-trigger="every 2s"' in live.content and b"<html" not in live.content


def test_the_new_batch_page_names_bad_rows_and_takes_a_csv(alice, alice_client, summarize):
    echo = provider_services.credentials_ensure_echo(user=alice)
    url = reverse("prompts:batch_new", args=[summarize.pk])
    bad = alice_client.post(
        url, {"version": "1", "targets": [f"{echo.pk}|echo"], "row-0-words": "5", "intent": "run"}
    )
    assert bad.status_code == 400 and "Row 1: Missing “topic”".encode() in bad.content
    csv_file = SimpleUploadedFile("rows.csv", b"topic,tone\nrain,formal\nsnow,\n")
    ok = alice_client.post(
        url,
        {
            "version": "1",
            "targets": [f"{echo.pk}|echo"],
            "csv_file": csv_file,
            "intent": "estimate",
        },
    )
    assert ok.status_code == 200 and b"Run 2 calls" in ok.content
    none = alice_client.post(url, {"version": "1", "targets": [f"{echo.pk}|echo"], "intent": "run"})
    assert none.status_code == 400 and b"Fill in at least one row" in none.content


def test_the_picker_lists_readable_prompts_and_draws_a_variables_form(
    alice, bob_teammate, client_for, team_prompt, summarize
):
    bob = client_for(bob_teammate)
    listed = bob.get(reverse("prompts:picker"), {"q": "greet"}).content.decode()
    assert "Team greeting" in listed and "Summarize" not in listed
    form = bob.get(reverse("prompts:insert_form", args=[team_prompt.pk])).content.decode()
    assert 'name="v-name"' in form and 'id="prompt-version"' in form
    assert bob.get(reverse("prompts:insert_form", args=[summarize.pk])).status_code == 404
