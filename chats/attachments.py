"""Files and images attached to a message (issue 14, "Files in chat").

An attachment is uploaded from the composer before the message is sent: it is *pending* (no
message) until its uploader's next message in that conversation, which takes all of theirs.

- Images (by their bytes) are re-encoded by chats.images and kept under generated names in
  `$DATA_DIR/uploads/chat/`; we serve our re-encoding and its thumbnail, never the upload. They
  go to the model as image parts — only if its adapter and model take images (a clear refusal
  otherwise, before anything is saved).
- Anything else is a document: read into the conversation's files collection (made on the first
  one, owned like the conversation, hidden from collection lists) by the RAG ingestion, whose
  limits and checks apply (type sniffing, size, zip bombs, malformed PDFs: a failed document
  with the reason, the collection intact). Replies retrieve from that collection like from any
  attached one.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404

from accounts import access
from accounts.access import Action
from chats import images
from chats.models import Attachment, AttachmentKind, Conversation
from providers.adapters.base import ImagePart

MAX_PENDING = 10  # attachments waiting for one user's next message in a conversation
MAX_IMAGES_SENT = 8  # the newest images on the path that go with a request
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp")


def storage_dir() -> Path:
    path = Path(settings.DATA_DIR) / "uploads" / "chat"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def _store(data: bytes) -> str:
    name = secrets.token_hex(16)
    (storage_dir() / name).write_bytes(data)
    return name


def _load(name: str) -> bytes:
    if not name or "/" in name or name.startswith("."):
        raise FileNotFoundError(name)
    return (storage_dir() / name).read_bytes()


def stored_path(name: str) -> Path:
    if not name or "/" in name or name.startswith("."):
        raise Http404
    return storage_dir() / name


def _clean_name(filename: str) -> str:
    from rag.extraction import clean_text
    from rag.uploads import clean_filename

    return clean_filename(clean_text(filename or ""))[:255] or "untitled"


def files_collection(*, actor, conversation: Conversation):
    """The conversation's files collection, made on first use (owned like the conversation)."""
    from rag import services as rag_services
    from rag.models import Collection

    if conversation.files_collection_id is not None:
        found = Collection.objects.filter(pk=conversation.files_collection_id).first()
        if found is not None:
            return found
    collection = rag_services.collection_create(
        actor=actor,
        name=f"Files of “{conversation.display_title}”"[:120],
        owner_team=conversation.owner_team,
    )
    Collection.objects.filter(pk=collection.pk).update(for_conversation=True)
    collection.for_conversation = True
    Conversation.objects.filter(pk=conversation.pk).update(files_collection=collection)
    conversation.files_collection = collection
    return collection


@transaction.atomic
def attachment_add(*, actor, conversation: Conversation, filename: str, data: bytes) -> Attachment:
    """A pending attachment of `actor` in `conversation`, or ValidationError with the reason
    (nothing saved then)."""
    access.require(actor, conversation, Action.USE)
    name = _clean_name(filename)
    pending = Attachment.objects.filter(
        conversation=conversation, uploaded_by=actor, message__isnull=True
    )
    if pending.count() >= MAX_PENDING:
        raise ValidationError({"file": f"At most {MAX_PENDING} files per message."})
    if not data:
        raise ValidationError({"file": f"“{name}” is empty."})
    if images.looks_like_image(data):
        try:
            image = images.image_normalize(data)
        except images.ImageRefused as exc:
            raise ValidationError({"file": f"“{name}”: {exc}"}) from None
        stored, thumb = _store(image.data), _store(image.thumb)
        return Attachment.objects.create(
            conversation=conversation,
            kind=AttachmentKind.IMAGE,
            name=name,
            uploaded_by=actor,
            size_bytes=len(image.data),
            media_type=image.media_type,
            width=image.width,
            height=image.height,
            stored_name=stored,
            thumb_name=thumb,
        )
    if name.lower().endswith(IMAGE_SUFFIXES):
        raise ValidationError(
            {
                "file": f"“{name}” is named like an image but its content isn't a PNG, JPEG, GIF "
                "or WebP image."
            }
        )
    from rag import services as rag_services

    collection = files_collection(actor=actor, conversation=conversation)
    outcome = rag_services.document_add_bytes(
        actor=actor, collection=collection, filename=name, data=data
    )
    if outcome.document is None:
        raise ValidationError({"file": f"“{name}”: {outcome.message}"})
    return Attachment.objects.create(
        conversation=conversation,
        kind=AttachmentKind.DOCUMENT,
        name=name,
        uploaded_by=actor,
        size_bytes=len(data),
        media_type=outcome.document.file_type,
        document=outcome.document,
    )


def attachment_remove(*, actor, conversation: Conversation, attachment_id) -> None:
    """Remove one of `actor`'s pending attachments (sent ones belong to their message)."""
    access.require(actor, conversation, Action.USE)
    attachment = (
        pending_for(actor=actor, conversation=conversation).filter(pk=_pk(attachment_id)).first()
    )
    if attachment is None:
        raise Http404("No such pending attachment.")
    attachment.delete()  # its files go once this commits (files_release_on_delete)


