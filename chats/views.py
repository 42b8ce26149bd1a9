"""Chat pages: the conversation list, a conversation, settings, export, fork. Streaming happens
over the websocket (consumers.py); these views render and change the conversation itself."""

from __future__ import annotations

import asyncio
import contextvars
import json
import threading
from urllib.parse import urlencode

from asgiref.sync import async_to_sync, sync_to_async
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import BadRequest, ValidationError
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.text import slugify
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_POST

from accounts import access
from accounts import selectors as account_selectors
from accounts.access import Action
from accounts.views import _form_errors
from chats import (
    attachments,
    exports,
    frames,
    grounding,
    organisation,
    replies,
    selectors,
    services,
    streaming,
    titles,
)
from chats.forms import (
    CollectionLinkForm,
    NewConversationForm,
    RatingForm,
    RenameForm,
    SettingsForm,
)
from chats.models import Conversation
from chats.rendering import pygments_css
from providers import ratings as provider_ratings
from providers import selectors as provider_selectors
from providers import services as provider_services

PAGE_SIZE = 30


def _owner_team(request):
    team = request.team
    return team if team is not None and access.allows(request.user, team, Action.USE) else None


def list_context(request, current=None) -> dict:
    """The conversation list as the request asks for it: search, page, the inbox / archive /
    a folder (its id goes through the access rules), and which conversation is open. Read from
    the query string, or from the form an htmx list action posted."""
    if request.method == "POST":  # a list action: the list's state rides in `list_*` fields
        data = {
            key.removeprefix("list_"): value
            for key, value in request.POST.items()
            if key.startswith("list_") or key in {"current", "next"}
        }
    else:
        data = request.GET
    q = data.get("q", "")[:200]
    view = (
        organisation.View.ARCHIVED
        if data.get("view") == organisation.View.ARCHIVED
        else organisation.View.INBOX
    )
    folder = (
        organisation.folder_for_user(user=request.user, pk=data["folder"])
        if data.get("folder")
        else None
    )
    current_id = access.parse_id(data.get("current")) if request.method == "POST" else None
    if current is None and current_id is not None:
        current = Conversation(pk=current_id)
    try:
        listed = selectors.conversations_for_user(
            user=request.user, team=request.team, q=q, started_by_me=True
        )
    except ValidationError as exc:  # a NUL in the search
        raise BadRequest(" ".join(exc.messages)) from None
    conversations = organisation.in_view(
        listed,
        user=request.user,
        view=view,
        folder=folder,
    )
    if q.strip():
        conversations = selectors.with_match(conversations, q=q)
    page = Paginator(conversations, PAGE_SIZE).get_page(data.get("page"))
    roles = {t.pk: t.my_role for t in account_selectors.teams_for_user(user=request.user)}

    def may(conversation, action) -> bool:
        if conversation.owner_team_id is None:
            return conversation.owner_user_id == request.user.pk
        return access.role_allows(roles.get(conversation.owner_team_id), action)

    query = {
        key: value
        for key, value in (("q", q), ("view", view), ("folder", folder.pk if folder else ""))
        if value and value != organisation.View.INBOX
    }
    next_url = data.get("next", "") if request.method == "POST" else request.get_full_path()
    return {
        "page": page,
        "q": q,
        "list_query": urlencode(query) + "&" if query else "",
        "list_next": next_url if next_url.startswith("/") and not next_url.startswith("//") else "",
        "writable_ids": {c.pk for c in page.object_list if may(c, Action.WRITE)},
        "manageable_ids": {
            c.pk
            for c in page.object_list
            if may(c, Action.MANAGE if c.owner_team_id else Action.WRITE)
        },
        "list_view": view,
        "folder": folder,
        "folders": list(organisation.folders_for_user(user=request.user)),
        "current": current,
        "nav_active": "chat",
    }


