"""Templates, immutable versions, labels and rollbacks, owner rules, feedback."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError
from django.http import Http404

from prompts import selectors, services
from prompts.models import LabelMove, PromptVersion
from prompts.services import Content
from prompts.tests.conftest import make_prompt
from providers import services as provider_services


def newest(template):
    template.refresh_from_db()
    return Content.of(template.versions.get(number=template.latest_number))


def labels(template):
    return {label.name: label.version.number for label in template.labels.all()}


def test_creating_a_prompt_makes_version_one_labelled_latest(alice, summarize):
    assert summarize.latest_number == 1
    version = summarize.versions.get()
    assert version.number == 1 and version.change_note == "First version"
    assert labels(summarize) == {"latest": 1}
    # variables in order of use, each with its definition
    assert [v["name"] for v in version.variables] == ["tone", "topic", "words"]


def test_every_save_makes_a_new_version_and_moves_latest(alice, summarize):
    content = newest(summarize)
    content.user_text = "Summarize {{topic}} briefly, in {{words}} words."
    v2 = services.version_create(
        actor=alice, template=summarize, content=content, change_note="briefly", based_on=1
    )
    assert v2.number == 2 and v2.change_note == "briefly"
    assert labels(summarize) == {"latest": 2}
    assert summarize.versions.get(number=1).user_text == "Summarize {{topic}} in {{words}} words."


def test_a_version_can_never_be_changed(alice, summarize):
    version = summarize.versions.get()
    version.user_text = "tampered"
    with pytest.raises(ValueError, match="immutable"):
        version.save()
    assert PromptVersion.objects.get(pk=version.pk).user_text != "tampered"


def test_saving_over_a_newer_version_is_a_conflict_that_saves_nothing(alice, bob_teammate, team):
    prompt = make_prompt(alice, team=team, user="Hello {{name}}")
    mine, theirs = newest(prompt), newest(prompt)
    theirs.user_text = "Hi {{name}}"
    services.version_create(actor=bob_teammate, template=prompt, content=theirs, based_on=1)
    mine.user_text = "Hey {{name}}"
    with pytest.raises(
        services.VersionConflict, match="Version 2 was saved while you were editing version 1"
    ):
        services.version_create(actor=alice, template=prompt, content=mine, based_on=1)
    assert prompt.versions.count() == 2


def test_saving_the_same_content_makes_no_new_version(alice, summarize):
    with pytest.raises(services.NothingChanged):
        services.version_create(actor=alice, template=summarize, content=newest(summarize))
    assert summarize.versions.count() == 1


def test_a_placeholder_without_a_definition_becomes_a_required_text_variable(alice):
    prompt = make_prompt(alice, user="Translate {{text}} into {{ language }}.")
    variables = prompt.versions.get().variables
    assert [(v["name"], v["type"], v["required"]) for v in variables] == [
        ("text", "text", True),
        ("language", "text", True),
    ]


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ([{"name": "unused"}], "Defined but not used"),
        ([{"name": "x", "type": "choice"}], "list at least one option"),
        ([{"name": "x", "type": "choice", "choices": ["a", "a"]}], "listed twice"),
        ([{"name": "x", "type": "number", "default": "ten"}], "the default must be a number"),
        (
            [{"name": "x", "type": "choice", "choices": ["a"], "default": "b"}],
            "the default must be one of",
        ),
        ([{"name": "x", "type": "colour"}], "type must be one of"),
        ([{"name": "x"}, {"name": "x"}], "defined twice"),
        ([{"name": "x", "choices": ["a"]}], "only choice variables have options"),
        ([{"name": "x", "bogus": 1}], "unknown keys bogus"),
        (["x"], "give at least a name"),
    ],
)
def test_bad_variable_definitions_are_refused_with_the_reason(alice, variables, message):
    with pytest.raises(ValidationError) as caught:
        make_prompt(alice, user="{{x}}", variables=variables)
    assert message in " ".join(caught.value.messages)


def test_a_prompt_needs_some_text_and_a_name(alice):
    with pytest.raises(ValidationError, match="Write a system part"):
        make_prompt(alice, user="   ")
    with pytest.raises(ValidationError, match="Give the prompt a name"):
        make_prompt(alice, name=" ", user="hi")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"temperature": 3}, "between 0 and 2"),
        ({"top_p": 0}, "greater than 0"),
        ({"max_tokens": 0}, "between 1 and 1,000,000"),
        ({"max_tokens": 1.5}, "whole number"),
        ({"seed": True}, "whole number"),
        ({"colour": 1}, "Unknown parameters"),
    ],
)
def test_bad_parameters_are_refused(alice, params, message):
    with pytest.raises(ValidationError, match=message):
        make_prompt(alice, user="hi", params=params)


def test_tags_are_trimmed_lowercased_and_deduplicated(alice):
    template = services.template_create(
        actor=alice,
        name="T",
        tags=[" Writing ", "writing", "Customer  Support"],
        content=Content(user_text="x"),
    )
    assert template.tags == ["writing", "customer support"]


def test_a_team_prompt_prefers_only_the_teams_models_and_collections(alice, team):
    personal = provider_services.credential_create(actor=alice, preset="echo", name="Mine")
    with pytest.raises(ValidationError, match="isn't one of Acme's credentials"):
        make_prompt(alice, team=team, user="x", credential=personal, model="echo")
    team_echo = provider_services.credential_create(
        actor=alice, preset="echo", name="Team echo", owner_team=team
    )
    prompt = make_prompt(alice, team=team, user="x", credential=team_echo, model="echo")
    assert prompt.versions.get().credential == team_echo

    from rag import services as rag_services

    mine = rag_services.collection_create(actor=alice, name="Private notes")
    with pytest.raises(ValidationError, match="isn't one of Acme's collections"):
        make_prompt(alice, team=team, user="x", collection=mine)


def test_someone_elses_credential_is_not_found(alice, charlie_outsider):
    theirs = provider_services.credential_create(actor=charlie_outsider, preset="echo", name="C")
    with pytest.raises(Http404):
        make_prompt(alice, user="x", credential=theirs, model="echo")


def test_labels_move_and_a_rollback_is_moving_production_back(alice, summarize):
    v1 = summarize.versions.get(number=1)
    services.label_set(actor=alice, template=summarize, name="Production", version=v1)
    content = newest(summarize)
    content.system_text = "You write very {{tone}} summaries."
    v2 = services.version_create(actor=alice, template=summarize, content=content)
    services.label_set(actor=alice, template=summarize, name="production", version=v2)
    assert labels(summarize) == {"latest": 2, "production": 2}
    services.label_set(actor=alice, template=summarize, name="production", version=v1)  # rollback
    assert labels(summarize) == {"latest": 2, "production": 1}
    assert selectors.version_resolve(template=summarize, ref="production") == v1
    moves = [(m.name, m.from_number, m.to_number) for m in LabelMove.objects.order_by("id")]
    assert moves == [
        ("latest", None, 1),
        ("production", None, 1),
        ("latest", 1, 2),
        ("production", 1, 2),
        ("production", 2, 1),
    ]


@pytest.mark.parametrize("name", ["", "has space", "-start", "x" * 41, "ünï"])
def test_label_names_are_simple(alice, summarize, name):
    with pytest.raises(ValidationError, match=r"lowercase letters|At most 40 characters"):
        services.label_set(
            actor=alice, template=summarize, name=name, version=summarize.versions.get()
        )


def test_latest_can_be_moved_but_not_deleted(alice, summarize):
    with pytest.raises(ValidationError, match="can be moved, not deleted"):
        services.label_delete(actor=alice, template=summarize, name="latest")


def test_a_version_of_another_prompt_cant_be_labelled(alice, summarize):
    other = make_prompt(alice, name="Other", user="x")
    with pytest.raises(ValidationError, match="another prompt"):
        services.label_set(
            actor=alice, template=summarize, name="production", version=other.versions.get()
        )


def test_roles_decide_who_edits_and_who_deletes(alice, bob_teammate, vera_viewer, team_prompt):
    content = newest(team_prompt)
    content.user_text = "Say hi to {{name}}."
    services.version_create(actor=bob_teammate, template=team_prompt, content=content)
    with pytest.raises(PermissionDenied):
        services.version_create(actor=vera_viewer, template=team_prompt, content=content)
    with pytest.raises(PermissionDenied):
        services.template_delete(actor=bob_teammate, template=team_prompt)
    services.template_delete(actor=alice, template=team_prompt)


def test_renaming_makes_no_new_version(alice, summarize):
    services.template_update(actor=alice, template=summarize, name="Summaries", tags="a, b")
    summarize.refresh_from_db()
    assert (summarize.name, summarize.tags, summarize.latest_number) == ("Summaries", ["a", "b"], 1)


def test_feedback_replaces_an_earlier_rating_of_the_same_thing(alice, summarize):
    version = summarize.versions.get()
    services.feedback_record(version=version, source="chat", key="message:1", score=1, user=alice)
    services.feedback_record(version=version, source="chat", key="message:1", score=0, user=alice)
    services.feedback_record(version=version, source="playground", key="answer:3", score=0.75)
    stats = selectors.version_stats(template=summarize)[1]
    assert stats.ratings == {"chat": (1, 0.0), "playground": (1, 0.75)}
    assert stats.rating_count == 2 and stats.rating_mean == pytest.approx(0.375)
    with pytest.raises(ValidationError):
        services.feedback_record(version=version, source="chat", key="m", score=1.5)
    with pytest.raises(ValidationError):
        services.feedback_record(version=version, source="gossip", key="m", score=1)


def test_version_numbers_are_unique_per_prompt(alice, summarize):
    with pytest.raises(IntegrityError):
        PromptVersion.objects.create(template=summarize, number=1, user_text="dup")


def test_version_stats_add_up_the_ledger_rows_of_each_version(alice, summarize):
    from decimal import Decimal

    from billing.services import usage_record

    version = summarize.versions.get()
    base = {
        "user": alice,
        "preset": "openai",
        "model": "m",
        "cost_source": "provider",
        "feature": "batch",
    }
    context = {"prompt_template": summarize.pk, "prompt_version": version.pk}
    usage_record(**base, status="ok", cost=Decimal("0.002"), context=context)
    usage_record(**base, status="error", cost=Decimal("0"), context=context)
    usage_record(**{**base, "cost_source": "unpriced"}, status="ok", cost=None, context=context)
    usage_record(**base, status="ok", cost=Decimal("5"), context={"prompt_template": 999999})
    stats = selectors.version_stats(template=summarize)[1]
    assert (stats.calls, stats.errors, stats.cost, stats.unpriced) == (3, 1, Decimal("0.002"), 1)
