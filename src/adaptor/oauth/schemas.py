"""Request and response bodies of the OAuth2 consent routes."""

from __future__ import annotations

from pydantic import BaseModel, Field

from adaptor.domain import OAuthTokenInfo


class AuthorizeResponse(BaseModel):
    authorization_url: str = Field(description="Send the person here to grant access.")
    state: str = Field(description="Single-use; bound to this tenant and integration.")
    redirect_uri: str = Field(description="The callback the provider returns to.")
    expires_in: int = Field(description="Seconds the state stays valid.")


class CallbackResult(BaseModel):
    connected: bool
    integration_id: str
    auth_status: str
    token: OAuthTokenInfo
