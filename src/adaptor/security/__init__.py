"""Secrets at rest and caller credentials."""
