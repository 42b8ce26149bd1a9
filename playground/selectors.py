"""Reads for the playground, scoped to the user asking."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Q, QuerySet
from django.http import Http404

from accounts import access
from accounts.access import Action
from billing import money
from playground import metrics
from playground.models import Answer, AnswerStatus, Battle, Comparison, Run, RunKind, Slot
from providers import selectors as provider_selectors
from providers.models import ProviderCredential
from workbench import charts

HISTORY_RUNS = 20  # runs drawn in a comparison's history chart


# --- Objects by id --------------------------------------------------------------------------------


def comparisons_for_user(*, user, team=None, q: str = "") -> QuerySet[Comparison]:
    comparisons = access.in_view(Comparison.objects.select_related("owner_team"), user, team)
    if q.strip():
        comparisons = comparisons.filter(title__icontains=q.strip())
    return comparisons.order_by("-updated_at", "-id")


def comparison_for_user(*, user, pk, action: Action = Action.READ) -> Comparison:
    return access.get_for(user, Comparison.objects.select_related("owner_team"), pk, action)


def slot_in(*, comparison: Comparison, pk) -> Slot:
    """A slot of *this* comparison; any other id is 404."""
    try:
        return comparison.slots.get(pk=pk)
    except (Slot.DoesNotExist, ValueError, TypeError):
        raise Http404("No such slot in this comparison.") from None


def run_for_user(*, user, pk, action: Action = Action.READ) -> Run:
    return access.get_for(user, Run.objects.select_related("comparison", "owner_team"), pk, action)


def answer_for_user(*, user, pk, action: Action = Action.READ) -> Answer:
    """An answer through its run's rules (404 outside the tenant)."""
    try:
        answer = Answer.objects.select_related("run", "run__comparison").get(pk=pk)
    except (Answer.DoesNotExist, ValueError, TypeError):
        raise Http404 from None
    access.require(user, answer.run, action)
    return answer


def require_revealed(run: Run) -> None:
    """An arena battle's answers are anonymous until the vote: anything that would name their
    models (the run's results, exports, code, chat) is a 404 until then."""
    if run.kind == RunKind.ARENA:
        battle = Battle.objects.filter(run_id=run.pk).only("vote").first()
        if battle is None or not battle.is_voted:
            raise Http404("A battle's answers are shown with the battle until the vote.")


def answer_in(*, run: Run, pk) -> Answer:
    try:
        return run.answers.get(pk=pk)
    except (Answer.DoesNotExist, ValueError, TypeError):
        raise Http404("No such answer in this run.") from None


def battle_for_user(*, user, pk, action: Action = Action.READ) -> Battle:
    return access.get_for(user, Battle.objects.select_related("run", "owner_team"), pk, action)


def battles_for_owner(*, user, team=None) -> QuerySet[Battle]:
    """Battles of the personal arena (team None) or of a team the user may read."""
    if team is not None:
        access.require(user, team, Action.READ)
        return Battle.objects.filter(owner_team=team)
    return Battle.objects.filter(owner_user_id=user.pk)


# --- Which models a comparison may use ----------------------------------------------------------


def credentials_for_owner(*, user, owner_team=None) -> list[ProviderCredential]:
    """Credentials a comparison (or arena) of this owner may run on — the same rule as chat
    (providers.selectors.chat_credentials_for): the team's own for a team's (none for a viewer),
    the user's personal ones for a personal one. Never one member's key for a team's work, nor
    another team's key: whoever owns the comparison pays for it."""
    return list(provider_selectors.chat_credentials_for(user=user, team=owner_team))


def picker_groups(*, user, owner_team=None) -> list[dict]:
    groups = []
    for credential in credentials_for_owner(user=user, owner_team=owner_team):
        models = [m.model_id for m in credential.models.all() if m.kind == "chat"]
        if models:
            groups.append({"credential": credential, "models": models})
    return groups


# --- A run as the page shows it -------------------------------------------------------------------


@dataclass(frozen=True)
class AnswerCard:
    answer: Answer
    badges: list[str]
    is_winner: bool


@dataclass(frozen=True)
class RunView:
    run: Run
    cards: list[AnswerCard]
    done: bool
    diff_pair: tuple[int, int] | None  # the answers the diff starts with
    chart: charts.Scatter
    rating_chart: charts.Scatter
    history: list[Run]

    @property
    def answers(self) -> list[Answer]:
        return [card.answer for card in self.cards]

    @property
    def unpriced(self) -> int:
        return sum(1 for a in self.answers if a.cost_source == "unpriced")

    @property
    def estimated(self) -> int:
        return sum(1 for a in self.answers if a.cost_source == "estimated")


def answer_card(*, answer: Answer, badges=None, winner_id=None) -> AnswerCard:
    return AnswerCard(answer, badges or [], winner_id is not None and winner_id == answer.pk)


def _series(answers: list[Answer]) -> dict[str, int]:
    keys: dict[str, int] = {}
    for answer in answers:
        keys.setdefault(f"{answer.preset}:{answer.model}", len(keys) % charts.SERIES)
    return keys


