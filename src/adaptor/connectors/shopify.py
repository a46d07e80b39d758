"""Shopify: the Admin GraphQL API of one shop, throttled by query cost."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from adaptor.connectors.base import Connector, Quota


class ShopifyConnector(Connector):
    """The shop domain is tidied (`My-Shop` → `my-shop.myshopify.com`, scheme and slashes
    dropped) before the template's `*.myshopify.com` rule checks it; the query cost in
    `extensions.cost.throttleStatus` says how many queries of that cost the bucket still
    holds and when it refills, and feeds the rate limiter."""

    item_id = "shopify"
    reads_quota = True

    def normalise(self, config: dict[str, Any]) -> dict[str, Any]:
        shop = config.get("shop")
        if isinstance(shop, str):
            shop = shop.strip().lower().removeprefix("https://").removeprefix("http://")
            shop = shop.split("/", 1)[0]
            if shop and "." not in shop:
                shop = f"{shop}.myshopify.com"
            config = {**config, "shop": shop}
        return config

    def sample_config(self) -> dict[str, Any]:
        return {"shop": "example.myshopify.com"}

    def upstream_quota(self, body: Any, headers: Mapping[str, str]) -> Quota | None:
        if not isinstance(body, dict):
            return None
        cost = (body.get("extensions") or {}).get("cost")
        if not isinstance(cost, dict):
            return None
        status = cost.get("throttleStatus") or {}
        try:
            available = float(status["currentlyAvailable"])
            restore = float(status["restoreRate"])
            requested = float(cost.get("requestedQueryCost") or 1)
        except (KeyError, TypeError, ValueError):
            return None
        requested = max(requested, 1.0)
        remaining = math.floor(available / requested)
        missing = max(0.0, requested - available)
        reset_s = missing / restore if restore > 0 else 1.0
        return Quota(remaining=remaining, reset_s=max(reset_s, 1.0 / max(restore, 1.0)))
