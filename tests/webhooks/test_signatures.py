"""Signature verification on raw bytes, against signatures made by the vendors' own libraries
(`stripe`, `standardwebhooks`): rotation (several signatures), malformed headers, exact bytes."""

from __future__ import annotations

import base64
import secrets
import time
from datetime import UTC, datetime

import pytest
import stripe
from standardwebhooks import Webhook

from adaptor.domain import WebhookConfig
from adaptor.webhooks.signatures import SignatureInvalid, verify_signature

BODY = b'{"id": "evt_1", "type": "invoice.paid"}'
STRIPE_SECRET = "whsec_" + secrets.token_hex(16)
STANDARD_SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def config(scheme: str, secret: str, **extra: object) -> WebhookConfig:
    return WebhookConfig.model_validate({"signature_scheme": scheme, "secret": secret, **extra})


def test_stripe_accepts_any_of_several_v1_signatures_during_a_secret_rotation() -> None:
    now = int(time.time())
    old = stripe.WebhookSignature.generate_signature_header(BODY.decode(), "whsec_old", now)
    new = stripe.WebhookSignature.generate_signature_header(BODY.decode(), STRIPE_SECRET, now)
    header = f"{old},v1={new.split('v1=')[1]}"

    verify_signature(config("stripe", STRIPE_SECRET), BODY, {"stripe-signature": header}, now=now)


@pytest.mark.parametrize("header", ["garbage", "t=,v1=", "v1=abc", "t=123", "t=abc,v1=00"])
def test_a_malformed_stripe_header_is_refused_not_an_error(header: str) -> None:
    with pytest.raises(SignatureInvalid):
        verify_signature(
            config("stripe", STRIPE_SECRET), BODY, {"stripe-signature": header}, now=time.time()
        )


def test_standard_accepts_one_matching_signature_among_several() -> None:
    when = datetime.now(UTC)
    good = Webhook(STANDARD_SECRET).sign("msg_1", when, BODY.decode())
    other_key = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    stale = Webhook(other_key).sign("msg_1", when, BODY.decode())
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": f"{stale} v2,ignored {good}",
    }

    verify_signature(config("standard", STANDARD_SECRET), BODY, headers, now=time.time())


def test_standard_signs_the_id_too() -> None:
    when = datetime.now(UTC)
    headers = {
        "webhook-id": "msg_other",
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": Webhook(STANDARD_SECRET).sign("msg_1", when, BODY.decode()),
    }

    with pytest.raises(SignatureInvalid, match="does not match"):
        verify_signature(config("standard", STANDARD_SECRET), BODY, headers, now=time.time())


def test_the_exact_bytes_are_verified_whitespace_included() -> None:
    now = int(time.time())
    header = stripe.WebhookSignature.generate_signature_header(BODY.decode(), STRIPE_SECRET, now)
    reformatted = b'{"id":"evt_1","type":"invoice.paid"}'

    with pytest.raises(SignatureInvalid):
        verify_signature(
            config("stripe", STRIPE_SECRET), reformatted, {"stripe-signature": header}, now=now
        )


def test_github_needs_the_sha256_prefix() -> None:
    with pytest.raises(SignatureInvalid, match="sha256=<hex>"):
        verify_signature(
            config("github", "s3cret"), BODY, {"x-hub-signature-256": "deadbeef"}, now=0
        )


def test_a_refusal_never_shows_the_secret_or_the_expected_signature() -> None:
    now = int(time.time())
    header = stripe.WebhookSignature.generate_signature_header(BODY.decode(), STRIPE_SECRET, now)
    expected = header.split("v1=")[1]

    with pytest.raises(SignatureInvalid) as refused:
        verify_signature(
            config("stripe", STRIPE_SECRET), BODY + b" ", {"stripe-signature": header}, now=now
        )

    assert STRIPE_SECRET not in str(refused.value)
    assert expected not in str(refused.value)
