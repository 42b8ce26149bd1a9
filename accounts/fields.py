"""Form and serializer fields that take the id of an owned object — through the access rules.

A foreign id is a 404 (as in URLs), not a "select a valid choice" that would confirm the id
exists. Every id-bearing input uses one of these (the access matrix checks)."""

from __future__ import annotations

from django import forms
from rest_framework import serializers

from accounts import access
from accounts.access import Action


class ScopedModelChoiceField(forms.ModelChoiceField):
    """`ScopedModelChoiceField(queryset=Team.objects.all(), action=Action.MANAGE)`; bind the
    user with `field.user = request.user` (ScopedFormMixin does it)."""

    def __init__(self, *args, action: Action = Action.READ, **kwargs):
        self.action = action
        self.user = None
        super().__init__(*args, **kwargs)
        # Choices shown are narrowed to what the user may `action`; lookups use the full set so
        # the rules answer (404 outside the tenant, 403 inside without the role).
        self.lookup_queryset = self.queryset

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if self.user is None:  # pragma: no cover - a programming error, not user input
            raise RuntimeError("ScopedModelChoiceField used without a user")
        return access.get_for(self.user, self.lookup_queryset, value, self.action)

    def validate(self, value):
        # to_python already applied the rules; the default would re-check membership in the
        # queryset and say "invalid choice" instead of 404.
        if value is None and self.required:
            raise forms.ValidationError(self.error_messages["required"], code="required")


class ScopedFormMixin:
    """Give every ScopedModelChoiceField the requesting user and limit its choices to objects
    the user may `action`."""

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        for field in self.fields.values():
            if isinstance(field, ScopedModelChoiceField):
                field.user = user
                field.queryset = access.scope(field.queryset, user, field.action)


class ScopedPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """The DRF twin: needs `request` in the serializer context."""

    def __init__(self, *args, action: Action = Action.READ, **kwargs):
        self.action = action
        super().__init__(*args, **kwargs)

    def to_internal_value(self, data):
        if access.parse_id(data) is None:  # `true` is not id 1, nor "²" id 2
            self.fail("incorrect_type", data_type=type(data).__name__)
        from django.http import Http404
        from rest_framework.exceptions import NotFound

        user = self.context["request"].user
        try:
            return access.get_for(user, self.get_queryset(), data, self.action)
        except Http404:
            # Still a 404 (ids reveal nothing), but one that says which field held the id.
            noun = self.get_queryset().model._meta.verbose_name
            raise NotFound(
                {self.field_name: f"No {noun} with the id {str(data)[:40]!s} that you can see."}
            ) from None


class IdField(serializers.IntegerField):
    """The id of a row in a JSON body (compared within an object already checked, e.g. a
    message of this conversation): an integer in bigint range, so no lookup can overflow."""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", access.MAX_ID)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, bool):
            self.fail("invalid")
        return super().to_internal_value(data)
