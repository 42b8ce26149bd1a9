"""Writes for the prompt library: templates, versions (immutable), labels, feedback.

Every save of a template's content makes a new version (`version_create`), moves the `latest`
label to it, and records why (`change_note`). Rolling back is `label_set` to an older version.
Checks happen before anything is written; a failure leaves nothing behind.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from accounts import access
from accounts.access import Action
from accounts.models import Team
from prompts.models import (
    FeedbackSource,
    LabelMove,
    PromptFeedback,
    PromptLabel,
    PromptTemplate,
    PromptVersion,
)
from prompts.variables import Variable, definitions_clean, parse_definitions, placeholders

MAX_NAME = 200
MAX_DESCRIPTION = 2_000
MAX_PART_CHARS = 200_000  # system or user part
MAX_TAGS = 20
MAX_TAG = 40
MAX_NOTE = 500
LATEST = "latest"
PRODUCTION = "production"
LABEL_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,39}$")
PARAM_KEYS = ("temperature", "top_p", "max_tokens", "seed")
MAX_TOP_K = 20


@dataclass
class Content:
    """What a version holds (everything a model receives)."""

    system_text: str = ""
    user_text: str = ""
    variables: list = field(default_factory=list)  # dicts or Variables
    credential: object | None = None  # providers.ProviderCredential
    model: str = ""
    params: dict = field(default_factory=dict)
    collection: object | None = None  # rag.Collection
    top_k: int = 5

    @classmethod
    def of(cls, version: PromptVersion) -> Content:
        return cls(
            system_text=version.system_text,
            user_text=version.user_text,
            variables=list(version.variables),
            credential=version.credential,
            model=version.model,
            params=dict(version.params),
            collection=version.collection,
            top_k=version.top_k,
        )


class VersionConflict(ValidationError):
    """Someone saved a newer version while this edit was open."""

    code = "conflict"


class NothingChanged(ValidationError):
    code = "nothing_changed"


# --- Checks ----------------------------------------------------------------------------------------


def _text(value, name: str, limit: int, *, strip: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValidationError({name: "Must be text."})
    if strip:
        value = value.strip()
    if len(value) > limit:
        raise ValidationError({name: f"At most {limit:,} characters."})
    return value


def clean_name(value) -> str:
    name = _text(value, "name", MAX_NAME, strip=True)
    if not name:
        raise ValidationError({"name": "Give the prompt a name."})
    return name


def clean_tags(value) -> list[str]:
    if value in (None, ""):
        return []
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list | tuple) or not all(isinstance(t, str) for t in value):
        raise ValidationError({"tags": "Tags are a list of short texts."})
    tags: list[str] = []
    for raw in value:
        tag = " ".join(raw.lower().split())
        if not tag:
            continue
        if len(tag) > MAX_TAG:
            raise ValidationError({"tags": f"“{tag[:50]}” is longer than {MAX_TAG} characters."})
        if tag not in tags:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise ValidationError({"tags": f"At most {MAX_TAGS} tags."})
    return tags


def clean_params(params) -> dict:
    if params in (None, ""):
        return {}
    if not isinstance(params, dict):
        raise ValidationError({"params": "Parameters are an object."})
    unknown = set(params) - set(PARAM_KEYS)
    if unknown:
        raise ValidationError(
            {"params": f"Unknown parameters: {', '.join(sorted(map(str, unknown)))}."}
        )
    clean: dict = {}
    for key in PARAM_KEYS:
        value = params.get(key)
        if value in (None, ""):
            continue
        try:
            if isinstance(value, bool):
                raise ValueError
            if key in ("max_tokens", "seed"):
                number = float(value) if isinstance(value, str) else value
                if number != int(number):
                    raise ValueError
                clean[key] = int(number)
            else:
                clean[key] = float(value)
        except (TypeError, ValueError, OverflowError):
            raise ValidationError(
                {
                    key: f"{key} must be {'a whole number' if key in ('max_tokens', 'seed') else 'a number'}."
                }
            ) from None
    if "temperature" in clean and not 0 <= clean["temperature"] <= 2:
        raise ValidationError({"temperature": "Temperature is between 0 and 2."})
    if "top_p" in clean and not 0 < clean["top_p"] <= 1:
        raise ValidationError({"top_p": "Top p is greater than 0 and at most 1."})
    if "max_tokens" in clean and not 1 <= clean["max_tokens"] <= 1_000_000:
        raise ValidationError({"max_tokens": "Max tokens is between 1 and 1,000,000."})
    if "seed" in clean and not -(2**63) <= clean["seed"] < 2**63:
        raise ValidationError({"seed": "The seed is a 64-bit integer."})
    return clean


def _owner_label(owner) -> str:
    return f"team “{owner.name}”" if isinstance(owner, Team) else "you personally"


def check_credential(*, actor, owner, credential) -> None:
    """A template's preferred model is one of its owner's credentials — the team's for a team
    prompt, the actor's own for a personal one — the rule chat and the playground follow (whoever
    owns it pays). 404 for a credential the actor can't see."""
    if credential is None:
        return
    access.require(actor, credential, Action.READ)
    if isinstance(owner, Team):
        if credential.owner_team_id != owner.pk:
            raise ValidationError(
                {
                    "credential": f"“{credential.name}” isn't one of {owner.name}'s credentials; "
                    "a team prompt prefers one of the team's models."
                }
            )
    elif credential.owner_user_id != owner.pk:
        raise ValidationError(
            {
                "credential": f"“{credential.name}” belongs to a team; a personal prompt prefers "
                "one of your personal credentials."
            }
        )


