"""Prompt library pages: the list, a prompt (its newest version, Try it, labels, versions with
their calls, cost and ratings, batches), the editor (every save is a new version), a version,
the diff of two versions, labels, import and export."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts import access
from accounts.access import Action
from accounts.views import _form_errors
from prompts import diffs, exchange, selectors, services
from prompts.forms import (
    ImportForm,
    LabelForm,
    PromptForm,
    values_form,
    values_from,
    variables_from_post,
)
from prompts.models import PromptTemplate
from prompts.rendering import RenderError, version_render
from prompts.services import Content
from prompts.variables import Variable, placeholders
from providers import selectors as provider_selectors

NAV = "prompts"


def _variables(version) -> list[Variable]:
    return [Variable.from_dict(v) for v in version.variables]


@login_required
def prompt_list(request):
    q, tag = request.GET.get("q", "").strip()[:200], request.GET.get("tag", "").strip()[:40]
    templates = selectors.templates_for_user(user=request.user, team=request.team, q=q, tag=tag)
    page = Paginator(templates, 25).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "q": q,
        "tag": tag,
        "tags": selectors.tags_in_view(user=request.user, team=request.team),
        "nav_active": NAV,
    }
    if request.htmx and request.GET.get("partial") == "results":
        return render(request, "prompts/prompt_list.html#results", context)
    return render(request, "prompts/prompt_list.html", context)


def _form_credentials(request, template: PromptTemplate | None):
    """Models the editor offers: the prompt owner's (a new prompt: personal and every team's
    the user may use; the service applies the owner rule with its reason)."""
    if template is not None:
        return provider_selectors.chat_credentials_for(user=request.user, team=template.owner_team)
    return provider_selectors.usable_credentials_for_user(user=request.user)


def _content_from(form, names, data) -> Content:
    cleaned = form.cleaned_data
    credential, model = cleaned.get("model_choice") or (None, "")
    return Content(
        system_text=cleaned.get("system_text", ""),
        user_text=cleaned.get("user_text", ""),
        variables=variables_from_post(data, names),
        credential=credential,
        model=model,
        params={k: cleaned.get(k) for k in ("temperature", "top_p", "max_tokens", "seed")},
        collection=cleaned.get("collection"),
        top_k=cleaned.get("top_k") or 5,
    )


def _editor_errors(form, exc: ValidationError) -> None:
    """A service's errors next to the editor's fields (the model picker is one field)."""
    if hasattr(exc, "error_dict"):
        renamed = {}
        for field, errors in exc.message_dict.items():
            key = "model_choice" if field in {"credential", "model"} else field
            renamed.setdefault(key, []).extend(errors)
        exc = ValidationError(renamed)
    _form_errors(form, exc)


def _variable_rows(data, fallback: list[Variable]) -> list[Variable]:
    """The editor's variables table: one row per placeholder in the texts, keeping what was
    typed (or saved) for names seen before."""
    names = placeholders(data.get("system_text", ""), data.get("user_text", ""))
    typed = {v.name: v for v in variables_from_post(data, names) if f"var-{v.name}-type" in data}
    saved = {v.name: v for v in fallback}
    return [typed.get(n) or saved.get(n) or Variable(name=n) for n in names]


def _editor(request, *, form, template, rows, status=200, conflict=None):
    return render(
        request,
        "prompts/prompt_form.html",
        {
            "form": form,
            "template": template,
            "variable_rows": rows,
            "types": [
                ("text", "Text"),
                ("long_text", "Long text"),
                ("number", "Number"),
                ("choice", "Choice"),
            ],
            "conflict": conflict,
            "nav_active": NAV,
        },
        status=status,
    )


@login_required
def prompt_new(request):
    """A new prompt. "Save as prompt" in chat posts here with `prefill=1` and the text: the
    editor opens filled in, nothing is saved yet."""
    credentials = _form_credentials(request, None)
    prefill = request.method == "POST" and request.POST.get("prefill") == "1"
    if request.method == "POST" and not prefill:
        form = PromptForm(request.POST, user=request.user, credentials=credentials)
        names = placeholders(request.POST.get("system_text", ""), request.POST.get("user_text", ""))
        if form.is_valid():
            try:
                template = services.template_create(
                    actor=request.user,
                    name=form.cleaned_data["name"],
                    description=form.cleaned_data["description"],
                    tags=form.cleaned_data["tags"],
                    owner_team=form.cleaned_data.get("owner_team"),
                    change_note=form.cleaned_data["change_note"],
                    content=_content_from(form, names, request.POST),
                )
            except ValidationError as exc:
                _editor_errors(form, exc)
            else:
                messages.success(request, f"Created “{template.name}” (v1).")
                return redirect("prompts:detail", pk=template.pk)
        return _editor(
            request, form=form, template=None, rows=_variable_rows(request.POST, []), status=400
        )
    initial = {}
    if request.team is not None and access.allows(request.user, request.team, Action.WRITE):
        initial["owner_team"] = request.team.pk
    if prefill:
        for key in ("name", "system_text", "user_text"):
            initial[key] = (request.POST.get(key) or "")[: services.MAX_PART_CHARS]
        initial["name"] = initial["name"][: services.MAX_NAME] or "Saved from chat"
    form = PromptForm(initial=initial, user=request.user, credentials=credentials)
    return _editor(request, form=form, template=None, rows=_variable_rows(initial, []))


@login_required
@require_POST
def variables_table(request):
    """The editor's variables table, redrawn as the texts change (htmx)."""
    return render(
        request,
        "prompts/prompt_form.html#variables",
        {
            "variable_rows": _variable_rows(request.POST, []),
            "types": [
                ("text", "Text"),
                ("long_text", "Long text"),
                ("number", "Number"),
                ("choice", "Choice"),
            ],
        },
    )


