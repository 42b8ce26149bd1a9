"""Ratings: one person's judgement of one model output (a chat reply today; a playground answer or
an evaluation result can point at the same table). Thumbs (−1 / +1) or stars (1–5), an optional
note, and what produced the output (preset, model, credential), so the ratings of a model can be
summed up across everything that was rated. Access to the rated object is the caller's check:
these functions know nothing of chats."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db.models import Avg, Count, Q, QuerySet
from django.utils import timezone

from providers.models import Rating, RatingScale

__all__ = ["rating_clear", "rating_set", "ratings_by_model", "ratings_for"]

NOTE_MAX = 1000
RANGES = {RatingScale.THUMBS: (-1, 1), RatingScale.STARS: (1, 5)}


def _subject(output) -> dict:
    """The rating's link to what it rates: today a chat message (`chats.Message`)."""
    return {"message": output}


def rating_set(
    *, user, output, value: int, scale: str = RatingScale.THUMBS, note: str | None = None
) -> Rating:
    """Rate `output` (it must have `model`, `preset` and `credential_id`, as a reply has).
    `note=None` keeps the note there is; "" removes it. One rating per user and output."""
    low, high = RANGES[RatingScale(scale)]
    if value not in range(low, high + 1) or (scale == RatingScale.THUMBS and value == 0):
        raise ValidationError({"value": f"A {RatingScale(scale).label} rating is {low}…{high}."})
    defaults = {
        "scale": scale,
        "value": value,
        "preset": output.preset or "",
        "model": output.model or "",
        "credential_id": output.credential_id,
        "updated_at": timezone.now(),
    }
    if note is not None:
        note = note.strip()
        if len(note) > NOTE_MAX:
            raise ValidationError({"note": f"A note is at most {NOTE_MAX} characters."})
        defaults["note"] = note
    rating, _ = Rating.objects.update_or_create(user=user, **_subject(output), defaults=defaults)
    return rating


def rating_clear(*, user, output) -> None:
    Rating.objects.filter(user=user, **_subject(output)).delete()


def ratings_for(*, user, message_ids) -> dict[int, Rating]:
    """`user`'s ratings of these chat messages, by message id (one query)."""
    ids = list(message_ids)
    if not ids:
        return {}
    return {r.message_id: r for r in Rating.objects.filter(user=user, message_id__in=ids)}


@dataclass(frozen=True)
class ModelRatings:
    preset: str
    model: str
    count: int
    up: int  # thumbs up, or 4–5 stars
    down: int  # thumbs down, or 1–2 stars
    score: float  # mean on 0…1 (thumbs down 0, up 1; stars (n − 1) / 4)


def ratings_by_model(ratings: QuerySet[Rating]) -> list[ModelRatings]:
    """Sum up ratings per (preset, model) — across scales — for leaderboards and evaluations.
    The caller scopes `ratings` (a team's, a user's). One query."""
    good = Q(scale=RatingScale.THUMBS, value=1) | Q(scale=RatingScale.STARS, value__gte=4)
    bad = Q(scale=RatingScale.THUMBS, value=-1) | Q(scale=RatingScale.STARS, value__lte=2)
    rows = (
        ratings.values("preset", "model")
        .annotate(
            count=Count("id"),
            up=Count("id", filter=good),
            down=Count("id", filter=bad),
            thumbs=Avg("value", filter=Q(scale=RatingScale.THUMBS)),
            thumbs_n=Count("id", filter=Q(scale=RatingScale.THUMBS)),
            stars=Avg("value", filter=Q(scale=RatingScale.STARS)),
            stars_n=Count("id", filter=Q(scale=RatingScale.STARS)),
        )
        .order_by("preset", "model")
    )
    summary = []
    for row in rows:
        total = 0.0
        if row["thumbs_n"]:
            total += (float(row["thumbs"]) + 1) / 2 * row["thumbs_n"]
        if row["stars_n"]:
            total += (float(row["stars"]) - 1) / 4 * row["stars_n"]
        summary.append(
            ModelRatings(
                preset=row["preset"],
                model=row["model"],
                count=row["count"],
                up=row["up"],
                down=row["down"],
                score=total / row["count"],
            )
        )
    return summary
