"""What the playground tests share: credentials on the fake provider (catalogue rows written
directly, so pickers offer them with no network call) and comparisons built on them."""

from __future__ import annotations

import pytest

from playground import services
from playground.services import SlotData
from providers.models import ProviderModel


@pytest.fixture
def models_on(make_credential):
    """`models_on(owner, preset, *model_ids, name=...)` → a credential on the fake server whose
    catalogue lists those models."""

    def make(owner, preset="openai", *model_ids, name=None):
        credential = make_credential(owner, preset, name=name or f"{preset} fake")
        for model_id in model_ids:
            ProviderModel.objects.create(credential=credential, model_id=model_id, kind="chat")
        return credential

    return make


@pytest.fixture
def openai_fake(alice, models_on):
    return models_on(alice, "openai", "gpt-4o-mini", "gpt-4o", name="Fake OpenAI")


@pytest.fixture
def comparison(alice, openai_fake):
    return services.comparison_create(
        actor=alice,
        title="Haiku test",
        prompt="Write a haiku about tea.",
        slots=[SlotData(openai_fake, "gpt-4o-mini"), SlotData(openai_fake, "gpt-4o")],
    )
