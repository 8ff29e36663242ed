"""Capture: the browser and the platform adapters that turn a page into posts."""
