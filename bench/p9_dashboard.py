"""P9: the Usage dashboard over a big synthetic ledger — p50/p95 per chart query and for the whole
page, which reads only the daily rollup (goal: p95 ≤ 5 ms per chart query).

The ledger is written by PostgreSQL itself (INSERT … SELECT over generate_series, no ORM loop),
then rolled up with the product's own rebuild (`billing.rollups.rollups_rebuild`, the SQL the
migration used). The data is shaped like a real instance: `--users` people in `--teams` teams
(the first team is the biggest, a third of the people), each with a few habits (a key, a model,
a feature) they use every day, over `--days` days; 92 % of calls ok, 5 % errors, the rest
stopped or interrupted; a few unpriced and local models. The rollup's size grows with days ×
habits, not with calls — which is the point of it; the script prints both sizes.

Measured, each `--repeat` times, through the functions the page calls (billing.usage):
by day (spend per day, requests, tokens, error rate), by model (top models, TTFT, tokens/s and
the table), notices (month, weeks, budgets), the drill-down's first and a deep page (ledger,
keyset), and the whole page (Django's test client, as the team's owner: filters, settle sweep,
three rollup queries, charts, template). Wall-clock p50/p95 (ms) and the CPU per call: this
process's plus the PostgreSQL backend's (from /proc), less sensitive to a busy machine.

    .venv/bin/python bench/p9_dashboard.py --rows 1000000
    .venv/bin/python bench/p9_dashboard.py --rows 10000000 --repeat 300   # quiet machine
    .venv/bin/python bench/p9_dashboard.py --rows 1000000 --reuse         # queries only

Uses its own data directory (.data/bench) and empties its ledger first (TRUNCATE … CASCADE: other
benchmarks' rows that point at ledger rows go too); `--drop` empties it again at the end.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
import harness

PRESETS = [
    # (preset, price provider, model, $ per call mean or None = unpriced, local)
    ("openai", "openai", "gpt-4o", 0.012, False),
    ("openai", "openai", "gpt-4o-mini", 0.0009, False),
    ("openai", "openai", "o3-mini", 0.02, False),
    ("anthropic", "anthropic", "claude-3-5-sonnet-latest", 0.015, False),
    ("anthropic", "anthropic", "claude-3-5-haiku-latest", 0.004, False),
    ("groq", "groq", "llama-3.1-8b-instant", 0.0002, False),
    ("mistral", "mistral", "mistral-large-latest", 0.008, False),
    ("openai_compat", "", "my-finetune", None, False),
    ("ollama", "", "llama3.2", 0.0, True),
]
SIMPLE_STATIC = "django.contrib.staticfiles.storage.StaticFilesStorage"
FEATURES = [("chat", "chat", 6), ("playground", "chat", 2), ("api", "chat", 3)]
FEATURES += [("prompts", "chat", 1), ("rag", "embedding", 1)]


def _backend_cpu(cursor) -> float:
    """Seconds of CPU the PostgreSQL backend serving `cursor` has used so far."""
    cursor.execute("SELECT pg_backend_pid()")
    pid = cursor.fetchone()[0]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load(*, rows: int, users: int, teams: int, habits: int, days: int, batch: int) -> None:
    from django.db import connection

    from accounts.models import Membership, Role, Team, User
    from billing import rollups
    from providers.models import ProviderCredential

    rng = random.Random(9)
    people = []
    for i in range(users):
        user, _ = User.objects.get_or_create(username=f"p9-{i}", defaults={"email": f"p9-{i}@x"})
        people.append(user)
    groups = []
    for t in range(teams):
        team, _ = Team.objects.get_or_create(name=f"P9 team {t}")
        groups.append(team)
    # The first team has a third of the people; the rest share the others.
    for i, user in enumerate(people):
        team = groups[0] if i < max(1, users // 3) else groups[1 + i % max(1, teams - 1)]
        Membership.objects.get_or_create(
            team=team, user=user, defaults={"role": Role.OWNER if i == 0 else Role.MEMBER}
        )
    keys = {}
    for team in groups:
        for preset in {p[0] for p in PRESETS}:
            key, _ = ProviderCredential.objects.get_or_create(
                owner_team=team,
                name=f"{team.name} {preset}",
                defaults={
                    "preset": preset,
                    "api_key": "sk-p9-0123456789",
                    "base_url": "http://127.0.0.1:9/v1",
                    "is_local": preset == "ollama",
                },
            )
            keys[(team.pk, preset)] = key.pk
    habit_rows = []
    for user in people:
        team_id = Membership.objects.filter(user=user).values_list("team_id", flat=True)[0]
        for _ in range(habits):
            preset, provider, model, price, local = rng.choice(PRESETS)
            feature, operation, _ = rng.choices(FEATURES, weights=[f[2] for f in FEATURES])[0]
            if operation == "embedding":
                preset, provider, model, price, local = (
                    "openai",
                    "openai",
                    "text-embedding-3-small",
                    0.00002,
                    False,
                )
            habit_rows.append(
                (
                    user.pk,
                    team_id,
                    keys[(team_id, preset)],
                    preset,
                    provider,
                    model,
                    operation,
                    feature,
                    -1 if price is None else price,
                    local,
                )
            )
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS p9_habit")
        cursor.execute(
            "CREATE TEMP TABLE p9_habit (id serial, user_id bigint, team_id bigint, credential_id bigint,"
            " preset text, provider_id text, model text, operation text, feature text, price float8, local bool)"
        )
        cursor.executemany(
            "INSERT INTO p9_habit (user_id, team_id, credential_id, preset, provider_id, model,"
            " operation, feature, price, local) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            habit_rows,
        )
        count = len(habit_rows)
        started = time.perf_counter()
        done = 0
        while done < rows:
            n = min(batch, rows - done)
            cursor.execute(
                f"""
                INSERT INTO billing_usagerecord (
                    created_at, user_id, team_id, credential_id, credential_name, preset,
                    provider_id, model, operation, feature, status, error_code, error_message,
                    provider_detail, attempts, input_tokens, output_tokens, cache_read_tokens,
                    cache_write_tokens, reasoning_tokens, tokens_estimated, cost, cost_source,
                    price_snapshot, finish_reason, ttft_ms, retry_wait_ms, duration_ms,
                    overhead_ms, tokens_per_second, context, heartbeat_at)
                SELECT
                    now() - s.age, h.user_id, h.team_id, h.credential_id, '', h.preset,
                    h.provider_id, h.model, h.operation, h.feature,
                    CASE WHEN s.r < 0.92 THEN 'ok' WHEN s.r < 0.97 THEN 'error'
                         WHEN s.r < 0.99 THEN 'stopped' ELSE 'interrupted' END,
                    CASE WHEN s.r >= 0.92 AND s.r < 0.97 THEN 'provider_error' ELSE '' END,
                    '', '', 1, s.input, s.output, s.input / 4, 0,
                    CASE WHEN h.model = 'o3-mini' THEN s.output / 2 ELSE 0 END, false,
                    CASE WHEN h.price < 0 THEN NULL
                         ELSE round((h.price * (0.2 + 1.6 * s.r2))::numeric, 9) END,
                    CASE WHEN h.price < 0 THEN 'unpriced' WHEN h.local THEN 'local'
                         ELSE 'provider' END,
                    '{{}}'::jsonb, 'stop', 150 + 900 * s.r2, 0, 1500 + 4000 * s.r2, 2,
                    CASE WHEN h.operation = 'embedding' THEN NULL ELSE 20 + 180 * s.r END,
                    '{{}}'::jsonb, NULL
                FROM (
                    SELECT g, 1 + floor(random() * {count})::int AS hid, random() AS r,
                           random() AS r2, random() * interval '{days} days' AS age,
                           (200 + random() * 4000)::int AS input,
                           (20 + random() * 900)::int AS output
                    FROM generate_series(1, %s) g
                ) s JOIN p9_habit h ON h.id = s.hid
                """,
                [n],
            )
            done += n
            rate = done / (time.perf_counter() - started)
            print(f"  ledger: {done:,} rows ({rate:,.0f} rows/s)", flush=True)
        print(f"  ledger loaded in {time.perf_counter() - started:.1f} s", flush=True)
        started = time.perf_counter()
        made = rollups.rollups_rebuild()
        print(f"  rollup: {made:,} rows, rebuilt in {time.perf_counter() - started:.1f} s")
        cursor.execute("ANALYZE billing_usagerecord")
        cursor.execute("ANALYZE billing_dailyusage")


def measure(label: str, fn, repeat: int, results: list) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        fn()  # warm: plans, caches
        walls = []
        cpu_client = time.process_time()
        cpu_server = _backend_cpu(cursor)
        for _ in range(repeat):
            started = time.perf_counter()
            fn()
            walls.append((time.perf_counter() - started) * 1000)
        cpu = (time.process_time() - cpu_client) + (_backend_cpu(cursor) - cpu_server)
    row = (label, harness.pct(walls, 50), harness.pct(walls, 95), cpu / repeat * 1000)
    results.append(row)
    print(
        f"  {label:<44} p50 {row[1]:7.2f}  p95 {row[2]:7.2f}  cpu/call {row[3]:7.2f} ms", flush=True
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=60)
    parser.add_argument("--teams", type=int, default=4)
    parser.add_argument("--habits", type=int, default=4, help="(key, model, feature) per person")
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--batch", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument("--reuse", action="store_true", help="Keep the loaded rows; queries only.")
    parser.add_argument("--drop", action="store_true", help="Delete the synthetic rows at the end.")
    args = parser.parse_args()
    harness.django_setup()
    from django.conf import settings
    from django.db import connection
    from django.test import Client

    from accounts.models import Team, User
    from billing import ledger_pages, usage, usage_figures
    from billing.models import DailyUsage, UsageRecord

    print(harness.machine())
    print(f"load before: {os.getloadavg()[0]:.2f} (1 min), cores {os.cpu_count()}")
    if not args.reuse:
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE billing_usagerecord, billing_dailyusage CASCADE")
        print(f"loading {args.rows:,} ledger rows …")
        load(
            rows=args.rows,
            users=args.users,
            teams=args.teams,
            habits=args.habits,
            days=args.days,
            batch=args.batch,
        )
    ledger = UsageRecord.objects.count()
    team = Team.objects.get(name="P9 team 0")
    owner = User.objects.get(username="p9-0")
    member = User.objects.get(username="p9-1")
    team_rollup = DailyUsage.objects.filter(team=team).count()
    print(
        f"ledger {ledger:,} rows ({UsageRecord.objects.filter(team=team).count():,} the big "
        f"team's); rollup {DailyUsage.objects.count():,} rows ({team_rollup:,} the big team's)"
    )

    views = {
        "team, 30 days": usage.usage_query_for(user=owner, team=team, period="30d"),
        "team, this month": usage.usage_query_for(user=owner, team=team, period="month"),
        "team, 366 days (custom)": usage.usage_query_for(
            user=owner,
            team=team,
            period="custom",
            start=usage.today().replace(year=usage.today().year - 1),
            end=usage.today(),
        ),
        "team, 30 days, one model": usage.usage_query_for(
            user=owner, team=team, period="30d", model="gpt-4o"
        ),
        "team, 30 days, errors": usage.usage_query_for(
            user=owner, team=team, period="30d", status="error"
        ),
        "team, 30 days, one member": usage.usage_query_for(
            user=owner, team=team, period="30d", member=member.pk
        ),
        "own calls, 30 days": usage.usage_query_for(user=member, team=None, period="30d"),
    }
    results: list = []
    for name, q in views.items():
        print(f"{name}:")
        measure(
            f"{name} · by day", lambda q=q: usage_figures.usage_by_day(q=q), args.repeat, results
        )
        measure(
            f"{name} · by model",
            lambda q=q: usage_figures.usage_by_model(q=q),
            args.repeat,
            results,
        )
    q = views["team, 30 days"]
    print("team, 30 days:")
    measure(
        "notices (month, weeks, budgets)",
        lambda: usage_figures.usage_notices(q=q),
        args.repeat,
        results,
    )
    first = ledger_pages.usage_calls(q=q)
    deep = first
    for _ in range(20):
        if deep.next_cursor:
            deep = ledger_pages.usage_calls(q=q, before=ledger_pages.parse_cursor(deep.next_cursor))
    cursor = ledger_pages.parse_cursor(first.next_cursor) if first.next_cursor else None
    measure(
        "drill-down: first page (ledger)",
        lambda: ledger_pages.usage_calls(q=q),
        args.repeat,
        results,
    )
    if deep.next_cursor:
        deep_cursor = ledger_pages.parse_cursor(deep.next_cursor)
        measure(
            "drill-down: 21st page (ledger, keyset)",
            lambda: ledger_pages.usage_calls(q=q, before=deep_cursor),
            args.repeat,
            results,
        )
    elif cursor:
        measure(
            "drill-down: second page",
            lambda: ledger_pages.usage_calls(q=q, before=cursor),
            args.repeat,
            results,
        )
    # The page as production renders it, minus the static manifest (no collectstatic here).
    from django.test.utils import override_settings

    storages = {**settings.STORAGES, "staticfiles": {"BACKEND": SIMPLE_STATIC}}
    override_settings(STORAGES=storages, ALLOWED_HOSTS=["testserver"]).enable()
    client = Client()
    client.force_login(owner)
    url = f"/usage/?team={team.pk}&period=30d"
    assert client.get(url).status_code == 200
    measure(
        "whole page (GET /usage/, 30 days, team)", lambda: client.get(url), args.repeat, results
    )
    calls_url = f"/usage/calls/?team={team.pk}&period=30d"
    measure(
        "whole calls page (GET /usage/calls/)", lambda: client.get(calls_url), args.repeat, results
    )

    # What the rollup saves: the per-model figures straight from the ledger, a few times.
    from django.db.models import Count, Sum

    def from_ledger():
        start, end = usage.day_bounds(q)
        list(
            usage.narrow(UsageRecord.objects.filter(created_at__gte=start, created_at__lt=end), q)
            .values("preset", "model")
            .annotate(n=Count("id"), c=Sum("cost"), o=Sum("output_tokens"))
        )

    measure(
        "for comparison: by model from the LEDGER", from_ledger, max(3, args.repeat // 20), results
    )
    print(f"load after: {os.getloadavg()[0]:.2f} (1 min)")
    chart_rows = [r for r in results if "·" in r[0]]
    worst = max(chart_rows, key=lambda r: r[2])
    print(f"worst chart query p95: {worst[2]:.2f} ms ({worst[0]}); goal ≤ 5 ms")
    if args.drop:
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE billing_usagerecord, billing_dailyusage CASCADE")


if __name__ == "__main__":
    main()
