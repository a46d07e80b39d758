"""Logging, metrics and events."""
