"""Files and images attached to chat messages: images re-encoded and sent as image parts only to
models that see images; documents read into the conversation's files collection and retrieved
from; malformed, oversize, bomb and lying uploads refused clearly with nothing else harmed."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import Http404
from django.test import Client
from PIL import Image

from chats import attachments, services
from chats.models import Attachment, Conversation, Message
from providers import services as provider_services
from rag.models import Collection, DocStatus, Document
from rag.tests.documents import docx_bomb, pdf, png
from tests.api_client import bearer


@pytest.fixture(autouse=True)
def _defaults(fresh_cache, one_attempt):
    """Throttle counters start at zero; no retry backoff."""


@pytest.fixture
def unread_documents_not_awaited(monkeypatch):
    """For tests about files, not answers: no task worker reads the documents here, and a reply
    would wait `WAIT_FOR_DOCUMENTS` (90 s) for them before answering without them."""
    import rag.grounding

    monkeypatch.setattr(rag.grounding, "WAIT_FOR_DOCUMENTS", 0.0)


def photo(width=640, height=480, fmt="JPEG", comment=b"secret-exif-comment") -> bytes:
    out = io.BytesIO()
    image = Image.new("RGB", (width, height), (200, 30, 30))
    if fmt == "JPEG":
        image.save(out, "JPEG", comment=comment)
    else:
        image.save(out, fmt)
    return out.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims `width` × `height` (a decompression bomb's header)."""

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def echo_conversation(user, team=None):
    credential = provider_services.credentials_ensure_echo(user=user, team=team)
    return services.conversation_start(
        actor=user, owner_team=team, credential=credential, model="echo"
    )


def post(api, conversation, content: str):
    return api.post(f"/api/conversations/{conversation.pk}/messages/", {"content": content})


# --- Images ----------------------------------------------------------------------------------------


def test_an_image_is_re_encoded_without_metadata_and_echo_receives_it(alice, api_for):
    conversation = echo_conversation(alice)
    upload = photo()
    attachment = attachments.attachment_add(
        actor=alice, conversation=conversation, filename="holiday.jpg", data=upload
    )

    response = post(api_for(alice), conversation, "What is in this picture?")

    assert response.status_code == 201, response.content
    stored = attachments.stored_path(attachment.stored_name).read_bytes()
    assert stored != upload and b"secret-exif-comment" not in stored
    assert (attachment.media_type, attachment.width, attachment.height) == ("image/jpeg", 640, 480)
    reply = response.json()["reply"]["content"]
    assert "*image 1:* `holiday.jpg` (image/jpeg, 640×480" in reply
    message = Message.objects.get(pk=response.json()["user_message"]["id"])
    assert message.has_attachments and list(message.attachments.all()) == [attachment]


def test_a_vision_model_gets_the_image_as_a_data_url_part(
    alice, api_for, make_credential, fake_provider
):
    credential = make_credential(alice, "openai_compatible")
    conversation = services.conversation_start(actor=alice, credential=credential, model="llava:7b")
    attachments.attachment_add(
        actor=alice, conversation=conversation, filename="a.png", data=photo(fmt="PNG")
    )

    response = post(api_for(alice), conversation, "Describe it")

    assert response.status_code == 201, response.content
    body = fake_provider.requests[-1].body
    parts = body["messages"][-1]["content"]
    assert parts[0] == {"type": "text", "text": "Describe it"}
    assert parts[1]["image_url"]["url"].startswith("data:image/jpeg;base64,/9j/")


def test_an_image_for_a_model_without_vision_is_refused_and_nothing_is_sent(
    alice, api_for, make_credential, fake_provider
):
    credential = make_credential(alice, "openai_compatible")
    conversation = services.conversation_start(
        actor=alice, credential=credential, model="text-only"
    )
    attachment = attachments.attachment_add(
        actor=alice, conversation=conversation, filename="a.png", data=photo(fmt="PNG")
    )

    response = post(api_for(alice), conversation, "Describe it")

    assert response.status_code == 400
    assert "can't see images" in response.content.decode()
    assert not Message.objects.filter(conversation=conversation).exists()
    attachment.refresh_from_db()
    assert attachment.message_id is None  # still waiting: pick a vision model and send again
    assert fake_provider.requests == []


