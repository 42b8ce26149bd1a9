"""Organising conversations: pins, the archive, folders, bulk actions, and search snippets.

Pins, archive and folders are one user's view of their list (`ConversationMark`), so anyone
who may read a conversation may organise it for themselves; deleting still follows the access
rules of the conversation."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F, FilteredRelation, Q, QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from accounts import access
from accounts.access import Action
from chats import attachments
from chats.models import Conversation, ConversationMark, Folder

MAX_BULK = 200  # conversations in one bulk action (a page of the list is 30)
MAX_FOLDERS = 200
SNIPPET_CHARS = 140


class View:
    """Which part of the list: the inbox (not archived, pinned first), the archive, a folder."""

    INBOX = "inbox"
    ARCHIVED = "archived"


# --- Reads -----------------------------------------------------------------------------------------


def folders_for_user(*, user) -> QuerySet[Folder]:
    return Folder.objects.filter(owner_user_id=user.pk).order_by("name", "pk")


def folder_for_user(*, user, pk) -> Folder:
    return access.get_for(user, Folder.objects.all(), pk, Action.WRITE)


def with_marks(conversations: QuerySet[Conversation], *, user) -> QuerySet[Conversation]:
    """Each conversation annotated with the user's `pinned_at`, `archived_at`, `folder_id`."""
    return conversations.annotate(
        my_mark=FilteredRelation("marks", condition=Q(marks__user_id=user.pk)),
        pinned_at=F("my_mark__pinned_at"),
        archived_at=F("my_mark__archived_at"),
        folder_id=F("my_mark__folder_id"),
    )


def in_view(
    conversations: QuerySet[Conversation], *, user, view: str = View.INBOX, folder=None
) -> QuerySet[Conversation]:
    """The part of the list asked for, pinned first (then newest activity)."""
    conversations = with_marks(conversations, user=user)
    if view == View.ARCHIVED:
        conversations = conversations.filter(archived_at__isnull=False)
        return conversations.order_by("-archived_at", "-id")
    conversations = conversations.filter(archived_at__isnull=True)
    if folder is not None:
        conversations = conversations.filter(folder_id=folder.pk)
    return conversations.order_by(F("pinned_at").desc(nulls_last=True), "-updated_at", "-id")


def snippet(text: str, needle: str, width: int = SNIPPET_CHARS) -> SafeString:
    """The text around the first match of `needle` (case-insensitive), escaped, with the match
    in <mark>. Empty when it doesn't match."""
    if not text or not needle:
        return SafeString("")
    at = text.upper().find(needle.upper())
    if at < 0:
        return SafeString("")
    start = max(0, at - (width - len(needle)) // 2)
    end = min(len(text), start + width)
    before, match, after = text[start:at], text[at : at + len(needle)], text[at + len(needle) : end]
    flat = lambda part: " ".join(part.split())  # noqa: E731
    return mark_safe(  # noqa: S308 - every part is escaped
        ("…" if start > 0 else "")
        + escape(flat(before))
        + (" " if before[-1:].isspace() else "")
        + f"<mark>{escape(match)}</mark>"
        + (" " if after[:1].isspace() else "")
        + escape(flat(after))
        + ("…" if end < len(text) else "")
    )


# --- Writes ------------------------------------------------------------------------------------------

_UNSET = object()


@transaction.atomic
def conversation_mark(
    *, actor, conversation: Conversation, pinned=None, archived=None, folder=_UNSET
) -> ConversationMark:
    """Pin/unpin, archive/unarchive, or file a conversation in one of the actor's folders (None:
    out of any folder) — for the actor only. Archiving unpins."""
    access.require(actor, conversation, Action.READ)
    if folder is not _UNSET and folder is not None:
        access.require(actor, folder, Action.WRITE)
    mark, _ = ConversationMark.objects.select_for_update().get_or_create(
        user=actor, conversation=conversation
    )
    now = timezone.now()
    if pinned is not None:
        mark.pinned_at = now if pinned else None
    if archived is not None:
        mark.archived_at = now if archived else None
        if archived:
            mark.pinned_at = None
    if folder is not _UNSET:
        mark.folder = folder
    mark.save()
    return mark


def folder_create(*, actor, name: str) -> Folder:
    name = (name or "").strip()[:100]
    if not name:
        raise ValidationError({"name": "Give the folder a name."})
    folders = folders_for_user(user=actor)
    if folders.filter(name__iexact=name).exists():
        raise ValidationError({"name": f"You already have a folder called “{name}”."})
    if folders.count() >= MAX_FOLDERS:
        raise ValidationError({"name": f"At most {MAX_FOLDERS} folders."})
    folder = Folder(name=name)
    folder.set_owner(actor)
    folder.save()
    return folder


def folder_rename(*, actor, folder: Folder, name: str) -> Folder:
    access.require(actor, folder, Action.WRITE)
    name = (name or "").strip()[:100]
    if not name:
        raise ValidationError({"name": "Give the folder a name."})
    if folders_for_user(user=actor).filter(name__iexact=name).exclude(pk=folder.pk).exists():
        raise ValidationError({"name": f"You already have a folder called “{name}”."})
    folder.name = name
    folder.save(update_fields=["name"])
    return folder


def folder_delete(*, actor, folder: Folder) -> None:
    """The folder goes; its conversations stay (back in the main list)."""
    access.require(actor, folder, Action.WRITE)
    folder.delete()


def delete_action(conversation: Conversation) -> Action:
    """Deleting a team chat is managing the team's things; a personal one, writing your own."""
    return Action.MANAGE if conversation.owner_team_id else Action.WRITE


@dataclass(frozen=True)
class BulkResult:
    done: int
    refused: int  # ids that exist in the user's reach but the role doesn't allow the action
    missing: int  # ids that don't exist or the user can't see (never told apart)

    def summary(self, verb: str) -> str:
        parts = [f"{verb} {self.done} conversation{'' if self.done == 1 else 's'}."]
        if self.refused:
            parts.append(
                f"{self.refused} not deleted: team chats can only be deleted by a team admin."
                if verb == "Deleted"
                else f"{self.refused} skipped."
            )
        if self.missing:
            parts.append(f"{self.missing} not found.")
        return " ".join(parts)


@transaction.atomic
def conversations_bulk(*, actor, ids: list[int], action: str) -> BulkResult:
    """`delete`, `archive` or `unarchive` several conversations. Each id goes through the
    access rules on its own; ids outside the tenant count as not found."""
    if action not in {"delete", "archive", "unarchive"}:
        raise ValidationError({"action": "Pick delete, archive or unarchive."})
    if len(ids) > MAX_BULK:
        raise ValidationError({"conversation_id": f"At most {MAX_BULK} at a time."})
    done = refused = missing = 0
    for pk in dict.fromkeys(ids):
        try:
            conversation = access.get_for(actor, Conversation.objects.all(), pk)
            if action == "delete":
                access.require(actor, conversation, delete_action(conversation))
                attachments.conversation_files_delete(actor=actor, conversation=conversation)
                conversation.delete()
            else:
                conversation_mark(
                    actor=actor, conversation=conversation, archived=action == "archive"
                )
        except Http404:
            missing += 1
        except PermissionDenied:
            refused += 1
        else:
            done += 1
    return BulkResult(done, refused, missing)
