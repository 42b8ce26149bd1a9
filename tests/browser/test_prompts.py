"""The prompt library in a real browser (issue 13 acceptance): an empty library → create a prompt
with typed variables → save a second version → label it → insert it in chat through the `/`
picker and its variable dialog, and send it → use it in the playground ("Test this prompt across
3 models", run against the fake provider, rate; the editor's picker with another version) and see
the version's calls and rating on its page → a batch of 5 rows × 3 models run by a real task
worker while the page shows its progress → the result matrix and its CSV → a cell opened in the
playground. Screens at 1280 and 390 px wide."""

from __future__ import annotations

import csv
import io
import re
import subprocess
import sys

import pytest
from django.conf import settings
from playwright.sync_api import expect

from billing.models import UsageRecord
from chats import services as chat_services
from playground.models import Comparison, Run
from prompts.models import BatchRun, PromptTemplate
from providers import services as provider_services
from providers.models import ProviderModel
from tests import servers

NARROW = {"width": 390, "height": 844}
WIDE = {"width": 1280, "height": 800}


@pytest.fixture
def shots(screenshot):
    def take(page, name: str, full_page: bool = False) -> None:
        size = page.viewport_size
        for label, viewport in (("1280", WIDE), ("390", NARROW)):
            page.set_viewport_size(viewport)
            page.wait_for_timeout(60)
            screenshot(page, f"prompts-{name}-{label}", full_page=full_page)
        page.set_viewport_size(size)

    return take


@pytest.fixture
def models(alice, make_credential):
    """Echo (local) and a fake OpenAI offering gpt-4o-mini and gpt-4o (catalogue rows written
    directly: the Daphne under test reaches the fake, this process needn't)."""
    echo = provider_services.credential_create(actor=alice, preset="echo", name="Echo")
    ProviderModel.objects.create(credential=echo, model_id="echo", kind="chat")
    fake = make_credential(alice, "openai", name="Fake OpenAI")
    for model in ("gpt-4o-mini", "gpt-4o"):
        ProviderModel.objects.create(credential=fake, model_id=model, kind="chat")
    return echo, fake


@pytest.fixture
def worker(fake_provider):
    """A real `db_worker` on the test database, stopped at the end of the test."""
    started = []

    def start():
        env = servers.daphne_env(
            WORKBENCH_EGRESS_ALLOW=f"localhost:11434,127.0.0.1:{fake_provider.port}",
            WORKBENCH_BATCH_CONCURRENCY="3",
        )
        process = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "db_worker",
                "--no-startup-delay",
                "--no-reload",
                "--interval",
                "0.2",
            ],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started.append(process)
        return process

    yield start
    servers.stop(*started)


