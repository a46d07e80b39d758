"""Outbound webhooks: each endpoint POSTs its mapped body to `base_url` + `path`, signed.

Signatures, by the integration's `webhook.signature_scheme`:
- `standard` (Standard Webhooks, signed with the `standardwebhooks` library): headers
  `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature: v1,<base64>`, the
  HMAC-SHA256 of `id.timestamp.body` under the `whsec_<base64>` secret.
- `hmac_sha256`: `X-Signature-256: sha256=<hex HMAC-SHA256 of the body>` (the header is
  `webhook.signature_header` when set), plus `webhook-id`, for receivers that expect that.
Without `webhook` configured, deliveries go out unsigned (with their `webhook-id`).

The delivery id derives from the execution's request id, which stays the same across retries:
every attempt of one delivery carries the same `webhook-id`, so a receiver can deduplicate, and
deliveries are therefore retried per the integration's `RetryConfig` although they are POSTs.
Each attempt is signed afresh with its own timestamp, so a late retry is not stale.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from standardwebhooks import Webhook

from adaptor.auth_handlers.base import BaseAuthHandler
from adaptor.domain import (
    EndpointConfig,
    HttpMethod,
    IntegrationResponse,
    IntegrationSpec,
    RetryConfig,
    WebhookConfig,
)
from adaptor.protocols.base import CallContext
from adaptor.protocols.errors import RequestBuildError
from adaptor.protocols.http import PreparedRequest
from adaptor.protocols.rest import RESTIntegration, relative_path_problems

if TYPE_CHECKING:
    from adaptor.protocols.registry import AdapterContext, AdapterOptions, Problem

__all__ = [
    "DEFAULT_SIGNATURE_HEADER",
    "OUTBOUND_SCHEMES",
    "WebhookAdapterFactory",
    "WebhookIntegration",
    "WebhookSigner",
    "delivery_id",
]

DEFAULT_SIGNATURE_HEADER: Final = "X-Signature-256"
OUTBOUND_SCHEMES: Final = ("standard", "hmac_sha256")
"""The schemes outbound deliveries are signed with (the others are vendors' inbound ones)."""


def delivery_id(request_id: str) -> str:
    """The `webhook-id` of the delivery an execution makes: the same on every attempt."""
    return f"msg_{request_id}"


class WebhookSigner:
    """Signs a prepared delivery by a `WebhookConfig` (`standard` or `hmac_sha256`)."""

    def __init__(self, config: WebhookConfig, clock: Callable[[], float] = time.time) -> None:
        if config.signature_scheme not in OUTBOUND_SCHEMES:
            raise ValueError(
                f"outbound webhooks are signed with {' or '.join(OUTBOUND_SCHEMES)}, "
                f"not {config.signature_scheme}"
            )
        self.scheme = config.signature_scheme
        self.header = config.signature_header or DEFAULT_SIGNATURE_HEADER
        self._secret = config.secret
        self._standard = Webhook(config.secret) if self.scheme == "standard" else None
        self._clock = clock

    def secrets(self) -> list[str]:
        return [self._secret]

    def __repr__(self) -> str:
        return f"WebhookSigner(scheme={self.scheme!r})"

    def sign(self, request: PreparedRequest) -> None:
        """Add the signature headers for `request`'s body (and its `webhook-id`)."""
        body = request.body or b""
        if self._standard is not None:
            message_id = request.get_header("webhook-id")
            if not message_id:
                raise RequestBuildError("a Standard Webhooks delivery needs its webhook-id")
            timestamp = int(self._clock())
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                raise RequestBuildError("a Standard Webhooks body must be UTF-8 text") from None
            signature = self._standard.sign(
                message_id, datetime.fromtimestamp(timestamp, UTC), text
            )
            request.set_header("webhook-timestamp", str(timestamp))
            request.set_header("webhook-signature", signature)
            return
        digest = hmac.new(self._secret.encode(), body, hashlib.sha256).hexdigest()
        request.set_header(self.header, f"sha256={digest}")


class _SignedAuth(BaseAuthHandler):
    """The integration's auth handler, then the signature (over the final body)."""

    def __init__(self, inner: BaseAuthHandler, signer: WebhookSigner | None) -> None:
        self.inner = inner
        self.signer = signer

    async def apply(self, request: PreparedRequest) -> None:
        await self.inner.apply(request)
        if self.signer is not None:
            self.signer.sign(request)

    async def refresh(self) -> bool:
        return await self.inner.refresh()

    def secrets(self) -> list[str]:
        return [*self.inner.secrets(), *(self.signer.secrets() if self.signer else [])]

    def __repr__(self) -> str:
        return f"{self.inner!r}+{self.signer!r}"


class WebhookIntegration(RESTIntegration):
    """The outbound webhook adapter of one integration (`type: webhook`).

    Rides on the REST builder and transport: the mapped body is serialised as for REST (JSON by
    default), the auth handler decorates the request, then the signer signs the exact bytes
    sent. 2xx is delivered; anything else is raised and classified as for REST.
    """

    def __init__(
        self, config: IntegrationSpec, auth_handler: BaseAuthHandler, *args: Any, **kwargs: Any
    ) -> None:
        signer = WebhookSigner(config.webhook) if config.webhook is not None else None
        super().__init__(config, _SignedAuth(auth_handler, signer), *args, **kwargs)
        self.signer = signer

    def __repr__(self) -> str:
        return super().__repr__().replace("RESTIntegration(", "WebhookIntegration(", 1)

    def repeats_safely(self, endpoint: EndpointConfig) -> bool:
        """Every attempt of a delivery carries the same `webhook-id`: receivers deduplicate."""
        return True

    async def execute(
        self,
        endpoint: str,
        method: str,
        request_data: Mapping[str, Any] | None = None,
        timeout_ms: int | None = None,
        retry_config: RetryConfig | None = None,
        *,
        deadline: float | None = None,
        call: CallContext | None = None,
        allow_non_idempotent: bool = False,
    ) -> IntegrationResponse:
        """Deliver the mapped body to `endpoint` (a POST), signed, with the delivery's id."""
        if call is None:
            raise RequestBuildError("a webhook delivery needs its execution's request id")
        data = dict(request_data or {})
        headers = dict(data.get("headers") or {})
        headers["webhook-id"] = delivery_id(call.request_id)
        data["headers"] = headers
        if data.get("body") is None:
            data["body"] = {}
        return await super().execute(
            endpoint,
            HttpMethod.POST.value,
            data,
            timeout_ms,
            retry_config,
            deadline=deadline,
            call=call,
            allow_non_idempotent=True,
        )


class WebhookAdapterFactory:
    """Builds `WebhookIntegration`s (integration type `webhook`)."""

    def validate(self, spec: IntegrationSpec, options: AdapterOptions) -> list[Problem]:
        problems: list[Problem] = list(relative_path_problems(spec))
        if spec.webhook is not None and spec.webhook.signature_scheme not in OUTBOUND_SCHEMES:
            problems.append(
                (
                    ("webhook", "signature_scheme"),
                    f"outbound webhooks are signed with {' or '.join(OUTBOUND_SCHEMES)}",
                )
            )
        for name, endpoint in spec.endpoints.items():
            if endpoint.method is not HttpMethod.POST:
                problems.append(
                    (
                        ("endpoints", name, "method"),
                        'webhook deliveries are POSTs; set "method": "POST"',
                    )
                )
        return problems

    def create(
        self, spec: IntegrationSpec, auth: BaseAuthHandler, context: AdapterContext
    ) -> WebhookIntegration:
        return WebhookIntegration(spec, auth, context.transport)
