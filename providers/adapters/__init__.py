"""Adapters: one module per wire format (DESIGN §3). `adapter_for(preset, ...)` is the registry."""

from __future__ import annotations

import importlib

from providers.adapters.base import Adapter, AdapterConfig


def adapter_for(config: AdapterConfig) -> Adapter:
    module = importlib.import_module(f"providers.adapters.{config.preset.adapter}")
    return module.ADAPTER(config)
