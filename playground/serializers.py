from rest_framework import serializers

from accounts.access import Action
from accounts.fields import ScopedPrimaryKeyRelatedField
from accounts.models import Team
from billing import money
from chats.serializers import ParamsSerializer
from playground import grounding
from playground.models import MAX_SLOTS, Answer, Battle, Comparison, Run, Slot, Vote
from playground.services import MAX_PROMPT, MAX_SYSTEM
from providers import presets
from providers.models import ProviderCredential


def _owner(obj) -> dict:
    if obj.owner_team_id:
        return {"type": "team", "team_id": obj.owner_team_id}
    return {"type": "user", "team_id": None}


class SlotSerializer(serializers.ModelSerializer):
    class Meta:
        model = Slot
        fields = ["id", "position", "credential", "model", "params", "system_prompt"]
        read_only_fields = fields


class ComparisonSerializer(serializers.ModelSerializer):
    owner = serializers.SerializerMethodField()
    slots = SlotSerializer(many=True, read_only=True)
    collections = serializers.SerializerMethodField(
        help_text="Collection ids every run searches once for the shared context."
    )

    def get_collections(self, obj) -> list[int]:
        return [c.pk for c in grounding.comparison_collections(comparison=obj)]

    class Meta:
        model = Comparison
        fields = [
            "id",
            "title",
            "owner",
            "system_prompt",
            "history",
            "prompt",
            "slots",
            "collections",
            "judge_credential",
            "judge_model",
            "run_count",
            "source_conversation",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_owner(self, obj) -> dict:
        return _owner(obj)


class TurnSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=["user", "assistant"])
    content = serializers.CharField(trim_whitespace=False, max_length=MAX_PROMPT)


class SlotWriteSerializer(serializers.Serializer):
    id = serializers.IntegerField(
        required=False, allow_null=True, help_text="An existing slot to keep; omit for a new one."
    )
    credential = ScopedPrimaryKeyRelatedField(
        queryset=ProviderCredential.objects.all(), action=Action.USE, allow_null=True
    )
    model = serializers.CharField(max_length=200, allow_blank=True)
    params = ParamsSerializer(required=False)
    system_prompt = serializers.CharField(
        required=False, allow_blank=True, trim_whitespace=False, max_length=MAX_SYSTEM
    )


class ComparisonWriteSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200, required=False, allow_blank=True)
    system_prompt = serializers.CharField(
        required=False, allow_blank=True, trim_whitespace=False, max_length=MAX_SYSTEM
    )
    history = TurnSerializer(many=True, required=False, max_length=500)
    prompt = serializers.CharField(
        required=False, allow_blank=True, trim_whitespace=False, max_length=MAX_PROMPT
    )
    slots = SlotWriteSerializer(
        many=True,
        required=False,
        max_length=MAX_SLOTS,
        help_text="Replaces the slots, in this order (2 to 8 to run).",
    )


class ComparisonCreateSerializer(ComparisonWriteSerializer):
    owner_team = ScopedPrimaryKeyRelatedField(
        queryset=Team.objects.all(),
        action=Action.USE,
        required=False,
        allow_null=True,
        help_text="Team id; omit for a personal comparison.",
    )


class AnswerSerializer(serializers.ModelSerializer):
    provider = serializers.SerializerMethodField()
    cost_display = serializers.SerializerMethodField(
        help_text="The cost as people read it, with its provenance ($0.00 local, unpriced, est.)."
    )

    class Meta:
        model = Answer
        fields = [
            "id",
            "position",
            "model",
            "preset",
            "provider",
            "credential",
            "credential_name",
            "params",
            "system_prompt",
            "text",
            "reasoning",
            "reasoning_ms",
            "status",
            "error_code",
            "error_message",
            "finish_reason",
            "input_tokens",
            "output_tokens",
            "cache_read_tokens",
            "cache_write_tokens",
            "reasoning_tokens",
            "tokens_estimated",
            "cost",
            "cost_source",
            "cost_display",
            "estimate",
            "ttft_ms",
            "tokens_per_second",
            "duration_ms",
            "rating",
            "note",
            "judge",
            "usage",
        ]
        read_only_fields = fields

    def get_provider(self, obj) -> str:
        row = presets.PRESETS.get(obj.preset)
        return row.label if row else obj.preset

    def get_cost_display(self, obj) -> str:
        return money.cost_label(obj.cost, obj.cost_source) if obj.cost_source else ""