def test_images_in_the_history_refuse_a_send_to_a_model_without_vision_and_nothing_is_created(
    alice, api_for, make_credential, fake_provider
):
    """The send's one write goes in a transaction when the history has images: the vision
    check after it must roll it back."""
    credential = make_credential(alice, "openai_compatible")
    conversation = services.conversation_start(actor=alice, credential=credential, model="llava:7b")
    attachments.attachment_add(
        actor=alice, conversation=conversation, filename="a.png", data=photo(fmt="PNG")
    )
    assert post(api_for(alice), conversation, "Describe it").status_code == 201
    services.conversation_update(actor=alice, conversation=conversation, model="text-only")
    before = list(Message.objects.filter(conversation=conversation).values_list("pk", flat=True))
    count = Conversation.objects.get(pk=conversation.pk).message_count

    response = post(api_for(alice), conversation, "And now?")

    assert response.status_code == 400
    assert "can't see images" in response.content.decode()
    after = list(Message.objects.filter(conversation=conversation).values_list("pk", flat=True))
    assert after == before
    assert Conversation.objects.get(pk=conversation.pk).message_count == count


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("broken.png", png(8, 8)[:40], "damaged"),
        ("bomb.png", png_claiming(60_000, 60_000), "megapixels"),
        ("huge.jpg", b"\xff\xd8\xff" + b"\0" * (11 * 1024 * 1024), "at most 10 MB"),
        ("notes.png", b"just some text pretending", "named like an image"),
        ("page.gif", b"<html><script>alert(1)</script></html>", "named like an image"),
    ],
)
def test_bad_images_are_refused_with_a_reason_and_nothing_is_kept(alice, name, data, reason):
    conversation = echo_conversation(alice)
    with pytest.raises(ValidationError, match=reason):
        attachments.attachment_add(actor=alice, conversation=conversation, filename=name, data=data)
    assert not Attachment.objects.exists()


def test_an_attached_files_name_loses_the_controls_that_would_disguise_it(alice):
    conversation = echo_conversation(alice)
    image = attachments.attachment_add(
        actor=alice, conversation=conversation, filename="cat\u202egnp.exe", data=png(8, 8)
    )
    document = attachments.attachment_add(
        actor=alice, conversation=conversation, filename="a/b\\notes\u200f.txt", data=b"words"
    )
    assert (image.name, document.name, document.document.title) == (
        "catgnp.exe",
        "notes.txt",
        "notes.txt",
    )


def test_thumbnails_are_served_by_us_to_readers_only(
    alice, team, bob_teammate, charlie_outsider, client_for
):
    conversation = echo_conversation(alice, team)
    attachment = attachments.attachment_add(
        actor=alice, conversation=conversation, filename="a.jpg", data=photo(1200, 900)
    )
    url = f"/chat/{conversation.pk}/attachments/{attachment.pk}/thumb"

    assert client_for(bob_teammate).get(url).status_code == 404  # pending: alice's only
    mine = client_for(alice).get(url)
    assert mine.status_code == 200
    assert mine["Content-Type"] == "image/jpeg" and mine["X-Content-Type-Options"] == "nosniff"
    thumb = Image.open(io.BytesIO(b"".join(mine.streaming_content)))
    assert max(thumb.size) == 320
    services.message_send(actor=alice, conversation=conversation, parent_id=None, content="look")
    assert client_for(bob_teammate).get(url).status_code == 200  # sent: every reader
    assert client_for(charlie_outsider).get(url).status_code == 404


