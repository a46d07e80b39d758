"""Issuing, checking and revoking caller API keys."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from datetime import UTC, datetime

import structlog
from sqlalchemy.exc import IntegrityError

from adaptor.errors import NotFound, Unauthorized
from adaptor.flights import Flights
from adaptor.keys.repository import ApiKeyRepository
from adaptor.keys.schemas import ApiKeyCreated, ApiKeyInfo, ApiKeyPage, Caller, Role
from adaptor.pagination import decode_cursor, encode_cursor
from adaptor.storage.database import Database
from adaptor.storage.tables import ApiKeyRow

log = structlog.get_logger("adaptor.keys")

KEY_PREFIX = "adk_"


def hash_key(plain: str) -> str:
    """Keys are 256-bit random tokens, so a plain SHA-256 is a safe, constant-cost digest."""
    return hashlib.sha256(plain.encode()).hexdigest()


def new_plain_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


BOOTSTRAP_NAME = "bootstrap"
REPLACED_NAME = "bootstrap (replaced)"
"""A bootstrap key revoked because ADMIN_API_KEY changed (set it back and it works again)."""


def key_prefix(plain: str) -> str:
    """What lists show of a key to recognise it: at most 10 characters, never more than a
    third of the key."""
    return plain[: min(10, len(plain) // 3)]


class ApiKeyService:
    """Owns API keys. Lookups are cached in process briefly; a revoke here clears the entry.

    A key in use is looked up again in the background once its entry is past half its
    lifetime, so under steady traffic no request waits for the database: the answer it is
    given was read at most `CACHE_SECONDS` ago, as before, and no request is held up by the
    refresh (under load, a read queued behind the loop's other work took 10-30 ms, paid by
    one request per key every `CACHE_SECONDS`). When an entry has expired (the key was idle),
    the first request looks the key up again while concurrent ones keep the current answer,
    and requests for a key not yet cached share one lookup: an expiry never sends every
    in-flight request to the database at once.
    """

    CACHE_SECONDS = 2.0
    REFRESH_AHEAD_SECONDS = CACHE_SECONDS / 2
    """An entry with less than this left is refreshed in the background on its next use."""

    def __init__(self, database: Database, *, production: bool = False) -> None:
        self.database = database
        self.production = production
        self._cache: dict[str, tuple[float, Caller | None]] = {}
        self._lookups: Flights[str, Caller | None] = Flights()
        self._revocations = 0  # a lookup that raced a revoke must not cache its older answer

    async def authenticate(self, authorization: str | None) -> Caller:
        if not authorization:
            raise Unauthorized("Missing Authorization header: expected 'Bearer <api key>'")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Authorization header must be 'Bearer <api key>'")
        digest = hash_key(token.strip())
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and hit[0] > now:
            caller = hit[1]
            if hit[0] - now < self.REFRESH_AHEAD_SECONDS:
                self._lookups.launch(digest, lambda: self._lookup(digest))
        elif hit is not None:
            self._cache[digest] = (now + self.CACHE_SECONDS, hit[1])
            caller = await self._lookup(digest)
        else:
            lookup, _leader = self._lookups.join(digest, lambda: self._lookup(digest))
            caller = await lookup
        if caller is None:
            raise Unauthorized("The API key is unknown or revoked")
        return caller

    async def _lookup(self, digest: str) -> Caller | None:
        revocations = self._revocations
        async with self.database.session() as session:
            row = await ApiKeyRepository(session).by_hash(digest)
        caller = None
        lifetime = self.CACHE_SECONDS
        if row is not None and row.revoked_at is None:
            left = (
                (row.expires_at - datetime.now(UTC)).total_seconds()
                if row.expires_at is not None
                else lifetime
            )
            if left > 0:
                caller = Caller(key_id=row.key_id, role=_role(row.role), tenant_id=row.tenant_id)
                lifetime = min(lifetime, left)  # cached no longer than the key is valid
        if revocations != self._revocations:
            self._cache.pop(digest, None)
            return caller
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (time.monotonic() + lifetime, caller)
        return caller

    async def create(
        self,
        *,
        tenant_id: str | None,
        name: str,
        role: Role = "tenant",
        plain: str | None = None,
        expires_at: datetime | None = None,
    ) -> ApiKeyCreated:
        plain = plain or new_plain_key()
        row = ApiKeyRow(
            key_id=str(uuid.uuid4()),
            tenant_id=tenant_id,
            name=name,
            role=role,
            key_hash=hash_key(plain),
            key_prefix=key_prefix(plain),
            created_at=datetime.now(UTC),
            revoked_at=None,
            expires_at=expires_at,
        )
        async with self.database.session() as session:
            await ApiKeyRepository(session).add(row)
        self._cache.pop(row.key_hash, None)
        return ApiKeyCreated(
            key_id=row.key_id,
            api_key=plain,
            tenant_id=tenant_id,
            name=name,
            role=role,
            created_at=row.created_at,
            expires_at=expires_at,
        )

    async def ensure_bootstrap_admin(self, configured: str | None) -> str | None:
        """Make sure an admin key exists; returns a newly generated plain key to print once.

        A configured `ADMIN_API_KEY` is the bootstrap key: when it changes, the new value is
        stored and the previous bootstrap key revoked, so an old value stops working (the
        settings refuse a short one in production).
        """
        async with self.database.session() as session:
            repo = ApiKeyRepository(session)
            if configured:
                current = await repo.by_hash(hash_key(configured))
                if current is not None:
                    if current.revoked_at is not None and current.name == REPLACED_NAME:
                        # Configured again after another value replaced it: it is the
                        # bootstrap key once more. A key revoked by hand stays revoked.
                        await repo.reinstate(current.key_id, BOOTSTRAP_NAME)
                        self._cache.pop(current.key_hash, None)
                    elif current.revoked_at is not None:
                        log.warning("keys.bootstrap_key_revoked", key_id=current.key_id)
                        return None
                    await self._revoke_bootstraps(repo, keep=current.key_id)
                    return None
            elif await repo.any_admin():
                return None
        try:
            created = await self.create(
                tenant_id=None, name=BOOTSTRAP_NAME, role="admin", plain=configured
            )
        except IntegrityError:
            if not configured:
                raise
            return None  # another replica starting at the same time stored the same key
        if configured:
            async with self.database.session() as session:
                await self._revoke_bootstraps(ApiKeyRepository(session), keep=created.key_id)
        return None if configured else created.api_key

    async def _revoke_bootstraps(self, repo: ApiKeyRepository, *, keep: str) -> None:
        """Revoke every other active bootstrap admin key (an earlier ADMIN_API_KEY value, or
        the one generated before the variable was set)."""
        for row in await repo.active_admins(name=BOOTSTRAP_NAME):
            if row.key_id != keep:
                await repo.revoke(row.key_id, datetime.now(UTC), rename=REPLACED_NAME)
                self._revocations += 1
                self._cache.pop(row.key_hash, None)

    async def page(self, *, tenant_id: str | None, cursor: str | None, limit: int) -> ApiKeyPage:
        async with self.database.session() as session:
            rows = await ApiKeyRepository(session).page(
                tenant_id=tenant_id, after=decode_cursor(cursor), limit=limit + 1
            )
        more = len(rows) > limit
        rows = rows[:limit]
        return ApiKeyPage(
            items=[_info(row) for row in rows],
            next_cursor=encode_cursor(rows[-1].created_at, rows[-1].key_id) if more else None,
        )

    async def revoke(self, key_id: str) -> None:
        async with self.database.session() as session:
            repo = ApiKeyRepository(session)
            row = await repo.get(key_id)
            if row is None:
                raise NotFound(f"API key {key_id} does not exist")
            await repo.revoke(key_id, datetime.now(UTC))
            digest = row.key_hash
        self._revocations += 1
        self._cache.pop(digest, None)


def _role(value: str) -> Role:
    return "admin" if value == "admin" else "tenant"


def _info(row: ApiKeyRow) -> ApiKeyInfo:
    return ApiKeyInfo(
        key_id=row.key_id,
        tenant_id=row.tenant_id,
        name=row.name,
        role=_role(row.role),
        key_prefix=row.key_prefix,
        created_at=row.created_at,
        revoked_at=row.revoked_at if row.revoked_at else None,
        expires_at=row.expires_at,
    )
