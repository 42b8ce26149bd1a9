"""THE rendering of a prompt: version + variable values → what a model receives.

Every feature that uses a prompt (chat insert, playground, batch runs, REST render) goes through
`version_render` (or `aversion_render`). The rules:

- Values are checked against the version's typed variables first, all at once: missing required
  values, names that aren't variables of this prompt, and values of the wrong type are one
  `RenderError` naming every variable concerned. Nothing is rendered half.
- Values are inserted as text in one pass over the template: an inserted value is never scanned
  again, so a value containing `{{other}}` stays literally `{{other}}`.
- An empty value of a required variable is missing; its default (if any) fills it instead.
  An optional variable with no value and no default becomes empty text.
- A version linked to a collection gets its retrieved context (rag.selectors.chunk_search +
  rag.context.context_build, the one retrieval and format) in front of the rendered user part —
  as chat puts it in front of the last user turn, never into the system part (retrieved text
  gets at most the user's authority) — searched with the rendered user part, as the user
  asking, who must be able to read the collection. Whatever uses the prompt (chat's and the
  playground's insert, batches, REST) sends that user part, so the context goes wherever the
  prompt goes, and is visible where it is inserted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from asgiref.sync import sync_to_async
from django.core.exceptions import PermissionDenied
from django.http import Http404

from accounts import access
from accounts.access import Action
from prompts.models import PromptVersion, VariableType
from prompts.variables import PLACEHOLDER, Variable, number_text, value_problem
from providers.adapters.base import Message

MAX_RENDERED_CHARS = 1_000_000


class RenderError(Exception):
    """Values that don't fit the prompt. `problems` maps each variable named (or `collection`)
    to what is wrong with it; `str()` is one sentence for people."""

    code = "invalid_variables"

    def __init__(self, problems: dict[str, str], code: str | None = None):
        self.problems = problems
        if code:
            self.code = code
        super().__init__(self.describe(problems))

    @staticmethod
    def describe(problems: dict[str, str]) -> str:
        missing = [name for name, problem in problems.items() if problem == "missing"]
        unknown = [name for name, problem in problems.items() if problem == "unknown"]
        parts = []
        if missing:
            parts.append("Missing " + ", ".join(f"“{n}”" for n in missing))
        if unknown:
            parts.append("Not variables of this prompt: " + ", ".join(f"“{n}”" for n in unknown))
        for name, problem in problems.items():
            if problem not in {"missing", "unknown"}:
                parts.append(f"“{name}” {problem}" if name != "collection" else problem)
        return ". ".join(parts) + "."


@dataclass(frozen=True)
class Source:
    """A retrieved chunk the rendered prompt quotes as [number]."""

    number: int
    chunk_id: int
    collection_id: int
    title: str
    page: int | None


@dataclass(frozen=True)
class Rendered:
    template_id: int
    version_id: int
    version_number: int
    system: str
    user: str
    values: dict[str, str]  # what was inserted for each variable (defaults applied)
    sources: tuple[Source, ...] = field(default_factory=tuple)
    notices: tuple[str, ...] = field(default_factory=tuple)
    context: str = ""  # the retrieved context at the head of `user` ("" when none)

    @property
    def messages(self) -> tuple[Message, ...]:
        """The conversation a model receives after the system part: the user part."""
        return (Message("user", self.user),) if self.user else ()

    def usage_context(self) -> dict:
        """What to put in the gate's `context` so the ledger counts the call for this version."""
        return {"prompt_template": self.template_id, "prompt_version": self.version_id}


def values_check(variables: list[Variable], values) -> dict[str, str]:
    """The text to insert for each variable, or RenderError naming every problem."""
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise RenderError({"variables": "must be an object of name → value"})
    defined = {variable.name: variable for variable in variables}
    problems: dict[str, str] = {}
    for name in values:
        if name not in defined:
            problems[str(name)[:64]] = "unknown"
    inserted: dict[str, str] = {}
    for variable in variables:
        value = values.get(variable.name)
        if value is None or (isinstance(value, str) and value == ""):
            if variable.has_default:
                value = variable.default
            elif variable.required:
                problems[variable.name] = "missing"
                continue
            else:
                inserted[variable.name] = ""
                continue
        problem = value_problem(variable, value)
        if problem:
            problems[variable.name] = problem
            continue
        inserted[variable.name] = (
            number_text(value) if variable.type == VariableType.NUMBER else str(value)
        )
    if problems:
        raise RenderError(problems)
    return inserted


