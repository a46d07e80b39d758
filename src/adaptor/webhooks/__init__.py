"""Inbound webhooks: deliveries verified by their sender's signature scheme, stored once."""