def picker_owner(user, team=None, *, key: str = "") -> dict:
    """One owner's models for a picker: a team chat runs on the team's credentials, a personal
    one on the user's own (services refuse anything else). `can_default`: whether this user may
    set the owner's default (their own; a team's if they manage it)."""
    return {
        "key": key,
        "team": team,
        "label": team.name if team is not None else "Personal",
        "models": provider_selectors.model_choices_for(user=user, team=team),
        "can_default": team is None or access.allows(user, team, Action.MANAGE),
    }


def _new_chat_context(request, form=None) -> dict:
    """The new-chat composer: where it will be visible (personal or a team the user may post
    in, the current team first chosen) and the model."""
    teams = [
        team
        for team in account_selectors.teams_for_user(user=request.user)
        if access.role_allows(team.my_role, Action.USE)
    ]
    if form is None:
        default = _owner_team(request)
        form = NewConversationForm(
            user=request.user, initial={"owner_team": default.pk if default else ""}
        )
    chosen = str(form["owner_team"].value() or "")
    # The models each possible owner may run on (a team chat runs on the team's credentials,
    # a personal one on yours): the picker shows those of the owner chosen above it.
    owners = [picker_owner(request.user)]
    for team in teams:
        provider_services.credentials_ensure_echo(user=request.user, team=team)
        owners.append(picker_owner(request.user, team, key=str(team.pk)))
    posted = form["model_choice"].value() if form.is_bound else None
    if not posted:  # the chosen owner's start: its default, else the model last used
        start = next((o["models"].start for o in owners if o["key"] == chosen), None)
        posted = start.value if start else ""
    return {
        **list_context(request),
        "owners": owners,
        "has_models": any(owner["models"].choices for owner in owners),
        "picked": posted,
        "new_form": form,
        "teams": teams,
        "chosen_owner": chosen,
    }


@login_required
def index(request):
    provider_services.credentials_ensure_echo(user=request.user)
    if request.htmx and request.GET.get("partial") == "list":
        return render(request, "chats/index.html#conversation_list", list_context(request))
    return render(request, "chats/index.html", _new_chat_context(request))


def _begin_new(request):
    """Validate the new-chat form and write the conversation with its first message: the plan
    and its `started` frame, or the page to show again with the errors (nothing saved)."""
    form = NewConversationForm(request.POST, user=request.user)
    if form.is_valid():
        owner_team = form.cleaned_data["owner_team"]
        provider_services.credentials_ensure_echo(user=request.user, team=owner_team)
        choice = form.cleaned_data["model_choice"]
        if choice is None:  # no picker (no script, or an API-like post): the owner's start
            start = provider_selectors.model_choices_for(user=request.user, team=owner_team).start
            choice = (start.credential, start.model) if start else None
        credential, model = choice if choice else (None, "")
        try:
            plan = services.conversation_begin(
                actor=request.user,
                owner_team=owner_team,
                credential=credential,
                model=model,
                content=form.cleaned_data["content"],
            )
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            return plan, frames.started_frame(plan)
    return None, render(request, "chats/index.html", _new_chat_context(request, form), status=400)


@login_required
@require_POST
async def conversation_new(request):
    """A new chat starts with its first message: the conversation, the message and the reply
    are created together, the reply starts on this process's loop (like one sent over the
    websocket), and the browser goes to the conversation, which picks up the stream."""
    plan, result = await sync_to_async(_begin_new)(request)
    if plan is None:
        return result
    # The reply outlives this request: start it in a fresh context, so it doesn't inherit the
    # request's (asgiref's per-request executor ends with the response).
    reply = await asyncio.get_running_loop().create_task(
        streaming.begin(plan, started=result, render=frames.final_fields),
        context=contextvars.Context(),
    )
    if threading.current_thread() is not threading.main_thread():
        # Not the server's loop (Daphne runs its loop in the main thread) but asgiref's
        # per-call one for a synchronous caller, which closes with this response: finish the
        # reply first, as the REST API does without `stream`.
        await asyncio.shield(reply.task)
    return redirect("chats:detail", pk=plan.conversation_id)