def test_the_upload_view_lists_pending_files_and_each_refusal(alice, client_for):
    conversation = echo_conversation(alice)
    client = client_for(alice)

    response = client.post(
        f"/chat/{conversation.pk}/attachments/",
        {
            "file": [
                SimpleUploadedFile("ok.png", photo(fmt="PNG"), content_type="image/png"),
                SimpleUploadedFile("liar.png", b"plain text", content_type="image/png"),
            ]
        },
        headers={"HX-Request": "true"},
    )

    page = response.content.decode()
    assert response.status_code == 200
    assert 'alt="ok.png"' in page
    assert "“liar.png”" in page and "named like an image" in page
    assert Attachment.objects.count() == 1


# --- Documents -------------------------------------------------------------------------------------


def test_a_document_is_read_into_the_conversations_files_collection_and_cited(
    alice, api_for, ingest, embedder
):
    conversation = echo_conversation(alice)
    attachment = attachments.attachment_add(
        actor=alice,
        conversation=conversation,
        filename="manual.txt",
        data=b"The boiler reset button is under the blue flap.",
    )
    conversation.refresh_from_db()
    files = conversation.files_collection
    assert files.for_conversation and attachment.document.collection_id == files.pk
    assert not Collection.objects.filter(pk=files.pk, for_conversation=False).exists()
    assert (
        ingest() == ["ready"]
        or attachment.document.__class__.objects.get(pk=attachment.document_id).status
        == DocStatus.READY
    )

    response = post(api_for(alice), conversation, "Where is the boiler reset button?")

    reply = response.json()["reply"]
    assert [s["title"] for s in reply["retrieval"]["sources"]] == ["manual.txt"]
    assert "blue flap" in reply["retrieval"]["context"]


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("tool.exe", b"MZ\x90\x00 not a document", "supported"),
        ("notes.txt", b"\x00\x01\x02\xff" * 64, "binary"),
    ],
)
def test_a_document_rag_cannot_read_is_refused_with_its_reason_not_a_server_error(
    alice, token_for, name, data, reason
):
    conversation = echo_conversation(alice)
    api = Client(headers=bearer(token_for(alice, "write")))

    response = api.post(
        f"/api/conversations/{conversation.pk}/attachments/",
        {"file": SimpleUploadedFile(name, data)},
    )

    assert response.status_code == 400, response.content
    [refusal] = response.json()["refused"]
    assert refusal["name"] == name and reason in refusal["reason"]
    assert not Attachment.objects.exists() and not Document.objects.exists()


def test_a_malformed_pdf_and_a_zip_bomb_fail_clearly_leaving_the_files_collection_intact(
    alice, ingest
):
    conversation = echo_conversation(alice)
    good = attachments.attachment_add(
        actor=alice, conversation=conversation, filename="ok.txt", data=b"fine words here"
    )
    broken = attachments.attachment_add(
        actor=alice,
        conversation=conversation,
        filename="broken.pdf",
        data=pdf(["hello"])[:200] + b"garbage",
    )
    bomb = attachments.attachment_add(
        actor=alice, conversation=conversation, filename="bomb.docx", data=docx_bomb()
    )

    ingest()

    statuses = {
        a.name: (a.document.status, a.document.error)
        for a in Attachment.objects.select_related("document").filter(
            pk__in=[good.pk, broken.pk, bomb.pk]
        )
    }
    assert statuses["ok.txt"] == (DocStatus.READY, "")
    assert statuses["broken.pdf"][0] == DocStatus.FAILED and statuses["broken.pdf"][1]
    assert statuses["bomb.docx"][0] == DocStatus.FAILED and statuses["bomb.docx"][1]
    assert good.document.chunks.count() == 1


def test_charlie_cannot_attach_to_or_remove_from_alices_conversation(alice, charlie_outsider):
    conversation = echo_conversation(alice)
    attachment = attachments.attachment_add(
        actor=alice, conversation=conversation, filename="a.png", data=photo(fmt="PNG")
    )
    with pytest.raises(Http404):
        attachments.attachment_for_user(
            user=charlie_outsider, conversation=conversation, attachment_id=attachment.pk
        )
    from django.core.exceptions import PermissionDenied

    with pytest.raises((Http404, PermissionDenied)):
        attachments.attachment_add(
            actor=charlie_outsider, conversation=conversation, filename="x.txt", data=b"x"
        )


