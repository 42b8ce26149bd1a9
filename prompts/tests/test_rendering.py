"""Rendering: version + variables → messages, with every problem named and nothing
re-interpreted."""

from __future__ import annotations

import pytest
from django.http import Http404

from prompts.rendering import RenderError, render_values, version_render
from prompts.tests.conftest import make_prompt


def latest(template):
    return template.versions.get(number=template.latest_number)


def test_it_renders_the_system_and_user_parts_with_defaults(alice, summarize):
    rendered = version_render(user=alice, version=latest(summarize), values={"topic": "tides"})
    assert rendered.system == "You write plain summaries."
    assert rendered.user == "Summarize tides in 50 words."
    assert [(m.role, m.content) for m in rendered.messages] == [
        ("user", "Summarize tides in 50 words.")
    ]
    assert rendered.values == {"tone": "plain", "topic": "tides", "words": "50"}
    assert rendered.usage_context() == {
        "prompt_template": summarize.pk,
        "prompt_version": latest(summarize).pk,
    }


def test_a_value_containing_another_placeholder_stays_literal(alice, summarize):
    rendered = version_render(
        user=alice,
        version=latest(summarize),
        values={"topic": "{{tone}} and {{ words }} and {{nothing}}", "tone": "formal"},
    )
    assert rendered.user == "Summarize {{tone}} and {{ words }} and {{nothing}} in 50 words."
    assert rendered.system == "You write formal summaries."


def test_a_value_that_looks_like_a_regex_replacement_is_inserted_as_written(alice, summarize):
    rendered = version_render(
        user=alice, version=latest(summarize), values={"topic": r"\1 \g<0> $1 %s {0}"}
    )
    assert rendered.user == r"Summarize \1 \g<0> $1 %s {0} in 50 words."


def test_missing_variables_are_named(alice):
    prompt = make_prompt(alice, user="{{a}} {{b}} {{c}}")
    with pytest.raises(RenderError) as caught:
        render_values(version=latest(prompt), values={"b": "x"})
    assert caught.value.problems == {"a": "missing", "c": "missing"}
    assert str(caught.value) == "Missing “a”, “c”."


def test_an_empty_required_value_is_missing_but_an_optional_one_is_empty_text(alice):
    prompt = make_prompt(
        alice,
        user="[{{must}}][{{may}}]",
        variables=[{"name": "must"}, {"name": "may", "required": False}],
    )
    with pytest.raises(RenderError) as caught:
        render_values(version=latest(prompt), values={"must": ""})
    assert caught.value.problems == {"must": "missing"}
    assert render_values(version=latest(prompt), values={"must": "x"}).user == "[x][]"


def test_extra_variables_are_named(alice, summarize):
    with pytest.raises(RenderError) as caught:
        render_values(version=latest(summarize), values={"topic": "x", "colour": "red", "size": 3})
    assert caught.value.problems == {"colour": "unknown", "size": "unknown"}
    assert "Not variables of this prompt: “colour”, “size”" in str(caught.value)


def test_mistyped_values_are_named_with_what_was_expected(alice, summarize):
    with pytest.raises(RenderError) as caught:
        render_values(
            version=latest(summarize),
            values={"topic": "x", "words": "fifty", "tone": "angry"},
        )
    problems = caught.value.problems
    assert problems["words"] == "must be a number"
    assert problems["tone"] == "must be one of “plain”, “formal”"
    message = str(caught.value)
    assert "“words” must be a number" in message and "“tone” must be one of" in message


def test_every_problem_is_reported_at_once(alice, summarize):
    with pytest.raises(RenderError) as caught:
        render_values(version=latest(summarize), values={"words": True, "extra": "1"})
    assert caught.value.problems == {
        "extra": "unknown",
        "topic": "missing",
        "words": "must be a number",
    }


@pytest.mark.parametrize(
    ("given", "inserted"),
    [(3, "3"), ("2.50", "2.5"), (-0.75, "-0.75"), ("1e3", "1000"), ("1E-5", "0.00001"), (7.0, "7")],
)
def test_numbers_are_inserted_in_plain_notation(alice, summarize, given, inserted):
    rendered = render_values(version=latest(summarize), values={"topic": "t", "words": given})
    assert rendered.user == f"Summarize t in {inserted} words."


@pytest.mark.parametrize("bad", ["NaN", "inf", "-Infinity", "", " ", "1,000", [1], {"a": 1}])
def test_non_numbers_are_refused_for_number_variables(alice, bad):
    prompt = make_prompt(alice, user="{{n}}", variables=[{"name": "n", "type": "number"}])
    with pytest.raises(RenderError) as caught:
        render_values(version=latest(prompt), values={"n": bad})
    assert caught.value.problems["n"] in {"must be a number", "missing"}


def test_values_must_be_an_object(alice, summarize):
    with pytest.raises(RenderError) as caught:
        render_values(version=latest(summarize), values=["topic"])
    assert "variables" in caught.value.problems


def test_a_short_text_value_is_bounded_and_long_text_takes_more(alice):
    prompt = make_prompt(
        alice,
        user="{{short}} {{long}}",
        variables=[{"name": "short"}, {"name": "long", "type": "long_text"}],
    )
    with pytest.raises(RenderError) as caught:
        render_values(version=latest(prompt), values={"short": "x" * 2001, "long": "y"})
    assert "longer than 2,000 characters" in caught.value.problems["short"]
    rendered = render_values(version=latest(prompt), values={"short": "x", "long": "y" * 50_000})
    assert len(rendered.user) == 50_002


def test_text_that_only_resembles_a_placeholder_is_left_alone(alice):
    prompt = make_prompt(alice, user="{{ 1 }} {{two words}} {single} {{{{x}}}} {{x}}")
    rendered = render_values(version=latest(prompt), values={"x": "X"})
    assert rendered.user == "{{ 1 }} {{two words}} {single} {{X}} X"


def test_rendering_needs_read_access_to_the_prompt(
    alice, team_prompt, charlie_outsider, vera_viewer
):
    version = latest(team_prompt)
    assert version_render(user=vera_viewer, version=version, values={"name": "Ann"}).user == (
        "Say hello to Ann."
    )
    with pytest.raises(Http404):
        version_render(user=charlie_outsider, version=version, values={"name": "Ann"})
