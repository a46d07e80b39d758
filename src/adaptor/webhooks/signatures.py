"""Verifying inbound webhook signatures over the raw body, scheme by scheme.

Every scheme is an HMAC-SHA256 under the integration's `webhook.secret`; they differ in what
is signed and where the signature travels:

- `stripe`: `Stripe-Signature: t=<ts>,v1=<hex>[,v1=...]` over `<ts>.` + body.
- `github`: `X-Hub-Signature-256: sha256=<hex>` over the body.
- `shopify`: `X-Shopify-Hmac-Sha256: <base64>` over the body.
- `hmac_sha256`: `X-Signature-256` (or `webhook.signature_header`): `<hex>` or `sha256=<hex>`
  over the body.
- `standard` (Standard Webhooks): `webhook-id`, `webhook-timestamp` and
  `webhook-signature: v1,<base64> [v1,<base64> ...]` over `<id>.<ts>.` + body, keyed by the
  base64 after `whsec_`.

Signatures are compared in constant time (`hmac.compare_digest`); schemes with a timestamp
(stripe, standard) refuse one further than `tolerance_seconds` from now, either way. Nothing
here parses the body: it is verified as received, before anything reads it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from adaptor.domain import WebhookConfig

__all__ = [
    "DEFAULT_SIGNATURE_HEADER",
    "DELIVERY_ID_HEADERS",
    "EVENT_TYPE_HEADERS",
    "SignatureInvalid",
    "verify_signature",
]

DEFAULT_SIGNATURE_HEADER: Final = "X-Signature-256"

DELIVERY_ID_HEADERS: Final[dict[str, str]] = {
    "github": "x-github-delivery",
    "shopify": "x-shopify-webhook-id",
    "standard": "webhook-id",
}
"""Where a scheme's sender puts the delivery's own id (used when the payload has none)."""

EVENT_TYPE_HEADERS: Final[dict[str, str]] = {
    "github": "x-github-event",
    "shopify": "x-shopify-topic",
}


class SignatureInvalid(Exception):
    """The delivery's signature is missing, malformed, wrong or outside the tolerance.

    The message says which, naming headers only: never a secret or an expected value.
    """


@dataclass(frozen=True, slots=True)
class _Clock:
    now: float
    tolerance_s: int

    def check(self, timestamp: str, header: str) -> None:
        try:
            when = int(timestamp.strip())
        except ValueError:
            raise SignatureInvalid(f"the timestamp in {header} is not a number") from None
        if abs(self.now - when) > self.tolerance_s:
            raise SignatureInvalid(
                f"the timestamp in {header} is outside the tolerance of {self.tolerance_s} s"
            )


def _mac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name.lower())
    if value is None or not value.strip():
        raise SignatureInvalid(f"the {name} header is missing")
    return value.strip()


def _matches(expected: str, candidates: list[str]) -> bool:
    # Every candidate is compared (no early exit), each in constant time.
    found = False
    for candidate in candidates:
        found |= hmac.compare_digest(expected.encode(), candidate.encode("utf-8", "replace"))
    return found


def verify_signature(
    config: WebhookConfig, body: bytes, headers: Mapping[str, str], *, now: float
) -> None:
    """Raise `SignatureInvalid` unless `body` is signed by `config`'s scheme and secret.

    `headers` must have lower-case names.
    """
    secret = config.secret.encode()
    clock = _Clock(now, config.tolerance_seconds)
    match config.signature_scheme:
        case "stripe":
            _stripe(secret, body, _header(headers, "Stripe-Signature"), clock)
        case "github":
            value = _header(headers, "X-Hub-Signature-256")
            scheme, _, signature = value.partition("=")
            if scheme != "sha256" or not signature:
                raise SignatureInvalid("X-Hub-Signature-256 is not of the form sha256=<hex>")
            if not _matches(_mac(secret, body).hex(), [signature.lower()]):
                raise SignatureInvalid("the X-Hub-Signature-256 signature does not match")
        case "shopify":
            value = _header(headers, "X-Shopify-Hmac-Sha256")
            expected = base64.b64encode(_mac(secret, body)).decode()
            if not _matches(expected, [value]):
                raise SignatureInvalid("the X-Shopify-Hmac-Sha256 signature does not match")
        case "hmac_sha256":
            name = config.signature_header or DEFAULT_SIGNATURE_HEADER
            value = _header(headers, name).removeprefix("sha256=")
            if not _matches(_mac(secret, body).hex(), [value.lower()]):
                raise SignatureInvalid(f"the {name} signature does not match")
        case "standard":
            _standard(config.secret, body, headers, clock)


def _stripe(secret: bytes, body: bytes, header: str, clock: _Clock) -> None:
    timestamp: str | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            timestamp = value
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        raise SignatureInvalid("Stripe-Signature has no t= timestamp or no v1= signature")
    clock.check(timestamp, "Stripe-Signature")
    expected = _mac(secret, timestamp.encode() + b"." + body).hex()
    if not _matches(expected, signatures):
        raise SignatureInvalid("the Stripe-Signature signature does not match")


def _standard(secret: str, body: bytes, headers: Mapping[str, str], clock: _Clock) -> None:
    message_id = _header(headers, "webhook-id")
    timestamp = _header(headers, "webhook-timestamp")
    value = _header(headers, "webhook-signature")
    clock.check(timestamp, "webhook-timestamp")
    encoded = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4))
    except binascii.Error:
        raise SignatureInvalid("the integration's webhook secret is not a whsec_ key") from None
    signed = f"{message_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(_mac(key, signed)).decode()
    candidates = [
        signature
        for version, _, signature in (item.partition(",") for item in value.split())
        if version == "v1"
    ]
    if not candidates:
        raise SignatureInvalid("webhook-signature holds no v1 signature")
    if not _matches(expected, candidates):
        raise SignatureInvalid("the webhook-signature signature does not match")
