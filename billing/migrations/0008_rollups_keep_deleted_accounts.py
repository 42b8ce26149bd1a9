from django.conf import settings
from django.db import migrations

# Until now deleting an account or a team deleted its rollup rows while the ledger kept the
# calls (user or team NULL): teams' and members' usage history shrank. From now on their rows
# are detached instead (billing.rollups.detach_before_delete); this rebuilds the rollup from
# the ledger once, so the history already lost comes back. A copy of billing.rollups.REBUILD_SQL
# as it is now. (Upgrade time: the whole settled ledger is read once — about a minute per few
# million calls.)
REBUILD_SQL = """
INSERT INTO billing_dailyusage (
    day, user_id, team_id, credential_id, preset, model, operation, feature, status,
    provider_id, calls, errors, input_tokens, output_tokens, cache_read_tokens,
    cache_write_tokens, reasoning_tokens, cost, estimated_cost, provider_calls,
    estimated_calls, local_calls, unpriced_calls, ttft_ms_sum, ttft_count, gen_output_tokens,
    gen_ms, duration_ms_sum)
SELECT (created_at AT TIME ZONE %s)::date, user_id, team_id, credential_id, preset, model,
    operation, feature, status, max(provider_id), count(*),
    count(*) FILTER (WHERE status = 'error'),
    sum(input_tokens), sum(output_tokens), sum(cache_read_tokens), sum(cache_write_tokens),
    sum(reasoning_tokens), coalesce(sum(cost), 0),
    coalesce(sum(cost) FILTER (WHERE cost_source = 'estimated'), 0),
    count(*) FILTER (WHERE cost_source = 'provider'),
    count(*) FILTER (WHERE cost_source = 'estimated'),
    count(*) FILTER (WHERE cost_source = 'local'),
    count(*) FILTER (WHERE cost IS NULL),
    coalesce(sum(ttft_ms), 0), count(ttft_ms),
    coalesce(sum(output_tokens) FILTER (WHERE tokens_per_second > 0), 0),
    coalesce(sum(output_tokens / tokens_per_second * 1000) FILTER (WHERE tokens_per_second > 0), 0),
    sum(duration_ms)
FROM billing_usagerecord
WHERE status <> 'running'
GROUP BY 1, user_id, team_id, credential_id, preset, model, operation, feature, status
"""


def rebuild(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # see 0006: nothing left pending
        cursor.execute("DELETE FROM billing_dailyusage")
        cursor.execute(REBUILD_SQL, [settings.TIME_ZONE])


class Migration(migrations.Migration):
    dependencies = [("billing", "0007_price_override_history")]

    operations = [migrations.RunPython(rebuild, migrations.RunPython.noop)]
