"""The shared token store on both backends: compare-and-set saves, the cache in front of the
database, re-authorisation marks, key rotation."""

from __future__ import annotations

import uuid

import httpx
from cryptography.fernet import Fernet
from sqlalchemy import select

from adaptor.auth_handlers import AuthStatus, TokenSet
from adaptor.oauth.service import OAuthTokenStore, rotate_token_secrets
from adaptor.security.crypto import SecretBox
from adaptor.services import Services
from adaptor.storage.tables import OAuthTokenRow


def store_of(services: Services, box: SecretBox | None = None) -> OAuthTokenStore:
    return OAuthTokenStore(
        services.database,
        services.kv,
        box or services.secret_box,
        f"t-{uuid.uuid4().hex[:8]}",
        str(uuid.uuid4()),
    )


def tokens(access: str, refresh: str | None = "rt-1") -> TokenSet:
    return TokenSet(
        access_token=access,
        refresh_token=refresh,
        expires_at=2_000_000_000.0,
        scopes=("a", "b"),
        obtained_at=1_999_996_400.0,
    )


async def test_only_one_of_two_writers_of_the_same_version_wins(
    services: Services, app_client: httpx.AsyncClient
) -> None:
    store = store_of(services)
    assert await store.load() is None
    first = await store.save(tokens("at-1"), expected_version=0)
    assert first is not None
    assert first.version == 1
    assert await store.save(tokens("at-other"), expected_version=0) is None
    second = await store.save(tokens("at-2", "rt-2"), expected_version=1)
    assert second is not None
    assert second.version == 2
    assert await store.save(tokens("at-late"), expected_version=1) is None  # lost its lock
    loaded = await store.load()
    assert loaded is not None
    assert (loaded.access_token, loaded.refresh_token, loaded.version) == ("at-2", "rt-2", 2)
    fresh = await store.load(fresh=True)
    assert fresh == loaded


async def test_tokens_are_encrypted_in_the_database_and_the_cache(
    services: Services, app_client: httpx.AsyncClient
) -> None:
    store = store_of(services)
    await store.save(tokens("at-plain-visible?", "rt-plain-visible?"), expected_version=0)
    cached = await services.kv.get(f"tok:{store.integration_id}")
    assert cached is not None
    assert b"plain-visible" not in cached
    async with services.database.session() as session:
        row = (
            await session.execute(
                select(OAuthTokenRow).where(OAuthTokenRow.integration_id == store.integration_id)
            )
        ).scalar_one()
    assert "plain-visible" not in row.tokens
    assert "2000000000" not in row.tokens  # the expiry too
    assert row.tenant_id == store.tenant_id


async def test_a_refused_refresh_token_is_marked_once(
    services: Services, app_client: httpx.AsyncClient
) -> None:
    store = store_of(services)
    await store.save(tokens("at-1"), expected_version=0)
    await store.mark_needs_reauthorization(expected_version=1)
    marked = await store.load(fresh=True)
    assert marked is not None
    assert marked.status is AuthStatus.NEEDS_REAUTHORIZATION
    assert marked.version == 2
    await store.mark_needs_reauthorization(expected_version=1)  # stale: ignored
    assert (await store.load(fresh=True)) == marked


async def test_rotate_key_reencrypts_the_tokens(
    services: Services, app_client: httpx.AsyncClient
) -> None:
    store = store_of(services)
    await store.save(tokens("at-rotated"), expected_version=0)
    old_key = services.settings.encryption_key
    assert old_key is not None
    new_key = Fernet.generate_key().decode()
    assert (
        await rotate_token_secrets(
            services.database, SecretBox.from_setting(f"{new_key},{old_key}")
        )
        >= 1
    )
    only_new = OAuthTokenStore(
        services.database,
        services.kv,
        SecretBox([new_key]),
        store.tenant_id,
        store.integration_id,
    )
    loaded = await only_new.load(fresh=True)
    assert loaded is not None
    assert loaded.access_token == "at-rotated"
    # leave the shared database as the other tests expect it
    await rotate_token_secrets(services.database, SecretBox.from_setting(f"{old_key},{new_key}"))
