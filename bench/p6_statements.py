"""P6 — SQL statements per chat reply, with 2, 50 and 500 messages of history.

Counts statements sent with `execute` (transaction BEGIN/COMMIT are not among them). Runs the
same path a websocket "send" runs (access check, message_send, the started frame's
rendering, the reply runner through the gate, the final save and rendering) and counts every
statement on the database, by kind. The history grows; the count must not. Replies here are
short (< 1 s), so there is no checkpoint: a longer reply adds one UPDATE per second.

    .venv/bin/python bench/p6_statements.py
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter

import harness


class Counting:
    """An execute wrapper: counts statements by their first keyword."""

    def __init__(self):
        self.kinds = Counter()

    def __call__(self, execute, sql, params, many, context):
        self.kinds[re.match(r"\s*(\w+)", sql).group(1).upper()] += 1
        return execute(sql, params, many, context)


def build_history(user, credential, length: int):
    from chats import services
    from chats.models import Conversation, Message

    conversation = services.conversation_start(
        actor=user, credential=credential, model="gpt-4o-mini"
    )
    parent = None
    for i in range(length):
        parent = Message.objects.create(
            conversation=conversation,
            parent=parent,
            role="user" if i % 2 == 0 else "assistant",
            content=f"message {i} " + "lorem ipsum " * 10,
        )
        if i == 0:
            Conversation.objects.filter(pk=conversation.pk).update(active_root=parent)
    return conversation, parent


async def one_reply(user, conversation_id: int, parent_id: int, counter: Counting) -> None:
    from asgiref.sync import sync_to_async
    from django.db import connection

    from accounts.access import Action
    from chats import frames, selectors, services, streaming

    def install():
        connection.execute_wrappers.append(counter)

    def uninstall():
        connection.execute_wrappers.remove(counter)

    # Everything thread-sensitive runs in one thread here: one wrapper sees it all.
    await sync_to_async(install)()
    try:

        def begin():
            conversation = selectors.conversation_for_user(
                user=user, pk=conversation_id, action=Action.USE
            )
            return services.message_send(
                actor=user, conversation=conversation, parent_id=parent_id, content="next"
            )

        plan = await sync_to_async(begin)()
        started = await sync_to_async(frames.started_frame)(plan)
        reply = await streaming.begin(plan, started=started, render=frames.final_fields)
        await reply.task
    finally:
        await sync_to_async(uninstall)()


def main():
    harness.django_setup()
    print(f"P6 SQL statements per reply — {harness.machine()}")
    with harness.fake_server(core=1) as url:
        harness.configure(url, reply_tokens=40)
        user, credential = harness.bench_user_and_credential(url)
        rows = []
        warm, leaf = build_history(user, credential, 2)
        asyncio.run(one_reply(user, warm.pk, leaf.pk, Counting()))  # caches, imports, connections
        for length in (2, 50, 500):
            conversation, leaf = build_history(user, credential, length)
            counter = Counting()
            asyncio.run(one_reply(user, conversation.pk, leaf.pk, counter))
            rows.append((length, counter.kinds))
        kinds = sorted({k for _, c in rows for k in c})
        print("\n  history  total  " + "  ".join(f"{k:>8s}" for k in kinds))
        for length, counts in rows:
            print(
                f"  {length:7d}  {sum(counts.values()):5d}  "
                + "  ".join(f"{counts.get(k, 0):8d}" for k in kinds)
            )
        totals = {sum(c.values()) for _, c in rows}
        print(
            f"\n  flat: {'yes' if len(totals) == 1 else 'NO'} — {sorted(totals)} statements per reply, plus one UPDATE per second of streaming (checkpoint)"
        )


if __name__ == "__main__":
    main()
