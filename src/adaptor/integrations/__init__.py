"""Integrations: a tenant's stored configurations of external systems."""
