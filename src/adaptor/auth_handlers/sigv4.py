"""AWS Signature Version 4, computed by botocore's own signer (never a hand-made canonical
request), for REST calls to AWS-style APIs and for S3."""

from __future__ import annotations

from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from adaptor.auth_handlers.base import AuthConfigurationError, BaseAuthHandler
from adaptor.auth_handlers.tokens import AuthContext
from adaptor.domain import MASK, AuthConfig
from adaptor.protocols.http import PreparedRequest

__all__ = ["AWSSigV4Handler"]

_SIGNATURE_HEADERS = ("Authorization", "X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Content-SHA256")


def _credential(auth_config: AuthConfig, name: str, *, required: bool = True) -> str | None:
    value = auth_config.credentials.get(name)
    if value in (None, ""):
        if required:
            raise AuthConfigurationError(
                f"auth_config.credentials.{name} is required for aws_sigv4"
            )
        return None
    if value == MASK:
        raise AuthConfigurationError(
            f"auth_config.credentials.{name} is the mask {MASK!r}, not the stored secret"
        )
    return str(value)


class AWSSigV4Handler(BaseAuthHandler):
    """Signs each attempt with SigV4: credentials `access_key_id`, `secret_access_key`,
    optional `session_token`; `metadata.region` (default us-east-1) and `metadata.service`
    (default `s3`, which also signs the payload hash as S3 requires)."""

    name = "aws_sigv4"

    def __init__(self, auth_config: AuthConfig, context: AuthContext) -> None:
        access_key = _credential(auth_config, "access_key_id")
        secret_key = _credential(auth_config, "secret_access_key")
        assert access_key is not None
        assert secret_key is not None
        self._session_token = _credential(auth_config, "session_token", required=False)
        self._secret_key = secret_key
        self.access_key_id = access_key
        self.region = str(context.metadata.get("region") or "us-east-1")
        self.service = str(context.metadata.get("service") or "s3")
        credentials = Credentials(access_key, secret_key, self._session_token)
        signer = S3SigV4Auth if self.service == "s3" else SigV4Auth
        self._signer = signer(credentials, self.service, self.region)

    def __repr__(self) -> str:
        return f"AWSSigV4Handler(region={self.region!r}, service={self.service!r})"

    async def apply(self, request: PreparedRequest) -> None:
        """Add `Authorization`, `X-Amz-Date` (and the session token, payload hash for S3)."""
        for name in _SIGNATURE_HEADERS:
            request.remove_header(name)
        aws = AWSRequest(
            method=request.method.upper(),
            url=request.full_url,
            headers=dict(request.headers),
            data=request.body or b"",
        )
        self._signer.add_auth(aws)
        for name in _SIGNATURE_HEADERS:
            value = aws.headers.get(name)
            if value is not None:
                request.set_header(name, value)
        request.sensitive_headers.update({"authorization", "x-amz-security-token"})

    def secrets(self) -> list[str]:
        return [value for value in (self._secret_key, self._session_token) if value]
