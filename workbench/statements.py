"""Pieces for writing several rows in one SQL statement (data-modifying CTEs).

Before the first token every round trip to PostgreSQL counts (docs/performance.md, P6 and the
websocket's TTFT): the gate takes the call's slot, checks budgets and opens the usage row in one
statement, and settles the row, folds it into the day's rollup and frees the slot in another.
One statement is atomic on its own, so it needs no BEGIN/COMMIT either.

The ORM builds one write per statement, so these helpers turn a model instance (or a dict of
changes) into SQL fragments with the fields' own conversions (`get_db_prep_save`): an
`INSERT … SELECT` that a CTE can make conditional (`WHERE EXISTS …`), and `SET` assignments.
Every value is cast to its column's type: a SELECT's untyped parameters would otherwise be text."""

from __future__ import annotations

from django.db import connection
from django.db.models import Model


def _quote(name: str) -> str:
    return connection.ops.quote_name(name)


def insert_select(
    obj: Model, *, prefix: str, expressions: dict[str, str] | None = None
) -> tuple[str, dict]:
    """`INSERT INTO <table> (<columns>) SELECT <values>` for the unsaved `obj` (its primary key
    left to the database unless `expressions` gives it), and its parameters named
    `<prefix><n>`. `expressions`: SQL for some columns instead of `obj`'s values, by attribute
    name (e.g. an id another part of the statement allocates). Append FROM/WHERE to make it
    conditional and a RETURNING clause to learn the id."""
    expressions = expressions or {}
    fields = [f for f in obj._meta.concrete_fields if not f.primary_key or f.attname in expressions]
    columns, values, params = [], [], {}
    for n, field in enumerate(fields):
        columns.append(_quote(field.column))
        if field.attname in expressions:
            values.append(expressions[field.attname])
            continue
        name = f"{prefix}{n}"
        values.append(f"%({name})s::{field.db_type(connection)}")
        params[name] = field.get_db_prep_save(field.pre_save(obj, add=True), connection)
    sql = (
        f"INSERT INTO {_quote(obj._meta.db_table)} ({', '.join(columns)}) "
        f"SELECT {', '.join(values)}"
    )
    return sql, params


def assignments(model: type[Model], changes: dict, *, prefix: str) -> tuple[str, dict]:
    """`"col" = %(…)s::type, …` for an UPDATE's SET, from {field name: value}."""
    parts, params = [], {}
    for n, (name, value) in enumerate(changes.items()):
        field = model._meta.get_field(name)
        key = f"{prefix}{n}"
        parts.append(f"{_quote(field.column)} = %({key})s::{field.db_type(connection)}")
        params[key] = field.get_db_prep_save(value, connection)
    return ", ".join(parts), params


def saved(obj: Model, pk) -> Model:
    """`obj`, inserted by a statement that returned its primary key `pk`: saved, as the ORM
    would leave it."""
    obj.pk = pk
    obj._state.adding = False
    obj._state.db = connection.alias
    return obj
