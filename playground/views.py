"""Playground pages: the list, a comparison (editor, shared context, slots, runs). A run's
results and deciding are in run_views.py, filling the input from the prompt library in
prompt_views.py, arena pages in arena_views.py; runs stream over the websocket (consumers.py)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from accounts import access
from accounts.access import Action
from chats import selectors as chat_selectors
from playground import (
    forms,
    grounding,
    judging,
    runs,
    selectors,
    services,
)
from playground.models import MAX_SLOTS
from providers import services as provider_services

PAGE_SIZE = 24


def _owner_team(request):
    team = request.team
    return team if team is not None and access.allows(request.user, team, Action.USE) else None


def ensure_echo(request) -> None:
    """Echo for the user and, working in a team, for the team (as chat does): the playground
    works with no keys at all, and a team's comparisons run on the team's own Echo."""
    provider_services.credentials_ensure_echo(user=request.user)
    team = _owner_team(request)
    if team is not None:
        provider_services.credentials_ensure_echo(user=request.user, team=team)


def error_message(exc: ValidationError) -> str:
    """A ValidationError as one line for a message or an inline error."""
    return " ".join(exc.messages)


@login_required
def index(request):
    ensure_echo(request)
    q = request.GET.get("q", "")
    page = Paginator(
        selectors.comparisons_for_user(user=request.user, team=request.team, q=q).prefetch_related(
            "slots"
        ),
        PAGE_SIZE,
    ).get_page(request.GET.get("page"))
    return render(
        request,
        "playground/index.html",
        {"page": page, "q": q, "nav_active": "playground", "owner_team": _owner_team(request)},
    )


@login_required
@require_POST
def comparison_new(request):
    ensure_echo(request)
    comparison = services.comparison_create(actor=request.user, owner_team=_owner_team(request))
    return redirect("playground:detail", pk=comparison.pk)


@login_required
def from_chat(request):
    """ "Compare this conversation": a preview (GET), then the comparison (POST)."""
    conversation = chat_selectors.conversation_for_user(
        user=request.user, pk=request.GET.get("conversation") or request.POST.get("conversation")
    )
    message_id = request.GET.get("message") or request.POST.get("message")
    turns = chat_selectors.conversation_turns(conversation=conversation, upto_id=message_id)
    if request.method == "POST":
        try:
            comparison = services.comparison_from_conversation(
                actor=request.user, conversation=conversation, message_id=message_id
            )
        except ValidationError as exc:
            messages.error(request, error_message(exc))
            return redirect("chats:detail", pk=conversation.pk)
        return redirect("playground:detail", pk=comparison.pk)
    while turns and turns[-1].role != "user":
        turns.pop()
    return render(
        request,
        "playground/from_chat.html",
        {
            "conversation": conversation,
            "message_id": message_id,
            "turns": turns,
            "nav_active": "playground",
        },
    )


def _detail_context(request, comparison, *, editor=None, run=None) -> dict:
    can_write = access.allows(request.user, comparison, Action.WRITE)
    can_use = access.allows(request.user, comparison, Action.USE)
    editor = editor or forms.Editor(comparison, user=request.user)
    run = run or selectors.latest_run(comparison=comparison)
    groups = (
        selectors.picker_groups(user=request.user, owner_team=comparison.owner_team)
        if can_write
        else []
    )
    return {
        "comparison": comparison,
        "editor": editor,
        "rows": editor.rows(groups, editable=can_write),
        "groups": groups,
        "can_write": can_write,
        "can_use": can_use,
        "can_delete": access.allows(
            request.user, comparison, Action.MANAGE if comparison.owner_team_id else Action.WRITE
        ),
        "run_view": selectors.run_view(run=run) if run is not None else None,
        "estimate": services.comparison_estimate(actor=request.user, comparison=comparison),
        **_prompt_link_context(request, comparison),
        "max_slots": MAX_SLOTS,
        "nav_active": "playground",
        **_context_panel(request, comparison, can_write=can_write),
    }


def _context_panel(request, comparison, *, can_write: bool, error: str = "") -> dict:
    """The shared-context panel: attached collections, what may be attached, the judge."""
    return {
        "comparison": comparison,
        "can_write": can_write,
        "linked": grounding.comparison_collections(comparison=comparison),
        "attachable": list(
            grounding.collections_attachable(user=request.user, comparison=comparison)
        )
        if can_write
        else [],
        "judge_value": f"{comparison.judge_credential_id}|{comparison.judge_model}"
        if comparison.judge_credential_id and comparison.judge_model
        else "",
        "context_error": error,
    }


@login_required
@require_POST
def comparison_context(request, pk):
    """Attach/detach a collection or pick the judge: the panel again (htmx), or the page."""
    comparison = selectors.comparison_for_user(user=request.user, pk=pk, action=Action.WRITE)
    form = forms.ContextForm(request.POST, user=request.user)
    error = ""
    if not form.is_valid():
        error = " ".join(" ".join(e) for e in form.errors.values())
    else:
        data = form.cleaned_data
        try:
            if data["action"] == "attach":
                grounding.collection_attach(
                    actor=request.user, comparison=comparison, collection_id=data["collection_id"]
                )
            elif data["action"] == "detach":
                grounding.collection_detach(
                    actor=request.user, comparison=comparison, collection_id=data["collection_id"]
                )
            else:
                credential, model = data["judge_choice"] or (None, "")
                judging.judge_set(
                    actor=request.user, comparison=comparison, credential=credential, model=model
                )
        except ValidationError as exc:
            error = error_message(exc)
    if request.htmx:
        context = _context_panel(request, comparison, can_write=True, error=error)
        context["groups"] = selectors.picker_groups(
            user=request.user, owner_team=comparison.owner_team
        )
        # 200 either way: htmx swaps only successful answers, and the panel says what's wrong.
        return render(request, "playground/comparison.html#context", context)
    if error:
        messages.error(request, error)
    return redirect("playground:detail", pk=comparison.pk)


def _prompt_link_context(request, comparison) -> dict:
    link = selectors.prompt_link(comparison=comparison)
    return {
        "prompt_link": link,
        # A team comparison may have been filled from someone's personal prompt: its name
        # is shown only to those who may read it.
        "prompt_link_readable": link is not None
        and access.allows(request.user, link.template, Action.READ),
    }


@login_required
@never_cache  # live state: Back must not show a stale copy of the results
def comparison_detail(request, pk):
    comparison = selectors.comparison_for_user(user=request.user, pk=pk)
    run = None
    if request.GET.get("run"):
        run = selectors.run_for_user(user=request.user, pk=request.GET["run"])
        if run.comparison_id != comparison.pk:
            raise Http404
    latest = run or selectors.latest_run(comparison=comparison)
    if latest is not None and latest.finished_at is None:
        runs.answers_mark_stale(run_id=latest.pk)
        latest.refresh_from_db()
    return render(
        request,
        "playground/comparison.html",
        _detail_context(request, comparison, run=latest),
    )


@login_required
@require_POST
def comparison_save(request, pk):
    """The editor's autosave (and its no-script form post): everything the page shows."""
    comparison = selectors.comparison_for_user(user=request.user, pk=pk, action=Action.WRITE)
    editor = forms.Editor(comparison, user=request.user, data=request.POST)
    error = ""
    if editor.is_valid():
        try:
            services.comparison_save(actor=request.user, comparison=comparison, **editor.changes())
        except ValidationError as exc:
            error = error_message(exc)
    else:
        error = " ".join(editor.errors())
    if request.htmx:
        context = {
            "comparison": comparison,
            "estimate": services.comparison_estimate(actor=request.user, comparison=comparison),
            "save_error": error,
            "saved": not error,
            **_prompt_link_context(request, comparison),
        }
        return render(
            request, "playground/comparison.html#estimate", context, status=400 if error else 200
        )
    if error:
        messages.error(request, f"Not saved: {error}")
    return redirect("playground:detail", pk=comparison.pk)


