"""Machinery of the access-matrix test (DESIGN §5): which routes, websocket routes and id-bearing
fields exist, and which of them the matrix has no case for. The cases themselves live in
test_access_matrix.py."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.urls import URLPattern, URLResolver

PERSONAS = ("anonymous", "alice", "bob_teammate", "vera_viewer", "charlie_outsider")


# What a case expects, per persona. One set of builders for every area's cases (each area's module
# may name them as it likes): alice's side is owner, teammate and viewer of her team's object.


def team_rule(alice: int, bob: int, vera: int, *, anonymous: int = 302, charlie: int = 404):
    """alice, bob_teammate and vera_viewer as given; charlie (outside) 404, anonymous 302."""
    return {
        "anonymous": anonymous,
        "alice": alice,
        "bob_teammate": bob,
        "vera_viewer": vera,
        "charlie_outsider": charlie,
    }


def everyone(status: int, anonymous: int = 302) -> dict[str, int]:
    """The same status for every signed-in persona."""
    return team_rule(status, status, status, anonymous=anonymous, charlie=status)


def alice_only(status: int, anonymous: int = 302) -> dict[str, int]:
    """alice's personal object: hers, 404 for everyone else."""
    return team_rule(status, 404, 404, anonymous=anonymous)


# Namespaces and URL names the matrix does not drive, each with the reason.
EXEMPT = {
    "admin": "Django admin: staff-only, guarded by is_staff and model permissions, not tenant rules.",
}


@dataclass(frozen=True)
class Route:
    name: str  # "namespace:name"
    pattern: str
    takes_id: bool


@dataclass(frozen=True)
class Case:
    """One request made as every persona, and the status each must get.

    `kwargs` and `data` are callables of the `world` (the objects alice's side owns), so ids are
    real ids of real objects. `api=True` sends JSON.
    """

    name: str
    expect: dict[str, int]
    method: str = "GET"
    kwargs: Callable[[dict], dict] = lambda world: {}
    data: Callable[[dict], dict] | None = None
    query: Callable[[dict], dict] | None = None  # query-string parameters (ids included)
    api: bool = False
    # Sent with the persona's read-write API token instead of a session (the gateway knows no
    # sessions); anonymous sends none.
    token: bool = False
    note: str = ""
    # Personas who are inside the tenant for this object although they are not in alice's team
    # (charlie, as the invitee of an invitation): the boundary check doesn't apply to them.
    inside: tuple[str, ...] = ()

    def __post_init__(self):
        missing = set(PERSONAS) - set(self.expect)
        if missing:
            raise ValueError(
                f"Case {self.name} {self.method} has no expectation for {sorted(missing)}"
            )

    @property
    def id(self) -> str:
        return f"{self.name}-{self.method}{'-' + self.note if self.note else ''}"


@dataclass(frozen=True)
class SocketCase:
    route: str  # the route pattern, e.g. "ws/ping/"
    path: Callable[[dict], str]
    expect: dict[str, bool]  # persona → accepted?
    note: str = ""


@dataclass(frozen=True)
class SocketFieldCase:
    """An id in a websocket message: sent with an id the socket's rule must refuse, each
    connected persona gets an `error` frame with the expected code."""

    route: str
    field: str  # "<message type>.<field>", as the consumer's ID_FIELDS lists it
    message: Callable[[dict], dict]
    expect: dict[str, str]  # persona → error code


@dataclass(frozen=True)
class FieldCase:
    """An id-bearing input field (form or serializer) and the request that proves it is scoped:
    the case sends the id of alice's side's object in that field."""

    key: str  # "module.Class.field"
    case: Case