def _charts(run: Run, answers: list[Answer], history: list[Answer]):
    """Cost vs latency (this run and its comparison's history) and cost vs rating."""
    series = _series(answers + history)
    points, rated = [], []
    for answer in answers + history:
        if answer.status != AnswerStatus.COMPLETE or answer.duration_ms is None:
            continue
        current = answer.run_id == run.pk
        cost = float(answer.cost) if answer.cost is not None else None
        label = answer.model
        key = f"{answer.preset}:{answer.model}"
        if cost is not None:
            points.append(
                charts.Point(
                    answer.duration_ms,
                    cost,
                    label,
                    f"Run {answer.run.number if answer.run_id != run.pk else run.number}: "
                    f"{charts.seconds_label(answer.duration_ms)}, {money.chart_usd(cost)}",
                    series[key],
                    current,
                )
            )
            if answer.rating:
                rated.append(
                    charts.Point(
                        answer.rating,
                        cost,
                        label,
                        f"rated {answer.rating}/5, {money.chart_usd(cost)}",
                        series[key],
                        current,
                    )
                )
    latency = charts.scatter(
        points,
        x_label="Total time",
        y_label="Cost",
        x_format=charts.seconds_label,
        y_format=money.chart_usd,
    )
    rating = charts.scatter(
        rated,
        x_label="Rating",
        y_label="Cost",
        x_format=lambda v: f"{v:g}",
        y_format=money.chart_usd,
    )
    return latency, rating


def run_view(*, run: Run) -> RunView:
    answers = list(run.answers.select_related("run").order_by("position", "id"))
    done = run.finished_at is not None
    badges = metrics.badges_for(answers) if done else {}
    cards = [
        answer_card(answer=a, badges=badges.get(a.pk), winner_id=run.winner_id) for a in answers
    ]
    complete = [a.pk for a in answers if a.status == AnswerStatus.COMPLETE and a.text]
    pair = (complete[0], complete[1]) if len(complete) >= 2 else None
    history_runs: list[Run] = []
    history_answers: list[Answer] = []
    if run.comparison_id is not None:
        history_runs = list(
            Run.objects.filter(comparison_id=run.comparison_id, kind=RunKind.COMPARE)
            # What each past run's total leaves out ("$0.12 + 2 unpriced calls").
            .annotate(unpriced_answers=Count("answers", filter=Q(answers__cost_source="unpriced")))
            .order_by("-created_at", "-id")[:HISTORY_RUNS]
        )
        history_answers = list(
            Answer.objects.filter(run__in=[r.pk for r in history_runs if r.pk != run.pk])
            .select_related("run")
            .only(
                "id",
                "run_id",
                "run__number",
                "preset",
                "model",
                "status",
                "cost",
                "cost_source",
                "duration_ms",
                "rating",
            )
        )
    latency, rating = _charts(run, answers, history_answers)
    return RunView(run, cards, done, pair, latency, rating, history_runs)


def latest_run(*, comparison: Comparison) -> Run | None:
    return comparison.runs.order_by("-created_at", "-id").first()


def run_totals(*, run: Run) -> dict:
    answers = list(run.answers.all())
    cost = sum((a.cost or Decimal(0) for a in answers), Decimal(0))
    return {"cost": cost, "unpriced": any(a.cost_source == "unpriced" for a in answers)}


# --- A prompt from the library --------------------------------------------------------------------


@dataclass(frozen=True)
class PromptLink:
    """The library version a comparison's prompt was filled from. `holds`: the prompt (and the
    system prompt, when it came from the version) is still exactly what the version renders
    with the saved values — only then does a run count for the version."""

    version: object  # prompts.PromptVersion
    holds: bool

    @property
    def template(self):
        return self.version.template


def prompt_link(*, comparison: Comparison) -> PromptLink | None:
    """Checked again at every run (services.run_start), not trusted from the time it was made:
    edits after filling the prompt in detach it, whoever made them and however they raced."""
    from prompts.models import PromptVersion
    from prompts.rendering import RenderError, render_values

    if comparison.prompt_version_id is None:
        return None
    version = (
        PromptVersion.objects.select_related("template", "template__owner_team")
        .filter(pk=comparison.prompt_version_id)
        .first()
    )
    if version is None:
        return None
    try:
        rendered = render_values(version=version, values=comparison.prompt_values or {})
    except RenderError:
        return PromptLink(version, False)
    prompt = comparison.prompt
    # A version linked to a collection puts its retrieved context (then a blank line) in front
    # of the user part (prompts.rendering); the context itself isn't re-retrieved here.
    holds = prompt == rendered.user or bool(
        version.collection_id and rendered.user and prompt.endswith("\n\n" + rendered.user)
    )
    if holds and comparison.prompt_with_system and rendered.system:
        holds = comparison.system_prompt == rendered.system
    return PromptLink(version, holds)
