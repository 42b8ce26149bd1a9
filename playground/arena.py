"""The blind arena: a pool of models per user or team, battles of two anonymous answers drawn
from it, votes, and the leaderboard.

- Two different models, never a model against itself (models are `<preset>:<model id>`: the
  same model through two keys of one provider is one model). Which goes left (A) is random and
  kept on the battle, so position bias can be shown.
- A battle is made (drawn) by a page request and started by the page's socket, which makes the
  answers and streams them like a comparison's; names are revealed only after the vote.
- The leaderboard refits from the votes of one owner, filtered by tag and time, and is cached
  until a new vote arrives."""

from __future__ import annotations

import hashlib
import random
from datetime import datetime

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Max
from django.utils import timezone

from accounts import access
from accounts.access import Action
from accounts.models import Team
from playground import estimates, ranking, selectors
from playground.models import Answer, AnswerStatus, ArenaPool, Battle, Run, RunKind, Vote
from playground.runs import AnswerPlan, run_finish_if_done
from playground.services import MAX_PROMPT, MAX_SYSTEM, answer_request, check_credential
from providers import presets
from providers.models import ProviderCredential

MAX_POOL = 40
_rng = random.SystemRandom()  # which models meet, and who goes left


def model_key(preset: str, model: str) -> str:
    return f"{preset}:{model}"


def model_label(key: str) -> str:
    """ "gpt-4o · OpenAI" for "openai:gpt-4o"."""
    preset, _, model = key.partition(":")
    row = presets.PRESETS.get(preset)
    return f"{model} · {row.label}" if row else key


# --- Pools -----------------------------------------------------------------------------------------


def pool_for(*, owner) -> ArenaPool:
    """The owner's pool (made empty on first use)."""
    lookup = {"owner_team": owner} if isinstance(owner, Team) else {"owner_user": owner}
    pool = ArenaPool.objects.filter(**lookup).first()
    if pool is None:
        pool = ArenaPool()
        pool.set_owner(owner)
        pool.save()
    return pool


def pool_entries(*, pool: ArenaPool) -> list[tuple[ProviderCredential, str]]:
    """The pool's entries whose credential still exists and is active."""
    ids = {entry["credential"] for entry in pool.entries}
    credentials = ProviderCredential.objects.filter(pk__in=ids, is_active=True).in_bulk()
    return [
        (credentials[e["credential"]], e["model"])
        for e in pool.entries
        if e["credential"] in credentials
    ]


@transaction.atomic
def pool_save(*, actor, owner, entries: list[tuple[ProviderCredential, str]]) -> ArenaPool:
    """Replace the pool. Each credential must be the owner's (and usable by the actor)."""
    if isinstance(owner, Team):
        access.require(actor, owner, Action.WRITE)
    elif owner.pk != actor.pk:
        raise ValidationError("A personal pool is its owner's.")
    if len(entries) > MAX_POOL:
        raise ValidationError(f"A pool holds at most {MAX_POOL} models.")
    clean, seen = [], set()
    for credential, model in entries:
        check_credential(actor=actor, owner=owner, credential=credential)
        model = (model or "").strip()[:200]
        if not model or (credential.pk, model) in seen:
            continue
        seen.add((credential.pk, model))
        clean.append({"credential": credential.pk, "model": model})
    pool = pool_for(owner=owner)
    pool.entries = clean
    pool.updated_at = timezone.now()
    pool.save(update_fields=["entries", "updated_at"])
    return pool


# --- Battles ---------------------------------------------------------------------------------------


def _draw(entries: list[tuple[ProviderCredential, str]]):
    """Two entries of two different models, in random order (the first goes left)."""
    by_key: dict[str, list] = {}
    for credential, model in entries:
        by_key.setdefault(model_key(credential.preset, model), []).append((credential, model))
    if len(by_key) < 2:
        raise ValidationError(
            {"pool": "Put at least two different models in the pool to start a battle."}
        )
    left, right = _rng.sample(sorted(by_key), 2)
    return _rng.choice(by_key[left]), _rng.choice(by_key[right])


@transaction.atomic
def battle_create(
    *, actor, owner_team: Team | None = None, prompt: str, system_prompt: str = "", tag: str = ""
) -> Battle:
    owner = owner_team or actor
    if owner_team is not None:
        access.require(actor, owner_team, Action.USE)
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValidationError({"prompt": "Write a prompt for the two models."})
    if len(prompt) > MAX_PROMPT or len(system_prompt or "") > MAX_SYSTEM:
        raise ValidationError({"prompt": f"At most {MAX_PROMPT:,} characters."})
    tag = " ".join((tag or "").split()).lower()[:60]
    entries = [
        (c, m)
        for c, m in pool_entries(pool=pool_for(owner=owner))
        if access.allows(actor, c, Action.USE)
    ]
    (cred_a, model_a), (cred_b, model_b) = _draw(entries)
    run = Run(
        kind=RunKind.ARENA,
        created_by=actor,
        system_prompt=system_prompt or "",
        prompt=prompt,
        owner_user_id=None if owner_team else actor.pk,
        owner_team_id=owner_team.pk if owner_team else None,
    )
    run.save()
    battle = Battle(
        run=run,
        created_by=actor,
        tag=tag,
        credential_a=cred_a,
        credential_b=cred_b,
        model_a=model_key(cred_a.preset, model_a),
        model_b=model_key(cred_b.preset, model_b),
    )
    battle.set_owner(owner)
    battle.save()
    return battle


