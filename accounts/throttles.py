"""Fixed-window failure counters: failed logins, failed API tokens, password-reset requests.

Counters live in one PostgreSQL table and every hit is one atomic upsert that returns the new
count. The database cache's `incr` reads then writes, so parallel guesses could all read the same
count and all get through; here each request reserves its attempt first and then learns whether
it was over the limit, however many arrive at once. (With Redis as the cache the same holds;
one table keeps the rule the same on every deployment.)
"""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass

from django.db import connection


@dataclass(frozen=True)
class Limit:
    name: str  # part of the key: the same key under two limits counts twice, separately
    limit: int  # hits allowed per window
    window: int  # seconds, from the first hit


@dataclass(frozen=True)
class Count:
    count: int
    retry_after: int  # seconds until the window ends

    def over(self, limit: Limit) -> bool:
        return self.count > limit.limit


def _key(limit: Limit, key: str) -> str:
    return hashlib.sha256(f"{limit.name}\0{key}".encode()).hexdigest()


_TABLE = "accounts_throttlewindow"


def hit(limit: Limit, key: str) -> Count:
    """Count one attempt and return the count including it."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {_TABLE} (key, count, window_ends)
            VALUES (%s, 1, now() + make_interval(secs => %s))
            ON CONFLICT (key) DO UPDATE SET
              count = CASE WHEN {_TABLE}.window_ends <= now() THEN 1
                           ELSE {_TABLE}.count + 1 END,
              window_ends = CASE WHEN {_TABLE}.window_ends <= now() THEN EXCLUDED.window_ends
                                 ELSE {_TABLE}.window_ends END
            RETURNING count, EXTRACT(EPOCH FROM (window_ends - now()))
            """,  # noqa: S608 - the table name is ours; values are parameters
            [_key(limit, key), limit.window],
        )
        count, left = cursor.fetchone()
        if secrets.randbelow(200) == 0:  # now and then, forget windows long over
            cursor.execute(
                f"DELETE FROM {_TABLE} WHERE window_ends < now() - interval '1 hour'"  # noqa: S608
            )
    return Count(count=count, retry_after=max(1, math.ceil(left)))


def peek(limit: Limit, key: str) -> Count:
    """The current count without adding to it (0 when no window is open)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count, EXTRACT(EPOCH FROM (window_ends - now())) FROM {_TABLE} "  # noqa: S608
            "WHERE key = %s AND window_ends > now()",
            [_key(limit, key)],
        )
        row = cursor.fetchone()
    if row is None:
        return Count(count=0, retry_after=0)
    return Count(count=row[0], retry_after=max(1, math.ceil(row[1])))


def release(limit: Limit, key: str) -> None:
    """Give back one hit (an attempt that turned out fine)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_TABLE} SET count = GREATEST(count - 1, 0) WHERE key = %s",  # noqa: S608
            [_key(limit, key)],
        )


def reset(limit: Limit, key: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {_TABLE} WHERE key = %s", [_key(limit, key)])  # noqa: S608