class RunSerializer(serializers.ModelSerializer):
    owner = serializers.SerializerMethodField()
    answers = AnswerSerializer(many=True, read_only=True)

    class Meta:
        model = Run
        fields = [
            "id",
            "comparison",
            "kind",
            "number",
            "owner",
            "system_prompt",
            "history",
            "prompt",
            "prompt_version",
            "estimate",
            "cost_total",
            "has_unpriced",
            "winner",
            "created_at",
            "finished_at",
            "wall_ms",
            "retrieval",
            "judge_credential",
            "judge_model",
            "answers",
        ]
        read_only_fields = fields

    def get_owner(self, obj) -> dict:
        return _owner(obj)


class RunListSerializer(RunSerializer):
    class Meta(RunSerializer.Meta):
        fields = [f for f in RunSerializer.Meta.fields if f != "answers"]
        read_only_fields = fields


class RunStartSerializer(serializers.Serializer):
    stream = serializers.BooleanField(default=False, help_text="Answer with Server-Sent Events.")
    confirm = serializers.BooleanField(
        default=False, help_text="Run although a soft budget limit would be passed."
    )


class RunWriteSerializer(serializers.Serializer):
    winner_id = serializers.IntegerField(
        allow_null=True, help_text="An answer of this run, or null for no winner."
    )


class StopSerializer(serializers.Serializer):
    answer_id = serializers.IntegerField(
        required=False, allow_null=True, help_text="One answer of this run; omit to stop all."
    )


class AnswerWriteSerializer(serializers.Serializer):
    rating = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=5)
    note = serializers.CharField(required=False, allow_blank=True, max_length=1000)


class SnippetSerializer(serializers.Serializer):
    language = serializers.CharField()
    title = serializers.CharField()
    code = serializers.CharField()


class EstimateSerializer(serializers.Serializer):
    total = serializers.DecimalField(max_digits=18, decimal_places=9)
    unpriced = serializers.IntegerField()
    counted_exactly = serializers.BooleanField()
    slots = serializers.ListField(child=serializers.DictField())
    warnings = serializers.ListField(child=serializers.CharField())
    refusals = serializers.ListField(child=serializers.CharField())


def estimate_data(estimate) -> dict:
    return {
        "total": estimate.total,
        "unpriced": estimate.unpriced,
        "counted_exactly": estimate.counted_exactly,
        "slots": [
            {
                "position": row.position,
                "model": row.model,
                "prompt_tokens": row.prompt_tokens,
                "output_tokens": row.output_tokens,
                "output_assumed": row.output_assumed,
                "cost": str(row.cost) if row.cost is not None else None,
                "source": row.source,
                "refused": row.refused,
            }
            for row in estimate.slots
        ],
        "warnings": [note.message for note in estimate.warnings],
        "refusals": [note.message for note in estimate.refusals],
    }


# --- Arena ---------------------------------------------------------------------------------------


class BattleAnswerSerializer(serializers.ModelSerializer):
    """An answer in a battle: anonymous (A or B) until the vote."""

    side = serializers.SerializerMethodField()

    class Meta:
        model = Answer
        fields = [
            "id",
            "side",
            "text",
            "status",
            "error_code",
            "error_message",
            "finish_reason",
        ]
        read_only_fields = fields

    def get_side(self, obj) -> str:
        return "a" if obj.position == 0 else "b"


