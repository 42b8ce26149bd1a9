"""Shared prompt fixtures: alice's personal prompt and her team's."""

from __future__ import annotations

import pytest

from prompts import services
from prompts.services import Content


def make_prompt(
    owner_user, *, team=None, name="Summarize", system="", user="", variables=None, **extra
):
    return services.template_create(
        actor=owner_user,
        owner_team=team,
        name=name,
        content=Content(system_text=system, user_text=user, variables=variables or [], **extra),
    )


@pytest.fixture
def summarize(alice):
    """alice's personal prompt: a topic (text), a tone (choice) and a length (number)."""
    return make_prompt(
        alice,
        system="You write {{tone}} summaries.",
        user="Summarize {{topic}} in {{words}} words.",
        variables=[
            {"name": "tone", "type": "choice", "choices": ["plain", "formal"], "default": "plain"},
            {"name": "topic", "type": "text", "example": "the moon landing"},
            {"name": "words", "type": "number", "default": "50"},
        ],
    )


@pytest.fixture
def team_prompt(alice, team):
    return make_prompt(alice, team=team, name="Team greeting", user="Say hello to {{name}}.")