@login_required
def conversation_detail(request, pk):
    conversation = selectors.conversation_for_user(user=request.user, pk=pk)
    replies.replies_mark_stale(conversation_id=conversation.pk, running=streaming.running_ids())
    leaf = request.GET.get("leaf")
    leaf_id = access.parse_id(leaf) if leaf else None
    if leaf and leaf_id is None:
        raise BadRequest("leaf must be a message id.")
    view = selectors.conversation_view(conversation=conversation, leaf_id=leaf_id)
    selectors.with_ratings(view, user=request.user)
    can_use = access.allows(request.user, conversation, Action.USE)
    can_write = access.allows(request.user, conversation, Action.WRITE)
    if can_use:
        provider_services.credentials_ensure_echo(user=request.user, team=conversation.owner_team)
    owner = picker_owner(request.user, conversation.owner_team) if can_use else None
    settings_form = SettingsForm(
        user=request.user,
        initial={
            "model_choice": f"{conversation.credential_id}|{conversation.model}"
            if conversation.credential_id
            else "",
            "system_prompt": conversation.system_prompt,
            **(conversation.params or {}),
        },
    )
    context = {
        **list_context(request, current=conversation),
        "conversation": conversation,
        "view": view,
        "unpriced_calls": selectors.conversation_unpriced_calls(conversation=conversation),
        "can_use": can_use,
        "can_write": can_write,
        "can_delete": access.allows(
            request.user,
            conversation,
            Action.MANAGE if conversation.owner_team_id else Action.WRITE,
        ),
        "owner": owner,
        "picker_owners": [owner] if owner else [],
        "current_choice": f"{conversation.credential_id}|{conversation.model}"
        if conversation.credential_id
        else "",
        "picker_has_current": bool(
            owner and owner["models"].find(conversation.credential_id, conversation.model)
        ),
        "model_refusal": services.credential_refusal(
            conversation=conversation, credential=conversation.credential
        )
        if conversation.credential_id
        else None,
        "settings_form": settings_form,
        "audience": selectors.audience(conversation=conversation),
        **_collections_context(request, conversation, can_write),
        "pending": list(attachments.pending_for(actor=request.user, conversation=conversation))
        if can_use
        else [],
    }
    return render(request, "chats/conversation.html", context)


def _collections_context(request, conversation, can_write: bool, error: str = "") -> dict:
    return {
        "conversation": conversation,
        "can_write": can_write,
        "linked": grounding.conversation_collections(conversation=conversation),
        "attachable": list(
            grounding.collections_attachable(user=request.user, conversation=conversation)
        )
        if can_write
        else [],
        "collection_error": error,
    }


@login_required
@require_POST
def conversation_collections(request, pk):
    """Attach or detach a collection: the panel again (htmx), or back to the conversation."""
    conversation = selectors.conversation_for_user(user=request.user, pk=pk, action=Action.WRITE)
    form = CollectionLinkForm(request.POST)
    error = ""
    if not form.is_valid():
        error = "Pick a collection."
    else:
        data = form.cleaned_data
        try:
            if data["action"] == "attach":
                grounding.collection_attach(
                    actor=request.user,
                    conversation=conversation,
                    collection_id=data["collection_id"],
                )
            else:
                grounding.collection_detach(
                    actor=request.user,
                    conversation=conversation,
                    collection_id=data["collection_id"],
                )
        except ValidationError as exc:
            error = " ".join(exc.messages)
    if request.htmx:
        return render(
            request,
            "chats/conversation.html#collections",
            # 200 either way: htmx swaps only successful answers, and the panel says what's wrong.
            _collections_context(request, conversation, True, error),
        )
    if error:
        messages.error(request, error)
    return redirect("chats:detail", pk=conversation.pk)


