"""The difference between two versions of a prompt, field by field, as lines for people (the
diff page) and programs (REST). Texts are compared line by line (difflib); everything else as a
short description of its value."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass

from prompts.models import PromptVersion

MAX_DIFF_LINES = 5_000  # per field; a longer diff says how much it left out
MAX_COMPARED_LINES = 20_000  # both sides together; line matching is quadratic at worst


@dataclass(frozen=True)
class Line:
    kind: str  # same | added | removed | gap
    text: str


@dataclass(frozen=True)
class FieldDiff:
    name: str
    label: str
    changed: bool
    lines: tuple[Line, ...]


def _variables(version: PromptVersion) -> str:
    lines = []
    for v in version.variables:
        line = f"{v['name']}: {v.get('type', 'text')}"
        line += ", required" if v.get("required", True) else ", optional"
        if v.get("default"):
            line += f", default {json.dumps(v['default'], ensure_ascii=False)}"
        if v.get("choices"):
            line += f", one of {json.dumps(v['choices'], ensure_ascii=False)}"
        if v.get("example"):
            line += f", e.g. {json.dumps(v['example'], ensure_ascii=False)}"
        if v.get("description"):
            line += f" — {v['description']}"
        lines.append(line)
    return "\n".join(lines)


def _model(version: PromptVersion) -> str:
    if not version.model:
        return "(none)"
    where = version.credential.name if version.credential_id else "a deleted credential"
    return f"{version.model} via {where}"


def _params(version: PromptVersion) -> str:
    return "\n".join(f"{k} = {v}" for k, v in sorted(version.params.items())) or "(defaults)"


def _collection(version: PromptVersion) -> str:
    if not version.collection_id:
        return "(none)"
    return f"{version.collection.name}, top {version.top_k} chunks"


FIELDS = (
    ("system_text", "System part", lambda v: v.system_text),
    ("user_text", "User part", lambda v: v.user_text),
    ("variables", "Variables", _variables),
    ("model", "Preferred model", _model),
    ("params", "Parameters", _params),
    ("collection", "Collection", _collection),
)


def _lines(old: str, new: str) -> tuple[Line, ...]:
    a, b = old.splitlines(), new.splitlines()
    if len(a) + len(b) > MAX_COMPARED_LINES:
        return (Line("gap", f"Too long to compare line by line ({len(a):,} lines → {len(b):,})."),)
    lines: list[Line] = []
    for group in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_grouped_opcodes(3):
        if lines:
            lines.append(Line("gap", "…"))
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                lines += [Line("same", text) for text in a[i1:i2]]
            else:
                lines += [Line("removed", text) for text in a[i1:i2]]
                lines += [Line("added", text) for text in b[j1:j2]]
        if len(lines) > MAX_DIFF_LINES:
            break
    if len(lines) > MAX_DIFF_LINES:
        left = len(lines) - MAX_DIFF_LINES
        lines = [*lines[:MAX_DIFF_LINES], Line("gap", f"… {left:,} more lines not shown")]
    return tuple(lines)


def version_diff(*, old: PromptVersion, new: PromptVersion) -> list[FieldDiff]:
    """Each field of the two versions (of one template, checked by the caller): whether it
    changed and, if so, its changed lines with three lines of context."""
    result = []
    for name, label, value in FIELDS:
        before, after = value(old), value(new)
        changed = before != after
        result.append(FieldDiff(name, label, changed, _lines(before, after) if changed else ()))
    return result
