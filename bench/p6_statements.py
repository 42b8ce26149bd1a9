"""P6 — SQL statements per chat reply, with 2, 50 and 500 messages of history.

Counts statements sent with `execute` (transaction BEGIN/COMMIT are not among them). Runs the
same path a websocket "send" runs (access check, message_send, the started frame's
rendering, the reply runner through the gate, the final save and rendering) and counts every
statement on the database, by kind. The history grows; the count must not. Replies here are
short (< 1 s), so there is no checkpoint: a longer reply adds one UPDATE per second.

    .venv/bin/python bench/p6_statements.py [--show]   # --show: each statement of one reply
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections import Counter

import harness


class Counting:
    """Counts every statement any thread runs while installed (the runner's hops run in a pool
    of threads), by its first keyword. The egress allowlist's entries, read at most every 5 s
    per process, are not a reply's: counted apart."""

    def __init__(self):
        self.kinds = Counter()
        self.statements: list[str] = []
        self.cached = 0

    def install(self):
        from django.db.backends import utils

        original = self.original = utils.CursorWrapper._execute_with_wrappers
        counter = self

        def counting(cursor, sql, params, many, executor):
            if "providers_egressallowentry" in sql:
                counter.cached += 1
            else:
                counter.kinds[re.match(r"\s*(\w+)", sql).group(1).upper()] += 1
                counter.statements.append(sql)
            return original(cursor, sql, params, many, executor)

        utils.CursorWrapper._execute_with_wrappers = counting

    def uninstall(self):
        from django.db.backends import utils

        utils.CursorWrapper._execute_with_wrappers = self.original


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

    from chats import frames, selectors, services, streaming

    counter.install()
    try:

        def begin():
            conversation = selectors.conversation_for_reply(user=user, pk=conversation_id)
            return services.message_send(
                actor=user, conversation=conversation, parent_id=parent_id, content="next"
            )

        plan = await sync_to_async(begin)()
        started = await sync_to_async(frames.started_frame)(plan)
        reply = await streaming.begin(plan, started=started, render=frames.final_fields)
        await reply.task
    finally:
        counter.uninstall()


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
            cached = counter.cached
            if "--show" in sys.argv:
                for n, sql in enumerate(counter.statements, 1):
                    print(f"  {n:2d}. {' '.join(sql.split())[:160]}")
        kinds = sorted({k for _, c in rows for k in c})
        print("\n  history  total  " + "  ".join(f"{k:>8s}" for k in kinds))
        for length, counts in rows:
            print(
                f"  {length:7d}  {sum(counts.values()):5d}  "
                + "  ".join(f"{counts.get(k, 0):8d}" for k in kinds)
            )
        totals = {sum(c.values()) for _, c in rows}
        print(
            f"\n  (not per reply: {cached} read(s) of the egress allowlist, cached 5 s per process)"
        )
        print(
            f"\n  flat: {'yes' if len(totals) == 1 else 'NO'} — {sorted(totals)} statements per reply, plus one UPDATE per second of streaming (checkpoint)"
        )


if __name__ == "__main__":
    main()