@login_required
@require_POST
def conversation_settings(request, pk):
    conversation = selectors.conversation_for_user(user=request.user, pk=pk, action=Action.WRITE)
    form = SettingsForm(request.POST, user=request.user)
    if form.is_valid():
        data = form.cleaned_data
        changes = {}
        # The model picker posts alone; the settings panel posts everything.
        if any(key in request.POST for key in services.PARAM_KEYS):
            changes["params"] = {key: data.get(key) for key in services.PARAM_KEYS}
        if "system_prompt" in request.POST:
            changes["system_prompt"] = data["system_prompt"]
        if data["model_choice"]:
            changes["credential"], changes["model"] = data["model_choice"]
        try:
            services.conversation_update(actor=request.user, conversation=conversation, **changes)
        except ValidationError as exc:
            _form_errors(form, exc)
    if request.htmx:
        return render(
            request,
            "chats/conversation.html#settings",
            {
                "conversation": conversation,
                "settings_form": form,
                "can_write": True,
                "saved": form.is_valid() and not form.errors,
            },
            status=200 if not form.errors else 400,
        )
    if form.errors:
        messages.error(
            request,
            "Settings not saved: "
            + "; ".join(e for errors in form.errors.values() for e in errors),
        )
    return redirect("chats:detail", pk=conversation.pk)


@login_required
@require_POST
def conversation_rename(request, pk):
    conversation = selectors.conversation_for_user(user=request.user, pk=pk, action=Action.WRITE)
    form = RenameForm(request.POST)
    if form.is_valid():
        services.conversation_update(
            actor=request.user, conversation=conversation, title=form.cleaned_data["title"]
        )
    else:
        errors = "; ".join(e for field_errors in form.errors.values() for e in field_errors)
        messages.error(request, f"Title not changed: {errors}")
    return redirect("chats:detail", pk=conversation.pk)


@login_required
@require_POST
def conversation_title(request, pk):
    """Let the conversation's model write its title (a real call: it is recorded and charged)."""
    conversation = selectors.conversation_for_user(user=request.user, pk=pk, action=Action.USE)
    try:
        title = async_to_sync(titles.title_from_model)(user=request.user, conversation=conversation)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Titled “{title}”.")
    return redirect("chats:detail", pk=conversation.pk)


@login_required
def conversation_delete(request, pk):
    conversation = selectors.conversation_for_user(user=request.user, pk=pk)
    if request.method == "POST":
        title = conversation.display_title
        services.conversation_delete(actor=request.user, conversation=conversation)
        messages.success(request, f"Deleted “{title}”. Its spend stays in Usage.")
        return redirect("chats:index")
    access.require(
        request.user, conversation, Action.MANAGE if conversation.owner_team_id else Action.WRITE
    )
    return render(
        request,
        "chats/conversation_delete.html",
        {"conversation": conversation, "nav_active": "chat"},
    )


@login_required
@require_POST
def conversation_fork(request, pk):
    conversation = selectors.conversation_for_user(user=request.user, pk=pk, action=Action.WRITE)
    message_id = request.POST.get("message_id", "")
    fork = services.conversation_fork(
        actor=request.user, conversation=conversation, message_id=message_id
    )
    messages.success(
        request, "Forked: this is a new conversation with the path up to that message."
    )
    return redirect("chats:detail", pk=fork.pk)


@login_required
def conversation_export(request, pk, fmt):
    conversation = selectors.conversation_for_user(user=request.user, pk=pk)
    name = slugify(conversation.display_title)[:60] or f"conversation-{conversation.pk}"
    if fmt == "json":
        body, content_type = (
            json.dumps(exports.as_json(conversation), indent=2, ensure_ascii=False),
            "application/json",
        )
    else:
        body, content_type = exports.as_markdown(conversation), "text/markdown; charset=utf-8"
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = (
        f'attachment; filename="{name}.{"json" if fmt == "json" else "md"}"'
    )
    return response


@cache_control(max_age=86400, public=True)
def highlight_css(request):
    """The code-highlighting stylesheet (light and dark), generated from Pygments' styles."""
    return HttpResponse(pygments_css(), content_type="text/css; charset=utf-8")


