"""The built-in alert sinks: importing this module registers them (see watcher.alert.sinks)."""

from watcher.alert import jsonl, telegram  # noqa: F401  (each registers its sink)
