"""Owned by a user or a team: the one mixin every app's owned objects use (DESIGN §3)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Owned(models.Model):
    """Exactly one of `owner_user` / `owner_team` is set (a check constraint says so)."""

    owner_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="%(app_label)s_%(class)s_owned",
    )
    owner_team = models.ForeignKey(
        "accounts.Team",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="%(app_label)s_%(class)s_owned",
    )

    class Meta:
        abstract = True
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(owner_user__isnull=False, owner_team__isnull=True)
                    | models.Q(owner_user__isnull=True, owner_team__isnull=False)
                ),
                name="%(app_label)s_%(class)s_one_owner",
            )
        ]

    @property
    def owner(self):
        return self.owner_team if self.owner_team_id else self.owner_user

    @property
    def owner_label(self) -> str:
        return self.owner_team.name if self.owner_team_id else "Personal"

    def set_owner(self, owner) -> None:
        """Owner is a User or a Team."""
        from accounts.models import Team

        if isinstance(owner, Team):
            self.owner_team, self.owner_user = owner, None
        else:
            self.owner_user, self.owner_team = owner, None
