"""Arena pages: the pool and a new battle, a battle (answers stream over `ws/arena/<id>/`), the
vote, and the leaderboard."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from accounts import access
from accounts import selectors as account_selectors
from accounts.access import Action
from playground import arena, forms, runs, selectors
from playground.models import Battle
from playground.views import PAGE_SIZE, _owner_team, ensure_echo

PERIODS = {"7d": 7, "30d": 30, "90d": 90, "all": None}


def _arena_owner(request):
    return _owner_team(request) or request.user


def _pool_choices(request, owner) -> list[tuple[str, str]]:
    team = owner if owner is not request.user else None
    return [
        (f"{group['credential'].pk}|{model}", model)
        for group in selectors.picker_groups(user=request.user, owner_team=team)
        for model in group["models"]
    ]


def _arena_context(request, *, battle_form=None, pool_form=None) -> dict:
    owner = _arena_owner(request)
    team = owner if owner is not request.user else None
    pool = arena.pool_for(owner=owner)
    picked = {f"{e['credential']}|{e['model']}" for e in pool.entries}
    groups = selectors.picker_groups(user=request.user, owner_team=team)
    battles = Paginator(
        selectors.battles_for_owner(user=request.user, team=team).select_related("run"),
        PAGE_SIZE,
    ).get_page(request.GET.get("page"))
    return {
        "owner_team": team,
        "pool": pool,
        "picked": picked,
        "groups": groups,
        "pool_size": len({arena.model_key(c.preset, m) for c, m in arena.pool_entries(pool=pool)}),
        "battle_form": battle_form or forms.BattleForm(),
        "pool_form": pool_form,
        "battles": battles,
        "can_write": team is None or access.allows(request.user, team, Action.WRITE),
        "nav_active": "playground",
    }


@login_required
def arena_index(request):
    ensure_echo(request)
    if request.method == "POST":
        form = forms.BattleForm(request.POST)
        if form.is_valid():
            try:
                battle = arena.battle_create(
                    actor=request.user,
                    owner_team=_owner_team(request),
                    prompt=form.cleaned_data["prompt"],
                    tag=form.cleaned_data["tag"],
                )
            except ValidationError as exc:
                form.add_error(None, exc.messages)
            else:
                return redirect("playground:battle", pk=battle.pk)
        return render(
            request, "playground/arena.html", _arena_context(request, battle_form=form), status=400
        )
    return render(request, "playground/arena.html", _arena_context(request))


@login_required
@require_POST
def arena_pool(request):
    owner = _arena_owner(request)
    form = forms.PoolForm(request.POST, user=request.user, choices=_pool_choices(request, owner))
    if form.is_valid():
        try:
            arena.pool_save(actor=request.user, owner=owner, entries=form.cleaned_data["entries"])
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, "Pool saved.")
    else:
        messages.error(request, "Pick models from the list.")
    return redirect("playground:arena")


@login_required
@never_cache  # live state: Back must not show a stale copy
def battle_detail(request, pk):
    battle = selectors.battle_for_user(user=request.user, pk=pk)
    runs.answers_mark_stale(run_id=battle.run_id)
    answers = list(battle.run.answers.order_by("position"))
    return render(
        request,
        "playground/battle.html",
        {
            "battle": battle,
            "answers": answers,
            "revealed": battle.is_voted,
            "can_use": access.allows(request.user, battle, Action.USE),
            "can_write": access.allows(request.user, battle, Action.WRITE),
            "nav_active": "playground",
        },
    )


@login_required
@require_POST
def battle_vote(request, pk):
    battle = selectors.battle_for_user(user=request.user, pk=pk, action=Action.WRITE)
    form = forms.VoteForm(request.POST)
    error = ""
    if form.is_valid():
        try:
            arena.battle_vote(actor=request.user, battle=battle, vote=form.cleaned_data["vote"])
        except ValidationError as exc:
            error = " ".join(exc.messages)
    else:
        error = "Vote A, B, tie or both bad."
    battle = Battle.objects.select_related("run").get(pk=battle.pk)
    context = {
        "battle": battle,
        "answers": list(battle.run.answers.order_by("position")),
        "revealed": battle.is_voted,
        "vote_error": error,
        "can_use": True,
        "can_write": True,
        "reveal_answers": battle.is_voted,  # the anonymous cards become named ones
    }
    if request.htmx:
        return render(
            request, "playground/battle.html#verdict", context, status=400 if error else 200
        )
    if error:
        messages.error(request, error)
    return redirect("playground:battle", pk=battle.pk)


def _since(period: str) -> datetime | None:
    days = PERIODS.get(period)
    return timezone.now() - timedelta(days=days) if days else None


@login_required
def leaderboard(request):
    scope = request.GET.get("scope", "")
    team = None
    if scope.startswith("team-"):
        team = account_selectors.team_for_user(user=request.user, pk=scope.removeprefix("team-"))
    elif scope == "" and request.team is not None:
        team = request.team
    period = request.GET.get("period", "all")
    period = period if period in PERIODS else "all"
    tag = request.GET.get("tag", "").strip().lower()[:60]
    board = arena.leaderboard_for(user=request.user, team=team, tag=tag, since=_since(period))
    return render(
        request,
        "playground/leaderboard.html",
        {
            "board": board,
            "rows": _rows(board["standings"]),
            "team": team,
            "scope": f"team-{team.pk}" if team else "personal",
            "teams": account_selectors.teams_for_user(user=request.user),
            "period": period,
            "periods": PERIODS,
            "tag": tag,
            "nav_active": "playground",
        },
    )


def _rows(standings) -> list[dict]:
    """Each standing with the geometry of its interval bar (an SVG, no inline styles)."""
    if not standings:
        return []
    low = min(s.low for s in standings)
    high = max(s.high for s in standings)
    span = (high - low) or 1.0
    width = 220

    def x(value: float) -> float:
        return round(6 + (value - low) / span * (width - 12), 1)

    return [
        {
            "standing": s,
            "label": arena.model_label(s.model),
            "bar": {"x1": x(s.low), "x2": x(s.high), "cx": x(s.rating), "width": width},
        }
        for s in standings
    ]
