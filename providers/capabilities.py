"""What a model can take besides text. Which wire formats carry images is code (an adapter's
`supports_vision`); which models see them is data (a preset's `vision_models` patterns, and an
admin's `details["vision"]` on a catalogue entry, which wins)."""

from __future__ import annotations

import importlib
from fnmatch import fnmatchcase

from providers.presets import Preset


def preset_model_sees_images(preset: Preset, model: str, details: dict | None = None) -> bool:
    adapter = importlib.import_module(f"providers.adapters.{preset.adapter}").ADAPTER
    if not adapter.supports_vision:
        return False
    if details and isinstance(details.get("vision"), bool):
        return details["vision"]
    name = (model or "").lower()
    return any(fnmatchcase(name, pattern.lower()) for pattern in preset.vision_models)


def model_sees_images(*, credential, model: str) -> bool:
    """Whether `model` of `credential` takes image parts (one query for the catalogue entry)."""
    from providers.models import ProviderModel

    details = (
        ProviderModel.objects.filter(credential_id=credential.pk, model_id=model)
        .values_list("details", flat=True)
        .first()
    )
    return preset_model_sees_images(credential.preset_row, model, details)
