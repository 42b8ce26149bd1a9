"""Playground pages: the list, a comparison (editor, runs, results), exports, deciding, and the
way to chat and back. Runs stream over the websocket (consumers.py); arena pages are in
arena_views.py."""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.text import slugify
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from accounts import access
from accounts.access import Action
from chats import selectors as chat_selectors
from playground import (
    diffing,
    exports,
    forms,
    grounding,
    judging,
    prompting,
    runs,
    selectors,
    services,
    snippets,
)
from playground.models import MAX_SLOTS, Run
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


def _errors(exc: ValidationError) -> str:
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
            messages.error(request, _errors(exc))
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
            error = _errors(exc)
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
            error = _errors(exc)
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
                error = _errors(exc)
        else:
            error = " ".join(editor.errors())
    if not error:
        try:
            change(comparison)
        except ValidationError as exc:
            error = _errors(exc)
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


# --- A run's results ------------------------------------------------------------------------------


@login_required
def run_export(request, pk, fmt):
    run = selectors.run_for_user(user=request.user, pk=pk)
    selectors.require_revealed(run)
    body, content_type = exports.as_text(run, fmt)
    title = run.comparison.display_title if run.comparison_id else "arena"
    name = f"{slugify(title)[:50] or 'comparison'}-run-{run.number}"
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{name}.{fmt}"'
    return response


@login_required
def run_diff(request, pk):
    run = selectors.run_for_user(user=request.user, pk=pk)
    selectors.require_revealed(run)
    a = selectors.answer_in(run=run, pk=request.GET.get("a"))
    b = selectors.answer_in(run=run, pk=request.GET.get("b"))
    return render(
        request,
        "playground/comparison.html#diff",
        {"diff": diffing.word_diff(a.text, b.text), "a": a, "b": b, "run": run},
    )


@login_required
@require_POST
def run_winner(request, pk):
    run = selectors.run_for_user(user=request.user, pk=pk, action=Action.WRITE)
    selectors.require_revealed(run)
    form = forms.WinnerForm(request.POST)
    answer_id = form.cleaned_data["answer_id"] if form.is_valid() else None
    services.run_pick_winner(actor=request.user, run=run, answer_id=answer_id)
    if request.htmx:
        return render(
            request,
            "playground/comparison.html#results",
            {"run_view": selectors.run_view(run=run), "can_use": True, "can_write": True},
        )
    return redirect(_run_url(run))


def _run_url(run: Run) -> str:
    from django.urls import reverse

    if run.comparison_id:
        return f"{reverse('playground:detail', args=[run.comparison_id])}?run={run.pk}"
    return reverse("playground:battle", args=[run.battle.pk])


@login_required
@require_POST
def run_continue(request, pk):
    """Continue every answer in chat: one conversation each."""
    run = selectors.run_for_user(user=request.user, pk=pk, action=Action.USE)
    selectors.require_revealed(run)
    try:
        conversations = services.run_continue_in_chat(actor=request.user, run=run)
    except ValidationError as exc:
        messages.error(request, _errors(exc))
        return redirect(_run_url(run))
    messages.success(
        request,
        f"{len(conversations)} conversations made, one per answer — this is the first.",
    )
    return redirect("chats:detail", pk=conversations[0].pk)


@login_required
@require_POST
def answer_rate(request, pk):
    answer = selectors.answer_for_user(user=request.user, pk=pk, action=Action.WRITE)
    form = forms.RatingForm(request.POST)
    error = ""
    if form.is_valid():
        try:
            services.answer_rate(
                actor=request.user,
                answer=answer,
                rating=form.cleaned_data["rating"],
                note=form.cleaned_data["note"],
            )
        except ValidationError as exc:
            error = _errors(exc)
    else:
        error = "A rating is 1 to 5; a note at most 1,000 characters."
    if request.htmx:
        return render(
            request,
            "playground/comparison.html#rating",
            {"answer": answer, "rating_error": error, "rating_saved": not error, "can_write": True},
            status=400 if error else 200,
        )
    if error:
        messages.error(request, error)
    return redirect(_run_url(answer.run))


@login_required
def answer_code(request, pk):
    answer = selectors.answer_for_user(user=request.user, pk=pk)
    selectors.require_revealed(answer.run)
    call = snippets.call_for_answer(answer)
    target = snippets.target_for_answer(answer)
    context = {
        "answer": answer,
        "snippets": snippets.snippets_for(target, call),
        "target": target,
        "gateway": snippets.gateway_export(
            site_url=settings.WORKBENCH_SITE_URL,
            user=request.user,
            credential=answer.credential,
            model=answer.model,
            call=call,
        ),
        "nav_active": "playground",
    }
    template = "playground/code.html#snippets" if request.htmx else "playground/code.html"
    return render(request, template, context)


