"""The egress allowlist superusers edit in the app (Settings → Egress allowlist). The
environment variable WORKBENCH_EGRESS_ALLOW stays the base; entries here add to it.

The egress guard reads the list through a registered source (providers.apps), cached for a few
seconds per process so a model call costs no extra query; a change here clears this process's
cache at once and reaches other processes within CACHE_SECONDS."""

from __future__ import annotations

import re
import time

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404

from accounts.administration import require_superuser
from providers.models import EgressAllowEntry
from workbench import egress

CACHE_SECONDS = 5.0
MAX_ENTRIES = 500
_cache: tuple[float, tuple[str, ...]] = (0.0, ())


def allowed_entries() -> tuple[str, ...]:
    """The app's entries (the registered source of the egress guard), cached briefly."""
    global _cache
    now = time.monotonic()
    if now - _cache[0] > CACHE_SECONDS:
        _cache = (now, tuple(EgressAllowEntry.objects.values_list("host_port", flat=True)))
    return _cache[1]


def _forget() -> None:
    global _cache
    _cache = (0.0, ())


def base_entries() -> list[str]:
    base = settings.WORKBENCH_EGRESS_ALLOW
    return [e.strip() for e in (base.split(",") if isinstance(base, str) else base) if e.strip()]


def entries_for_admin(*, actor) -> QuerySet[EgressAllowEntry]:
    require_superuser(actor)
    return EgressAllowEntry.objects.select_related("created_by").order_by("host_port")


def entry_for_admin(*, actor, pk) -> EgressAllowEntry:
    require_superuser(actor)
    try:
        return EgressAllowEntry.objects.get(pk=pk)
    except (EgressAllowEntry.DoesNotExist, ValueError, TypeError):
        raise Http404 from None


def _normalise(host_port: str) -> str:
    """`host:port` with an explicit port, as the egress guard reads it (lower-case host)."""
    value = (host_port or "").strip()
    if "://" in value:
        raise ValidationError({"host_port": "Just host:port, e.g. gpu-box.lan:8000 — no http://."})
    if not re.search(r":[0-9]+$", value):
        raise ValidationError({"host_port": "Give the port too, e.g. gpu-box.lan:8000."})
    try:
        target = egress.parse_url(f"http://{value}")
    except egress.EgressError as exc:
        raise ValidationError({"host_port": str(exc)}) from None
    return target.authority


def entry_add(*, actor, host_port: str, note: str = "") -> EgressAllowEntry:
    require_superuser(actor)
    value = _normalise(host_port)
    if value in base_entries() or EgressAllowEntry.objects.filter(host_port=value).exists():
        raise ValidationError({"host_port": f"{value} is already allowed."})
    if EgressAllowEntry.objects.count() >= MAX_ENTRIES:
        raise ValidationError({"host_port": f"At most {MAX_ENTRIES} entries."})
    entry = EgressAllowEntry.objects.create(
        host_port=value, note=(note or "").strip()[:200], created_by=actor
    )
    _forget()
    return entry


def entry_delete(*, actor, entry: EgressAllowEntry) -> None:
    require_superuser(actor)
    entry.delete()
    _forget()