def test_a_big_photo_is_scaled_down_to_the_largest_side_we_keep(alice):
    conversation = echo_conversation(alice)
    attachment = attachments.attachment_add(
        actor=alice, conversation=conversation, filename="big.jpg", data=photo(5000, 2500)
    )
    assert (attachment.width, attachment.height) == (2048, 1024)
    stored = Image.open(attachments.stored_path(attachment.stored_name))
    assert stored.size == (2048, 1024) and stored.format == "JPEG"


# --- Deleting a conversation removes its files; an edit keeps its attachments -------------------


def sent_image(user, conversation, api, name="holiday.png") -> Attachment:
    attachment = attachments.attachment_add(
        actor=user, conversation=conversation, filename=name, data=photo(fmt="PNG")
    )
    assert post(api, conversation, "Look").status_code == 201
    attachment.refresh_from_db()
    assert attachment.message_id is not None
    return attachment


def files_of(attachment: Attachment) -> list:
    return [
        attachments.stored_path(attachment.stored_name),
        attachments.stored_path(attachment.thumb_name),
    ]


def test_deleting_a_conversation_removes_its_images_from_storage_once_committed(
    alice, api_for, django_capture_on_commit_callbacks
):
    conversation = echo_conversation(alice)
    attachment = sent_image(alice, conversation, api_for(alice))
    assert all(path.exists() for path in files_of(attachment))

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = api_for(alice).delete(f"/api/conversations/{conversation.pk}/")
        assert all(path.exists() for path in files_of(attachment))  # not before the commit

    assert response.status_code == 204 and callbacks
    assert not any(path.exists() for path in files_of(attachment))
    assert not Attachment.objects.filter(pk=attachment.pk).exists()


def test_deleting_a_conversation_from_the_page_removes_its_images_too(
    alice, api_for, client_for, django_capture_on_commit_callbacks
):
    conversation = echo_conversation(alice)
    attachment = sent_image(alice, conversation, api_for(alice))
    with django_capture_on_commit_callbacks(execute=True):
        client_for(alice).post(f"/chat/{conversation.pk}/delete/")
    assert not any(path.exists() for path in files_of(attachment))


def test_bulk_deleting_conversations_removes_their_images_and_keeps_the_others(
    alice, api_for, client_for, django_capture_on_commit_callbacks
):
    api = api_for(alice)
    doomed, kept = echo_conversation(alice), echo_conversation(alice)
    gone = sent_image(alice, doomed, api)
    stays = sent_image(alice, kept, api)
    from chats import organisation

    with django_capture_on_commit_callbacks(execute=True):
        organisation.conversations_bulk(actor=alice, ids=[doomed.pk], action="delete")
    assert not any(path.exists() for path in files_of(gone))
    assert all(path.exists() for path in files_of(stays))


def test_a_deletion_that_rolls_back_keeps_every_file(alice, api_for):
    from django.db import transaction

    conversation = echo_conversation(alice)
    attachment = sent_image(alice, conversation, api_for(alice))
    with pytest.raises(RuntimeError), transaction.atomic():
        services.conversation_delete(actor=alice, conversation=conversation)
        raise RuntimeError("something after the delete failed")
    assert all(path.exists() for path in files_of(attachment))
    assert Attachment.objects.filter(pk=attachment.pk).exists()


