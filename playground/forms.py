"""The comparison editor: one form for the input and every slot, posted as a whole — by the
page's autosave and with the Run message — so what runs is what the user sees."""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.core.exceptions import ValidationError

from accounts.access import Action
from accounts.fields import ScopedFormMixin
from chats.forms import CredentialModelField
from playground.models import Comparison, Vote
from playground.services import MAX_PROMPT, MAX_SYSTEM, SlotData
from providers.models import ProviderCredential


class InputForm(forms.Form):
    title = forms.CharField(max_length=200, required=False)
    system_prompt = forms.CharField(
        label="System prompt",
        required=False,
        max_length=MAX_SYSTEM,
        strip=False,
        widget=forms.Textarea(
            attrs={"rows": 2, "placeholder": "Optional: how every model should behave"}
        ),
    )
    prompt = forms.CharField(
        label="Prompt",
        required=False,
        max_length=MAX_PROMPT,
        strip=False,
        widget=forms.Textarea(
            attrs={"rows": 4, "placeholder": "Ask all the models the same thing…"}
        ),
    )


class SlotForm(ScopedFormMixin, forms.Form):
    model_choice = CredentialModelField(label="Model", required=False)
    temperature = forms.FloatField(required=False, min_value=0, max_value=2)
    top_p = forms.FloatField(label="Top p", required=False, min_value=0.001, max_value=1)
    max_tokens = forms.IntegerField(
        label="Max tokens", required=False, min_value=1, max_value=1_000_000
    )
    seed = forms.IntegerField(required=False, min_value=-(2**63), max_value=2**63 - 1)
    system_prompt = forms.CharField(
        label="Own system prompt",
        required=False,
        max_length=MAX_SYSTEM,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "Empty: the shared one"}),
    )

    def slot_data(self, slot_id: int) -> SlotData:
        data = self.cleaned_data
        credential, model = data["model_choice"] or (None, "")
        return SlotData(
            credential=credential,
            model=model,
            params={k: data.get(k) for k in ("temperature", "top_p", "max_tokens", "seed")},
            system_prompt=data.get("system_prompt") or "",
            id=slot_id,
        )


def slot_initial(slot) -> dict:
    return {
        "model_choice": f"{slot.credential_id}|{slot.model}" if slot.credential_id else "",
        "system_prompt": slot.system_prompt,
        **(slot.params or {}),
    }


class Editor:
    """The input form and one SlotForm per slot (prefix `slot-<id>`), bound to what the page
    posted; `slot_order` lists the slot ids in their order on the page."""

    def __init__(self, comparison: Comparison, *, user, data=None):
        self.comparison = comparison
        self.user = user
        slots = list(comparison.slots.select_related("credential").order_by("position", "id"))
        self.slots = slots
        if data is None:
            self.input = InputForm(
                initial={
                    "title": comparison.title,
                    "system_prompt": comparison.system_prompt,
                    "prompt": comparison.prompt,
                }
            )
            self.slot_forms = [
                SlotForm(prefix=f"slot-{s.pk}", user=user, initial=slot_initial(s)) for s in slots
            ]
            return
        self.input = InputForm(data)
        by_id = {s.pk: s for s in slots}
        order = [int(i) for i in str(data.get("slot_order", "")).split(",") if i.strip().isdigit()]
        # Slots posted in the page's order; slots the page didn't know of (added elsewhere) keep
        # their place at the end.
        ordered = [by_id[i] for i in order if i in by_id]
        ordered += [s for s in slots if s.pk not in order]
        self.slots = ordered
        self.slot_forms = [SlotForm(data, prefix=f"slot-{s.pk}", user=user) for s in ordered]

    def is_valid(self) -> bool:
        valid = self.input.is_valid()
        for form in self.slot_forms:
            valid = form.is_valid() and valid
        return valid

    def errors(self) -> list[str]:
        messages = []
        for field, errors in self.input.errors.items():
            messages += [f"{field}: {e}" for e in errors]
        for number, form in enumerate(self.slot_forms, start=1):
            for field, errors in form.errors.items():
                messages += [f"Slot {number} {field}: {e}" for e in errors]
        return messages

    def changes(self) -> dict:
        """Keyword arguments for services.comparison_save."""
        data = self.input.cleaned_data
        return {
            "title": data["title"],
            "system_prompt": data["system_prompt"],
            "prompt": data["prompt"],
            "slots": [
                form.slot_data(slot.pk)
                for slot, form in zip(self.slots, self.slot_forms, strict=True)
            ],
        }

    def rows(self, groups: list[dict], *, editable: bool = True) -> list[SlotRow]:
        """Each slot with its picker's options (the owner's models, grouped by credential) and
        the current choice — kept visible even when it is no longer offered."""
        rows = []
        for number, (slot, form) in enumerate(zip(self.slots, self.slot_forms, strict=True), 1):
            value = form["model_choice"].value() or ""
            options = [
                (
                    f"{g['credential'].preset_row.label} · {g['credential'].name}"
                    + (" (local)" if g["credential"].is_local else ""),
                    [(f"{g['credential'].pk}|{m}", m) for m in g["models"]],
                )
                for g in groups
            ]
            offered = {v for _, choices in options for v, _ in choices}
            orphan = None
            if value and value not in offered:
                label = slot.model or value.partition("|")[2]
                name = slot.credential.name if slot.credential else "gone"
                suffix = " — not available here" if editable else ""
                orphan = (value, f"{label} ({name}{suffix})")
            rows.append(SlotRow(slot, form, number, options, orphan, value))
        return rows


