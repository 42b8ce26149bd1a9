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
from PIL import Image

from chats import attachments, services
from chats.models import Attachment, Conversation, Message
from providers import services as provider_services
from rag.models import Collection, DocStatus
from rag.tests.documents import docx_bomb, pdf, png


@pytest.fixture(autouse=True)
def _defaults(fresh_cache, one_attempt):
    """Throttle counters start at zero; no retry backoff."""


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