def test_deleting_a_conversation_removes_its_files_collection_and_the_documents_upload(
    alice, django_capture_on_commit_callbacks
):
    from rag import uploads
    from rag.models import Chunk, Document

    conversation = echo_conversation(alice)
    attachment = attachments.attachment_add(
        actor=alice, conversation=conversation, filename="notes.txt", data=b"Boiler notes."
    )
    conversation.refresh_from_db()
    files = conversation.files_collection
    document = Document.objects.get(pk=attachment.document_id)
    upload = uploads.storage_dir() / document.stored_name
    assert document.stored_name and upload.exists()

    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_delete(actor=alice, conversation=conversation)

    assert not Collection.objects.filter(pk=files.pk).exists()
    assert not Document.objects.filter(pk=document.pk).exists()
    assert not Chunk.objects.filter(document_id=document.pk).exists()
    assert not upload.exists()


def test_bob_teammate_cannot_delete_a_team_conversation_nor_its_files(
    alice, team, bob_teammate, api_for
):
    conversation = echo_conversation(alice, team=team)
    attachment = sent_image(alice, conversation, api_for(alice))
    response = api_for(bob_teammate, "write").delete(f"/api/conversations/{conversation.pk}/")
    assert response.status_code in (403, 404)
    assert all(path.exists() for path in files_of(attachment))


def test_an_edited_question_keeps_its_images_and_the_model_gets_them_again(alice, api_for):
    conversation = echo_conversation(alice)
    attachment = sent_image(alice, conversation, api_for(alice))
    original = attachment.message

    plan = services.message_edit(
        actor=alice, conversation=conversation, message_id=original.pk, content="Look again"
    )

    edited = Message.objects.get(pk=plan.created[0])
    kept = list(edited.attachments.all())
    assert edited.has_attachments and len(kept) == 1
    assert (kept[0].name, kept[0].stored_name, kept[0].kind) == (
        "holiday.png",
        attachment.stored_name,
        "image",
    )
    last = plan.request.messages[-1]
    assert last.content == "Look again" and [image.name for image in last.images] == ["holiday.png"]
    assert list(original.attachments.all()) == [attachment]  # the original keeps its own


def test_an_edited_question_keeps_its_documents(alice, api_for, unread_documents_not_awaited):
    conversation = echo_conversation(alice)
    attachment = attachments.attachment_add(
        actor=alice, conversation=conversation, filename="notes.txt", data=b"Boiler notes."
    )
    assert post(api_for(alice), conversation, "Read this").status_code == 201
    attachment.refresh_from_db()

    plan = services.message_edit(
        actor=alice,
        conversation=conversation,
        message_id=attachment.message_id,
        content="Read this, briefly",
    )

    edited = Message.objects.get(pk=plan.created[0])
    assert [a.document_id for a in edited.attachments.all()] == [attachment.document_id]


def test_shared_image_files_stay_until_no_message_names_them(
    alice, api_for, django_capture_on_commit_callbacks
):
    conversation = echo_conversation(alice)
    attachment = sent_image(alice, conversation, api_for(alice))
    services.message_edit(
        actor=alice, conversation=conversation, message_id=attachment.message_id, content="Again"
    )
    # Two rows name the same files; deleting the conversation removes them once.
    assert Attachment.objects.filter(stored_name=attachment.stored_name).count() == 2
    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_delete(actor=alice, conversation=conversation)
    assert not any(path.exists() for path in files_of(attachment))


# --- Deleting a team or an account, forks --------------------------------------------------------


def sent_document(user, conversation, api) -> Attachment:
    attachment = attachments.attachment_add(
        actor=user, conversation=conversation, filename="notes.txt", data=b"Boiler notes."
    )
    assert post(api, conversation, "Read this").status_code == 201
    attachment.refresh_from_db()
    return attachment


def upload_of(attachment: Attachment):
    from rag import uploads
    from rag.models import Document

    return uploads.storage_dir() / Document.objects.get(pk=attachment.document_id).stored_name