@login_required
@require_POST
def answer_continue(request, pk):
    answer = selectors.answer_for_user(user=request.user, pk=pk, action=Action.USE)
    selectors.require_revealed(answer.run)
    try:
        conversation = services.answer_continue_in_chat(actor=request.user, answer=answer)
    except ValidationError as exc:
        messages.error(request, _errors(exc))
        return redirect(_run_url(answer.run))
    messages.success(request, f"Continuing with {answer.model}: ask your next question.")
    return redirect("chats:detail", pk=conversation.pk)


# --- Prompts from the library (playground.prompting) -----------------------------------------------


def _json_error(code: str, message: str, status: int = 400, **extra) -> JsonResponse:
    from workbench.api import error_body

    return JsonResponse(error_body(code, message, **extra), status=status)


@login_required
@require_POST
def prompt_apply(request, pk):
    """The prompt picker's Insert in the comparison editor: render the chosen version with the
    values (the same JSON answer as /api/prompts/<id>/render/) and fill the comparison's prompt
    — and system prompt, if asked — with it, linked to the version."""
    from prompts import selectors as prompt_selectors
    from prompts.rendering import RenderError

    comparison = selectors.comparison_for_user(user=request.user, pk=pk, action=Action.WRITE)
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        return _json_error("bad_request", "The body must be JSON.")
    if not isinstance(body, dict):
        return _json_error("bad_request", "The body must be a JSON object.")
    template = prompt_selectors.template_for_user(user=request.user, pk=body.get("template"))
    version = prompt_selectors.version_resolve(template=template, ref=body.get("version"))
    try:
        rendered = prompting.comparison_apply_prompt(
            actor=request.user,
            comparison=comparison,
            version=version,
            values=body.get("variables"),
            use_system=body.get("use_system") is True,
        )
    except RenderError as exc:
        return _json_error(exc.code, str(exc), fields={"variables": exc.problems})
    except ValidationError as exc:
        return _json_error("invalid", _errors(exc))
    return JsonResponse(
        {
            "template_id": template.pk,
            "version_id": version.pk,
            "version_number": version.number,
            "system": rendered.system,
            "user": rendered.user,
            "notices": list(rendered.notices),
        }
    )


def _back_to_prompt(request, template, error) -> HttpResponse:
    if request.htmx:
        # The prompt page's Try it result box shows the error (htmx swaps 2xx answers only).
        return render(request, "prompts/prompt_detail.html#try_result", {"error": error})
    messages.error(request, str(error))
    return redirect("prompts:detail", pk=template.pk)


@login_required
@require_POST
def from_prompt(request):
    """ "Test this prompt across N models" (the prompt page's Try it values, `models` slots) or
    "Open in playground" from a batch cell (`cell`): a new comparison, opened."""
    from django.urls import reverse
    from django_htmx.http import HttpResponseClientRedirect

    from prompts import selectors as prompt_selectors
    from prompts.forms import values_from
    from prompts.models import BatchCell
    from prompts.rendering import RenderError
    from prompts.variables import Variable

    ensure_echo(request)
    if request.POST.get("cell"):
        cell = BatchCell.objects.filter(pk=_int(request.POST["cell"])).first()
        if cell is None:
            raise Http404
        batch = prompt_selectors.batch_for_user(user=request.user, pk=cell.batch_id)
        template = batch.template
        try:
            comparison = prompting.comparison_from_batch_cell(
                actor=request.user, batch=batch, cell=cell
            )
        except (RenderError, ValidationError) as exc:
            messages.error(request, str(exc) if isinstance(exc, RenderError) else _errors(exc))
            return redirect("prompts:batch_detail", pk=batch.pk)
    else:
        template = prompt_selectors.template_for_user(
            user=request.user, pk=_int(request.POST.get("template"))
        )
        version = prompt_selectors.version_resolve(
            template=template, ref=request.POST.get("version") or template.latest_number
        )
        variables = [Variable.from_dict(v) for v in version.variables]
        models = _int(request.POST.get("models")) or 3
        try:
            comparison = prompting.comparison_from_prompt(
                actor=request.user,
                template=template,
                version=version,
                values=values_from(request.POST, variables),
                models=models,
            )
        except RenderError as exc:
            return _back_to_prompt(request, template, exc)
        except ValidationError as exc:
            return _back_to_prompt(request, template, _errors(exc))
    url = reverse("playground:detail", args=[comparison.pk])
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return redirect(url)


def _int(value) -> int | None:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if 0 < number < 2**63 else None
