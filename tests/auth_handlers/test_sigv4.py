"""AWS SigV4 through botocore's signer: AWS's published test vectors, and a real S3 API
(moto_server) that verifies the signature of what we send."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import botocore.auth
import botocore.session
import httpx
import pytest

from adaptor.auth_handlers import AuthContext, AWSSigV4Handler, create_auth_handler
from adaptor.domain import AuthConfig, AuthType, IntegrationSpec
from adaptor.protocols import AiohttpTransport, PreparedRequest, RESTIntegration
from adaptor.protocols.errors import UpstreamAuthError
from adaptor.resilience import DestinationGuard
from tests.ports import free_port

# The credentials and moment every case of AWS's aws-sig-v4-test-suite is signed with.
SUITE_KEY = "AKIDEXAMPLE"
SUITE_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SUITE_SCOPE = "AKIDEXAMPLE/20150830/us-east-1/service/aws4_request"


@pytest.fixture
def suite_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        botocore.auth, "get_current_datetime", lambda: datetime(2015, 8, 30, 12, 36, tzinfo=UTC)
    )


def suite_handler() -> AWSSigV4Handler:
    config = AuthConfig(
        type=AuthType.CUSTOM,
        custom_handler="aws_sigv4",
        credentials={"access_key_id": SUITE_KEY, "secret_access_key": SUITE_SECRET},
    )
    context = AuthContext(transport=None, metadata={"region": "us-east-1", "service": "service"})  # type: ignore[arg-type]
    handler = create_auth_handler(config, context)
    assert isinstance(handler, AWSSigV4Handler)
    return handler


@pytest.mark.usefixtures("suite_clock")
@pytest.mark.parametrize(
    ("name", "method", "params", "signature"),
    [
        (
            "get-vanilla",
            "GET",
            [],
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        ),
        (
            "get-vanilla-query-order-key-case",
            "GET",
            [("Param2", "value2"), ("Param1", "value1")],
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        ),
        (
            "post-vanilla",
            "POST",
            [],
            "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
        ),
        (
            "post-vanilla-query",
            "POST",
            [("Param1", "value1")],
            "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11",
        ),
    ],
)
async def test_aws_published_test_vectors(
    name: str, method: str, params: list[tuple[str, str]], signature: str
) -> None:
    request = PreparedRequest(method, "https://example.amazonaws.com/", params=params)
    await suite_handler().apply(request)
    assert request.headers["X-Amz-Date"] == "20150830T123600Z", name
    assert request.headers["Authorization"] == (
        f"AWS4-HMAC-SHA256 Credential={SUITE_SCOPE}, SignedHeaders=host;x-amz-date, "
        f"Signature={signature}"
    ), name
    assert request.is_sensitive_header("Authorization")


@pytest.mark.usefixtures("suite_clock")
async def test_a_retry_is_signed_afresh_not_twice() -> None:
    handler = suite_handler()
    request = PreparedRequest("GET", "https://example.amazonaws.com/")
    await handler.apply(request)
    await handler.apply(request)
    assert request.headers["Authorization"].endswith(
        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    )


@pytest.fixture(scope="module")
def moto_s3() -> Iterator[tuple[str, str, str]]:
    """A moto_server that authenticates every request after the first four, which create an
    IAM user with S3 rights, its access key, and a bucket. Yields (url, key id, secret)."""
    port = free_port()
    binary = Path(sys.executable).with_name("moto_server")
    process = subprocess.Popen(
        [str(binary), "-H", "127.0.0.1", "-p", str(port)],
        env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "4"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/moto-api/", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail("moto_server did not start")
                time.sleep(0.2)
        session = botocore.session.get_session()
        setup = {
            "endpoint_url": url,
            "region_name": "us-east-1",
            "aws_access_key_id": "setup",
            "aws_secret_access_key": "setup",
        }
        iam = session.create_client("iam", **setup)
        iam.create_user(UserName="adaptor")
        key = iam.create_access_key(UserName="adaptor")["AccessKey"]
        iam.put_user_policy(
            UserName="adaptor",
            PolicyName="s3",
            PolicyDocument='{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
            '"Action":"s3:*","Resource":"*"}]}',
        )
        session.create_client("s3", **setup).create_bucket(Bucket="exports")
        yield url, key["AccessKeyId"], key["SecretAccessKey"]
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
async def transport() -> AsyncIterator[AiohttpTransport]:
    transport = AiohttpTransport(DestinationGuard(allow_private=True))
    try:
        yield transport
    finally:
        await transport.close()


def s3_integration(url: str, key_id: str, secret: str) -> IntegrationSpec:
    return IntegrationSpec.model_validate(
        {
            "name": "exports",
            "type": "rest_api",
            "category": "storage",
            "base_url": url,
            "auth_config": {
                "type": "custom",
                "custom_handler": "aws_sigv4",
                "credentials": {"access_key_id": key_id, "secret_access_key": secret},
            },
            "metadata": {"region": "us-east-1", "service": "s3"},
        }
    )


async def test_moto_s3_accepts_our_signature(
    moto_s3: tuple[str, str, str], transport: AiohttpTransport
) -> None:
    url, key_id, secret = moto_s3
    spec = s3_integration(url, key_id, secret)
    context = AuthContext(transport).for_integration(spec)
    handler = create_auth_handler(spec.auth_config, context)
    adapter = RESTIntegration(spec, handler, transport)
    put = await adapter.execute(
        "/exports/day.json",
        "PUT",
        {"body": {"rows": 2}, "headers": {"Content-Type": "application/json"}},
    )
    assert put.status_code == 200
    listed = await adapter.execute("/exports", "GET", {"query_params": {"list-type": "2"}})
    assert listed.status_code == 200
    assert "day.json" in str(listed.data)


async def test_moto_s3_refuses_a_wrong_secret(
    moto_s3: tuple[str, str, str], transport: AiohttpTransport
) -> None:
    url, key_id, _ = moto_s3
    spec = s3_integration(url, key_id, "wrong-secret-value-0123456789")
    handler = create_auth_handler(spec.auth_config, AuthContext(transport).for_integration(spec))
    adapter = RESTIntegration(spec, handler, transport)
    with pytest.raises(UpstreamAuthError) as caught:
        await adapter.execute("/exports", "GET", {"query_params": {"list-type": "2"}})
    assert caught.value.status_code == 403
    assert "SignatureDoesNotMatch" in str(caught.value.body)
    assert "wrong-secret-value-0123456789" not in str(caught.value)