def check_collection(*, actor, owner, collection) -> None:
    """A linked collection must be readable by the actor (404 otherwise); a team prompt links
    only that team's collections, so every member who can use the prompt can search it."""
    if collection is None:
        return
    access.require(actor, collection, Action.READ)
    if isinstance(owner, Team) and collection.owner_team_id != owner.pk:
        raise ValidationError(
            {
                "collection": f"“{collection.name}” isn't one of {owner.name}'s collections; a "
                "team prompt searches the team's collections only (its members must be able to "
                "read it)."
            }
        )


def content_clean(*, actor, owner, content: Content) -> Content:
    """Check everything a version would hold. Returns the cleaned content (variables as dicts,
    in order of use)."""
    system_text = _text(content.system_text, "system_text", MAX_PART_CHARS)
    user_text = _text(content.user_text, "user_text", MAX_PART_CHARS)
    if not system_text.strip() and not user_text.strip():
        raise ValidationError({"user_text": "Write a system part, a user part, or both."})
    raw = list(content.variables or [])
    definitions = raw if all(isinstance(v, Variable) for v in raw) else parse_definitions(raw)
    variables = definitions_clean(definitions, used=placeholders(system_text, user_text))
    model = _text(content.model, "model", 200, strip=True)
    if model and content.credential is None:
        raise ValidationError({"credential": "Pick the credential that serves this model."})
    if content.credential is not None and not model:
        raise ValidationError({"model": "Pick a model of this credential."})
    check_credential(actor=actor, owner=owner, credential=content.credential)
    check_collection(actor=actor, owner=owner, collection=content.collection)
    top_k = content.top_k if content.top_k not in (None, "") else 5
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= MAX_TOP_K:
        raise ValidationError({"top_k": f"Retrieve between 1 and {MAX_TOP_K} chunks."})
    return Content(
        system_text=system_text,
        user_text=user_text,
        variables=[v.to_dict() for v in variables],
        credential=content.credential,
        model=model,
        params=clean_params(content.params),
        collection=content.collection,
        top_k=top_k,
    )


def _same(version: PromptVersion, content: Content) -> bool:
    return (
        version.system_text == content.system_text
        and version.user_text == content.user_text
        and version.variables == content.variables
        and version.credential_id == getattr(content.credential, "pk", None)
        and version.model == content.model
        and version.params == content.params
        and version.collection_id == getattr(content.collection, "pk", None)
        and version.top_k == content.top_k
    )