def test_alice_builds_versions_labels_inserts_in_chat_and_runs_a_batch(
    page, login, shots, alice, models, worker, fake_provider, tmp_path
):
    echo, _fake = models
    login(page, alice)
    page.get_by_role("navigation", name="Main navigation").get_by_role(
        "link", name="Prompts"
    ).click()
    expect(page.get_by_test_id("empty-state")).to_contain_text("No prompts yet")
    shots(page, "empty")

    # --- Create: typing placeholders adds their rows to the variables table --------------------
    page.get_by_role("link", name="Create your first prompt").click()
    page.fill("#id_name", "Explain")
    page.fill("#id_tags", "teaching")
    page.fill("#id_system_text", "You explain things to a {{audience}} reader.")
    page.fill("#id_user_text", "Explain {{topic}} in {{words}} words.")
    variables = page.get_by_test_id("variables")
    expect(variables.locator("fieldset[data-variable]")).to_have_count(3)
    page.select_option("#var-audience-type", "choice")
    page.fill("#var-audience-choices", "curious\nexpert")
    page.fill("#var-audience-default", "curious")
    page.select_option("#var-words-type", "number")
    page.fill("#var-words-default", "40")
    page.fill("#var-topic-example", "tides")
    shots(page, "editor", full_page=True)
    page.get_by_role("button", name="Create prompt").click()
    expect(page.get_by_test_id("prompt-name")).to_have_text("Explain")
    prompt = PromptTemplate.objects.get()
    expect(page.get_by_test_id("user-text").locator("mark.var")).to_have_count(2)

    # Try it: what a model would receive, and a clear error for a wrong value.
    page.fill("#id_v-topic", "{{audience}} & <b>tides</b>")
    page.fill("#id_v-words", "many")
    page.get_by_role("button", name="Render").click()
    expect(page.get_by_test_id("render-error")).to_contain_text("“words” must be a number")
    page.fill("#id_v-words", "25")
    page.get_by_role("button", name="Render").click()
    expect(page.get_by_test_id("rendered")).to_contain_text(
        "Explain {{audience}} & <b>tides</b> in 25 words."
    )
    shots(page, "detail")

    # --- A second version, then labels ------------------------------------------------------------
    page.get_by_role("link", name="Edit", exact=True).click()
    page.fill("#id_user_text", "Explain {{topic}} in {{words}} words. Use one example.")
    page.fill("#id_change_note", "ask for an example")
    page.get_by_role("button", name="Save as v2").click()
    expect(page.locator("#version-2")).to_contain_text("ask for an example")
    page.fill("#label-name", "production")
    page.select_option("#label-version", "2")
    page.get_by_role("button", name="Point label here").click()
    expect(page.locator("#label-production")).to_contain_text("v2")
    # Roll back: production to v1.
    page.fill("#label-name", "production")
    page.select_option("#label-version", "1")
    page.get_by_role("button", name="Point label here").click()
    expect(page.locator("#label-production")).to_contain_text("v1")
    assert {label.name: label.version.number for label in prompt.labels.all()} == {
        "latest": 2,
        "production": 1,
    }
    page.get_by_role("button", name="Compare").click()
    expect(page.get_by_test_id("diff").locator(".diff-line.added")).to_contain_text(
        "Use one example."
    )
    shots(page, "diff")

    # --- Insert in chat: "/" opens the picker; the variables get a small form -----------------------
    conversation = chat_services.conversation_start(actor=alice, credential=echo, model="echo")
    page.goto(f"/chat/{conversation.pk}/")
    expect(page.locator("#connection")).to_have_attribute("data-state", "open")
    page.locator("#composer-input").press_sequentially("/expl")
    dialog = page.locator("#prompt-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("option")).to_have_count(1)
    expect(page.locator("#prompt-search")).to_have_value("expl")
    shots(page, "picker")
    page.locator("#prompt-search").press("Enter")
    expect(dialog.locator("#prompt-version")).to_have_value("2")
    dialog.locator("#id_v-topic").fill("tides")
    dialog.get_by_role("button", name="Insert").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#composer-input")).to_have_value(
        "Explain tides in 40 words. Use one example."
    )
    expect(page.locator("#id_system_prompt")).to_have_value(
        "You explain things to a curious reader."
    )
    page.get_by_test_id("send").click()
    reply = page.locator("#messages article.role-assistant").last
    expect(reply).to_have_attribute("data-status", "complete", timeout=15_000)
    expect(reply).to_contain_text("Explain tides in 40 words. Use one example.")
    expect(reply).to_contain_text("You explain things to a curious reader.")

    # The picker again, from the button, with an older version and a missing value.
    page.get_by_test_id("prompt-insert").click()
    expect(dialog.get_by_role("option")).to_have_count(1)
    dialog.get_by_role("option").click()
    dialog.locator("#prompt-version").select_option("1")
    expect(dialog.locator("#prompt-version")).to_have_value("1")
    dialog.get_by_role("button", name="Insert").click()
    expect(dialog.locator("#prompt-values-error")).to_contain_text("Missing “topic”")
    shots(page, "variables-dialog")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    # --- In the playground: the variables filled once for every model; the run counts -----------
    page.goto(f"/prompts/{prompt.pk}/")
    page.fill("#id_v-topic", "tides")
    page.select_option("#test-models", "3")
    page.get_by_test_id("test-across").click()
    page.wait_for_url(re.compile(r"/playground/\d+/$"))
    comparison = Comparison.objects.get()
    slots = page.get_by_test_id("slot")
    expect(slots).to_have_count(3)
    expect(page.get_by_test_id("prompt")).to_have_value(
        "Explain tides in 40 words. Use one example."
    )
    expect(page.locator("#id_system_prompt")).to_have_value(
        "You explain things to a curious reader."
    )
    link = page.get_by_test_id("prompt-link")
    expect(link).to_contain_text("Explain v2")
    expect(link).to_contain_text("runs count for that version")
    expect(page.locator("#connection")).to_have_text("Live")
    shots(page, "playground-from-prompt")
    page.get_by_test_id("run").click()
    expect(page.locator("#results section.results")).to_have_attribute(
        "data-done", "1", timeout=15_000
    )
    answers = page.locator("#results article.answer")
    expect(answers).to_have_count(3)
    for index in range(3):
        expect(answers.nth(index)).to_have_attribute("data-status", "complete")
    run = Run.objects.get(comparison=comparison)
    version_2 = prompt.versions.get(number=2)
    assert run.prompt_version == version_2
    rows = UsageRecord.objects.filter(context__run=run.pk)
    assert rows.count() == 3
    assert {r.context.get("prompt_version") for r in rows} == {version_2.pk}
    # The fake provider got exactly the rendering, system part first.
    sent = [r.body for r in fake_provider.requests if r.method == "POST"]
    assert sent and all(
        body["messages"]
        == [
            {"role": "system", "content": "You explain things to a curious reader."},
            {"role": "user", "content": "Explain tides in 40 words. Use one example."},
        ]
        for body in sent
    )
    rated = answers.nth(0)
    rated.locator("label[for$='-5']").click()
    expect(rated.locator(".rating .save-state")).to_have_text("Saved")
    shots(page, "playground-rated", full_page=True)
    # Export as code, also through this Workbench's own OpenAI-compatible endpoint.
    answers.nth(1).get_by_test_id("export-code").click()
    gateway = page.get_by_test_id("gateway-snippets")
    expect(gateway).to_contain_text("WORKBENCH_API_KEY")
    expect(gateway.locator("code[data-language=python]")).to_contain_text("/v1")
    shots(page, "playground-export-gateway", full_page=True)
    page.go_back()
    expect(page.locator("#connection")).to_have_text("Live")

    # The picker in the comparison editor: another version, its variables in the same dialog.
    page.get_by_test_id("prompt-insert").click()
    dialog = page.locator("#prompt-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_role("option").click()
    # Choosing a version redraws the form; the page keeps the old one unusable meanwhile
    # (test_a_version_chosen_in_the_picker_...), so typing waits for the new one.
    dialog.locator("#prompt-version").select_option("1")
    expect(dialog.locator("#prompt-version")).to_have_value("1")
    dialog.locator("#id_v-topic").fill("moons")
    dialog.get_by_role("button", name="Insert").click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_test_id("prompt")).to_have_value("Explain moons in 40 words.")
    expect(link).to_contain_text("Explain v1")
    # Typing in the prompt makes it one's own text: runs no longer count for the version.
    page.get_by_test_id("prompt").press_sequentially(" Briefly.")
    expect(link).to_contain_text("edited since")

    # The prompt's page counts the playground's calls and rating for v2.
    page.goto(f"/prompts/{prompt.pk}/")
    row = page.locator("#version-2")
    expect(row.locator("td").nth(2)).to_have_text("3")  # calls
    expect(row.locator("td").nth(4)).to_contain_text("100% of 1")  # five stars
    shots(page, "detail-with-playground-stats", full_page=True)

    # --- A batch: 5 rows × 3 models, a real worker, progress, the matrix and its CSV ---------------
    fake_provider.configure(tokens_per_second=25, reply_tokens=12)
    page.goto(f"/prompts/{prompt.pk}/")
    page.get_by_role("link", name="Run a batch").click()
    table = page.get_by_test_id("rows-table")
    for _ in range(2):
        page.get_by_test_id("add-row").click()
    expect(table.locator("tbody tr")).to_have_count(5)
    for index, topic in enumerate(["tides", "moons", "comets", "geysers", "dunes"]):
        page.fill(f"[name=row-{index}-topic]", topic)
    page.select_option("[name=row-4-audience]", "expert")
    page.fill("[name=row-3-words]", "12")
    for label in ("echo · Echo", "gpt-4o-mini · Fake OpenAI", "gpt-4o · Fake OpenAI"):
        page.get_by_label(label, exact=False).check()
    page.fill("#id_max_tokens", "64")
    page.get_by_test_id("estimate-button").click()
    expect(page.get_by_test_id("estimate")).to_contain_text("15 calls")
    shots(page, "batch-estimate", full_page=True)
    page.get_by_test_id("run-batch").click()
    live = page.get_by_test_id("batch-live")
    expect(live).to_contain_text("Waiting for a worker")
    expect(page.get_by_test_id("batch-progress")).to_have_attribute("value", "0")
    shots(page, "batch-queued")

    worker()
    # The page polls: the bar moves, then the batch is done and polling stops.
    expect(page.get_by_test_id("batch-progress")).not_to_have_attribute(
        "value", "0", timeout=60_000
    )
    expect(live).to_have_attribute("data-status", "done", timeout=90_000)
    expect(page.get_by_test_id("batch-progress")).to_have_attribute("value", "15")
    expect(page.get_by_test_id("batch-counts")).to_contain_text("15 done")
    matrix = page.get_by_test_id("matrix")
    expect(matrix.locator("tbody tr")).to_have_count(5)
    expect(matrix.locator("td[data-status=done]")).to_have_count(15)
    expect(matrix.locator("tbody tr").nth(4)).to_contain_text("a expert reader")  # Echo shows it
    shots(page, "batch-done", full_page=True)

    with page.expect_download() as download:
        page.get_by_test_id("export-csv").click()
    path = tmp_path / "batch.csv"
    download.value.save_as(path)
    lines = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    assert lines[0][:5] == ["row", "audience", "topic", "words", "model"]
    assert len(lines) == 16
    assert {line[4] for line in lines[1:]} == {"echo", "gpt-4o-mini", "gpt-4o"}
    assert {line[6] for line in lines[1:]} == {"done"}
    batch = BatchRun.objects.get()
    assert batch.cells.filter(status="done").count() == 15

    # A cell opens in the playground: its row's rendering on its model.
    matrix.locator("tbody tr").nth(1).get_by_test_id("open-in-playground").first.click()
    page.wait_for_url(re.compile(r"/playground/\d+/$"))
    expect(page.get_by_test_id("prompt")).to_have_value(
        "Explain moons in 40 words. Use one example."
    )
    expect(page.get_by_test_id("slot-model").first).to_have_value(f"{echo.pk}|echo")
    expect(page.get_by_test_id("prompt-link")).to_contain_text("Explain v2")


