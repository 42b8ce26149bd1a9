"""A per-user cap on concurrent model calls (DESIGN §5): one person's slow calls never starve
everyone else. Enforced by the gate for every model call (and by the catalogue refresh, the other
thing that waits on a provider).

Each user has `cap` slot rows (`providers_callslot`, created on first need). A call takes a free
one — one UPDATE whose `FOR UPDATE SKIP LOCKED` subquery lets concurrent takers, in any process,
pick different rows — renews it every RENEW_EVERY while it runs, and clears it when it ends. A
slot whose `taken_until` has passed is free again, so a process killed mid-call frees its users'
slots within SLOT_TTL. The handle carries a random `holder`: a call that outlived its slot
can't clear or renew the next call's.

Why rows in PostgreSQL: it works across processes and machines with nothing but the database we
already have, in one statement per take and one per release. Session advisory locks would pin a
connection for the whole call (what this prevents), the database cache's counters aren't
atomic across processes, and Redis is optional."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from providers.models import CallSlot
from workbench import connections

logger = logging.getLogger(__name__)

SLOT_TTL = 120.0  # seconds a slot stays taken without renewal
RENEW_EVERY = 45.0  # seconds between renewals while the call runs

# Also a piece of the gate's one-statement admission (providers.admission).
TAKE_SQL = """
UPDATE providers_callslot
SET taken_until = now() + make_interval(secs => %(ttl)s), holder = %(holder)s, started_at = now()
WHERE id = (
    SELECT id FROM providers_callslot
    WHERE user_id = %(user)s AND n < %(limit)s AND (taken_until IS NULL OR taken_until < now())
    ORDER BY n
    LIMIT 1
    FOR UPDATE SKIP LOCKED
)
RETURNING id
"""
CREATE_SQL = """
INSERT INTO providers_callslot (user_id, n, holder)
SELECT %(user)s, n, '' FROM generate_series(0, %(limit)s - 1) AS n
ON CONFLICT ON CONSTRAINT providers_callslot_unique DO NOTHING
"""


@dataclass(frozen=True)
class Slot:
    id: int
    holder: str


class TooManyCalls(Exception):
    def __init__(self, limit: int):
        self.limit = limit
        super().__init__(
            f"You already have {limit} model call{'s' if limit != 1 else ''} running at once, "
            "the most one person may. Try again when one has finished."
        )


def max_calls() -> int:
    return int(getattr(settings, "WORKBENCH_MAX_CONCURRENT_CALLS", 8))


def call_slot_acquire(*, user_id: int) -> Slot:
    """Take a free slot of `user_id` (one statement once the user's slot rows exist). Raises
    TooManyCalls when every slot under the cap is taken."""
    limit = max_calls()
    holder = secrets.token_hex(16)
    params = {"user": user_id, "limit": limit, "ttl": SLOT_TTL, "holder": holder}
    with connection.cursor() as cursor:
        cursor.execute(TAKE_SQL, params)
        row = cursor.fetchone()
        if row is None:  # all taken, or this user's rows don't exist yet (or the cap grew)
            cursor.execute(CREATE_SQL, params)
            # Take again even when this INSERT added nothing: a concurrent first call of the
            # same user may have created the rows between our two statements.
            cursor.execute(TAKE_SQL, params)
            row = cursor.fetchone()
    if row is None:
        raise TooManyCalls(limit)
    return Slot(row[0], holder)


def calls_running(*, user_id: int) -> int:
    """How many slots the user holds now (a hint: only `call_slot_acquire` decides)."""
    return CallSlot.objects.filter(
        user_id=user_id, n__lt=max_calls(), taken_until__gte=timezone.now()
    ).count()


def call_slot_renew(*, slot: Slot) -> None:
    CallSlot.objects.filter(pk=slot.id, holder=slot.holder).update(
        taken_until=timezone.now() + timedelta(seconds=SLOT_TTL)
    )


def call_slot_release(*, slot: Slot | None) -> None:
    if slot is not None:
        CallSlot.objects.filter(pk=slot.id, holder=slot.holder).update(taken_until=None, holder="")


def call_slot_release_statement(*, slot: Slot) -> tuple[str, dict]:
    """`call_slot_release` as a piece of another statement (the gate's settle: one round trip
    frees the slot, settles the usage row and rolls it up)."""
    return (
        "UPDATE providers_callslot SET taken_until = NULL, holder = '' "
        "WHERE id = %(slot_id)s AND holder = %(slot_holder)s",
        {"slot_id": slot.id, "slot_holder": slot.holder},
    )


async def call_slot_keep(slot: Slot) -> None:
    """Renew the slot while the call runs (a task the caller cancels when the call ends)."""
    renew = connections.hop(call_slot_renew)
    while True:
        await asyncio.sleep(RENEW_EVERY)
        try:
            await renew(slot=slot)
        except Exception:  # a missed renewal only shortens the slot's life
            logger.exception("Could not renew call slot %s", slot.id)


@contextlib.contextmanager
def call_slot(*, user_id: int) -> Iterator[None]:
    """For sync code that waits on a provider: hold a slot, and no database connection, while
    inside."""
    slot = call_slot_acquire(user_id=user_id)
    connections.release()
    try:
        yield
    finally:
        call_slot_release(slot=slot)
        connections.release()
