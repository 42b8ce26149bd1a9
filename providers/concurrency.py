"""A per-user cap on concurrent model calls (DESIGN §5): one person's slow calls never starve
everyone else. Enforced by the gate for every model call (and by the catalogue refresh, the
other thing that waits on a provider).

A running call holds a slot: a row in `providers_callslot`. Taking one is a short transaction —
a transaction-scoped advisory lock per user serialises that user's concurrent takers, expired
slots are dropped, live ones counted, a new one inserted if under the cap. Ending the call deletes
it. Slots expire after SLOT_TTL unless renewed (every RENEW_EVERY while the call runs), so a
process killed mid-call frees its users' slots within SLOT_TTL.

Why a table: it works across processes and machines with nothing but the PostgreSQL we already
have. Session advisory locks would pin a connection for the whole call (what this prevents), the
database cache's counters aren't atomic across processes, and Redis is optional."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from providers.models import CallSlot
from workbench import connections

logger = logging.getLogger(__name__)

SLOT_TTL = 120.0  # seconds a slot lives without renewal
RENEW_EVERY = 45.0  # seconds between renewals while the call runs
_LOCK_CLASS = 0x57B1  # first key of pg_advisory_xact_lock(int, int): "calls of one user"

_ACQUIRE = """
WITH expired AS (
    DELETE FROM providers_callslot WHERE user_id = %(user)s AND expires_at < now()
), live AS (
    SELECT count(*) AS n FROM providers_callslot WHERE user_id = %(user)s AND expires_at >= now()
)
INSERT INTO providers_callslot (user_id, started_at, expires_at)
SELECT %(user)s, now(), now() + make_interval(secs => %(ttl)s) FROM live WHERE n < %(limit)s
RETURNING id
"""


class TooManyCalls(Exception):
    def __init__(self, limit: int):
        self.limit = limit
        super().__init__(
            f"You already have {limit} model call{'s' if limit != 1 else ''} running at once, "
            "the most one person may. Try again when one has finished."
        )


def max_calls() -> int:
    return int(getattr(settings, "WORKBENCH_MAX_CONCURRENT_CALLS", 8))


def call_slot_acquire(*, user_id: int) -> int:
    """Take a slot for a call of `user_id`; returns its id. Raises TooManyCalls at the cap."""
    limit = max_calls()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_CLASS, user_id % 2**31])
        cursor.execute(_ACQUIRE, {"user": user_id, "ttl": SLOT_TTL, "limit": limit})
        row = cursor.fetchone()
    if row is None:
        raise TooManyCalls(limit)
    return row[0]


def calls_running(*, user_id: int) -> int:
    """How many slots the user holds now (a hint: only `call_slot_acquire` decides)."""
    return CallSlot.objects.filter(user_id=user_id, expires_at__gte=timezone.now()).count()


def call_slot_renew(*, slot_id: int) -> None:
    CallSlot.objects.filter(pk=slot_id).update(
        expires_at=timezone.now() + timedelta(seconds=SLOT_TTL)
    )


def call_slot_release(*, slot_id: int | None) -> None:
    if slot_id is not None:
        CallSlot.objects.filter(pk=slot_id).delete()


async def call_slot_keep(slot_id: int) -> None:
    """Renew the slot while the call runs (a task the caller cancels when the call ends)."""
    renew = connections.hop(call_slot_renew)
    while True:
        await asyncio.sleep(RENEW_EVERY)
        try:
            await renew(slot_id=slot_id)
        except Exception:  # a missed renewal only shortens the slot's life
            logger.exception("Could not renew call slot %s", slot_id)


@contextlib.contextmanager
def call_slot(*, user_id: int) -> Iterator[None]:
    """For sync code that waits on a provider: hold a slot, and no database connection, while
    inside."""
    slot_id = call_slot_acquire(user_id=user_id)
    connections.release()
    try:
        yield
    finally:
        call_slot_release(slot_id=slot_id)
        connections.release()