def _delete_action(template) -> Action:
    return Action.MANAGE if template.owner_team_id else Action.WRITE


# --- Templates -----------------------------------------------------------------------------------


def template_create(
    *,
    actor,
    name: str,
    content: Content,
    description: str = "",
    tags=(),
    owner_team: Team | None = None,
    change_note: str = "",
) -> PromptTemplate:
    """A new template with its first version (v1, labelled `latest`)."""
    if owner_team is not None:
        access.require(actor, owner_team, Action.WRITE)
    owner = owner_team or actor
    template = PromptTemplate(
        name=clean_name(name),
        description=_text(description, "description", MAX_DESCRIPTION, strip=True),
        tags=clean_tags(tags),
        created_by=actor,
    )
    template.set_owner(owner)
    content = content_clean(actor=actor, owner=owner, content=content)
    note = _text(change_note, "change_note", MAX_NOTE, strip=True) or "First version"
    with transaction.atomic():
        template.save()
        _version_write(actor=actor, template=template, content=content, note=note)
    return template


def template_update(
    *, actor, template: PromptTemplate, name=None, description=None, tags=None
) -> PromptTemplate:
    """Name, description and tags (not versioned: renaming makes no new version)."""
    access.require(actor, template, Action.WRITE)
    fields = []
    if name is not None:
        template.name = clean_name(name)
        fields.append("name")
    if description is not None:
        template.description = _text(description, "description", MAX_DESCRIPTION, strip=True)
        fields.append("description")
    if tags is not None:
        template.tags = clean_tags(tags)
        fields.append("tags")
    if fields:
        template.updated_at = timezone.now()
        template.save(update_fields=[*fields, "updated_at"])
    return template


def template_delete(*, actor, template: PromptTemplate) -> None:
    """Delete a template with its versions, labels and batch runs. A team's takes `manage`.
    The ledger keeps its rows (they name the ids in their context)."""
    access.require(actor, template, _delete_action(template))
    template.delete()


def can_delete(user, template: PromptTemplate) -> bool:
    return access.allows(user, template, _delete_action(template))


# --- Versions ----------------------------------------------------------------------------------------


def _version_write(
    *, actor, template: PromptTemplate, content: Content, note: str
) -> PromptVersion:
    number = template.latest_number + 1
    version = PromptVersion.objects.create(
        template=template,
        number=number,
        system_text=content.system_text,
        user_text=content.user_text,
        variables=content.variables,
        credential=content.credential,
        model=content.model,
        params=content.params,
        collection=content.collection,
        top_k=content.top_k,
        change_note=note,
        created_by=actor,
    )
    template.latest_number = number
    template.updated_at = timezone.now()
    template.save(update_fields=["latest_number", "updated_at"])
    _label_move(actor=actor, template=template, name=LATEST, version=version)
    return version


def version_create(
    *,
    actor,
    template: PromptTemplate,
    content: Content,
    change_note: str = "",
    based_on: int | None = None,
) -> PromptVersion:
    """Save `content` as the template's next version and move `latest` to it.

    `based_on`: the version number the editor started from. If someone saved a newer one in the
    meantime this raises VersionConflict (nothing is saved; the caller keeps the text). Content
    identical to the newest version raises NothingChanged."""
    access.require(actor, template, Action.WRITE)
    owner = template.owner
    content = content_clean(actor=actor, owner=owner, content=content)
    note = _text(change_note, "change_note", MAX_NOTE, strip=True)
    with transaction.atomic():
        locked = PromptTemplate.objects.select_for_update().get(pk=template.pk)
        template.latest_number = locked.latest_number
        if based_on is not None and based_on != locked.latest_number:
            raise VersionConflict(
                f"Version {locked.latest_number} was saved while you were editing version "
                f"{based_on}. Your text is still here: compare it with v{locked.latest_number}, "
                "then save again.",
                code="conflict",
            )
        newest = template.versions.filter(number=locked.latest_number).first()
        if newest is not None and _same(newest, content):
            raise NothingChanged(
                f"Nothing changed since v{newest.number}; no new version was made.",
                code="nothing_changed",
            )
        return _version_write(actor=actor, template=template, content=content, note=note)


