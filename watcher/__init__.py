"""watcher: evidence-grade social-media watch bot for wildlife-crime investigators."""

__version__ = "0.1.0"