def test_deleting_a_team_removes_its_conversations_images_and_files_collections_once_committed(
    alice, team, api_for, django_capture_on_commit_callbacks, unread_documents_not_awaited
):
    from rag.models import Document

    conversation = echo_conversation(alice, team=team)
    image = sent_image(alice, conversation, api_for(alice))
    document = sent_document(alice, conversation, api_for(alice))
    upload = upload_of(document)
    mine = echo_conversation(alice)
    personal = sent_image(alice, mine, api_for(alice))
    assert upload.exists()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        from accounts import services as account_services

        account_services.team_delete(actor=alice, team=team)
        assert all(path.exists() for path in files_of(image)) and upload.exists()

    assert callbacks
    assert not any(path.exists() for path in files_of(image))
    assert not upload.exists()
    assert not Document.objects.filter(pk=document.document_id).exists()
    assert all(path.exists() for path in files_of(personal))  # alice's own chat is not the team's


def test_deleting_an_account_removes_its_conversations_files_but_not_its_team_chats(
    alice,
    team,
    bob_teammate,
    api_for,
    django_capture_on_commit_callbacks,
    unread_documents_not_awaited,
):
    own = echo_conversation(bob_teammate)
    image = sent_image(bob_teammate, own, api_for(bob_teammate))
    upload = upload_of(sent_document(bob_teammate, own, api_for(bob_teammate)))
    in_team = echo_conversation(alice, team=team)
    team_image = sent_image(bob_teammate, in_team, api_for(bob_teammate))

    with django_capture_on_commit_callbacks(execute=True):
        bob_teammate.delete()

    assert not any(path.exists() for path in files_of(image)) and not upload.exists()
    assert all(path.exists() for path in files_of(team_image))  # the team's chat keeps it
    assert Attachment.objects.filter(pk=team_image.pk, uploaded_by=None).exists()


def test_an_account_deletion_that_rolls_back_keeps_every_file(
    bob_teammate, api_for, unread_documents_not_awaited
):
    from django.db import transaction

    own = echo_conversation(bob_teammate)
    image = sent_image(bob_teammate, own, api_for(bob_teammate))
    upload = upload_of(sent_document(bob_teammate, own, api_for(bob_teammate)))
    with pytest.raises(RuntimeError), transaction.atomic():
        bob_teammate.delete()
        raise RuntimeError("something after the delete failed")
    assert all(path.exists() for path in files_of(image)) and upload.exists()


def test_a_fork_keeps_its_messages_images_and_documents_after_the_original_is_deleted(
    alice, api_for, django_capture_on_commit_callbacks, unread_documents_not_awaited
):
    conversation = echo_conversation(alice)
    image = sent_image(alice, conversation, api_for(alice))
    document = sent_document(alice, conversation, api_for(alice))
    upload = upload_of(document)
    last = conversation.messages.order_by("-created_at", "-id").first()

    fork = services.conversation_fork(actor=alice, conversation=conversation, message_id=last.pk)

    carried = Attachment.objects.filter(conversation=fork).order_by("id")
    assert [(a.kind, a.name) for a in carried] == [("image", image.name), ("document", "notes.txt")]
    assert all(a.message.conversation_id == fork.pk and a.message.has_attachments for a in carried)
    assert fork.files_collection_id == conversation.files_collection_id

    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_delete(actor=alice, conversation=conversation)

    assert all(path.exists() for path in files_of(image)) and upload.exists()
    fork.refresh_from_db()
    assert Collection.objects.filter(pk=fork.files_collection_id).exists()
    page = api_for(alice).get(f"/api/conversations/{fork.pk}/messages/")
    assert page.status_code == 200, page.content

    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_delete(actor=alice, conversation=fork)
    assert not any(path.exists() for path in files_of(image)) and not upload.exists()


def test_a_conversation_deletion_that_rolls_back_keeps_its_documents_upload(
    alice, api_for, unread_documents_not_awaited
):
    from django.db import transaction

    conversation = echo_conversation(alice)
    upload = upload_of(sent_document(alice, conversation, api_for(alice)))
    with pytest.raises(RuntimeError), transaction.atomic():
        services.conversation_delete(actor=alice, conversation=conversation)
        raise RuntimeError("something after the delete failed")
    assert upload.exists()  # rag used to discard it before the commit