def test_a_version_chosen_in_the_picker_is_what_insert_sends_however_slow_its_form_arrives(
    page, login, alice, models
):
    """Choosing another version fetches its form; until it arrives the old form (whose select
    already shows the new number) must not be usable — an Insert pressed then sent the old
    form's variables, and its errors vanished with it when the new form landed (the flaky
    picker step under load). Here the new form is held back until the test lets it go."""
    from prompts.services import Content, template_create, version_create

    echo, _fake = models
    prompt = template_create(
        actor=alice,
        name="Explain",
        content=Content(
            user_text="Explain {{topic}} briefly.",
            variables=[{"name": "topic", "type": "text"}],
        ),
    )
    version_create(
        actor=alice,
        template=prompt,
        content=Content(
            user_text="Explain {{topic}} to {{whom}}.",
            variables=[{"name": "topic", "type": "text"}, {"name": "whom", "type": "text"}],
        ),
    )
    held = []
    page.route(re.compile(r"/prompts/\d+/insert/\?version=1$"), lambda route: held.append(route))
    conversation = chat_services.conversation_start(actor=alice, credential=echo, model="echo")
    login(page, alice)
    page.goto(f"/chat/{conversation.pk}/")
    page.get_by_test_id("prompt-insert").click()
    dialog = page.locator("#prompt-dialog")
    dialog.get_by_role("option").click()
    expect(dialog.locator("#prompt-version")).to_have_value("2")
    dialog.locator("#id_v-topic").fill("tides")

    dialog.locator("#prompt-version").select_option("1")
    insert = dialog.get_by_role("button", name="Insert")
    expect(insert).to_be_disabled()
    page.wait_for_function("() => true")  # the route handler has run by now
    assert len(held) == 1
    expect(dialog.locator("#id_v-topic")).to_be_disabled()
    expect(dialog.locator("#prompt-values")).to_have_attribute("aria-busy", "true")

    held[0].continue_()
    expect(dialog.locator("#prompt-values")).not_to_have_attribute("aria-busy", "true")
    expect(dialog.locator("#id_v-whom")).to_have_count(0)  # v1's form
    expect(dialog.locator("#id_v-topic")).to_have_value("tides")  # what was typed carried over
    insert.click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#composer-input")).to_have_value("Explain tides briefly.")
