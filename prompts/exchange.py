"""Prompts as JSON or YAML documents: export with their whole history, import as new prompts.

A document:

    format: workbench.prompts/1
    prompts:
      - name: Summarize
        description: …
        tags: [writing]
        labels: {latest: 2, production: 1}
        versions:
          - number: 1
            change_note: First version
            system: You write {{tone}} summaries.
            user: Summarize {{topic}}.
            variables: [{name: tone, type: choice, choices: [plain, formal]}, …]
            model: gpt-4o-mini          # with credential: the credential's name
            params: {temperature: 0.2}
            collection: Handbook        # by name
            top_k: 5

Ids never travel: a credential or collection is named, and an import links the importing
owner's credential or collection of that name when there is one (the report says when not).

Import is all or nothing: the whole document is read and every prompt and version checked with
the same rules as the editor before anything is written; then everything is written in one
transaction. Sizes are bounded before and while parsing (bytes, nesting depth, counts); YAML is
read with a safe loader that refuses anchors and aliases (no entity-expansion bombs) and any tag.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import yaml
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts import access
from accounts.access import Action
from accounts.models import Team
from prompts import services
from prompts.models import PromptTemplate
from prompts.services import Content

FORMAT = "workbench.prompts/1"
MAX_BYTES = 2 * 1024 * 1024
MAX_DEPTH = 12
MAX_PROMPTS = 100
MAX_VERSIONS = 200  # per prompt
MAX_TOTAL_VERSIONS = 1_000
MAX_EXPORT = 500


# --- Export --------------------------------------------------------------------------------------


def _version_doc(version) -> dict:
    doc = {
        "number": version.number,
        "change_note": version.change_note,
        "created_at": version.created_at.isoformat(),
        "system": version.system_text,
        "user": version.user_text,
        "variables": version.variables,
    }
    if version.model:
        doc["model"] = version.model
        if version.credential_id:
            doc["credential"] = version.credential.name
    if version.params:
        doc["params"] = version.params
    if version.collection_id:
        doc["collection"] = version.collection.name
        doc["top_k"] = version.top_k
    return doc


def prompts_export(*, user, templates) -> dict:
    """The export document of `templates` (each checked: readable by `user`)."""
    prompts = []
    for template in list(templates)[:MAX_EXPORT]:
        access.require(user, template, Action.READ)
        versions = template.versions.select_related("credential", "collection").order_by("number")
        prompts.append(
            {
                "name": template.name,
                "description": template.description,
                "tags": list(template.tags),
                "labels": {
                    label.name: label.version.number
                    for label in template.labels.select_related("version").order_by("name")
                },
                "versions": [_version_doc(v) for v in versions],
            }
        )
    return {"format": FORMAT, "exported_at": timezone.now().isoformat(), "prompts": prompts}


def dumps(document: dict, fmt: str) -> str:
    if fmt == "yaml":
        return yaml.safe_dump(document, allow_unicode=True, sort_keys=False, width=100)
    return json.dumps(document, ensure_ascii=False, indent=2)


# --- Reading -----------------------------------------------------------------------------------------


class _NoAliasLoader(yaml.SafeLoader):
    """Safe YAML without anchors, aliases or tags: plain data only."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.YAMLError(
                f"line {event.start_mark.line + 1}: anchors and aliases (*{event.anchor}) "
                "aren't allowed in an import"
            )
        event = self.peek_event()
        if getattr(event, "anchor", None):
            raise yaml.YAMLError(
                f"line {event.start_mark.line + 1}: anchors (&{event.anchor}) aren't allowed in "
                "an import"
            )
        tag = getattr(event, "tag", None)
        if tag and tag not in ("!", None) and not tag.startswith("tag:yaml.org,2002:"):
            raise yaml.YAMLError(f"line {event.start_mark.line + 1}: tags aren't allowed")
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > MAX_DEPTH + 2:
                raise yaml.YAMLError(f"nested deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _depth(value, limit: int) -> int:
    """How deeply JSON-like data nests, iteratively (no input can exhaust the stack)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if deepest > limit:
            return deepest
        if isinstance(item, dict):
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, level + 1) for v in item)
    return deepest


def parse(text: str, fmt: str) -> dict:
    """The document as data, or ValidationError saying what is wrong with the file."""
    if not isinstance(text, str):
        raise ValidationError({"data": "Send the document as text."})
    if len(text.encode("utf-8", errors="replace")) > MAX_BYTES:
        raise ValidationError({"data": f"The file is larger than {MAX_BYTES // 1048576} MB."})
    if fmt == "yaml":
        try:
            document = yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass
        except yaml.YAMLError as exc:
            raise ValidationError({"data": f"Not readable YAML: {exc}"}) from None
        except RecursionError:
            raise ValidationError({"data": f"Nested deeper than {MAX_DEPTH} levels."}) from None
    else:
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationError(
                {"data": f"Not readable JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."}
            ) from None
        except RecursionError:
            raise ValidationError({"data": f"Nested deeper than {MAX_DEPTH} levels."}) from None
    if _depth(document, MAX_DEPTH) > MAX_DEPTH:
        raise ValidationError({"data": f"Nested deeper than {MAX_DEPTH} levels."})
    if not isinstance(document, dict) or not isinstance(document.get("prompts"), list):
        raise ValidationError(
            {"data": f"Expected an object with format “{FORMAT}” and a list of prompts."}
        )
    if document.get("format", FORMAT) != FORMAT:
        raise ValidationError(
            {"data": f"Unknown format “{str(document.get('format'))[:60]}”; expected “{FORMAT}”."}
        )
    return document


# --- Import --------------------------------------------------------------------------------------------


@dataclass
class _Planned:
    name: str
    description: str
    tags: list[str]
    versions: list[tuple[Content, str]]  # content, change note — in order
    labels: dict[str, int]  # label → position in versions (1-based)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Imported:
    name: str
    template_id: int
    versions: int
    notes: tuple[str, ...]


def _owned_by(queryset, owner):
    if isinstance(owner, Team):
        return queryset.filter(owner_team=owner)
    return queryset.filter(owner_user=owner)


def _link(actor, owner, doc: dict, notes: list[str], where: str) -> tuple:
    """The importing owner's credential and collection named in a version, when they exist."""
    from providers.models import ProviderCredential
    from rag.models import Collection

    credential = collection = None
    model = doc.get("model") or ""
    if not isinstance(model, str):
        raise ValidationError(f"{where}: model must be text.")
    if model:
        name = doc.get("credential")
        if isinstance(name, str) and name:
            credential = (
                _owned_by(ProviderCredential.objects.all(), owner).filter(name=name).first()
            )
        if credential is None or not access.allows(actor, credential, Action.READ):
            notes.append(f"{where}: no credential named “{str(name)[:100]}” here; model left out.")
            credential, model = None, ""
    name = doc.get("collection")
    if name:
        if isinstance(name, str):
            collection = _owned_by(Collection.objects.all(), owner).filter(name=name).first()
        if collection is None or not access.allows(actor, collection, Action.READ):
            notes.append(f"{where}: no collection named “{str(name)[:100]}” here; left out.")
            collection = None
    return credential, model, collection


def _plan(actor, owner, number: int, doc) -> _Planned:
    where = f"Prompt {number}"
    if not isinstance(doc, dict):
        raise ValidationError(f"{where}: expected an object.")
    name = doc.get("name")
    where = f"Prompt {number} (“{str(name)[:60]}”)" if name else where
    try:
        clean_name = services.clean_name(name)
        description = services._text(
            doc.get("description") or "", "description", services.MAX_DESCRIPTION, strip=True
        )
        tags = services.clean_tags(doc.get("tags") or [])
    except ValidationError as exc:
        raise ValidationError(f"{where}: {' '.join(exc.messages)}") from None
    versions = doc.get("versions")
    if not isinstance(versions, list) or not versions:
        raise ValidationError(f"{where}: give at least one version.")
    if len(versions) > MAX_VERSIONS:
        raise ValidationError(f"{where}: at most {MAX_VERSIONS} versions.")
    planned = _Planned(clean_name, description, tags, [], {})
    numbers: dict[int, int] = {}
    keys = {
        "number",
        "change_note",
        "created_at",
        "system",
        "user",
        "variables",
        "model",
        "credential",
        "params",
        "collection",
        "top_k",
    }
    for position, version in enumerate(versions, start=1):
        at = f"{where}, version {position}"
        if not isinstance(version, dict):
            raise ValidationError(f"{at}: expected an object.")
        unknown = set(version) - keys
        if unknown:
            raise ValidationError(f"{at}: unknown fields {', '.join(sorted(map(str, unknown)))}.")
        credential, model, collection = _link(actor, owner, version, planned.notes, at)
        content = Content(
            system_text=version.get("system") or "",
            user_text=version.get("user") or "",
            variables=version.get("variables") or [],
            credential=credential,
            model=model,
            params=version.get("params") or {},
            collection=collection,
            top_k=version.get("top_k") or 5,
        )
        try:
            content = services.content_clean(actor=actor, owner=owner, content=content)
            note = services._text(
                version.get("change_note") or "", "change_note", services.MAX_NOTE, strip=True
            )
        except ValidationError as exc:
            raise ValidationError(f"{at}: {' '.join(exc.messages)}") from None
        planned.versions.append((content, note))
        if isinstance(version.get("number"), int) and not isinstance(version["number"], bool):
            numbers[version["number"]] = position
    labels = doc.get("labels") or {}
    if not isinstance(labels, dict):
        raise ValidationError(f"{where}: labels must map a label to a version number.")
    for label, target in labels.items():
        try:
            label = services.clean_label(label)
        except ValidationError as exc:
            raise ValidationError(f"{where}: {' '.join(exc.messages)}") from None
        if label == services.LATEST:
            continue  # follows the newest version, as after any save
        if isinstance(target, bool) or target not in numbers:
            raise ValidationError(f"{where}: label “{label}” points at a version not in the file.")
        planned.labels[label] = numbers[target]
    return planned


def prompts_import(
    *, actor, text: str, fmt: str = "json", owner_team: Team | None = None
) -> list[Imported]:
    """Import every prompt of the document as a new prompt (with its versions and labels), or
    nothing: a ValidationError lists what is wrong, prompt by prompt."""
    if fmt not in {"json", "yaml"}:
        raise ValidationError({"format": "json or yaml."})
    if owner_team is not None:
        access.require(actor, owner_team, Action.WRITE)
    owner = owner_team or actor
    document = parse(text, fmt)
    prompts = document["prompts"]
    if not prompts:
        raise ValidationError({"data": "The file holds no prompts."})
    if len(prompts) > MAX_PROMPTS:
        raise ValidationError({"data": f"At most {MAX_PROMPTS} prompts per import."})
    total = sum(
        len(p["versions"])
        for p in prompts
        if isinstance(p, dict) and isinstance(p.get("versions"), list)
    )
    if total > MAX_TOTAL_VERSIONS:
        raise ValidationError({"data": f"At most {MAX_TOTAL_VERSIONS} versions per import."})
    planned, errors = [], []
    for number, doc in enumerate(prompts, start=1):
        try:
            planned.append(_plan(actor, owner, number, doc))
        except ValidationError as exc:
            errors += exc.messages
    if errors:
        raise ValidationError({"data": errors[:50]})
    imported = []
    with transaction.atomic():
        for plan in planned:
            template = PromptTemplate(
                name=plan.name, description=plan.description, tags=plan.tags, created_by=actor
            )
            template.set_owner(owner)
            template.save()
            written = []
            for content, note in plan.versions:
                written.append(
                    services._version_write(
                        actor=actor, template=template, content=content, note=note or "Imported"
                    )
                )
            for label, position in plan.labels.items():
                services._label_move(
                    actor=actor, template=template, name=label, version=written[position - 1]
                )
            imported.append(Imported(plan.name, template.pk, len(written), tuple(plan.notes)))
    return imported