def _version_param(request, template):
    ref = request.GET.get("v")
    return selectors.version_resolve(template=template, ref=ref or template.latest_number)


@login_required
def prompt_detail(request, pk):
    template = selectors.template_for_user(user=request.user, pk=pk)
    version = _version_param(request, template)
    labels = list(selectors.labels_of(template=template))
    stats = selectors.version_stats(template=template)
    versions = list(selectors.versions_of(template=template)[:100])
    by_number = {}
    for label in labels:
        by_number.setdefault(label.version.number, []).append(label.name)
    variables = _variables(version)
    return render(
        request,
        "prompts/prompt_detail.html",
        {
            "template": template,
            "version": version,
            "variables": variables,
            "try_form": values_form(variables),
            "model_counts": range(2, 9),  # a comparison's 2–8 slots (playground)
            "labels": labels,
            "label_form": LabelForm(initial={"version": version.number}),
            "history": selectors.label_history(template=template),
            "versions": [(v, stats.get(v.number), by_number.get(v.number, [])) for v in versions],
            "batches": selectors.batches_of(user=request.user, template=template)[:10],
            "can_write": access.allows(request.user, template, Action.WRITE),
            "can_use": access.allows(request.user, template, Action.USE),
            "can_delete": services.can_delete(request.user, template),
            "nav_active": NAV,
        },
    )


@login_required
def prompt_edit(request, pk):
    """Edit: name, description and tags change in place; anything a model receives makes a new
    version (with its note). A save over a newer version is refused, keeping the text."""
    template = selectors.template_for_user(user=request.user, pk=pk, action=Action.WRITE)
    newest = selectors.version_of(template=template, number=template.latest_number)
    credentials = _form_credentials(request, template)
    if request.method == "POST":
        form = PromptForm(request.POST, user=request.user, credentials=credentials, editing=True)
        names = placeholders(request.POST.get("system_text", ""), request.POST.get("user_text", ""))
        conflict = None
        if form.is_valid():
            data = form.cleaned_data
            try:
                services.template_update(
                    actor=request.user,
                    template=template,
                    name=data["name"],
                    description=data["description"],
                    tags=data["tags"],
                )
                version = services.version_create(
                    actor=request.user,
                    template=template,
                    content=_content_from(form, names, request.POST),
                    change_note=data["change_note"],
                    based_on=data.get("based_on"),
                )
            except services.NothingChanged:
                messages.success(
                    request, f"Saved “{template.name}” (no new version: the text is unchanged)."
                )
                return redirect("prompts:detail", pk=template.pk)
            except services.VersionConflict as exc:
                conflict = selectors.version_of(template=template, number=template.latest_number)
                form.add_error(None, exc.messages[0])
            except ValidationError as exc:
                _editor_errors(form, exc)
            else:
                messages.success(request, f"Saved v{version.number} of “{template.name}”.")
                return redirect("prompts:detail", pk=template.pk)
        return _editor(
            request,
            form=form,
            template=template,
            rows=_variable_rows(request.POST, _variables(newest)),
            status=409 if conflict else 400,
            conflict=conflict,
        )
    params = newest.params
    initial = {
        "name": template.name,
        "description": template.description,
        "tags": ", ".join(template.tags),
        "system_text": newest.system_text,
        "user_text": newest.user_text,
        "model_choice": f"{newest.credential_id}|{newest.model}" if newest.credential_id else "",
        "collection": newest.collection_id,
        "top_k": newest.top_k,
        "based_on": newest.number,
        **{k: params.get(k) for k in ("temperature", "top_p", "max_tokens", "seed")},
    }
    form = PromptForm(initial=initial, user=request.user, credentials=credentials, editing=True)
    return _editor(request, form=form, template=template, rows=_variables(newest))


@login_required
def prompt_delete(request, pk):
    template = selectors.template_for_user(user=request.user, pk=pk)
    access.require(
        request.user, template, Action.MANAGE if template.owner_team_id else Action.WRITE
    )
    if request.method == "POST":
        services.template_delete(actor=request.user, template=template)
        messages.success(request, f"Deleted “{template.name}” and its versions.")
        return redirect("prompts:index")
    return render(
        request,
        "prompts/prompt_delete.html",
        {"template": template, "batch_count": template.batches.count(), "nav_active": NAV},
    )


