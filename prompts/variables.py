"""Variables of a prompt: `{{name}}` placeholders and their typed definitions.

A placeholder is `{{`, optional spaces, an identifier (a letter or `_`, then letters, digits or
`_`, at most 64), optional spaces, `}}`. Anything else between braces — `{{ 1 }}`,
`{{two words}}`, `{x}` — is ordinary text. Definitions are stored on the version as a list of
dicts; `Variable` is their one reader and `definitions_clean` their one validator.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError

from prompts.models import VariableType

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]{0,63})\s*\}\}")
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MAX_VARIABLES = 50
MAX_CHOICES = 100
MAX_VALUE_CHARS = 100_000  # one value
MAX_SHORT_TEXT = 2_000  # a `text` value (one line); `long_text` takes up to MAX_VALUE_CHARS
MAX_DEFINITION_CHARS = 2_000  # description, default, example, each choice


@dataclass(frozen=True)
class Variable:
    name: str
    type: str = VariableType.TEXT
    description: str = ""
    required: bool = True
    default: str = ""
    example: str = ""
    choices: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def from_dict(cls, data: dict) -> Variable:
        return cls(
            name=data["name"],
            type=data.get("type") or VariableType.TEXT,
            description=data.get("description") or "",
            required=bool(data.get("required", True)),
            default=str(data.get("default") or ""),
            example=str(data.get("example") or ""),
            choices=tuple(data.get("choices") or ()),
        )

    def to_dict(self) -> dict:
        data = asdict(self)
        data["choices"] = list(self.choices)
        return data

    @property
    def has_default(self) -> bool:
        return self.default != ""

    @property
    def choices_text(self) -> str:
        """The options one per line (the editor's textarea)."""
        return "\n".join(self.choices)

    @property
    def type_label(self) -> str:
        return VariableType(self.type).label


def placeholders(*texts: str) -> list[str]:
    """Names used in the texts, each once, in order of first appearance."""
    seen: dict[str, None] = {}
    for text in texts:
        for match in PLACEHOLDER.finditer(text or ""):
            seen.setdefault(match.group(1), None)
    return list(seen)


def parse_definitions(raw) -> list[Variable]:
    """Stored or submitted definitions → Variables (shape errors become ValidationError)."""
    if raw in (None, ""):
        return []
    if not isinstance(raw, list):
        raise ValidationError({"variables": "Variables must be a list of definitions."})
    if len(raw) > MAX_VARIABLES:
        raise ValidationError({"variables": f"At most {MAX_VARIABLES} variables."})
    result = []
    for position, item in enumerate(raw, start=1):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ValidationError(
                {
                    "variables": f'Variable {position}: give at least a name, like {{"name": "topic"}}.'
                }
            )
        unknown = set(item) - {
            "name",
            "type",
            "description",
            "required",
            "default",
            "example",
            "choices",
        }
        if unknown:
            raise ValidationError(
                {
                    "variables": f"Variable {item['name']!r}: unknown keys {', '.join(sorted(unknown))}."
                }
            )
        for key in ("description", "default", "example"):
            value = item.get(key)
            if value is not None and not isinstance(value, str | int | float):
                raise ValidationError(
                    {"variables": f"Variable {item['name']!r}: {key} must be text."}
                )
            if isinstance(value, bool):
                raise ValidationError(
                    {"variables": f"Variable {item['name']!r}: {key} must be text."}
                )
        if "required" in item and not isinstance(item["required"], bool):
            raise ValidationError(
                {"variables": f"Variable {item['name']!r}: required must be true or false."}
            )
        choices = item.get("choices")
        if choices is not None and (
            not isinstance(choices, list) or not all(isinstance(c, str) for c in choices)
        ):
            raise ValidationError(
                {"variables": f"Variable {item['name']!r}: choices must be a list of texts."}
            )
        result.append(Variable.from_dict(item))
    return result


def definitions_clean(variables: list[Variable], *, used: list[str]) -> list[Variable]:
    """Check definitions against the placeholders the texts use. Placeholders without a
    definition get a plain required text one (so typing `{{topic}}` is enough); a definition
    nobody uses is an error naming it. Returns the definitions in order of use."""
    errors: list[str] = []
    by_name: dict[str, Variable] = {}
    for variable in variables:
        name = variable.name.strip()
        if not NAME.match(name):
            errors.append(
                f"“{name[:70]}” isn't a usable variable name: letters, digits and _, starting "
                "with a letter or _ (at most 64)."
            )
            continue
        if name in by_name:
            errors.append(f"Variable “{name}” is defined twice.")
            continue
        by_name[name] = variable
    for variable in by_name.values():
        errors += _definition_errors(variable)
    unused = [name for name in by_name if name not in used]
    if unused:
        errors.append(
            "Defined but not used in the system or user part: "
            + ", ".join(f"“{n}”" for n in unused)
            + ". Add {{"
            + unused[0]
            + "}} where it belongs, or remove it."
        )
    if len(used) > MAX_VARIABLES:
        errors.append(f"At most {MAX_VARIABLES} variables.")
    if errors:
        raise ValidationError({"variables": errors})
    return [by_name.get(name) or Variable(name=name) for name in used]


def _definition_errors(variable: Variable) -> list[str]:
    errors = []
    name = variable.name
    if variable.type not in VariableType.values:
        return [f"“{name}”: type must be one of {', '.join(VariableType.values)}."]
    for key in ("description", "default", "example"):
        if len(getattr(variable, key)) > MAX_DEFINITION_CHARS:
            errors.append(f"“{name}”: {key} is longer than {MAX_DEFINITION_CHARS} characters.")
    if variable.type == VariableType.CHOICE:
        choices = [c for c in variable.choices if c.strip()]
        if not choices:
            errors.append(f"“{name}” is a choice: list at least one option.")
        elif len(choices) > MAX_CHOICES:
            errors.append(f"“{name}”: at most {MAX_CHOICES} options.")
        elif len(set(choices)) != len(choices):
            errors.append(f"“{name}”: an option is listed twice.")
        elif any(len(c) > MAX_DEFINITION_CHARS for c in choices):
            errors.append(f"“{name}”: an option is too long.")
    elif variable.choices:
        errors.append(f"“{name}”: only choice variables have options.")
    for key in ("default", "example"):
        value = getattr(variable, key)
        if value != "":
            problem = value_problem(variable, value)
            if problem:
                errors.append(f"“{name}”: the {key} {problem}.")
    return errors


def value_problem(variable: Variable, value) -> str | None:
    """Why `value` doesn't fit `variable` (None: it fits). Phrased to follow "the value …"."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        return "must be text" if variable.type != VariableType.NUMBER else "must be a number"
    if variable.type == VariableType.NUMBER:
        return None if number_text(value) is not None else "must be a number"
    text = str(value)
    if len(text) > MAX_VALUE_CHARS:
        return f"is longer than {MAX_VALUE_CHARS:,} characters"
    if variable.type == VariableType.TEXT and len(text) > MAX_SHORT_TEXT:
        return f"is longer than {MAX_SHORT_TEXT:,} characters (make it long text)"
    if variable.type == VariableType.CHOICE and text not in variable.choices:
        shown = ", ".join(f"“{c}”" for c in variable.choices[:10])
        return f"must be one of {shown}{'…' if len(variable.choices) > 10 else ''}"
    return None


def number_text(value) -> str | None:
    """A number as it is inserted: `3`, `2.5`, `-0.75`, `1e-05`→`0.00001`; None if not a number.
    Booleans, NaN and infinities are not numbers here."""
    if isinstance(value, bool):
        return None
    text = str(value).strip()
    if not text or len(text) > 50:
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    if not number.is_finite():
        return None
    if number == number.to_integral_value() and abs(number) < Decimal("1e21"):
        return str(number.quantize(Decimal(1)))
    return format(number.normalize(), "f")
