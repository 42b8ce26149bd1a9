"""The conversation list's own actions: pin, archive, move to a folder, rename and delete from
the list, bulk actions, folders. Each answers htmx with the refreshed list (the state it was
showing comes along in the request) and plain forms with a redirect back."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from chats import organisation, selectors, services
from chats.forms import BulkForm, FolderForm, MoveForm, RenameForm
from chats.views import list_context


def _back(request):
    """htmx: the refreshed list, showing what it showed. Otherwise back where the form was."""
    if request.htmx:  # the list, and any message about what happened (out of band)
        context = list_context(request)
        return HttpResponse(
            render_to_string("chats/index.html#conversation_list", context, request)
            + render_to_string("base.html#flash_messages", {"oob_flash": True}, request)
        )
    target = request.POST.get("next") or ""
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = "chats:index"
    return redirect(target)


def _flag(request, name: str) -> bool:
    return request.POST.get(name, "1") not in {"0", "false", "off", ""}


@login_required
@require_POST
def conversation_pin(request, pk):
    conversation = selectors.conversation_for_user(user=request.user, pk=pk)
    organisation.conversation_mark(
        actor=request.user, conversation=conversation, pinned=_flag(request, "pinned")
    )
    return _back(request)


@login_required
@require_POST
def conversation_archive(request, pk):
    conversation = selectors.conversation_for_user(user=request.user, pk=pk)
    archived = _flag(request, "archived")
    organisation.conversation_mark(actor=request.user, conversation=conversation, archived=archived)
    if not request.htmx:
        messages.success(
            request,
            f"Archived “{conversation.display_title}”. It is under Archived in the list."
            if archived
            else f"“{conversation.display_title}” is back in your list.",
        )
    return _back(request)


@login_required
@require_POST
def conversation_move(request, pk):
    conversation = selectors.conversation_for_user(user=request.user, pk=pk)
    form = MoveForm(request.POST, user=request.user)
    if form.is_valid():
        organisation.conversation_mark(
            actor=request.user, conversation=conversation, folder=form.cleaned_data["folder"]
        )
    else:
        messages.error(request, "Pick one of your folders.")
    return _back(request)


@login_required
@require_POST
def conversation_list_rename(request, pk):
    """Rename from the list (the conversation page has its own form)."""
    from accounts.access import Action

    conversation = selectors.conversation_for_user(user=request.user, pk=pk, action=Action.WRITE)
    form = RenameForm(request.POST)
    if form.is_valid():
        services.conversation_update(
            actor=request.user, conversation=conversation, title=form.cleaned_data["title"]
        )
    else:
        messages.error(request, "Title not changed: at most 200 characters.")
    return _back(request)


@login_required
@require_POST
def conversations_bulk(request):
    form = BulkForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
        return _back(request)
    action = form.cleaned_data["action"]
    result = organisation.conversations_bulk(
        actor=request.user, ids=form.cleaned_data["conversation_id"], action=action
    )
    verb = {"delete": "Deleted", "archive": "Archived", "unarchive": "Restored"}[action]
    (messages.success if not (result.refused or result.missing) else messages.warning)(
        request, result.summary(verb)
    )
    return _back(request)


@login_required
@require_POST
def folder_create(request):
    form = FolderForm(request.POST)
    if form.is_valid():
        try:
            folder = organisation.folder_create(actor=request.user, name=form.cleaned_data["name"])
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, f"Folder “{folder.name}” created.")
            if not request.htmx:
                return redirect(f"{request.path_info.rsplit('folders/', 1)[0]}?folder={folder.pk}")
    else:
        messages.error(request, "Give the folder a name (at most 100 characters).")
    return _back(request)


@login_required
@require_POST
def folder_rename(request, pk):
    folder = organisation.folder_for_user(user=request.user, pk=pk)
    form = FolderForm(request.POST)
    try:
        if not form.is_valid():
            raise ValidationError("Give the folder a name (at most 100 characters).")
        organisation.folder_rename(
            actor=request.user, folder=folder, name=form.cleaned_data["name"]
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return _back(request)


@login_required
@require_POST
def folder_delete(request, pk):
    folder = organisation.folder_for_user(user=request.user, pk=pk)
    name = folder.name
    organisation.folder_delete(actor=request.user, folder=folder)
    messages.success(request, f"Folder “{name}” deleted; its conversations are back in the list.")
    return redirect("chats:index")
