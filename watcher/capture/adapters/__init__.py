"""Platform adapters, registered by name. Importing this package registers the built-in ones."""

from watcher.capture.adapters import facebook, generic, telegram, vk  # noqa: F401  (registers)
from watcher.capture.adapters.base import Adapter, adapter_for, known_platforms, register_adapter

__all__ = ["Adapter", "adapter_for", "known_platforms", "register_adapter"]
