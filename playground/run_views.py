"""A run's results: exports, the diff, the winner, ratings, answers as code, and continuing in
chat."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.text import slugify
from django.views.decorators.http import require_POST

from accounts.access import Action
from playground import (
    diffing,
    exports,
    forms,
    selectors,
    services,
    snippets,
)
from playground.models import Run
from playground.views import error_message


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
        messages.error(request, error_message(exc))
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
            error = error_message(exc)
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
        messages.error(request, error_message(exc))
        return redirect(_run_url(answer.run))
    messages.success(request, f"Continuing with {answer.model}: ask your next question.")
    return redirect("chats:detail", pk=conversation.pk)
