"""What a comparison is given, checked: its texts, history and parameters within their limits,
its slots (`SlotData` in, `comparison_slots` out) and the credential rule a slot's model
follows. Shared by comparisons, runs, the arena and the judge."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.core.exceptions import ValidationError

from accounts import access
from accounts.access import Action
from accounts.models import Team
from playground.models import Comparison, Slot

PARAM_KEYS = ("temperature", "top_p", "max_tokens", "seed")
MAX_PROMPT = 200_000  # characters, like a chat message
MAX_HISTORY = 500  # turns
MAX_SYSTEM = 100_000


@dataclass(frozen=True)
class SlotData:
    """A slot as a form or the API gives it. `id` None: a new slot."""

    credential: object = None  # providers.ProviderCredential, checked by the caller's field
    model: str = ""
    params: dict = field(default_factory=dict)
    system_prompt: str = ""
    id: int | None = None


def clean_params(params: dict | None) -> dict:
    clean = {}
    for key in PARAM_KEYS:
        value = (params or {}).get(key)
        if value in (None, ""):
            continue
        try:
            clean[key] = int(value) if key in ("max_tokens", "seed") else float(value)
        except (TypeError, ValueError):
            raise ValidationError({key: f"{key} must be a number."}) from None
    if "temperature" in clean and not 0 <= clean["temperature"] <= 2:
        raise ValidationError({"temperature": "Temperature is between 0 and 2."})
    if "top_p" in clean and not 0 < clean["top_p"] <= 1:
        raise ValidationError({"top_p": "Top p is greater than 0 and at most 1."})
    if "max_tokens" in clean and not 1 <= clean["max_tokens"] <= 1_000_000:
        raise ValidationError({"max_tokens": "Max tokens is between 1 and 1,000,000."})
    if "seed" in clean and not -(2**63) <= clean["seed"] < 2**63:
        raise ValidationError({"seed": "The seed is a 64-bit integer."})
    return clean


def check_credential(*, actor, owner, credential) -> None:
    """A comparison runs on its owner's credentials only: the team's for a team's, personal ones
    for a personal one (the rule chat follows). As in chat: 404 for a credential the actor can't
    see (ids reveal nothing), then the ownership rule's reason, then the role (403)."""
    if credential is None:
        return
    access.require(actor, credential, Action.READ)
    if isinstance(owner, Team):
        if credential.owner_team_id != owner.pk:
            raise ValidationError(
                {
                    "model": f"“{credential.name}” isn't one of {owner.name}'s credentials; a "
                    "team comparison runs on the team's models only (the team pays for it)."
                }
            )
    elif credential.owner_user_id != owner.pk:
        raise ValidationError(
            {
                "model": f"“{credential.name}” belongs to a team; a personal comparison runs on "
                "your personal credentials only."
            }
        )
    access.require(actor, credential, Action.USE)


def check_text(value: str, name: str, limit: int) -> str:
    value = value or ""
    if not isinstance(value, str):
        raise ValidationError({name: "Text expected."})
    if len(value) > limit:
        raise ValidationError({name: f"At most {limit:,} characters."})
    return value


def check_history(history) -> list[dict]:
    if history in (None, ""):
        return []
    if not isinstance(history, list) or len(history) > MAX_HISTORY:
        raise ValidationError({"history": f"A list of at most {MAX_HISTORY} turns."})
    clean = []
    for index, turn in enumerate(history):
        if (
            not isinstance(turn, dict)
            or turn.get("role") not in ("user", "assistant")
            or not isinstance(turn.get("content"), str)
        ):
            raise ValidationError(
                {"history": f"Turn {index + 1}: a role (user or assistant) and text content."}
            )
        clean.append(
            {"role": turn["role"], "content": check_text(turn["content"], "history", MAX_PROMPT)}
        )
    return clean


def comparison_slots(comparison: Comparison) -> list[Slot]:
    """The slots in order, with their credentials (one query)."""
    return list(comparison.slots.select_related("credential").order_by("position", "id"))
