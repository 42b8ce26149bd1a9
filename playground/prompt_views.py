"""The playground's input filled from the prompt library (playground.prompting): applied to a
comparison, or a new comparison from a prompt (or a batch cell)."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.access import Action
from playground import (
    prompting,
    selectors,
)
from playground.views import ensure_echo, error_message


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
        return _json_error("invalid", error_message(exc))
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
            messages.error(
                request, str(exc) if isinstance(exc, RenderError) else error_message(exc)
            )
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
            return _back_to_prompt(request, template, error_message(exc))
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