# --- Labels --------------------------------------------------------------------------------------------


def clean_label(name) -> str:
    name = _text(name, "name", 40, strip=True).lower()
    if not LABEL_NAME.match(name):
        raise ValidationError(
            {
                "name": "A label is 1–40 lowercase letters, digits, dots, dashes or underscores, "
                "like production or staging-2."
            }
        )
    return name


def _label_move(*, actor, template, name: str, version: PromptVersion) -> PromptLabel:
    label = PromptLabel.objects.select_for_update().filter(template=template, name=name).first()
    previous = label.version.number if label is not None else None
    if label is None:
        label = PromptLabel(template=template, name=name)
    elif label.version_id == version.pk:
        return label
    label.version = version
    label.updated_by = actor
    label.updated_at = timezone.now()
    label.save()
    LabelMove.objects.create(
        template=template, name=name, from_number=previous, to_number=version.number, moved_by=actor
    )
    return label


def label_set(*, actor, template: PromptTemplate, name: str, version: PromptVersion) -> PromptLabel:
    """Point label `name` at `version` (creating the label if needed). Moving `production` back
    to an older version is a rollback; `latest` may be moved too, and follows the next save."""
    access.require(actor, template, Action.WRITE)
    name = clean_label(name)
    if version.template_id != template.pk:
        raise ValidationError({"version": "That version belongs to another prompt."})
    with transaction.atomic():
        if (
            not PromptLabel.objects.filter(template=template, name=name).exists()
            and template.labels.count() >= 20
        ):
            raise ValidationError({"name": "A prompt has at most 20 labels."})
        return _label_move(actor=actor, template=template, name=name, version=version)


def label_delete(*, actor, template: PromptTemplate, name: str) -> None:
    access.require(actor, template, Action.WRITE)
    if name == LATEST:
        raise ValidationError(
            {"name": "“latest” follows every save; it can be moved, not deleted."}
        )
    with transaction.atomic():
        label = template.labels.select_related("version").filter(name=name).first()
        if label is None:
            from django.http import Http404

            raise Http404
        LabelMove.objects.create(
            template=template,
            name=name,
            from_number=label.version.number,
            to_number=None,
            moved_by=actor,
        )
        label.delete()


# --- Feedback: the hook chat, the playground and evaluations call ------------------------------------


def feedback_record(
    *, version: PromptVersion, source: str, key: str, score: float, user=None
) -> PromptFeedback:
    """Record (or replace) a rating or score of something `version` produced.

    Callers (chat ratings, playground ratings, evaluation runs) call this after their own access
    checks, with `score` normalised to 0–1 and `key` naming what was rated ("message:123").
    Rating the same thing again replaces the earlier score."""
    if source not in FeedbackSource.values:
        raise ValidationError({"source": f"One of {', '.join(FeedbackSource.values)}."})
    if isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 1:
        raise ValidationError({"score": "A score between 0 and 1."})
    key = _text(key, "key", 100, strip=True)
    feedback, _ = PromptFeedback.objects.update_or_create(
        version=version,
        source=source,
        key=key,
        user=user,
        defaults={"score": float(score), "created_at": timezone.now()},
    )
    return feedback


def feedback_forget(*, version_id: int, source: str, key: str, user=None) -> None:
    """Remove a rating that was taken back (un-rated in chat or the playground)."""
    PromptFeedback.objects.filter(version_id=version_id, source=source, key=key, user=user).delete()


def require_use_of(*, actor, template: PromptTemplate) -> None:
    """Running a prompt spends money: `use` on a team template (viewers read and render only)."""
    if not access.allows(actor, template, Action.USE):
        if not access.allows(actor, template, Action.READ):
            from django.http import Http404

            raise Http404
        raise PermissionDenied("Your role lets you read this prompt, not run it.")
