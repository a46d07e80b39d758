"""Vendor hooks for marketplace connectors, and `connector_factory` that picks one.

A connector is its template (data, in `adaptor/marketplace/templates/`) plus, only where the
vendor truly needs code, a hook here. Stripe and Jira need none beyond the engine's own
features (form bodies, `Idempotency-Key`, pagination, the ADF transforms), so they are data.
"""

from __future__ import annotations

from adaptor.connectors.base import Connector, Quota, TokenResponse
from adaptor.connectors.hubspot import HubSpotConnector
from adaptor.connectors.salesforce import SalesforceConnector, SalesforceJWTConnector
from adaptor.connectors.shopify import ShopifyConnector

__all__ = [
    "Connector",
    "HubSpotConnector",
    "Quota",
    "SalesforceConnector",
    "SalesforceJWTConnector",
    "ShopifyConnector",
    "TokenResponse",
    "connector_factory",
]

_HOOKS: dict[str, type[Connector]] = {
    hook.item_id: hook
    for hook in (SalesforceConnector, SalesforceJWTConnector, ShopifyConnector, HubSpotConnector)
}
_HOOKS["hubspot-oauth"] = HubSpotConnector  # the same API behind an OAuth 2.0 app
_PLAIN = Connector()


def connector_factory(item_id: str | None) -> Connector:
    """The hook for a marketplace item (the data-only `Connector` when it has none)."""
    hook = _HOOKS.get(item_id or "")
    return hook() if hook is not None else _PLAIN
