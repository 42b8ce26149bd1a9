from rest_framework import serializers

from billing.models import UsageRecord


class UsageRecordSerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="user.username", default=None, read_only=True)

    class Meta:
        model = UsageRecord
        fields = [
            "id",
            "created_at",
            "user",
            "team",
            "credential",
            "credential_name",
            "preset",
            "provider_id",
            "model",
            "operation",
            "feature",
            "status",
            "error_code",
            "error_message",
            "attempts",
            "input_tokens",
            "output_tokens",
            "cache_read_tokens",
            "cache_write_tokens",
            "reasoning_tokens",
            "tokens_estimated",
            "cost",
            "cost_source",
            "price_snapshot",
            "finish_reason",
            "ttft_ms",
            "retry_wait_ms",
            "duration_ms",
            "overhead_ms",
            "tokens_per_second",
            "context",
        ]
        read_only_fields = fields
