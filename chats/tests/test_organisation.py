"""Organising the conversation list (issue 9): pin, archive and its view, folders, rename and
delete from the list, bulk actions, search with snippets. Pins, archive and folders are each
user's own view of their list; deleting follows the conversation's access rules."""

from __future__ import annotations

import re

import pytest
from django.core.exceptions import ValidationError
from django.http import Http404

from chats import organisation, services
from chats.models import Conversation, ConversationMark, Folder, Message
from providers import services as provider_services


def start(user, title, **fields) -> Conversation:
    echo = provider_services.credentials_ensure_echo(user=user)
    return services.conversation_start(
        actor=user, credential=echo, model="echo", title=title, **fields
    )


def listed(client, **query) -> list[str]:
    html = client.get("/chat/", query).content.decode()
    return re.findall(
        r'<span class="c-title">(?:<span class="pin-mark".*?</span></span>)?(.*?)</span>', html
    )


def post_list(client, url, **data):
    """An htmx list action: answers with the refreshed list."""
    response = client.post(url, data, headers={"HX-Request": "true"})
    assert response.status_code == 200, response.content
    return response.content.decode()


def test_a_pinned_conversation_comes_first_and_unpinning_puts_it_back(alice, client_for):
    client = client_for(alice)
    old = start(alice, "Old one")
    start(alice, "Newer one")

    html = post_list(client, f"/chat/{old.pk}/pin/", pinned="1")

    assert html.lstrip().startswith('<div id="conversation-list">')
    assert listed(client) == ["Old one", "Newer one"]
    assert 'title="Pinned"' in client.get("/chat/").content.decode()
    post_list(client, f"/chat/{old.pk}/pin/", pinned="0")
    assert listed(client) == ["Newer one", "Old one"]


def test_archiving_moves_a_conversation_to_the_archive_view_and_back(alice, client_for):
    client = client_for(alice)
    done = start(alice, "Done with this")
    start(alice, "Still going")

    response = client.post(f"/chat/{done.pk}/archive/", {"archived": "1", "next": "/chat/"})

    assert response.status_code == 302 and response["Location"] == "/chat/"
    assert listed(client) == ["Still going"]
    assert listed(client, view="archived") == ["Done with this"]
    client.post(f"/chat/{done.pk}/archive/", {"archived": "0"})
    assert set(listed(client)) == {"Done with this", "Still going"}
    assert listed(client, view="archived") == []


def test_pins_and_archive_are_per_user_even_in_a_team_chat(alice, team, bob_teammate, client_for):
    shared = services.conversation_start(actor=alice, owner_team=team, title="Team plan")
    alice_client, bob_client = client_for(alice), client_for(bob_teammate)
    for client in (alice_client, bob_client):
        client.post(f"/teams/{team.pk}/switch/")

    alice_client.post(f"/chat/{shared.pk}/archive/", {"archived": "1"})

    assert listed(alice_client) == []
    assert listed(bob_client) == ["Team plan"]  # bob's list is his own


def test_folders_hold_conversations_and_deleting_a_folder_keeps_them(alice, client_for):
    client = client_for(alice)
    client.post("/chat/folders/", {"name": "Research"})
    folder = Folder.objects.get(owner_user=alice)
    paper = start(alice, "Paper notes")
    start(alice, "Groceries")

    post_list(client, f"/chat/{paper.pk}/move/", folder=folder.pk)

    assert listed(client, folder=folder.pk) == ["Paper notes"]
    assert set(listed(client)) == {"Paper notes", "Groceries"}  # "All chats" shows all
    client.post(f"/chat/folders/{folder.pk}/rename/", {"name": "Reading"})
    folder.refresh_from_db()
    assert folder.name == "Reading"
    client.post(f"/chat/folders/{folder.pk}/delete/")
    assert not Folder.objects.exists()
    assert ConversationMark.objects.get(conversation=paper).folder is None
    assert set(listed(client)) == {"Paper notes", "Groceries"}


def test_folder_names_are_unique_per_user_and_required(alice, bob_teammate):
    organisation.folder_create(actor=alice, name="Work")
    with pytest.raises(ValidationError):
        organisation.folder_create(actor=alice, name=" work ")
    with pytest.raises(ValidationError):
        organisation.folder_create(actor=alice, name="   ")
    organisation.folder_create(actor=bob_teammate, name="Work")  # his own


