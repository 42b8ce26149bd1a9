"""The one sanitizer for text on its way into the database (workbench/text.py, issue 7):
NUL and lone surrogates become U+FFFD wherever text is stored — ORM, raw SQL and JSON alike —
so nothing a user or a model sends can make a save fail."""

from __future__ import annotations

import pytest
from django.db import connection

from chats.models import Conversation, Message
from workbench.text import clean, clean_data, depth

NASTY = "a\x00b\ud800c\udfffd"
CLEANED = "a\ufffdb\ufffdc\ufffdd"


def test_clean_replaces_nul_and_lone_surrogates_one_for_one():
    assert clean(NASTY) == CLEANED
    assert len(clean(NASTY)) == len(NASTY)  # streamed offsets stay valid
    assert clean("plain ascii") == "plain ascii"
    assert clean("emoji 😀 and ü stay") == "emoji 😀 and ü stay"
    text = "nothing to do é"
    assert clean(text) is text


def test_clean_data_reaches_keys_values_and_nested_lists():
    assert clean_data({"k\x00": ["x\ud800", {"y": "\x00"}], "n": 1}) == {
        "k\ufffd": ["x\ufffd", {"y": "\ufffd"}],
        "n": 1,
    }


def test_depth_counts_without_recursion():
    deep = current = []
    for _ in range(100_000):
        current.append([])
        current = current[0]
    assert depth(deep, limit=64) == 65  # stops counting past the limit
    assert depth({"a": [1, {"b": 2}]}, limit=64) == 3
    assert depth("scalar", limit=64) == 0


@pytest.mark.django_db
def test_orm_writes_store_cleaned_text_and_json(alice):
    conversation = Conversation.objects.create(
        owner_user=alice, title=NASTY, system_prompt=NASTY, params={NASTY: [NASTY]}
    )
    message = Message.objects.create(conversation=conversation, role="user", content=NASTY)
    Message.objects.filter(pk=message.pk).update(error_message=NASTY)

    conversation.refresh_from_db()
    message.refresh_from_db()
    assert (conversation.title, conversation.system_prompt) == (CLEANED, CLEANED)
    assert conversation.params == {CLEANED: [CLEANED]}
    assert (message.content, message.error_message) == (CLEANED, CLEANED)
    # Lookups with such text don't fail either (they match the cleaned text).
    assert Message.objects.filter(content=NASTY).get() == message
    assert Message.objects.filter(content__icontains="\x00").exists()


@pytest.mark.django_db
def test_raw_sql_parameters_are_cleaned_too():
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::text, %s::text", [NASTY, "fine"])
        assert cursor.fetchone() == (CLEANED, "fine")