@transaction.atomic
def battle_start(*, actor, battle: Battle) -> list[AnswerPlan]:
    """Make the two answers and their plans — once: a battle already started gives []."""
    access.require(actor, battle, Action.USE)
    now = timezone.now()
    if not Battle.objects.filter(pk=battle.pk, started_at__isnull=True).update(started_at=now):
        return []
    run = battle.run
    turns = [("user", run.prompt)]
    drawn = [(battle.credential_a, battle.model_a), (battle.credential_b, battle.model_b)]
    answers = []
    for position, (credential, key) in enumerate(drawn):
        if credential is not None:
            check_credential(actor=actor, owner=battle.owner, credential=credential)
        preset, _, model = key.partition(":")
        answers.append(
            Answer(
                run=run,
                position=position,
                credential=credential,
                credential_name=credential.name if credential else "",
                preset=preset,
                model=model,
                system_prompt=run.system_prompt,
                status=AnswerStatus.STREAMING,
                created_at=now,
                heartbeat_at=now,
            )
        )
    for answer in answers:
        if answer.credential is None:  # deleted since the draw: this side fails on its own
            answer.status = AnswerStatus.ERROR
            answer.error_code, answer.error_message = "not_found", "That model is gone."
            answer.heartbeat_at = None
    answers = Answer.objects.bulk_create(answers)
    Run.objects.filter(pk=run.pk).update(created_at=now)
    if not any(a.status == AnswerStatus.STREAMING for a in answers):
        run_finish_if_done(run_id=run.pk)
    estimate = estimates.estimate(
        actor=actor,
        slots=[
            estimates.SlotInput(a.position, a.credential, a.model, a.system_prompt, None)
            for a in answers
            if a.credential is not None
        ],
        turns=turns,
    )
    Run.objects.filter(pk=run.pk).update(estimate=estimate.total)
    return [
        AnswerPlan(
            answer_id=answer.pk,
            run_id=run.pk,
            topic=battle.pk,
            user_id=actor.pk,
            user=actor,
            credential_id=answer.credential_id,
            request=answer_request(
                model=answer.model, params={}, system=answer.system_prompt, turns=turns
            ),
        )
        for answer in answers
        if answer.status == AnswerStatus.STREAMING
    ]


def battle_vote(*, actor, battle: Battle, vote: str) -> Battle:
    """One vote per battle, once both answers are final; it reveals the names."""
    access.require(actor, battle, Action.WRITE)
    if vote not in Vote.values:
        raise ValidationError({"vote": "Vote a, b, tie or both_bad."})
    answers = battle.run.answers.all()
    if not answers.exists() or answers.filter(status=AnswerStatus.STREAMING).exists():
        raise ValidationError("Wait for both answers before voting.")
    now = timezone.now()
    updated = Battle.objects.filter(pk=battle.pk, vote="").update(
        vote=vote, voted_by=actor, voted_at=now
    )
    if not updated:
        raise ValidationError("This battle has its vote already.")
    battle.vote, battle.voted_by, battle.voted_at = vote, actor, now
    return battle


# --- The leaderboard -------------------------------------------------------------------------------


def _voted(
    *, user, team, tag: str = "", since: datetime | None = None, until: datetime | None = None
):
    battles = selectors.battles_for_owner(user=user, team=team).exclude(vote="")
    if tag:
        battles = battles.filter(tag=tag)
    if since is not None:
        battles = battles.filter(voted_at__gte=since)
    if until is not None:
        battles = battles.filter(voted_at__lt=until)
    return battles


def leaderboard_for(
    *, user, team=None, tag: str = "", since: datetime | None = None, until: datetime | None = None
) -> dict:
    """Standings (rating, 95 % interval, votes, wins/losses/ties), position bias and the tags
    in use. Cached per filter until the next vote."""
    battles = _voted(user=user, team=team, tag=tag, since=since, until=until)
    stamp = battles.aggregate(n=Count("id"), last=Max("voted_at"), top=Max("id"))
    owner = f"t{team.pk}" if team is not None else f"u{user.pk}"
    # A digest: tags are free text, and a key must stay short and plain for any cache backend.
    raw = f"{owner}|{tag}|{since}|{until}|{stamp['n']}|{stamp['top']}|{stamp['last']}"
    key = "playground:leaderboard:" + hashlib.sha256(raw.encode()).hexdigest()
    cached = cache.get(key)
    if cached is None:
        votes = [
            ranking.Vote(left, right, outcome)
            for left, right, outcome in battles.values_list("model_a", "model_b", "vote")
        ]
        cached = {
            "standings": ranking.leaderboard(votes),
            "bias": ranking.position_bias(votes),
            "votes": len(votes),
        }
        cache.set(key, cached, 3600)
    tags = sorted(
        _voted(user=user, team=team)
        .exclude(tag="")
        .order_by()  # no ordering columns: DISTINCT over the tag alone
        .values_list("tag", flat=True)
        .distinct()
    )
    return {**cached, "tags": tags}