def test_someone_elses_folder_is_not_found(alice, bob_teammate, team, client_for):
    theirs = organisation.folder_create(actor=alice, name="Alice only")
    mine = services.conversation_start(actor=bob_teammate, title="Bob's")
    with pytest.raises(Http404):
        organisation.folder_for_user(user=bob_teammate, pk=theirs.pk)
    client = client_for(bob_teammate)
    assert client.post(f"/chat/{mine.pk}/move/", {"folder": theirs.pk}).status_code == 404
    assert client.get("/chat/", {"folder": theirs.pk}).status_code == 404
    assert not ConversationMark.objects.filter(folder=theirs).exists()


def test_rename_from_the_list_and_back_to_the_automatic_title(alice, client_for):
    client = client_for(alice)
    conversation = start(alice, "Typo tilte")
    Message.objects.create(
        conversation=conversation, role="user", content="Plan a trip", author=alice
    )

    html = post_list(client, f"/chat/{conversation.pk}/list-rename/", title="Trip")
    assert "Trip" in html
    post_list(client, f"/chat/{conversation.pk}/list-rename/", title="")
    conversation.refresh_from_db()
    assert conversation.title == "Plan a trip"


def test_bulk_delete_deletes_what_the_user_may_and_reports_the_rest(
    alice, team, bob_teammate, charlie_outsider, client_for
):
    bobs = [start(bob_teammate, f"Bob {i}") for i in range(3)]
    team_chat = services.conversation_start(actor=alice, owner_team=team, title="Team")
    charlies = start(charlie_outsider, "Charlie's")
    client = client_for(bob_teammate)

    response = client.post(
        "/chat/bulk/",
        {
            "conversation_id": [c.pk for c in bobs] + [team_chat.pk, charlies.pk],
            "action": "delete",
            "next": "/chat/",
        },
        follow=True,
    )

    text = response.content.decode()
    assert "Deleted 3 conversations." in text
    assert "1 not deleted: team chats can only be deleted by a team admin." in text
    assert "1 not found." in text
    assert not Conversation.objects.filter(pk__in=[c.pk for c in bobs]).exists()
    assert Conversation.objects.filter(pk__in=[team_chat.pk, charlies.pk]).count() == 2


def test_bulk_archive_and_bad_bulk_input_are_clear(alice, client_for):
    client = client_for(alice)
    a, b = start(alice, "A"), start(alice, "B")

    client.post("/chat/bulk/", {"conversation_id": [a.pk, b.pk], "action": "archive"})
    assert listed(client, view="archived") == ["B", "A"]
    nothing = client.post("/chat/bulk/", {"action": "delete", "next": "/chat/"}, follow=True)
    assert "Select some conversations first." in nothing.content.decode()
    junk = client.post(
        "/chat/bulk/", {"conversation_id": ["1; drop"], "action": "delete"}, follow=True
    )
    assert junk.status_code == 200 and "whole numbers" in junk.content.decode()
    too_many = client.post(
        "/chat/bulk/", {"conversation_id": list(range(1, 300)), "action": "delete"}, follow=True
    )
    assert "At most 200 at a time." in too_many.content.decode()
    assert Conversation.objects.count() == 2


def test_search_shows_a_snippet_around_the_match_escaped(alice, client_for):
    client = client_for(alice)
    conversation = start(alice, "Misc")
    Message.objects.create(
        conversation=conversation,
        role="user",
        content="x " * 200 + "the <b>BUDGET</b> for 2027 is tight " + "y " * 200,
        author=alice,
    )

    html = client.get("/chat/", {"q": "budget"}).content.decode()

    snippet = re.search(r'data-testid="snippet">(.*?)</span>', html, re.S).group(1)
    assert "<mark>BUDGET</mark>" in snippet
    assert "&lt;b&gt;" in snippet and "<b>" not in snippet
    assert snippet.startswith("…") and snippet.endswith("…")
    assert len(re.sub(r"<[^>]+>|&[a-z]+;", "", snippet)) <= organisation.SNIPPET_CHARS + 4


def test_the_list_query_is_kept_by_the_pager_and_the_search(alice, client_for):
    client = client_for(alice)
    folder = organisation.folder_create(actor=alice, name="Many")
    for i in range(31):
        organisation.conversation_mark(
            actor=alice, conversation=start(alice, f"Chat {i}"), folder=folder
        )

    html = client.get("/chat/", {"folder": folder.pk}).content.decode()

    assert f'href="?folder={folder.pk}&amp;page=2"' in html
    assert f'<input type="hidden" name="folder" value="{folder.pk}">' in html
