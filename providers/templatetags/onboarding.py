"""`{% first_run_checklist %}`: the home page's first-run checklist — add a provider, try it,
invite your team — until it is done or its owner hides it. A template tag so the home page
(workbench) doesn't import the apps it sums up."""

from __future__ import annotations

from django import template
from django.urls import reverse

from accounts import access
from accounts.access import Action
from accounts.models import Invitation, Membership, Team
from billing.models import UsageRecord
from providers.models import ProviderCredential

register = template.Library()


def checklist_for(user) -> list[dict]:
    has_provider = access.scope(ProviderCredential.objects.exclude(preset="echo"), user).exists()
    tried = UsageRecord.objects.filter(user_id=user.pk).exists()
    my_teams = Membership.objects.filter(user_id=user.pk).values("team_id")
    has_teammates = (
        Membership.objects.filter(team_id__in=my_teams).exclude(user_id=user.pk).exists()
        or Invitation.objects.filter(invited_by_id=user.pk).exists()
    )
    # Invitations are sent from a team's page: the first team the user manages, else the list
    # (where they create one).
    team = access.scope(Team.objects.all(), user, Action.MANAGE).order_by("name", "pk").first()
    invite_url = (
        reverse("accounts:team_detail", args=[team.pk]) + "#invite-member"
        if team
        else reverse("accounts:team_list")
    )
    return [
        {
            "done": has_provider,
            "title": "Add a provider",
            "text": "An API key (OpenAI, Anthropic, Groq…) or a local server such as Ollama. "
            "Echo works already, with no key.",
            "url": reverse("providers:add"),
            "action": "Add a provider",
        },
        {
            "done": tried,
            "title": "Try it",
            "text": "Send a first message: every reply shows its tokens, speed and cost.",
            "url": reverse("chats:index"),
            "action": "Start a chat",
        },
        {
            "done": has_teammates,
            "title": "Invite your team",
            "text": "Teams share credentials, chats and budgets; viewers only read.",
            "url": invite_url,
            "action": "Invite people" if team else "Create a team",
        },
    ]


@register.inclusion_tag("providers/checklist.html", takes_context=True)
def first_run_checklist(context):
    user = context["user"]
    if not user.is_authenticated or user.checklist_hidden:
        return {"steps": None}
    steps = checklist_for(user)
    if all(step["done"] for step in steps):
        return {"steps": None}
    return {
        "steps": steps,
        "done_count": sum(step["done"] for step in steps),
        "csrf_token": context.get("csrf_token"),
    }