class BattleSerializer(serializers.ModelSerializer):
    owner = serializers.SerializerMethodField()
    prompt = serializers.SerializerMethodField()
    answers = serializers.SerializerMethodField()
    models = serializers.SerializerMethodField()

    class Meta:
        model = Battle
        fields = [
            "id",
            "owner",
            "tag",
            "prompt",
            "created_at",
            "started_at",
            "vote",
            "voted_at",
            "answers",
            "models",
        ]
        read_only_fields = fields

    def get_owner(self, obj) -> dict:
        return _owner(obj)

    def get_prompt(self, obj) -> str:
        return obj.run.prompt

    def get_answers(self, obj) -> list[dict]:
        answers = obj.run.answers.order_by("position")
        if obj.is_voted:
            return [{**BattleAnswerSerializer(a).data, **AnswerSerializer(a).data} for a in answers]
        return BattleAnswerSerializer(answers, many=True).data

    def get_models(self, obj) -> dict | None:
        """The names, once voted: {"a": "<preset>:<model>", "b": …}."""
        return {"a": obj.model_a, "b": obj.model_b} if obj.is_voted else None


class BattleCreateSerializer(serializers.Serializer):
    prompt = serializers.CharField(trim_whitespace=False, max_length=MAX_PROMPT)
    system_prompt = serializers.CharField(
        required=False, allow_blank=True, trim_whitespace=False, max_length=MAX_SYSTEM
    )
    tag = serializers.CharField(required=False, allow_blank=True, max_length=60)
    owner_team = ScopedPrimaryKeyRelatedField(
        queryset=Team.objects.all(),
        action=Action.USE,
        required=False,
        allow_null=True,
        help_text="Team id: battle with the team's pool; omit for your own.",
    )
    stream = serializers.BooleanField(default=False, help_text="Answer with Server-Sent Events.")


class VoteSerializer(serializers.Serializer):
    vote = serializers.ChoiceField(choices=Vote.values)


class StandingSerializer(serializers.Serializer):
    rank = serializers.IntegerField()
    model = serializers.CharField()
    rating = serializers.FloatField()
    low = serializers.FloatField(help_text="95 % interval, low end")
    high = serializers.FloatField(help_text="95 % interval, high end")
    votes = serializers.IntegerField()
    wins = serializers.IntegerField()
    losses = serializers.IntegerField()
    ties = serializers.IntegerField()
    win_rate = serializers.FloatField(allow_null=True)


class PositionBiasSerializer(serializers.Serializer):
    decisive = serializers.IntegerField()
    left_wins = serializers.IntegerField()
    ties = serializers.IntegerField()
    share = serializers.FloatField(allow_null=True)
    low = serializers.FloatField(allow_null=True)
    high = serializers.FloatField(allow_null=True)
    verdict = serializers.CharField()


class LeaderboardSerializer(serializers.Serializer):
    votes = serializers.IntegerField()
    standings = StandingSerializer(many=True)
    position_bias = PositionBiasSerializer(source="bias")
    tags = serializers.ListField(child=serializers.CharField())


class PoolEntrySerializer(serializers.Serializer):
    credential = ScopedPrimaryKeyRelatedField(
        queryset=ProviderCredential.objects.all(), action=Action.USE
    )
    model = serializers.CharField(max_length=200)


class ComparisonCollectionSerializer(serializers.Serializer):
    """A collection attached to a comparison (every run searches it once, for every slot)."""

    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(read_only=True)
    owner_team = serializers.IntegerField(source="owner_team_id", read_only=True, allow_null=True)


class ComparisonCollectionAttachSerializer(serializers.Serializer):
    collection_id = serializers.IntegerField(
        min_value=1,
        max_value=2**63 - 1,
        help_text="A collection you may read; a team comparison takes only its team's.",
    )


class JudgeSerializer(serializers.Serializer):
    """The "RAG quality" judge: a model on the comparison's owner's credentials (null: none)."""

    credential = ScopedPrimaryKeyRelatedField(
        queryset=ProviderCredential.objects.all(), action=Action.USE, allow_null=True
    )
    model = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