@login_required
def version_detail(request, pk, number):
    template = selectors.template_for_user(user=request.user, pk=pk)
    version = selectors.version_of(template=template, number=number)
    return render(
        request,
        "prompts/version_detail.html",
        {
            "template": template,
            "version": version,
            "variables": _variables(version),
            "labels": sorted(version.labels.values_list("name", flat=True)),
            "label_form": LabelForm(initial={"version": version.number}),
            "can_write": access.allows(request.user, template, Action.WRITE),
            "nav_active": NAV,
        },
    )


@login_required
def version_diff(request, pk):
    template = selectors.template_for_user(user=request.user, pk=pk)
    newest = template.latest_number
    old = selectors.version_resolve(
        template=template, ref=request.GET.get("a") or max(newest - 1, 1)
    )
    new = selectors.version_resolve(template=template, ref=request.GET.get("b") or newest)
    return render(
        request,
        "prompts/diff.html",
        {
            "template": template,
            "old": old,
            "new": new,
            "fields": diffs.version_diff(old=old, new=new),
            "numbers": list(
                template.versions.order_by("-number").values_list("number", flat=True)[:200]
            ),
            "nav_active": NAV,
        },
    )


@login_required
@require_POST
def label_set(request, pk):
    template = selectors.template_for_user(user=request.user, pk=pk, action=Action.WRITE)
    form = LabelForm(request.POST)
    if form.is_valid():
        version = selectors.version_of(template=template, number=form.cleaned_data["version"])
        try:
            label = services.label_set(
                actor=request.user,
                template=template,
                name=form.cleaned_data["name"],
                version=version,
            )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, f"“{label.name}” now points at v{version.number}.")
    else:
        messages.error(request, "Give a label name and a version.")
    target = request.POST.get("next")
    if _local(target):
        return redirect(target)
    return redirect("prompts:detail", pk=template.pk)


def _local(url: str | None) -> bool:
    from django.utils.http import url_has_allowed_host_and_scheme

    return bool(url) and url_has_allowed_host_and_scheme(url, allowed_hosts=None)


@login_required
@require_POST
def label_delete(request, pk, name):
    template = selectors.template_for_user(user=request.user, pk=pk, action=Action.WRITE)
    try:
        services.label_delete(actor=request.user, template=template, name=name)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Removed the label “{name}”.")
    return redirect("prompts:detail", pk=template.pk)


@login_required
@require_POST
def prompt_try(request, pk):
    """Try it: render the chosen version with the typed values (no model is called)."""
    template = selectors.template_for_user(user=request.user, pk=pk)
    version = selectors.version_resolve(template=template, ref=request.POST.get("version"))
    variables = _variables(version)
    rendered, error = None, None
    try:
        rendered = version_render(
            user=request.user, version=version, values=values_from(request.POST, variables)
        )
    except RenderError as exc:
        error = exc
    # htmx swaps only 2xx answers: the fragment with the error is the answer to show.
    return render(
        request,
        "prompts/prompt_detail.html#try_result",
        {"rendered": rendered, "error": error},
        status=200 if rendered or request.htmx else 400,
    )


@login_required
def prompt_export(request, pk, fmt):
    template = selectors.template_for_user(user=request.user, pk=pk)
    fmt = "yaml" if fmt == "yaml" else "json"
    document = exchange.prompts_export(user=request.user, templates=[template])
    response = HttpResponse(
        exchange.dumps(document, fmt),
        content_type="application/yaml; charset=utf-8" if fmt == "yaml" else "application/json",
    )
    response["Content-Disposition"] = f'attachment; filename="prompt-{template.pk}.{fmt}"'
    return response


@login_required
def prompt_import(request):
    form = ImportForm(request.POST or None, request.FILES or None, user=request.user)
    report = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        upload = data.get("file")
        fmt = data.get("format") or "auto"
        text = data.get("text") or ""
        try:
            if upload is not None:
                if upload.size > exchange.MAX_BYTES:
                    raise ValidationError(
                        {"file": f"The file is larger than {exchange.MAX_BYTES // 1048576} MB."}
                    )
                if fmt == "auto":
                    fmt = "yaml" if upload.name.lower().endswith((".yaml", ".yml")) else "json"
                try:
                    text = upload.read(exchange.MAX_BYTES + 1).decode("utf-8-sig")
                except UnicodeDecodeError:
                    raise ValidationError({"file": "The file isn't UTF-8 text."}) from None
            elif not text.strip():
                raise ValidationError({"text": "Choose a file or paste an export."})
            if fmt == "auto":
                fmt = "json" if text.lstrip().startswith(("{", "[")) else "yaml"
            report = exchange.prompts_import(
                actor=request.user, text=text, fmt=fmt, owner_team=data.get("owner_team")
            )
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            count = len(report)
            messages.success(request, f"Imported {count} prompt{'s' if count != 1 else ''}.")
    status = 400 if request.method == "POST" and report is None else 200
    return render(
        request,
        "prompts/import.html",
        {"form": form, "report": report, "nav_active": NAV},
        status=status,
    )
