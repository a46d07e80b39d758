"""Caller API keys: the bootstrap admin key and per-tenant keys, stored hashed."""
