"""File-system integrations: a local directory under FILE_ROOTS, or an S3 bucket prefix.

    base_url   file:///srv/exports                 (allowed only under a root in FILE_ROOTS)
               s3://bucket/prefix                  (aiobotocore; metadata.region, .endpoint_url)
    path       exports/{day}.csv                   a file; `reports/` or `*.csv` list or glob

`GET` reads a file and parses it by the endpoint's `format` (`auto` by extension, `csv` rows as
objects keyed by the header, `json`, `ndjson`, `text`, `binary` as base64); a folder or glob
lists `{name, size, modified}` (with `content` too when `query_params.content` is true). `PUT`
writes the mapped body atomically (a temporary file renamed over the target; one PUT on S3),
`DELETE` removes the file.

Paths are template-filled, then resolved after following symlinks and checked against the
root: `..`, absolute paths and symlinks that lead out are `blocked_destination`, and the message
says only that the path leaves the root. A file larger than `AdapterOptions.max_file_bytes` is
refused before it is read.

S3 requests are signed by aiobotocore with the integration's own `aws_sigv4` credentials
(`access_key_id`, `secret_access_key`, optional `session_token`): the adapter reads them from
`auth_config` rather than through an auth handler.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import csv
import fnmatch
import io
import os
import posixpath
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson

from adaptor.domain import (
    AuthType,
    HttpMethod,
    IntegrationResponse,
    IntegrationSpec,
    IntegrationType,
    RetryConfig,
)
from adaptor.protocols.base import BaseIntegration, CallContext
from adaptor.protocols.connections import LazyResource, attempt_seconds, url_problems
from adaptor.protocols.errors import (
    BlockedDestination,
    MalformedResponse,
    NetworkError,
    RequestBuildError,
    ResponseTooLarge,
    UpstreamAuthError,
    UpstreamError,
    UpstreamStatusError,
    UpstreamTimeout,
)
from adaptor.protocols.http import record_operation
from adaptor.resilience.guard import DestinationGuard

if TYPE_CHECKING:
    from adaptor.auth_handlers.base import BaseAuthHandler
    from adaptor.protocols.registry import AdapterContext, AdapterOptions, Problem

__all__ = ["FileAdapterFactory", "LocalFiles", "S3Files", "parse_content", "render_content"]

SIGV4 = "aws_sigv4"
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
_EXTENSIONS = {
    ".csv": "csv",
    ".json": "json",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".txt": "text",
    ".md": "text",
    ".log": "text",
    ".xml": "text",
    ".html": "text",
    ".yaml": "text",
    ".yml": "text",
}
_LISTING_LIMIT = 1000


# formats ------------------------------------------------------------------------------------


def format_of(name: str, configured: str | None) -> str:
    """The format a file is parsed/written in: the endpoint's, else its extension's."""
    if configured and configured != "auto":
        return configured
    return _EXTENSIONS.get(posixpath.splitext(name)[1].lower(), "binary")


def parse_content(raw: bytes, fmt: str, name: str) -> Any:
    """A file's bytes as JSON-ready data; `MalformedResponse` when they are not `fmt`."""
    try:
        if fmt == "binary":
            return base64.b64encode(raw).decode("ascii")
        text = raw.decode("utf-8-sig")
        if fmt == "text":
            return text
        if fmt == "json":
            return orjson.loads(text)
        if fmt == "ndjson":
            return [orjson.loads(line) for line in text.splitlines() if line.strip()]
        if fmt == "csv":
            return list(csv.DictReader(io.StringIO(text, newline="")))
    except (UnicodeDecodeError, orjson.JSONDecodeError, csv.Error) as exc:
        raise MalformedResponse(f"{name} is not valid {fmt}: {type(exc).__name__}") from None
    raise MalformedResponse(f"unknown format {fmt!r}")


def _records(body: Any) -> Any:
    """The records a body holds: a list itself, or an object's one list value (`rows`)."""
    if isinstance(body, dict) and len(body) == 1:
        (only,) = body.values()
        if isinstance(only, list | str):
            return only
    return body


