"""Settings → Providers: credentials, connection tests, the model catalogue, a try-it box."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts import access
from accounts.access import Action
from accounts.views import _form_errors
from providers import egress_allow, presets, selectors, services
from providers.adapters.base import ProviderError
from providers.forms import (
    CredentialEditForm,
    CredentialForm,
    DefaultModelForm,
    EgressEntryForm,
    FavouriteForm,
)
from providers.keys import mask


@login_required
def credential_list(request):
    services.credentials_ensure_echo(user=request.user)
    credentials = selectors.credentials_for_user(user=request.user, team=request.team)
    rows = [
        {
            "credential": c,
            "masked": mask(c.api_key or ""),
            "can_manage": access.allows(request.user, c, Action.MANAGE),
            "can_use": access.allows(request.user, c, Action.USE),
        }
        for c in credentials
    ]
    return render(
        request,
        "providers/credential_list.html",
        {"rows": rows, "tab": "providers", "preset_choices": presets.CHOICES},
    )


@login_required
def credential_add(request):
    initial = {"preset": request.GET.get("preset", "openai")}
    if initial["preset"] in presets.PRESETS:
        initial["is_local"] = presets.PRESETS[initial["preset"]].local
    if request.team is not None and access.allows(request.user, request.team, Action.MANAGE):
        initial["owner_team"] = request.team.pk
    form = CredentialForm(request.POST or None, user=request.user, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            credential = services.credential_create(actor=request.user, **form.cleaned_data)
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            ok, message = services.credential_test(actor=request.user, credential=credential)
            (messages.success if ok else messages.warning)(
                request,
                f"Saved “{credential.name}”. "
                + ("" if ok else "The connection test failed — ")
                + message,
            )
            return redirect("providers:detail", pk=credential.pk)
    return render(
        request,
        "providers/credential_form.html",
        {
            "form": form,
            "presets": presets.PRESETS.values(),
            "local_presets": ",".join(p.key for p in presets.PRESETS.values() if p.local),
            "tab": "providers",
            "adding": True,
        },
        status=400 if request.method == "POST" else 200,
    )


@login_required
def credential_detail(request, pk):
    credential = selectors.credential_for_user(user=request.user, pk=pk)
    context = {
        "credential": credential,
        "masked": mask(credential.api_key or ""),
        "catalogue": selectors.catalogue_for(user=request.user, credential=credential),
        "can_manage": access.allows(request.user, credential, Action.MANAGE),
        "can_use": access.allows(request.user, credential, Action.USE),
        "tab": "providers",
    }
    return render(request, "providers/credential_detail.html", context)


@login_required
def credential_edit(request, pk):
    credential = selectors.credential_for_user(user=request.user, pk=pk, action=Action.MANAGE)
    initial = {
        "name": credential.name,
        "base_url": credential.base_url,
        "organization": credential.organization,
        "is_local": credential.is_local,
        "is_active": credential.is_active,
    }
    form = CredentialEditForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.credential_update(
                actor=request.user, credential=credential, **form.cleaned_data
            )
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            if credential.key_cleared:
                messages.warning(
                    request,
                    f"Saved “{credential.name}”. The base URL points at another endpoint, so the "
                    "stored API key was cleared (it was meant for the old one). Enter the key for "
                    "the new endpoint under Edit.",
                )
            else:
                messages.success(request, f"Saved “{credential.name}”.")
            return redirect("providers:detail", pk=credential.pk)
    return render(
        request,
        "providers/credential_form.html",
        {
            "form": form,
            "credential": credential,
            "masked": mask(credential.api_key or ""),
            "tab": "providers",
        },
        status=400 if request.method == "POST" else 200,
    )


@login_required
@require_POST
def credential_test(request, pk):
    credential = selectors.credential_for_user(user=request.user, pk=pk, action=Action.USE)
    ok, message = services.credential_test(actor=request.user, credential=credential)
    if request.htmx:
        # The test lists the models too: the catalogue card comes along (out of band), so the
        # page never says "No models listed" next to "connected".
        return render(
            request,
            "providers/credential_detail.html#test_result",
            {
                "credential": credential,
                "catalogue": selectors.catalogue_for(user=request.user, credential=credential),
                "oob": True,
            },
        )
    (messages.success if ok else messages.error)(request, message)
    return redirect("providers:detail", pk=credential.pk)


@login_required
@require_POST
def catalogue_refresh(request, pk):
    credential = selectors.credential_for_user(user=request.user, pk=pk, action=Action.USE)
    try:
        rows = services.catalogue_refresh(actor=request.user, credential=credential)
    except ProviderError as exc:
        messages.error(request, f"Could not list models: {exc.message}")
    else:
        messages.success(request, f"{len(rows)} models listed.")
    return redirect("providers:detail", pk=credential.pk)


@login_required
@require_POST
def credential_toggle(request, pk):
    credential = selectors.credential_for_user(user=request.user, pk=pk, action=Action.MANAGE)
    services.credential_update(
        actor=request.user, credential=credential, is_active=not credential.is_active
    )
    messages.success(
        request, f"“{credential.name}” is {'active' if credential.is_active else 'deactivated'}."
    )
    return redirect("providers:detail", pk=credential.pk)


@login_required
def credential_delete(request, pk):
    credential = selectors.credential_for_user(user=request.user, pk=pk, action=Action.MANAGE)
    if request.method == "POST":
        name = credential.name
        services.credential_delete(actor=request.user, credential=credential)
        messages.success(request, f"Deleted “{name}”. Its usage history is kept.")
        return redirect("providers:list")
    return render(
        request, "providers/credential_delete.html", {"credential": credential, "tab": "providers"}
    )


# --- The egress allowlist (superusers) ------------------------------------------------------------


@login_required
def egress_allowlist(request):
    """Settings → Egress allowlist: the environment's base entries (read-only) and the ones
    added here."""
    entries = egress_allow.entries_for_admin(actor=request.user)
    form = EgressEntryForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            entry = egress_allow.entry_add(actor=request.user, **form.cleaned_data)
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, f"{entry.host_port} is allowed now.")
            return redirect("providers:egress")
    return render(
        request,
        "providers/egress.html",
        {
            "form": form,
            "entries": entries,
            "base": egress_allow.base_entries(),
            "tab": "egress",
        },
        status=400 if request.method == "POST" else 200,
    )


@login_required
@require_POST
def egress_entry_delete(request, pk):
    entry = egress_allow.entry_for_admin(actor=request.user, pk=pk)
    egress_allow.entry_delete(actor=request.user, entry=entry)
    messages.success(request, f"{entry.host_port} is no longer allowed.")
    return redirect("providers:egress")


# --- Model preferences (the pickers post here) ----------------------------------------------------


def _invalid(form) -> JsonResponse:
    message = "; ".join(error for errors in form.errors.values() for error in errors)
    return JsonResponse({"error": {"code": "invalid", "message": message}}, status=400)


@login_required
@require_POST
def model_favourite(request):
    """Star or unstar a model (JSON for the pickers)."""
    form = FavouriteForm(request.POST, user=request.user)
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.model_favourite_set(
                user=request.user,
                credential=data["credential"],
                model=data["model"],
                favourite=data["favourite"],
            )
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            return JsonResponse(
                {
                    "credential": data["credential"].pk,
                    "model": data["model"],
                    "favourite": data["favourite"],
                }
            )
    return _invalid(form)


@login_required
@require_POST
def model_default(request):
    """Set or clear the default model of your personal chats or of a team's (JSON)."""
    form = DefaultModelForm(request.POST, user=request.user)
    if form.is_valid():
        data = form.cleaned_data
        try:
            if data["clear"]:
                services.model_default_clear(user=request.user, team=data["team"])
                default = None
            else:
                row = services.model_default_set(
                    user=request.user,
                    credential=data["credential"],
                    model=data["model"],
                    team=data["team"],
                )
                default = {"credential": row.credential_id, "model": row.model}
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            return JsonResponse(
                {"team": data["team"].pk if data["team"] else None, "default": default}
            )
    return _invalid(form)