def _structural(request, pk, change) -> HttpResponse:
    """Add/duplicate/remove/move: the page's current fields are saved first, then the change;
    the editor comes back re-rendered."""
    comparison = selectors.comparison_for_user(user=request.user, pk=pk, action=Action.WRITE)
    error = ""
    if request.POST.get("slot_order") is not None:
        editor = forms.Editor(comparison, user=request.user, data=request.POST)
        if editor.is_valid():
            try:
                services.comparison_save(
                    actor=request.user, comparison=comparison, **editor.changes()
                )
            except ValidationError as exc:
                error = error_message(exc)
        else:
            error = " ".join(editor.errors())
    if not error:
        try:
            change(comparison)
        except ValidationError as exc:
            error = error_message(exc)
    if request.htmx:
        context = _detail_context(request, comparison)
        context["editor_error"] = error
        return render(request, "playground/comparison.html#editor", context)
    if error:
        messages.error(request, error)
    return redirect("playground:detail", pk=comparison.pk)


@login_required
@require_POST
def slot_add(request, pk):
    return _structural(request, pk, lambda c: services.slot_add(actor=request.user, comparison=c))


@login_required
@require_POST
def slot_duplicate(request, pk, slot_pk):
    def change(comparison):
        slot = selectors.slot_in(comparison=comparison, pk=slot_pk)
        services.slot_duplicate(actor=request.user, comparison=comparison, slot=slot)

    return _structural(request, pk, change)


@login_required
@require_POST
def slot_remove(request, pk, slot_pk):
    def change(comparison):
        slot = selectors.slot_in(comparison=comparison, pk=slot_pk)
        services.slot_remove(actor=request.user, comparison=comparison, slot=slot)

    return _structural(request, pk, change)


@login_required
@require_POST
def slot_move(request, pk, slot_pk):
    def change(comparison):
        slot = selectors.slot_in(comparison=comparison, pk=slot_pk)
        offset = -1 if request.POST.get("direction") == "left" else 1
        services.slot_move(actor=request.user, comparison=comparison, slot=slot, offset=offset)

    return _structural(request, pk, change)


@login_required
@require_POST
def comparison_clone(request, pk):
    comparison = selectors.comparison_for_user(user=request.user, pk=pk, action=Action.WRITE)
    copy = services.comparison_clone(actor=request.user, comparison=comparison)
    messages.success(request, "Cloned: same input and slots, no runs yet.")
    return redirect("playground:detail", pk=copy.pk)


@login_required
def comparison_delete(request, pk):
    comparison = selectors.comparison_for_user(user=request.user, pk=pk)
    if request.method == "POST":
        title = comparison.display_title
        services.comparison_delete(actor=request.user, comparison=comparison)
        messages.success(request, f"Deleted “{title}”. Its spend stays in Usage.")
        return redirect("playground:index")
    access.require(
        request.user, comparison, Action.MANAGE if comparison.owner_team_id else Action.WRITE
    )
    return render(
        request,
        "playground/delete.html",
        {"comparison": comparison, "nav_active": "playground"},
    )
