"""The `jwt` auth type: tokens signed with PyJWT and verified with the public key."""

from __future__ import annotations

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from adaptor.auth_handlers import AuthConfigurationError, JWTHandler, create_auth_handler
from adaptor.auth_handlers.jwt_bearer import jwt_key_problem
from adaptor.domain import AuthConfig, AuthType
from adaptor.protocols import PreparedRequest


def pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def jwt_config(**credentials: object) -> AuthConfig:
    return AuthConfig(type=AuthType.JWT, credentials=dict(credentials))


SECRET = "shared-secret-0123456789-abcdefghij"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def bearer_of(handler: JWTHandler) -> str:
    prepared = PreparedRequest("GET", "https://api.example.com/v1/x")
    await handler.apply(prepared)
    assert "authorization" in prepared.sensitive_headers
    value = prepared.headers["Authorization"]
    assert value.startswith("Bearer ")
    return value.removeprefix("Bearer ")


@pytest.mark.parametrize(
    ("algorithm", "key"),
    [
        ("RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        ("ES256", ec.generate_private_key(ec.SECP256R1())),
    ],
)
async def test_asymmetric_tokens_verify_with_the_public_key(
    algorithm: str, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
) -> None:
    clock = Clock(1_800_000_000)
    handler = JWTHandler(
        jwt_config(
            private_key=pem(key), algorithm=algorithm, claims={"iss": "adaptor"}, ttl_seconds=600
        ),
        clock,
    )
    token = await bearer_of(handler)
    claims = jwt.decode(
        token,
        key.public_key(),
        algorithms=[algorithm],
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims == {"iss": "adaptor", "iat": 1_800_000_000, "exp": 1_800_000_600}
    assert pem(key) not in repr(handler)


async def test_hs256_token_is_reused_until_shortly_before_expiry() -> None:
    clock = Clock(1_800_000_000)
    handler = create_auth_handler(jwt_config(secret=SECRET, ttl_seconds=300))
    assert isinstance(handler, JWTHandler)
    handler._clock = clock
    first = await bearer_of(handler)
    clock.now += 200
    assert await bearer_of(handler) == first
    clock.now += 80  # 20 s left: less than the reuse margin
    renewed = await bearer_of(handler)
    assert renewed != first
    claims = jwt.decode(
        renewed,
        SECRET,
        algorithms=["HS256"],
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims["exp"] - claims["iat"] == 300
    assert SECRET in handler.secrets()


def test_a_bad_key_is_named() -> None:
    problem = jwt_key_problem(jwt_config(private_key="not a pem", algorithm="RS256"))
    assert problem is not None
    assert problem[0] == "private_key"
    with pytest.raises(AuthConfigurationError, match="private_key"):
        JWTHandler(jwt_config(private_key="not a pem", algorithm="RS256"))


def test_a_public_key_cannot_sign() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    problem = jwt_key_problem(jwt_config(private_key=public, algorithm="RS256"))
    assert problem is not None
    assert problem[0] == "private_key"


def test_unknown_algorithm_is_named() -> None:
    assert jwt_key_problem(jwt_config(secret="s", algorithm="none")) == (
        "algorithm",
        "must be one of HS256, RS256, ES256",
    )


def test_a_short_hmac_secret_is_refused() -> None:
    assert jwt_key_problem(jwt_config(secret="short", algorithm="HS256")) == (
        "secret",
        "must be at least 32 bytes for HS256 (RFC 7518 section 3.2)",
    )
