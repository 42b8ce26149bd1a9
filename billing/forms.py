"""Forms for Settings → Budgets. Ids go through the access rules (accounts.fields): a foreign
team, credential or member is a 404, never "select a valid choice"."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django import forms
from django.apps import apps
from django.http import Http404

from accounts import access
from accounts.access import Action
from accounts.fields import ScopedFormMixin, ScopedModelChoiceField
from accounts.models import Team, User
from billing import windows
from billing.models import Period
from billing.selectors import preset_labels

MAX_THRESHOLDS = 10


def parse_thresholds(text: str) -> list[int]:
    """ "50, 80, 100" → [50, 80, 100] (whole percentages 1–1000, at most ten)."""
    values = []
    for piece in (text or "").replace(";", ",").replace("%", "").split(","):
        piece = piece.strip()
        if not piece:
            continue
        if not piece.isdigit() or not 1 <= int(piece) <= 1000:
            raise forms.ValidationError(f"“{piece}” is not a whole percentage from 1 to 1000.")
        values.append(int(piece))
    if len(values) > MAX_THRESHOLDS:
        raise forms.ValidationError(f"At most {MAX_THRESHOLDS} thresholds.")
    return sorted(set(values))


def members_visible_to(user):
    """People who share a team with `user` (the only members a budget form may name)."""
    return User.objects.filter(
        memberships__team_id__in=access.team_ids_for(user, Action.READ)
    ).distinct()


class MemberChoiceField(forms.ModelChoiceField):
    """A team member by id: someone outside the user's teams is a 404, like any foreign id."""

    def __init__(self, *args, **kwargs):
        self.user = None
        super().__init__(*args, **kwargs)

    def to_python(self, value):
        if value in self.empty_values:
            return None
        member = members_visible_to(self.user).filter(pk=_int_or_404(value)).first()
        if member is None:
            raise Http404("No such member.")
        return member

    def validate(self, value):
        return None


def _int_or_404(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise Http404 from None


class BudgetForm(ScopedFormMixin, forms.Form):
    name = forms.CharField(
        max_length=100, required=False, help_text="Optional, e.g. “Acme on Anthropic”."
    )
    owner_team = ScopedModelChoiceField(
        label="Whose budget",
        queryset=Team.objects.all(),
        action=Action.MANAGE,
        required=False,
        empty_label="Personal — the calls you pay for",
        help_text="A team budget counts every call charged to the team; its admins and owners "
        "manage it.",
    )
    user = MemberChoiceField(
        label="Member",
        queryset=User.objects.none(),
        required=False,
        empty_label="Every member",
        help_text="Team budgets only: count one member's calls.",
    )
    credential = ScopedModelChoiceField(
        label="Credential",
        # A string reference through the app registry, as a foreign key would (no import).
        queryset=apps.get_model("providers", "ProviderCredential").objects.select_related(
            "owner_team"
        ),
        action=Action.READ,
        required=False,
        empty_label="Any credential",
    )
    preset = forms.ChoiceField(label="Provider", required=False)
    model = forms.CharField(
        max_length=200, required=False, help_text="Exact model id, e.g. gpt-4o. Empty: any."
    )
    period = forms.ChoiceField(choices=Period.choices, initial=Period.MONTH)
    time_zone = forms.CharField(
        max_length=64,
        label="Time zone",
        help_text="Days, weeks and months start at midnight here.",
        widget=forms.TextInput(attrs={"list": "time-zones", "autocomplete": "off"}),
    )
    limit = forms.DecimalField(
        label="Limit (USD)",
        min_value=Decimal("0.01"),
        max_value=Decimal("1000000000"),
        decimal_places=4,
    )
    hard = forms.BooleanField(
        label="Hard limit: refuse calls that would pass it",
        required=False,
        initial=True,
        help_text="Unticked, the budget only alerts.",
    )
    thresholds = forms.CharField(
        label="Alert at (% of the limit)",
        required=False,
        initial="50, 80, 100",
        help_text="The managers get a notification and an email once per threshold per period.",
    )

    def __init__(self, *args, user, editing: bool = False, **kwargs):
        super().__init__(*args, user=user, **kwargs)
        self.fields["user"].user = user
        self.fields["user"].queryset = (
            User.objects.filter(memberships__team_id__in=access.team_ids_for(user, Action.MANAGE))
            .distinct()
            .order_by("username")
        )
        self.fields["credential"].queryset = self.fields["credential"].queryset.order_by(
            "owner_team__name", "name"
        )
        self.fields["credential"].label_from_instance = lambda c: (
            f"{c.owner_team.name if c.owner_team_id else 'Personal'} · {c.name}"
        )
        self.fields["preset"].choices = [("", "Any provider"), *preset_labels().items()]
        if editing:  # the owner of a budget never changes (delete it and add another)
            del self.fields["owner_team"]

    def clean_thresholds(self):
        return parse_thresholds(self.cleaned_data.get("thresholds", ""))

    def clean_time_zone(self):
        name = self.cleaned_data["time_zone"].strip()
        if not windows.is_zone(name):
            raise forms.ValidationError(f"“{name}” is not a time zone (e.g. Europe/Paris).")
        return name


# --- The Usage dashboard's filters -------------------------------------------------------------


class UsageFilterForm(ScopedFormMixin, forms.Form):
    """The dashboard's GET form. `team` is checked by its field (404 outside the user's teams);
    the member and credential ids by `billing.usage.usage_query_for` (404 likewise)."""

    team = ScopedModelChoiceField(
        label="Whose calls",
        queryset=Team.objects.all(),
        action=Action.READ,
        required=False,
        empty_label="My calls (everywhere)",
    )
    user = forms.CharField(label="Member", required=False, max_length=20)
    credential = forms.CharField(label="Credential", required=False, max_length=20)
    provider = forms.ChoiceField(label="Provider", required=False)
    model = forms.CharField(label="Model", required=False, max_length=200)
    feature = forms.ChoiceField(label="Feature", required=False)
    status = forms.ChoiceField(label="Status", required=False)
    period = forms.ChoiceField(label="Period", required=False)
    start = forms.DateField(label="From", required=False)
    end = forms.DateField(label="To", required=False)

    def __init__(self, *args, **kwargs):
        from billing import usage

        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = self.fields["team"].queryset.order_by("name", "pk")
        self.fields["provider"].choices = [("", "Every provider"), *preset_labels().items()]
        self.fields["feature"].choices = [("", "Every feature"), *usage.FEATURES.items()]
        self.fields["status"].choices = [("", "Every status"), *usage.STATUSES.items()]
        self.fields["period"].choices = list(usage.PERIODS.items())

    def clean_model(self):
        return self.cleaned_data.get("model", "").strip()

    def clean(self):
        from billing import usage

        data = super().clean()
        period = data.get("period") or usage.DEFAULT_PERIOD
        data["period"] = period
        start, end = data.get("start"), data.get("end")
        if period == "custom":
            today = usage.today()
            if not start or not end:
                raise forms.ValidationError("A custom range needs a first and a last day.")
            if start > end:
                raise forms.ValidationError("The first day is after the last day.")
            if (end - start).days + 1 > usage.MAX_DAYS:
                raise forms.ValidationError(f"A range is at most {usage.MAX_DAYS} days.")
            # Bounded dates: nothing before the year 2000 or beyond a year ahead.
            if start.year < 2000 or end > today + timedelta(days=366):
                raise forms.ValidationError("Pick days between 2000 and a year from today.")
        return data
