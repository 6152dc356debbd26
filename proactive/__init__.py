"""Proactive: site-owner tooling (CLI, signing, QA plugin) around the widget runtime."""

__version__ = "0.1.0"
