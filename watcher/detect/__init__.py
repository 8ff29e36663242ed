"""Detect: what changed between captures and which images were seen before."""