def render_content(body: Any, fmt: str) -> bytes:
    """The mapped body as a file's bytes (`RequestBuildError` when it does not fit `fmt`)."""
    if fmt == "json":
        return orjson.dumps(body, option=orjson.OPT_INDENT_2)
    records = _records(body)
    if fmt == "ndjson":
        rows = records if isinstance(records, list) else [records]
        return b"".join(orjson.dumps(row) + b"\n" for row in rows)
    if fmt == "csv":
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise RequestBuildError("a CSV file is written from a list of objects (the rows)")
        header: dict[str, None] = {}
        for row in records:
            header.update(dict.fromkeys(map(str, row)))
        out = io.StringIO(newline="")
        writer = csv.DictWriter(out, fieldnames=list(header), lineterminator="\r\n")
        writer.writeheader()
        for row in records:
            writer.writerow({str(k): "" if v is None else v for k, v in row.items()})
        return out.getvalue().encode()
    if not isinstance(records, str):
        raise RequestBuildError(f"a {fmt} file is written from one string value in the body")
    if fmt == "binary":
        try:
            return base64.b64decode(records, validate=True)
        except ValueError:
            raise RequestBuildError("a binary file is written from base64 text") from None
    return records.encode()


# paths --------------------------------------------------------------------------------------


def fill_path(template: str, params: Mapping[str, Any]) -> str:
    """The endpoint path with its `{placeholders}` filled from the mapped path parameters."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if params.get(name) in (None, ""):
            raise RequestBuildError(f"path parameter {name!r} has no value")
        return str(params[name])

    return _PLACEHOLDER.sub(value, template)


def _leaves_root() -> BlockedDestination:
    return BlockedDestination("the path leaves the integration's root directory and is refused")


def relative_key(path: str) -> str:
    """`path` as a normalised relative path; `BlockedDestination` for `..` out or absolute."""
    if path.startswith(("/", "\\")) or "\x00" in path or re.match(r"^[A-Za-z]:", path):
        raise _leaves_root()
    normal = posixpath.normpath(path.replace("\\", "/")) if path else "."
    if normal == ".." or normal.startswith("../"):
        raise _leaves_root()
    return "" if normal == "." else normal


def _is_listing(path: str) -> bool:
    return path == "" or path.endswith("/") or any(c in path for c in "*?[")


@dataclass(frozen=True, slots=True)
class _Call:
    path: str
    fmt: str | None
    with_content: bool
    body: Any
    max_bytes: int


# local directories --------------------------------------------------------------------------


class LocalFiles:
    """Files under one directory, every path checked against it after resolution."""

    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)

    def resolve(self, relative: str) -> str:
        """The real path of `relative` under the root (symlinks followed), or refused."""
        key = relative_key(relative)
        real = os.path.realpath(os.path.join(self.root, key))
        if real != self.root and not real.startswith(self.root + os.sep):
            raise _leaves_root()
        return real

    def get(self, call: _Call) -> Any:
        if _is_listing(call.path):
            return self._list(call)
        real = self.resolve(call.path)
        return parse_content(self._read(real, call.path, call.max_bytes), _fmt(call), call.path)

    def _read(self, real: str, shown: str, max_bytes: int) -> bytes:
        try:
            fd = os.open(real, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            raise _not_found(shown) from None
        except IsADirectoryError:
            raise _not_found(shown) from None
        except OSError as exc:
            raise UpstreamStatusError(
                f"{shown} cannot be read ({exc.strerror})", status_code=403
            ) from None
        with os.fdopen(fd, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > max_bytes:
                raise _too_large(shown, size, max_bytes)
            data = handle.read(max_bytes + 1)
        if len(data) > max_bytes:  # grew while we read
            raise _too_large(shown, len(data), max_bytes)
        return data

    def _list(self, call: _Call) -> list[dict[str, Any]]:
        path = call.path
        if any(c in path for c in "*?["):
            relative_key(path.replace("*", "x").replace("?", "x"))  # no `..`, no absolute
            matches = sorted(Path(self.root).glob(path))
        else:
            folder = Path(self.resolve(path.rstrip("/")))
            if not folder.is_dir():
                raise _not_found(path)
            matches = sorted(folder.iterdir())
        entries: list[dict[str, Any]] = []
        budget = call.max_bytes
        for match in matches[:_LISTING_LIMIT]:
            real = os.path.realpath(match)
            if not real.startswith(self.root + os.sep) or not os.path.isfile(real):
                continue  # a symlink out, or a folder: not listed
            stat = os.stat(real)
            name = os.path.relpath(match, self.root).replace(os.sep, "/")
            entry: dict[str, Any] = {
                "name": name,
                "size": stat.st_size,
                "modified": _rfc3339(stat.st_mtime),
            }
            if call.with_content:
                raw = self._read(real, name, budget)
                budget -= len(raw)
                entry["content"] = parse_content(raw, format_of(name, call.fmt), name)
            entries.append(entry)
        return entries

    def put(self, call: _Call) -> dict[str, Any]:
        if _is_listing(call.path):
            raise RequestBuildError("PUT needs a file path, not a folder or a pattern")
        real = self.resolve(call.path)
        data = render_content(call.body, _fmt(call))
        parent = os.path.dirname(real)
        os.makedirs(parent, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=parent, prefix=".adaptor-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, real)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        return {"path": relative_key(call.path), "size": len(data)}

    def delete(self, call: _Call) -> dict[str, Any]:
        real = self.resolve(call.path)
        try:
            os.unlink(real)
        except (FileNotFoundError, IsADirectoryError):
            raise _not_found(call.path) from None
        return {"path": relative_key(call.path), "deleted": True}


def _fmt(call: _Call) -> str:
    return format_of(call.path, call.fmt)


def _rfc3339(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat().replace("+00:00", "Z")


def _not_found(path: str) -> UpstreamStatusError:
    return UpstreamStatusError(f"no file at {path}", status_code=404)


def _too_large(path: str, size: int, limit: int) -> ResponseTooLarge:
    return ResponseTooLarge(
        f"{path} is {size} bytes, over the {limit}-byte limit for reading files (MAX_FILE_BYTES)",
        limit_bytes=limit,
    )


# S3 -----------------------------------------------------------------------------------------


class S3Files:
    """Objects under `s3://bucket/prefix`, through one aiobotocore client per integration."""

    def __init__(self, spec: IntegrationSpec, *, pool_size: int, guard: DestinationGuard) -> None:
        url = urlsplit(spec.base_url or "")
        self.bucket = url.hostname or ""
        self.prefix = url.path.strip("/")
        self.region = str(spec.metadata.get("region") or "us-east-1")
        endpoint = spec.metadata.get("endpoint_url")
        self.endpoint_url = str(endpoint) if endpoint else None
        credentials = (
            spec.auth_config.credentials if spec.auth_config.type is AuthType.CUSTOM else {}
        )
        self._credentials = {
            "aws_access_key_id": credentials.get("access_key_id"),
            "aws_secret_access_key": credentials.get("secret_access_key"),
            "aws_session_token": credentials.get("session_token") or None,
        }
        self._pool_size = pool_size
        self._guard = guard
        self._stack = contextlib.AsyncExitStack()
        self._client: LazyResource[Any] = LazyResource(self._open, self._close)

    async def _open(self) -> Any:
        from aiobotocore.config import AioConfig
        from aiobotocore.session import get_session

        endpoint = self.endpoint_url or f"https://s3.{self.region}.amazonaws.com"
        parts = urlsplit(endpoint)
        await self._guard.allowed_addresses(parts.hostname or "", parts.port or 443)
        config = AioConfig(
            connect_timeout=3,
            read_timeout=30,
            retries={"max_attempts": 1, "mode": "standard"},
            max_pool_connections=self._pool_size,
            s3={"addressing_style": "path"} if self.endpoint_url else None,
        )
        stack = contextlib.AsyncExitStack()
        client = await stack.enter_async_context(
            get_session().create_client(
                "s3",
                region_name=self.region,
                endpoint_url=self.endpoint_url,
                config=config,
                **self._credentials,
            )
        )
        self._stack = stack
        return client

    async def _close(self, client: Any) -> None:
        await self._stack.aclose()

    async def close(self) -> None:
        await self._client.close()

    def key(self, relative: str) -> str:
        key = relative_key(relative)
        return f"{self.prefix}/{key}" if self.prefix and key else (self.prefix or key)

    async def get(self, call: _Call) -> Any:
        client = await self._client.get()
        if _is_listing(call.path):
            return await self._list(client, call)
        key = self.key(call.path)
        raw = await self._read(client, key, call.path, call.max_bytes)
        return parse_content(raw, _fmt(call), call.path)

    async def _read(self, client: Any, key: str, shown: str, max_bytes: int) -> bytes:
        head = await client.head_object(Bucket=self.bucket, Key=key)
        size = int(head["ContentLength"])
        if size > max_bytes:
            raise _too_large(shown, size, max_bytes)
        response = await client.get_object(Bucket=self.bucket, Key=key)
        async with response["Body"] as stream:
            data: bytes = await stream.read()
        if len(data) > max_bytes:
            raise _too_large(shown, len(data), max_bytes)
        return data

    async def _list(self, client: Any, call: _Call) -> list[dict[str, Any]]:
        pattern = call.path
        globbing = any(c in pattern for c in "*?[")
        fixed = re.split(r"[*?\[]", pattern, maxsplit=1)[0]
        relative_key(pattern.replace("*", "x").replace("?", "x"))  # no `..`, no absolute
        root = f"{self.prefix}/" if self.prefix else ""
        entries: list[dict[str, Any]] = []
        budget = call.max_bytes
        paginator = client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=root + fixed):
            for item in page.get("Contents", []):
                name = item["Key"][len(root) :]
                if globbing and not fnmatch.fnmatchcase(name, pattern):
                    continue
                if not globbing and "/" in name[len(fixed) :]:
                    continue  # a folder lists its own files, like a directory
                entry: dict[str, Any] = {
                    "name": name,
                    "size": int(item["Size"]),
                    "modified": item["LastModified"]
                    .astimezone(UTC)
                    .isoformat()
                    .replace("+00:00", "Z"),
                }
                if call.with_content:
                    raw = await self._read(client, item["Key"], name, budget)
                    budget -= len(raw)
                    entry["content"] = parse_content(raw, format_of(name, call.fmt), name)
                entries.append(entry)
                if len(entries) >= _LISTING_LIMIT:
                    return entries
        return entries

    async def put(self, call: _Call) -> dict[str, Any]:
        if _is_listing(call.path):
            raise RequestBuildError("PUT needs a file path, not a folder or a pattern")
        client = await self._client.get()
        data = render_content(call.body, _fmt(call))
        await client.put_object(Bucket=self.bucket, Key=self.key(call.path), Body=data)
        return {"path": relative_key(call.path), "size": len(data)}

    async def delete(self, call: _Call) -> dict[str, Any]:
        client = await self._client.get()
        key = self.key(call.path)
        await client.head_object(Bucket=self.bucket, Key=key)  # S3 deletes quietly: 404 first
        await client.delete_object(Bucket=self.bucket, Key=key)
        return {"path": relative_key(call.path), "deleted": True}


def _s3_error(exc: BaseException, shown: str) -> UpstreamError | None:
    from botocore import exceptions as boto

    if isinstance(exc, boto.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0) or None
        if code in ("NoSuchKey", "404", "NotFound"):
            return _not_found(shown)
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403"):
            return UpstreamAuthError(
                f"S3 refused the credentials ({code})", status_code=status or 403
            )
        return UpstreamStatusError(
            f"S3 answered {code or status}: {error.get('Message') or 'error'}",
            status_code=status,
            upstream_message=str(error.get("Message") or code),
        )
    if isinstance(exc, boto.ConnectTimeoutError | boto.ReadTimeoutError):
        return UpstreamTimeout("S3 did not answer in time")
    if isinstance(exc, boto.EndpointConnectionError | boto.ConnectionClosedError):
        return NetworkError("could not reach the S3 endpoint")
    if isinstance(exc, boto.NoCredentialsError | boto.PartialCredentialsError):
        return UpstreamAuthError("no S3 credentials are configured", status_code=None)
    return None


# the adapter --------------------------------------------------------------------------------


_ACTIONS: dict[str, str] = {"GET": "read", "PUT": "write", "POST": "write", "DELETE": "delete"}
"""What each method does to a file, as the debug trace names it."""


class FileIntegration(BaseIntegration):
    """Reads, lists, writes and deletes files of one directory or bucket prefix."""

    def __init__(
        self, config: IntegrationSpec, *, options: AdapterOptions, guard: DestinationGuard
    ) -> None:
        super().__init__(config)
        self._max_bytes = options.max_file_bytes
        self._guard = guard
        url = urlsplit(config.base_url or "")
        self._store: LocalFiles | S3Files
        if url.scheme == "s3":
            self._store = S3Files(config, pool_size=options.pool_size, guard=guard)
        else:
            self._store = LocalFiles(url.path)

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
    ) -> IntegrationResponse:
        request_data = request_data or {}
        # A leading `/` of the template is decoration; a filled-in absolute path is refused.
        path = fill_path(endpoint.removeprefix("/"), request_data.get("path_params") or {})
        content = str((request_data.get("query_params") or {}).get("content", "")).lower()
        file_call = _Call(
            path=path,
            fmt=call.endpoint.format if call is not None else None,
            with_content=content in ("1", "true", "yes"),
            body=request_data.get("body"),
            max_bytes=self._max_bytes,
        )
        seconds = attempt_seconds(timeout_ms, deadline, self.config.timeout_ms)
        verb = method.upper()
        where: dict[str, object] = {
            "action": _ACTIONS.get(verb, verb),
            "store": "s3" if isinstance(self._store, S3Files) else "local",
            "path": file_call.path,
        }
        try:
            try:
                async with asyncio.timeout(seconds):
                    data = await self._run(verb, file_call)
            except TimeoutError:
                raise UpstreamTimeout(
                    f"the file operation did not finish within {seconds:.1f}s"
                ) from None
            except UpstreamError:
                raise
            except Exception as exc:
                error = _s3_error(exc, file_call.path)
                if error is None:
                    raise
                raise error from None
        except UpstreamError as exc:
            record_operation("file", where, exc.message)
            raise
        record_operation("file", where)
        size = len(orjson.dumps(data))
        return IntegrationResponse(success=True, data=data, response_size_bytes=size)

    async def _run(self, verb: str, call: _Call) -> Any:
        store = self._store
        if verb == HttpMethod.GET:
            if isinstance(store, S3Files):
                return await store.get(call)
            return await asyncio.to_thread(store.get, call)
        if verb in (HttpMethod.PUT, HttpMethod.POST):
            if call.body is None:
                raise RequestBuildError("nothing to write: the request mapping gave no body")
            if isinstance(store, S3Files):
                return await store.put(call)
            return await asyncio.to_thread(store.put, call)
        if verb == HttpMethod.DELETE:
            if isinstance(store, S3Files):
                return await store.delete(call)
            return await asyncio.to_thread(store.delete, call)
        raise RequestBuildError(f"method {verb} is not a file operation (GET, PUT, DELETE)")

    async def close(self) -> None:
        if isinstance(self._store, S3Files):
            await self._store.close()
        await self._guard.close()


# save-time checks and the factory -----------------------------------------------------------


class FileAdapterFactory:
    """Builds `FileIntegration`s (integration type `file_system`)."""

    def validate(self, spec: IntegrationSpec, options: AdapterOptions) -> list[Problem]:
        url, problems = url_problems(spec, {"file": None, "s3": None}, needs_host=False)
        if url is not None and url.scheme == "file":
            problems += _local_problems(url.netloc, url.path, options)
            if spec.auth_config.type is not AuthType.NONE:
                problems.append(
                    (("auth_config", "type"), "local directories take no credentials (use none)")
                )
        elif url is not None:
            problems += _s3_problems(spec, url.hostname)
        for name, endpoint in spec.endpoints.items():
            where = ("endpoints", name)
            if endpoint.query is not None:
                problems.append(((*where, "query"), "applies to database and graphql only"))
            if endpoint.max_rows is not None:
                problems.append(((*where, "max_rows"), "applies to database integrations only"))
            if endpoint.method not in (
                HttpMethod.GET,
                HttpMethod.PUT,
                HttpMethod.POST,
                HttpMethod.DELETE,
            ):
                problems.append(((*where, "method"), "file operations are GET, PUT and DELETE"))
            try:
                relative_key(_PLACEHOLDER.sub("x", endpoint.path.removeprefix("/")))
            except BlockedDestination:
                problems.append(((*where, "path"), "leaves the integration's root (`..`)"))
        return problems

    def reads_own_credentials(self, spec: IntegrationSpec) -> bool:
        """S3 integrations sign with their own `aws_sigv4` credentials (aiobotocore)."""
        return (
            spec.type is IntegrationType.FILE_SYSTEM
            and (spec.base_url or "").startswith("s3://")
            and spec.auth_config.type is AuthType.CUSTOM
            and spec.auth_config.custom_handler == SIGV4
        )

    def create(
        self, spec: IntegrationSpec, auth: BaseAuthHandler, context: AdapterContext
    ) -> FileIntegration:
        return FileIntegration(
            spec,
            options=context.options,
            guard=DestinationGuard(allow_private=context.options.allow_private_networks),
        )


def _local_problems(netloc: str, path: str, options: AdapterOptions) -> list[Problem]:
    if netloc not in ("", "localhost"):
        return [(("base_url",), "a file:// URL names a local directory: file:///abs/dir")]
    real = os.path.realpath(path or "/")
    for root in options.file_roots:
        root_real = os.path.realpath(root)
        if real == root_real or real.startswith(root_real.rstrip(os.sep) + os.sep):
            return []
    if not options.file_roots:
        why = "no FILE_ROOTS are configured on this service, so no local directory may be used"
    else:
        why = "is not under a directory listed in FILE_ROOTS"
    return [(("base_url",), why)]


def _s3_problems(spec: IntegrationSpec, bucket: str | None) -> list[Problem]:
    problems: list[Problem] = []
    if not bucket:
        problems.append((("base_url",), "an s3:// URL names its bucket: s3://bucket/prefix"))
    auth = spec.auth_config
    if auth.type is AuthType.CUSTOM and auth.custom_handler == SIGV4:
        for name in ("access_key_id", "secret_access_key"):
            if auth.credentials.get(name) in (None, ""):
                problems.append((("auth_config", "credentials", name), f"is required for {SIGV4}"))
    elif auth.type is not AuthType.NONE:
        problems.append(
            (
                ("auth_config", "type"),
                f"S3 is signed with auth type custom and custom_handler {SIGV4!r} (or none)",
            )
        )
    endpoint = spec.metadata.get("endpoint_url")
    if endpoint is not None and (
        not isinstance(endpoint, str) or not endpoint.startswith(("http://", "https://"))
    ):
        problems.append((("metadata", "endpoint_url"), "must be an http:// or https:// URL"))
    region = spec.metadata.get("region")
    if region is not None and not (isinstance(region, str) and re.fullmatch(r"[a-z0-9-]+", region)):
        problems.append((("metadata", "region"), "must be an AWS region name such as eu-west-1"))
    return problems
