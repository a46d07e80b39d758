"""HubSpot: CRM v3 objects; its rate-limit headers carry its own names."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adaptor.connectors.base import Connector, Quota


class HubSpotConnector(Connector):
    """Reads `X-HubSpot-RateLimit-Remaining` with `X-HubSpot-RateLimit-Interval-Milliseconds`
    (the rolling window), so calls pause when the window is spent instead of drawing 429s."""

    item_id = "hubspot"
    reads_quota = True

    def upstream_quota(self, body: Any, headers: Mapping[str, str]) -> Quota | None:
        lowered = {k.lower(): v for k, v in headers.items()}
        remaining = lowered.get("x-hubspot-ratelimit-remaining")
        interval = lowered.get("x-hubspot-ratelimit-interval-milliseconds")
        if remaining is None or interval is None:
            return None
        try:
            return Quota(remaining=int(remaining), reset_s=int(interval) / 1000)
        except ValueError:
            return None