@dataclass(frozen=True)
class SlotRow:
    slot: object
    form: SlotForm
    number: int
    options: list  # [(group label, [(value, model)])]
    orphan: tuple[str, str] | None
    value: str


def raise_for(editor: Editor) -> None:
    if not editor.is_valid():
        raise ValidationError(editor.errors())


class RatingForm(forms.Form):
    rating = forms.TypedChoiceField(
        choices=[("", "—")] + [(str(i), str(i)) for i in range(1, 6)],
        coerce=int,
        empty_value=None,
        required=False,
    )
    note = forms.CharField(max_length=1000, required=False)


class BattleForm(forms.Form):
    prompt = forms.CharField(
        max_length=MAX_PROMPT,
        strip=False,
        widget=forms.Textarea(
            attrs={"rows": 4, "placeholder": "Ask something; two anonymous models answer."}
        ),
    )
    tag = forms.CharField(
        label="Topic",
        max_length=60,
        required=False,
        help_text="Optional, e.g. “coding” — the leaderboard can be filtered by it.",
    )


class PoolForm(ScopedFormMixin, forms.Form):
    """The pool as checkboxes of `<credential id>|<model>` values, each through the rules."""

    entries = forms.MultipleChoiceField(required=False)

    def __init__(self, *args, choices=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["entries"].choices = choices

    def clean_entries(self):
        from accounts import access

        picked = []
        for value in self.cleaned_data["entries"]:
            credential_id, _, model = value.partition("|")
            credential = access.get_for(
                self.user, ProviderCredential.objects.all(), credential_id, Action.USE
            )
            picked.append((credential, model))
        return picked


class VoteForm(forms.Form):
    vote = forms.ChoiceField(choices=Vote.choices)


class WinnerForm(forms.Form):
    answer_id = forms.IntegerField(required=False)


class ContextForm(ScopedFormMixin, forms.Form):
    """The shared-context panel: attach or detach a collection (its id goes through the rules
    in playground.grounding), or pick the "RAG quality" judge (empty: none)."""

    action = forms.ChoiceField(
        choices=[("attach", "attach"), ("detach", "detach"), ("judge", "judge")]
    )
    collection_id = forms.IntegerField(min_value=1, max_value=2**63 - 1, required=False)
    judge_choice = CredentialModelField(label="Judge", required=False)

    def clean(self):
        data = super().clean()
        if data.get("action") in ("attach", "detach") and not data.get("collection_id"):
            raise ValidationError("Pick a collection.")
        return data
