"""The playground in a real browser (issue 12 acceptance): a 4-slot comparison across four
presets on the fake provider streams in parallel, shows metrics and costs, the diff, a winner,
then Continue in chat; an arena vote updates the leaderboard. Screenshots at 1280 and 390 px,
light and dark.

The Daphne under test calls the session's fake provider over HTTP; the fake's default reply
names the model, so the four answers differ and the diff has something to show."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from billing.models import UsageRecord
from chats.models import Conversation
from playground.models import Answer, Battle, Comparison, Run
from providers.models import ProviderModel

SLOTS = [
    ("openai", "gpt-4o-mini", "OpenAI fake"),
    ("anthropic", "claude-3-5-haiku-latest", "Anthropic fake"),
    ("groq", "llama-3.1-8b-instant", "Groq fake"),
    ("ollama", "llama3.2:3b", "Ollama fake"),
]

# Every answer of the run has some text while every one of them is still streaming.
ALL_STREAMING_WITH_TEXT = """() => {
  const answers = [...document.querySelectorAll("#results article.answer")];
  return answers.length === 4 && answers.every((el) =>
    el.dataset.status === "streaming" && el.querySelector(".stream-text").textContent.trim().length > 0);
}"""


def _credentials(alice, make_credential):
    made = []
    for preset, model, name in SLOTS:
        credential = make_credential(alice, preset, name=name)
        ProviderModel.objects.create(credential=credential, model_id=model, kind="chat")
        made.append(credential)
    return made


def test_a_four_slot_comparison_streams_in_parallel_then_decides_and_continues_in_chat(
    page, login, screenshot, alice, make_credential, fake_provider
):
    credentials = _credentials(alice, make_credential)
    # ~11 tokens at 5 tokens/s: each answer takes about two seconds, long enough to watch.
    fake_provider.configure(tokens_per_second=5)
    login(page, alice)

    page.get_by_role("navigation", name="Main navigation").get_by_role(
        "link", name="Playground"
    ).click()
    expect(page.get_by_test_id("empty-state")).to_be_visible()
    screenshot(page, "playground-empty")
    page.get_by_test_id("new-comparison").first.click()
    page.wait_for_url(re.compile(r"/playground/\d+/$"))
    comparison = Comparison.objects.get(owner_user=alice)
    slots = page.get_by_test_id("slot")
    expect(slots).to_have_count(2)
    expect(page.locator("#connection")).to_have_text("Live")

    # Four slots, four presets.
    for expected in (3, 4):
        page.get_by_test_id("add-slot").click()
        expect(slots).to_have_count(expected)
    for index, (credential, (_, model, _)) in enumerate(zip(credentials, SLOTS, strict=True)):
        # A select fires both `change` (saved at once) and `input` (saved 800 ms later), and
        # hx-sync replaces a save in flight: at load 7 a pick's save finished after 10 s.
        with page.expect_response(lambda r: r.url.endswith("/save/"), timeout=30_000):
            slots.nth(index).get_by_test_id("slot-model").select_option(f"{credential.pk}|{model}")
    page.get_by_test_id("title").fill("Greetings, four ways")
    page.get_by_test_id("prompt").fill("Say hello and offer help.")
    expect(page.get_by_test_id("saved")).to_be_visible()
    expect(page.get_by_test_id("estimate-total")).to_contain_text("$")
    screenshot(page, "playground-editor")

    # Run: all four stream at the same time.
    page.get_by_test_id("run").click()
    answers = page.locator("#results article.answer")
    expect(answers).to_have_count(4)
    page.wait_for_function(ALL_STREAMING_WITH_TEXT, timeout=8000)
    expect(page.get_by_test_id("stop-all")).to_be_visible()
    expect(answers.first.locator("[data-metric=ttft]")).not_to_have_text("—")
    screenshot(page, "playground-streaming")

    # Done: every answer complete, with metrics and costs; badges; the diff; the chart.
    expect(page.locator("#results section.results")).to_have_attribute(
        "data-done", "1", timeout=15000
    )
    for index, (_, model, _) in enumerate(SLOTS):
        card = answers.nth(index)
        expect(card).to_have_attribute("data-status", "complete")
        expect(card.get_by_test_id("answer-model")).to_have_text(model)
        expect(card.locator(".content")).to_contain_text(f"Hello from the fake {model}!")
        expect(card.locator("[data-metric=tokens]")).to_have_text(re.compile(r"\d+ → 11"))
        expect(card.locator("[data-metric=ttft]")).to_have_text(
            re.compile(r"^\d+ ms$|^\d+\.\d+ s$")
        )
        expect(card.locator("[data-metric=tps]")).to_contain_text("tok/s")
    expect(answers.nth(0).get_by_test_id("answer-cost")).to_have_text(re.compile(r"\$0\.\d+"))
    expect(answers.nth(3).get_by_test_id("answer-cost")).to_have_text("$0.00 local")
    expect(page.get_by_test_id("run-facts")).to_contain_text("Wall time")
    expect(page.get_by_test_id("badge").filter(has_text="cheapest")).to_have_count(1)
    expect(page.get_by_test_id("summary").locator("tbody tr")).to_have_count(4)
    diff = page.get_by_test_id("diff")
    expect(diff).to_contain_text("similar")
    expect(diff.locator(".diff-text del")).not_to_have_count(0)
    expect(diff.locator(".diff-text ins")).not_to_have_count(0)
    expect(page.get_by_test_id("chart").first.locator("circle")).to_have_count(4)
    run = Run.objects.get(comparison=comparison)
    assert run.finished_at is not None
    rows = UsageRecord.objects.filter(feature="playground", context__run=run.pk)
    assert rows.count() == 4 and {r.status for r in rows} == {"ok"}
    # Wall time is the slowest answer's, not the sum of the four.
    durations = [a.duration_ms for a in run.answers.all()]
    assert run.wall_ms < sum(durations) * 0.6, (run.wall_ms, durations)

    # Compare two other answers in the diff.
    page.locator("select[name=b]").select_option(str(run.answers.get(position=2).pk))
    expect(diff.locator(".diff-text ins")).to_contain_text("llama-3.1-8b-instant")

    # Decide: rate, pick a winner.
    winner = answers.nth(1)
    winner.locator("label[for$='-5']").click()
    expect(winner.locator(".rating .save-state")).to_have_text("Saved")
    winner.get_by_test_id("pick-winner").click()
    expect(page.locator("#results article.answer.is-winner")).to_have_count(1)
    winner = page.locator("#results article.answer.is-winner")
    expect(winner.get_by_test_id("winner-badge")).to_be_visible()
    run.refresh_from_db()
    assert run.winner.model == "claude-3-5-haiku-latest" and run.winner.rating == 5
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "playground-results-1280")
    page.emulate_media(color_scheme="dark")
    screenshot(page, "playground-results-1280-dark")
    page.emulate_media(color_scheme="light")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "playground-results-390")
    screenshot(page, "playground-editor-390-top", full_page=False)
    page.locator("#results").scroll_into_view_if_needed()
    screenshot(page, "playground-results-390-answers", full_page=False)
    page.get_by_test_id("summary").scroll_into_view_if_needed()
    screenshot(page, "playground-results-390-summary", full_page=False)
    page.set_viewport_size({"width": 1280, "height": 800})

    # Export as code from the winner.
    winner.get_by_test_id("export-code").click()
    expect(page.get_by_test_id("snippets")).to_contain_text("ANTHROPIC_API_KEY")
    # Four languages for the provider, then cURL and Python through our own gateway.
    expect(page.locator("[data-testid=snippets] > section.snippet pre.code")).to_have_count(4)
    expect(page.get_by_test_id("gateway-snippets").locator("pre.code")).to_have_count(2)
    expect(page.get_by_test_id("gateway-snippets")).to_contain_text("WORKBENCH_API_KEY")
    assert "sk-test-key" not in page.content()
    screenshot(page, "playground-export-code")
    page.go_back()

    # Continue in chat: a conversation with the prompt and the winning reply, on its model.
    page.locator("#results article.answer.is-winner").get_by_test_id("continue-in-chat").click()
    page.wait_for_url(re.compile(r"/chat/\d+/$"))
    conversation = Conversation.objects.get(owner_user=alice)
    assert conversation.model == "claude-3-5-haiku-latest"
    messages = page.locator("#messages article.msg")
    expect(messages).to_have_count(2)
    expect(messages.nth(0)).to_contain_text("Say hello and offer help.")
    expect(messages.nth(1)).to_contain_text("Hello from the fake claude-3-5-haiku-latest!")
    screenshot(page, "playground-continued-in-chat")


def test_an_arena_vote_reveals_the_models_and_updates_the_leaderboard(
    page, login, screenshot, alice, make_credential, fake_provider
):
    credentials = _credentials(alice, make_credential)
    fake_provider.configure(tokens_per_second=20)
    login(page, alice)
    page.goto("/playground/arena/")
    expect(page.get_by_test_id("battle-start")).to_be_disabled()
    entries = page.get_by_test_id("pool-entry")
    expect(entries).to_have_count(5)  # the four fakes and Echo
    for credential, (_, model, _) in list(zip(credentials, SLOTS, strict=True))[:2]:
        page.locator(f"input[value='{credential.pk}|{model}']").check()
    page.get_by_test_id("pool-save").click()
    expect(page.locator(".messages")).to_contain_text("Pool saved.")
    page.get_by_label("Prompt").fill("Which is bigger, 9.11 or 9.9?")
    page.get_by_label("Topic").fill("Maths")
    screenshot(page, "arena-1280")
    page.get_by_test_id("battle-start").click()
    page.wait_for_url(re.compile(r"/playground/arena/\d+/$"))
    battle = Battle.objects.get(owner_user=alice)

    answers = page.locator("#battle-answers article.answer[data-id]")
    expect(answers).to_have_count(2)
    expect(answers.nth(0)).to_have_attribute("data-status", "complete", timeout=10000)
    expect(answers.nth(1)).to_have_attribute("data-status", "complete", timeout=10000)
    expect(answers.nth(0).locator(".answer-model")).to_have_text("Model A")
    expect(answers.nth(1).locator(".answer-model")).to_have_text("Model B")
    assert "gpt-4o-mini" not in page.locator("#battle-answers .answer-head").all_inner_texts()[0]
    expect(page.get_by_test_id("vote-a")).to_be_enabled()
    screenshot(page, "arena-battle")
    page.get_by_test_id("vote-a").click()
    expect(page.get_by_test_id("reveal-a")).to_be_visible()
    battle.refresh_from_db()
    assert battle.vote == "a" and battle.tag == "maths"
    assert {battle.model_a, battle.model_b} == {
        "openai:gpt-4o-mini",
        "anthropic:claude-3-5-haiku-latest",
    }
    screenshot(page, "arena-revealed")

    page.get_by_test_id("to-leaderboard").click()
    standings = page.get_by_test_id("standing")
    expect(standings).to_have_count(2)
    winner_key = battle.model_a
    expect(standings.first).to_have_attribute("data-model", winner_key)
    expect(standings.first.locator("td").nth(4)).to_have_text("1")
    expect(page.get_by_test_id("position-bias")).to_contain_text("100 %")
    screenshot(page, "leaderboard-1280")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "leaderboard-390")
    assert Answer.objects.filter(run=battle.run).count() == 2