def _pending_response(request, conversation, errors: list[str]):
    """The pending list (htmx: 200 even with refusals, which it lists — htmx swaps only
    successful answers), or back to the conversation with the refusals as messages."""
    if request.htmx:
        return render(
            request,
            "chats/conversation.html#pending",
            {
                "conversation": conversation,
                "pending": list(
                    attachments.pending_for(actor=request.user, conversation=conversation)
                ),
                "attach_errors": errors,
            },
        )
    for error in errors:
        messages.error(request, error)
    return redirect("chats:detail", pk=conversation.pk)


@login_required
@require_POST
def attachment_upload(request, pk):
    """Files and images for the next message (multipart `file`, one or more): each is checked,
    images re-encoded, documents queued for reading; the pending list comes back with a line
    for each file refused."""
    conversation = selectors.conversation_for_user(user=request.user, pk=pk, action=Action.USE)
    errors = [
        f"“{name}”: {reason}" for name, reason in getattr(request, "upload_refused", {}).items()
    ]
    files = request.FILES.getlist("file")
    if not files and not errors:
        errors.append("Choose a file to attach.")
    for upload in files:
        try:
            attachments.attachment_add(
                actor=request.user,
                conversation=conversation,
                filename=upload.name,
                data=upload.read(),
            )
        except ValidationError as exc:
            errors.append(" ".join(exc.messages))
    return _pending_response(request, conversation, errors)


@login_required
@require_POST
def attachment_remove(request, pk, attachment_id):
    conversation = selectors.conversation_for_user(user=request.user, pk=pk, action=Action.USE)
    attachments.attachment_remove(
        actor=request.user, conversation=conversation, attachment_id=attachment_id
    )
    return _pending_response(request, conversation, [])


@login_required
def attachment_file(request, pk, attachment_id, variant):
    """An attached image as we re-encoded it (or its thumbnail); documents are read through
    their collection. Never the uploaded bytes, never sniffed by the browser."""
    conversation = selectors.conversation_for_user(user=request.user, pk=pk)
    attachment = attachments.attachment_for_user(
        user=request.user, conversation=conversation, attachment_id=attachment_id
    )
    name = attachment.thumb_name if variant == "thumb" else attachment.stored_name
    if attachment.kind != "image" or not name:
        raise Http404
    path = attachments.stored_path(name)
    if not path.exists():
        raise Http404
    response = FileResponse(path.open("rb"), content_type=attachment.media_type)
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, max-age=86400"
    response["Content-Disposition"] = "inline"
    return response


@login_required
@require_POST
def message_rate(request, pk, message_pk):
    """Thumbs up/down (and a note) on a reply: the rating fragment for htmx, else back to it."""
    conversation = selectors.conversation_for_user(user=request.user, pk=pk)
    form = RatingForm(request.POST)
    error = ""
    rating = None
    if form.is_valid():
        try:
            rating = services.message_rate(
                actor=request.user,
                conversation=conversation,
                message_id=message_pk,
                value=form.cleaned_data["value"],
                note=form.cleaned_data["note"] if "note" in request.POST else None,
            )
        except ValidationError as exc:
            error = "; ".join(exc.messages)
    else:
        error = "; ".join(e for errors in form.errors.values() for e in errors)
    message = conversation.messages.get(pk=message_pk)  # message_rate found it (or 404'd)
    message.my_rating = (
        provider_ratings.ratings_for(user=request.user, message_ids=[message.pk]).get(message.pk)
        if error
        else rating
    )
    if request.htmx:
        return render(
            request,
            "chats/conversation.html#rating",
            {"m": message, "just_rated": rating is not None, "rating_error": error},
            status=400 if error else 200,
        )
    if error:
        messages.error(request, f"Rating not saved: {error}")
    return redirect(reverse("chats:detail", args=[conversation.pk]) + f"#message-{message.pk}")