class World(dict):
    """alice's side of the tenant boundary. Parts only some cases use are built the first time a
    case asks for one of their keys (`lazy`: (keys, builder) pairs; a builder takes the world and
    returns the part), so the many cases that never touch them don't pay for them."""

    def __init__(self, *args, lazy=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = list(lazy)

    def __missing__(self, key):
        for keys, builder in self.lazy:
            if key in keys:
                self.lazy.remove((keys, builder))
                self.update(builder(self))
                return self[key]
        raise KeyError(key)


# --- Discovery -----------------------------------------------------------------------------------


def iter_routes(
    patterns: Iterable, prefix: str = "", namespace: str | None = None
) -> Iterable[Route]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            ns = entry.namespace
            full_ns = f"{namespace}:{ns}" if namespace and ns else (ns or namespace)
            yield from iter_routes(entry.url_patterns, prefix + str(entry.pattern), full_ns)
        elif isinstance(entry, URLPattern):
            pattern = prefix + str(entry.pattern)
            name = entry.name or f"<unnamed {pattern}>"
            full = f"{namespace}:{name}" if namespace else name
            yield Route(name=full, pattern=pattern, takes_id="<" in pattern or "(?P<" in pattern)


def is_exempt(name: str) -> bool:
    return name in EXEMPT or name.split(":")[0] in EXEMPT


def uncovered_routes(routes: Iterable[Route], cases: Iterable[Case]) -> list[Route]:
    """Routes with no case. Every route needs one; an id-taking route needs a case whose
    expectations include charlie_outsider (the tenant boundary)."""
    covered = {case.name for case in cases}
    return [route for route in routes if not is_exempt(route.name) and route.name not in covered]


def uncovered_sockets(patterns: Iterable, cases: Iterable[SocketCase]) -> list[str]:
    covered = {case.route for case in cases}
    return [str(p.pattern) for p in patterns if str(p.pattern) not in covered]


def socket_id_fields(patterns: Iterable) -> list[tuple[str, str]]:
    """(route, "type.field") for every id a consumer reads from a message (its ID_FIELDS)."""
    found = []
    for pattern in patterns:
        consumer = getattr(pattern.callback, "consumer_class", None)
        for kind, fields in getattr(consumer, "ID_FIELDS", {}).items():
            found += [(str(pattern.pattern), f"{kind}.{name}") for name in fields]
    return found


OUR_APPS = (
    "workbench",
    "accounts",
    "webhooks",
    "billing",
    "providers",
    "prompts",
    "rag",
    "chats",
    "playground",
    "evals",
)


def our_modules(suffixes: tuple[str, ...] = ("forms", "serializers", "api", "views")) -> list:
    """Every `<app>.forms` / `.serializers` / `.api` / `.views` module of our apps."""
    modules = []
    for app in OUR_APPS:
        for suffix in suffixes:
            try:
                modules.append(importlib.import_module(f"{app}.{suffix}"))
            except ModuleNotFoundError as exc:
                if exc.name != f"{app}.{suffix}":
                    raise
    return modules


def id_bearing_fields(classes: Iterable[type]) -> list[str]:
    """`module.Class.field` for every input field that takes the id of one of our objects:
    Django ModelChoiceFields and DRF related fields (or any writable field named `*_id`)."""
    from django import forms
    from rest_framework import serializers

    found = []
    for cls in classes:
        if issubclass(cls, forms.BaseForm):
            for name, form_field in cls.base_fields.items():
                if isinstance(form_field, forms.ModelChoiceField) or name.endswith("_id"):
                    found.append(f"{cls.__module__}.{cls.__qualname__}.{name}")
        elif issubclass(cls, serializers.BaseSerializer) and not issubclass(
            cls, serializers.ListSerializer
        ):
            try:
                fields = cls().fields
            except Exception:
                continue
            for name, ser_field in fields.items():
                if ser_field.read_only:
                    continue
                if isinstance(
                    ser_field, serializers.RelatedField | serializers.ManyRelatedField
                ) or name.endswith("_id"):
                    found.append(f"{cls.__module__}.{cls.__qualname__}.{name}")
    return sorted(set(found))


def input_classes(modules: Iterable) -> list[type]:
    from django import forms
    from rest_framework import serializers

    classes = []
    for module in modules:
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if obj.__module__ != module.__name__:
                continue
            if issubclass(obj, forms.BaseForm | serializers.BaseSerializer):
                classes.append(obj)
    return classes