def fill(text: str, inserted: dict[str, str]) -> str:
    """One pass: each placeholder is replaced by its value, and replacements are not scanned
    again. A placeholder with no value (never for a saved version) stays as written."""
    return PLACEHOLDER.sub(lambda m: inserted.get(m.group(1), m.group(0)), text)


def render_values(*, version: PromptVersion, values) -> Rendered:
    """The pure part: check the values and fill the texts (no access check, no retrieval)."""
    variables = [Variable.from_dict(item) for item in version.variables]
    inserted = values_check(variables, values)
    system = fill(version.system_text, inserted)
    user = fill(version.user_text, inserted)
    if len(system) + len(user) > MAX_RENDERED_CHARS:
        raise RenderError(
            {"variables": f"make the prompt longer than {MAX_RENDERED_CHARS:,} characters"},
            code="too_long",
        )
    return Rendered(
        template_id=version.template_id,
        version_id=version.pk,
        version_number=version.number,
        system=system,
        user=user,
        values=inserted,
    )


def _grounded(rendered: Rendered, result, collection_name: str) -> Rendered:
    from rag.context import context_build

    context = context_build(hits=result.hits)
    notices = list(result.notices)
    if not context.text:
        notices.append(f"Nothing in “{collection_name}” matched; sent without sources.")
        return _replace(rendered, notices=tuple(notices))
    # Chat's placement (chats.grounding.with_context): the context, a blank line, the question.
    user = f"{context.text}\n\n{rendered.user}" if rendered.user else context.text
    sources = tuple(
        Source(s.number, s.chunk_id, s.collection_id, s.title, s.page) for s in context.sources
    )
    return _replace(
        rendered, user=user, sources=sources, notices=tuple(notices), context=context.text
    )


def _replace(rendered: Rendered, **changes) -> Rendered:
    from dataclasses import replace

    return replace(rendered, **changes)


def _unavailable() -> RenderError:
    return RenderError(
        {
            "collection": "This prompt searches a collection you can't read; ask its owner to "
            "share it, or pick another collection in a new version"
        },
        code="collection_unavailable",
    )


def _query(rendered: Rendered) -> str:
    return rendered.user or rendered.system


def version_render(*, user, version: PromptVersion, values, ground: bool = True) -> Rendered:
    """Render `version` with `values` for `user` (who must be able to read its template).
    With `ground`, a linked collection's context goes in front of the user part."""
    access.require(user, version.template, Action.READ)
    rendered = render_values(version=version, values=values)
    if not ground or version.collection_id is None:
        return rendered
    from rag.selectors import chunk_search

    try:
        result = chunk_search(
            user=user,
            collections=[version.collection_id],
            query=_query(rendered),
            top_k=version.top_k,
            feature="prompts",
        )
    except (Http404, PermissionDenied):
        raise _unavailable() from None
    return _grounded(rendered, result, version.collection.name)


async def aversion_render(*, user, version: PromptVersion, values, ground: bool = True) -> Rendered:
    """`version_render` for async callers (the batch runner): one hop for the checks, the
    retrieval awaited on the loop."""

    def check():
        access.require(user, version.template, Action.READ)
        name = version.collection.name if version.collection_id else ""
        return render_values(version=version, values=values), name

    rendered, collection_name = await sync_to_async(check)()
    if not ground or version.collection_id is None:
        return rendered
    from rag.selectors import achunk_search

    try:
        result = await achunk_search(
            user=user,
            collections=[version.collection_id],
            query=_query(rendered),
            top_k=version.top_k,
            feature="prompts",
        )
    except (Http404, PermissionDenied):
        raise _unavailable() from None
    return _grounded(rendered, result, collection_name)