def attachments_copy(*, source, message) -> list[Attachment]:
    """An edited message keeps what its original carried: the same stored images and
    documents, now also attached to the new sibling (one INSERT). The files are shared, so
    they are removed only when no attachment row names them any more."""
    originals = list(Attachment.objects.filter(message=source).order_by("created_at", "id"))
    if not originals:
        return []
    copies = Attachment.objects.bulk_create(
        [
            Attachment(
                conversation_id=message.conversation_id,
                message=message,
                kind=a.kind,
                name=a.name,
                uploaded_by_id=a.uploaded_by_id,
                size_bytes=a.size_bytes,
                media_type=a.media_type,
                width=a.width,
                height=a.height,
                stored_name=a.stored_name,
                thumb_name=a.thumb_name,
                document_id=a.document_id,
            )
            for a in originals
        ]
    )
    message.has_attachments = True
    message.save(update_fields=["has_attachments"])
    return copies


def _unlink_unreferenced(names: set[str]) -> None:
    """Remove the stored files among `names` that no attachment row names any more."""
    from django.db.models import Q

    if not names:
        return
    kept = set()
    for stored, thumb in Attachment.objects.filter(
        Q(stored_name__in=names) | Q(thumb_name__in=names)
    ).values_list("stored_name", "thumb_name"):
        kept.update((stored, thumb))
    for name in names - kept:
        stored_path(name).unlink(missing_ok=True)


def files_release_on_delete(sender, instance: Attachment, **kwargs) -> None:
    """pre_delete receiver for attachments (chats.apps): once the deletion commits (a rollback
    keeps them), the attachment's stored files go unless another row still names them (an
    edit's or a fork's copy) — however the row goes: with its message, its conversation, or by
    cascade when the conversation's owner (an account, a team) is deleted."""
    names = {name for name in (instance.stored_name, instance.thumb_name) if name}
    if names:
        transaction.on_commit(lambda: _unlink_unreferenced(names))


def conversation_files_delete(*, actor, conversation: Conversation) -> None:
    """Call inside the transaction that deletes `conversation` (`actor` may delete it): its
    files collection goes with it through rag's own deletion (documents, chunks, uploads, and
    its own HNSW graph if it grew one) — unless a fork of it still reads from it. Its images'
    files go with their attachment rows (`files_release_on_delete`)."""
    from rag import services as rag_services
    from rag.models import Collection

    if conversation.files_collection_id is None:
        return
    shared = (
        Conversation.objects.filter(files_collection_id=conversation.files_collection_id)
        .exclude(pk=conversation.pk)
        .exists()
    )
    files = Collection.objects.filter(
        pk=conversation.files_collection_id, for_conversation=True
    ).first()
    if files is not None and not shared:
        rag_services.collection_delete(actor=actor, collection=files)


def _pk(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise Http404 from None


def pending_for(*, actor, conversation: Conversation):
    return Attachment.objects.filter(
        conversation=conversation, uploaded_by=actor, message__isnull=True
    ).select_related("document")


def attachments_visible(*, user, conversation: Conversation) -> list[Attachment]:
    """Sent attachments of the conversation, and the user's own pending ones."""
    from django.db.models import Q

    access.require(user, conversation, Action.READ)
    return list(
        Attachment.objects.filter(conversation=conversation)
        .filter(Q(message__isnull=False) | Q(uploaded_by_id=user.pk))
        .select_related("document")
        .order_by("created_at", "id")
    )


def attachment_for_user(*, user, conversation: Conversation, attachment_id) -> Attachment:
    """An attachment of *this* conversation the user may see: a sent one for every reader of
    the conversation, a pending one for its uploader only; anything else 404."""
    access.require(user, conversation, Action.READ)
    attachment = (
        Attachment.objects.filter(conversation=conversation, pk=_pk(attachment_id))
        .select_related("document")
        .first()
    )
    if attachment is None or (
        attachment.message_id is None and attachment.uploaded_by_id != user.pk
    ):
        raise Http404("No such attachment in this conversation.")
    return attachment


def attachments_take(*, actor, conversation: Conversation, message) -> list[Attachment]:
    """The sender's pending attachments now belong to `message` (inside message_send)."""
    taken = list(pending_for(actor=actor, conversation=conversation))
    if taken:
        Attachment.objects.filter(pk__in=[a.pk for a in taken]).update(message=message)
        message.has_attachments = True
        message.save(update_fields=["has_attachments"])
    return taken


def image_parts(*, message_ids: list[int]) -> dict[int, tuple[ImagePart, ...]]:
    """The images of these messages as the model receives them (our re-encodings), newest
    `MAX_IMAGES_SENT` of the lot, by message id."""
    rows = list(
        Attachment.objects.filter(message_id__in=message_ids, kind=AttachmentKind.IMAGE).order_by(
            "-created_at", "-id"
        )[:MAX_IMAGES_SENT]
    )
    parts: dict[int, list[ImagePart]] = {}
    for row in reversed(rows):
        try:
            data = _load(row.stored_name)
        except OSError:
            continue  # its file is gone (a restore without uploads): send the text only
        parts.setdefault(row.message_id, []).append(
            ImagePart(row.media_type, data, row.name, row.width, row.height)
        )
    return {key: tuple(value) for key, value in parts.items()}


def vision_refusal(*, conversation: Conversation, credential, model: str) -> str | None:
    from providers.capabilities import model_sees_images

    if credential is None or model_sees_images(credential=credential, model=model):
        return None
    return (
        f"“{model}” ({credential.name}) can't see images. Pick a model that can (a vision "
        "model), or remove the image."
    )
