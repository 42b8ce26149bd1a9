"""Adapters: one module per wire format (DESIGN §3). `adapter_for(preset, ...)` is the registry."""

from __future__ import annotations

import importlib

from providers.adapters.base import Adapter, AdapterConfig


def adapter_for(config: AdapterConfig) -> Adapter:
    module = importlib.import_module(f"providers.adapters.{config.preset.adapter}")
    return module.ADAPTER(config)


def adapter_class(preset) -> type[Adapter]:
    """The adapter class of a preset (its capability flags, without building an adapter)."""
    return importlib.import_module(f"providers.adapters.{preset.adapter}").ADAPTER


def preload() -> None:
    """Import every adapter and its SDK now (server start-up), not inside the first call's
    timeouts: importing the SDKs takes most of a second."""
    for name in ("echo", "openai_compat", "anthropic", "groq", "ollama"):
        importlib.import_module(f"providers.adapters.{name}")
