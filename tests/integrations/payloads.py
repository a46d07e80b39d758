"""Integration documents used across the API tests."""

from __future__ import annotations

from typing import Any


def rest_integration(base_url: str = "https://api.example.com", **overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "name": "Customers API",
        "description": "customer lookups",
        "type": "rest_api",
        "category": "crm",
        "base_url": base_url,
        "auth_config": {
            "type": "api_key",
            "api_key_header": "X-API-Key",
            "credentials": {"api_key": "sk_live_SECRET_1234567890"},
        },
        "headers": {"X-Client": "adaptor"},
        "timeout_ms": 3000,
        "endpoints": {
            "get_customer": {
                "path": "/customers/{customer_id}",
                "method": "GET",
                "request_mapping": {"path_params": {"customer_id": "variables.customer_id"}},
                "response_mapping": {
                    "data_path": "data",
                    "field_mappings": {"id": "id", "email": "email"},
                },
            }
        },
    }
    document.update(overrides)
    return document
