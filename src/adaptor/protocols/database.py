"""Database integrations: one SQL statement per endpoint, on PostgreSQL or MySQL/MariaDB.

    base_url   postgresql://db.example.com:5432/shop     (asyncpg)
               mysql://db.example.com:3306/shop          (aiomysql; MariaDB too)
    query      SELECT id, total FROM orders WHERE customer_id = :customer_id
    request_mapping.body   {"customer_id": "customer.id"}

`:name` parameters are found by SQL tokenisation (sqlglot: not inside strings, comments or
`::` casts), rewritten to the driver's placeholders once, and always bound by the driver, never
formatted into the text. The statement is checked at save time: it must parse as exactly one
statement and every parameter must be mapped.

Each call runs in a transaction of its own: `GET` in a read-only one, other methods may write
and answer `{"rows_affected": n}` plus `rows` for `RETURNING`. The attempt's timeout is also the
statement timeout inside the database (`SET LOCAL statement_timeout`, MariaDB's
`SET STATEMENT max_statement_time`, MySQL's `max_execution_time`), and a statement still
running when the client gives up is cancelled on the server (asyncpg's cancel request, `KILL
QUERY`). Rows are JSON-safe (`to_json_value`), at most `max_rows` with `metadata.truncated`.

Each integration has one small pool (at most `AdapterOptions.pool_size` connections), opened on
first use and closed by `close()`; its host passes the destination guard first.

MySQL/MariaDB go through aiomysql: aio-libs' asyncio port of PyMySQL, pure Python (no compiled
extension to build on every platform), with an unbuffered cursor so `max_rows` never loads more
than it answers.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import itertools
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson
import sqlglot
from sqlglot.errors import ParseError, TokenError

from adaptor.domain import (
    AuthType,
    EndpointConfig,
    HttpMethod,
    IntegrationResponse,
    IntegrationSpec,
    RetryConfig,
)
from adaptor.protocols.base import BaseIntegration, CallContext
from adaptor.protocols.connections import (
    LazyResource,
    attempt_seconds,
    auth_problems,
    basic_credentials,
    guarded_address,
    redact_values,
    url_problems,
)
from adaptor.protocols.errors import (
    NetworkError,
    RequestBuildError,
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

__all__ = [
    "DEFAULT_MAX_ROWS",
    "DatabaseAdapterFactory",
    "DatabaseIntegration",
    "Statement",
    "compile_statement",
    "to_json_value",
]

DEFAULT_MAX_ROWS = 1000
CONNECT_TIMEOUT_S = 5.0
"""A connection that is not made by then fails as `network_error`, within the attempt's time."""
SESSION_TIMEOUT_SLACK_MS = 50
"""An attempt whose timeout is this close to the integration's uses the session's default."""
CANCEL_MARGIN_S = 0.5
"""How much longer than the server's statement timeout the client waits before cancelling."""

_SCHEMES: dict[str, int | None] = {
    "postgresql": 5432,
    "postgres": 5432,
    "mysql": 3306,
    "mariadb": 3306,
}
_DIALECTS = {"postgresql": "postgres", "postgres": "postgres", "mysql": "mysql", "mariadb": "mysql"}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# statements ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Statement:
    """One endpoint's SQL with its parameters rewritten for the driver."""

    sql: str
    """The text sent to the driver (`$1` for asyncpg, `%(name)s` for aiomysql)."""
    parameters: tuple[str, ...]
    """Parameter names in the order asyncpg binds them (each once)."""


class StatementError(ValueError):
    """The SQL cannot be used: it does not parse, or is not exactly one statement."""


def compile_statement(sql: str, dialect: str) -> Statement:
    """Parse `sql` (sqlglot `dialect`: postgres or mysql) and rewrite its `:name` parameters.

    Raises `StatementError` naming what is wrong.
    """
    try:
        parsed = [tree for tree in sqlglot.parse(sql, read=dialect) if tree is not None]
        tokens = sqlglot.Dialect.get_or_raise(dialect).tokenize(sql)
    except (ParseError, TokenError) as exc:
        raise StatementError(f"does not parse as SQL: {_first_line(str(exc))}") from None
    if len(parsed) != 1:
        raise StatementError(f"must be exactly one SQL statement (found {len(parsed)})")
    pieces: list[str] = []
    names: list[str] = []
    cursor = 0
    mysql = dialect == "mysql"
    for colon, name in itertools.pairwise(tokens):
        if colon.token_type is not sqlglot.TokenType.COLON or name.start != colon.end + 1:
            continue
        if not _NAME.fullmatch(name.text) or sql[colon.start : colon.end + 1] != ":":
            continue
        before = sql[cursor : colon.start]
        pieces.append(before.replace("%", "%%") if mysql else before)
        if name.text not in names:
            names.append(name.text)
        pieces.append(f"%({name.text})s" if mysql else f"${names.index(name.text) + 1}")
        cursor = name.end + 1
    rest = sql[cursor:]
    pieces.append(rest.replace("%", "%%") if mysql else rest)
    return Statement("".join(pieces).strip().rstrip(";"), tuple(names))


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "syntax error"


# values -------------------------------------------------------------------------------------


def to_json_value(value: Any) -> Any:
    """A database value as JSON: NUMERIC as a string (no precision lost), timestamps RFC 3339
    (a timestamp without zone is taken as UTC), bytes base64, intervals ISO 8601 durations,
    UUIDs and addresses as text, arrays as lists, JSON columns as their document."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return _datetime(value)
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return _duration(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, list | tuple):
        return [to_json_value(item) for item in value]
    if isinstance(value, set | frozenset):  # MySQL SET columns
        return sorted(to_json_value(item) for item in value)
    if isinstance(value, dict):
        return {str(key): to_json_value(item) for key, item in value.items()}
    if isinstance(value, uuid.UUID | ipaddress.IPv4Address | ipaddress.IPv6Address):
        return str(value)
    return str(value)  # ranges, geometric types, network masks: their text form


def _duration(value: timedelta) -> str:
    sign = "-" if value < timedelta(0) else ""
    value = abs(value)
    seconds = value.seconds + value.microseconds / 1_000_000
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    secs = f"{seconds:.6f}".rstrip("0").rstrip(".")
    return f"{sign}P{value.days}DT{int(hours)}H{int(minutes)}M{secs}S"


_PLAIN = frozenset({type(None), bool, int, float, str})
"""Types a driver returns that are JSON as they are: the common case, checked first."""


def _datetime(value: datetime) -> str:
    if value.tzinfo is None:
        return value.isoformat() + "Z"
    return value.isoformat().replace("+00:00", "Z")


_BY_TYPE: dict[type, Any] = {Decimal: str, datetime: _datetime, date: date.isoformat}
"""Exact types converted without the chain of checks in `to_json_value`."""


def _rows(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    plain, by_type, convert = _PLAIN, _BY_TYPE, to_json_value
    rows: list[dict[str, Any]] = []
    for record in records:
        row: dict[str, Any] = {}
        for key, value in record.items():
            kind = type(value)
            if kind in plain:
                row[key] = value
            else:
                row[key] = (by_type.get(kind) or convert)(value)
        rows.append(row)
    return rows


# the adapter --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Target:
    host: str
    port: int
    database: str | None
    user: str | None
    password: str | None


class DatabaseIntegration(BaseIntegration):
    """Runs endpoints' SQL statements on one database (PostgreSQL or MySQL/MariaDB)."""

    def __init__(
        self,
        config: IntegrationSpec,
        *,
        pool_size: int,
        guard: DestinationGuard,
    ) -> None:
        super().__init__(config)
        url, problems = url_problems(config, _SCHEMES)
        if url is None or problems:
            raise ValueError(problems[0][1] if problems else "base_url is required")
        scheme = url.scheme.lower()
        self.dialect = _DIALECTS[scheme]
        user, password = basic_credentials(config.auth_config, url)
        database = url.path.lstrip("/") or None
        self._target = _Target(
            url.hostname or "", url.port or _SCHEMES[scheme] or 0, database, user, password
        )
        self._pool_size = pool_size
        self._guard = guard
        self._statements: dict[str, Statement] = {}
        for name, endpoint in config.endpoints.items():
            with contextlib.suppress(StatementError):  # refused at save; answered per call
                self._statements[name] = compile_statement(endpoint.query or "", self.dialect)
        self._pool: LazyResource[Any] = LazyResource(self._open_pool, self._close_pool)
        self._mariadb = False

    # pools ----------------------------------------------------------------------------------

    async def _open_pool(self) -> Any:
        target = self._target
        address = await guarded_address(self._guard, target.host, target.port)
        if self.dialect == "postgres":
            import asyncpg

            return await asyncpg.create_pool(
                host=address,
                port=target.port,
                user=target.user,
                password=target.password,
                database=target.database,
                min_size=0,
                max_size=self._pool_size,
                timeout=CONNECT_TIMEOUT_S,
                init=_init_postgres,
                # Session defaults: every implicit transaction is read-only and bounded by the
                # integration's timeout (RESET ALL on release returns to these).
                server_settings={
                    "application_name": "adaptor-service",
                    "TimeZone": "UTC",
                    "default_transaction_read_only": "on",
                    "statement_timeout": str(self.config.timeout_ms),
                },
            )
        import aiomysql

        pool = await aiomysql.create_pool(
            host=address,
            port=target.port,
            user=target.user or "",
            password=target.password or "",
            db=target.database,
            minsize=0,
            maxsize=self._pool_size,
            connect_timeout=CONNECT_TIMEOUT_S,
            autocommit=True,
            init_command="SET time_zone = '+00:00'",
        )
        async with pool.acquire() as conn:
            self._mariadb = "mariadb" in conn.get_server_info().lower()
        return pool

    @staticmethod
    async def _close_pool(pool: Any) -> None:
        if hasattr(pool, "wait_closed"):  # aiomysql
            pool.close()
            await pool.wait_closed()
        else:
            await pool.close()

    async def close(self) -> None:
        await self._pool.close()
        await self._guard.close()

    # calls ----------------------------------------------------------------------------------

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
        config = call.endpoint if call is not None else self._endpoint_for(endpoint)
        statement = self._statements.get(config.name)
        if statement is None:
            try:
                statement = compile_statement(config.query or "", self.dialect)
            except StatementError as exc:
                raise RequestBuildError(f"the endpoint's query {exc}") from None
        body = (request_data or {}).get("body") or {}
        if not isinstance(body, Mapping):
            raise RequestBuildError("the request body must map parameter names to values")
        values = {name: _bindable(body.get(name)) for name in statement.parameters}
        seconds = attempt_seconds(timeout_ms, deadline, self.config.timeout_ms)
        max_rows = config.max_rows or DEFAULT_MAX_ROWS
        read_only = method.upper() == HttpMethod.GET
        try:
            if self.dialect == "postgres":
                data, truncated = await self._run_postgres(
                    statement, values, read_only, max_rows, seconds
                )
            else:
                data, truncated = await self._run_mysql(
                    statement, values, read_only, max_rows, seconds
                )
        except UpstreamError as exc:
            self._trace(config, read_only, error=exc.message)
            raise
        except Exception as exc:
            # The password too: a driver message that echoes a DSN must not carry it.
            hidden = [*values.values(), self._target.password]
            error = self._classify(exc, hidden)
            self._trace(config, read_only, error=error.message)
            raise error from None
        self._trace(config, read_only, rows=len(data) if isinstance(data, list) else None)
        size = len(orjson.dumps(data, default=str))
        return IntegrationResponse(
            success=True,
            data=data,
            response_size_bytes=size,
            metadata={"truncated": True} if truncated else {},
        )

    def _trace(
        self,
        config: EndpointConfig,
        read_only: bool,
        *,
        rows: int | None = None,
        error: str | None = None,
    ) -> None:
        """The statement for the debug trace: the endpoint's SQL as written (named parameters,
        never their values), the database and whether it ran read-only."""
        details: dict[str, object] = {
            "dialect": self.dialect,
            "database": self._target.database,
            "statement": config.query or "",
            "read_only": read_only,
        }
        if rows is not None:
            details["rows"] = rows
        record_operation("sql", details, error)

    def _endpoint_for(self, path: str) -> EndpointConfig:
        for endpoint in self.config.endpoints.values():
            if endpoint.path == path or endpoint.name == path:
                return endpoint
        raise RequestBuildError(f"no endpoint of this integration has the path {path!r}")

    async def _run_postgres(
        self,
        statement: Statement,
        values: dict[str, Any],
        read_only: bool,
        max_rows: int,
        seconds: float,
    ) -> tuple[Any, bool]:
        pool = await self._pool.get()
        args = [values[name] for name in statement.parameters]
        client_timeout = seconds + CANCEL_MARGIN_S
        # asyncio.timeout rather than acquire(timeout=): no extra task per call.
        async with asyncio.timeout(min(seconds, CONNECT_TIMEOUT_S)):
            conn = await pool.acquire()
        try:
            return await self._on_postgres(
                conn, statement, args, read_only, max_rows, seconds, client_timeout
            )
        finally:
            await pool.release(conn)

    async def _on_postgres(
        self,
        conn: Any,
        statement: Statement,
        args: list[Any],
        read_only: bool,
        max_rows: int,
        seconds: float,
        client_timeout: float,
    ) -> tuple[Any, bool]:
        timeout_ms = max(1, round(seconds * 1000))
        if read_only and abs(timeout_ms - self.config.timeout_ms) <= SESSION_TIMEOUT_SLACK_MS:
            # The session's defaults already are this call's: one implicit read-only
            # transaction, one round trip, at most max_rows + 1 rows sent.
            records = await _fetch_limited(conn, statement.sql, args, max_rows + 1, client_timeout)
            return _rows(records[:max_rows]), len(records) > max_rows
        # One round trip opens the transaction and sets the server's own timeout for it.
        begin = "BEGIN READ ONLY" if read_only else "BEGIN READ WRITE"
        await conn.execute(
            f"{begin}; SET LOCAL statement_timeout = {timeout_ms}", timeout=client_timeout
        )
        try:
            if read_only:
                records = await _fetch_limited(
                    conn, statement.sql, args, max_rows + 1, client_timeout
                )
                data: Any = _rows(records[:max_rows])
                truncated = len(records) > max_rows
            else:
                prepared = await conn.prepare(statement.sql, timeout=client_timeout)
                records = await prepared.fetch(*args, timeout=client_timeout)
                data = {"rows_affected": _affected(prepared.get_statusmsg(), len(records))}
                if prepared.get_attributes():
                    data["rows"] = _rows(records[:max_rows])
                truncated = len(records) > max_rows
            await conn.execute("COMMIT", timeout=client_timeout)
        except BaseException:
            if not conn.is_closed():
                with contextlib.suppress(Exception):
                    await conn.execute("ROLLBACK", timeout=CONNECT_TIMEOUT_S)
            raise
        return data, truncated

    async def _run_mysql(
        self,
        statement: Statement,
        values: dict[str, Any],
        read_only: bool,
        max_rows: int,
        seconds: float,
    ) -> tuple[Any, bool]:
        import aiomysql

        pool = await self._pool.get()
        conn = await asyncio.wait_for(pool.acquire(), timeout=min(seconds, CONNECT_TIMEOUT_S))
        broken = False
        try:
            if self._mariadb:
                sql = f"SET STATEMENT max_statement_time={seconds:.3f} FOR {statement.sql}"
                limit = None
            else:
                sql = statement.sql
                limit = f"SET SESSION max_execution_time = {max(1, round(seconds * 1000))}"
            cursor_class = aiomysql.SSDictCursor if read_only else aiomysql.DictCursor
            try:
                async with asyncio.timeout(seconds + CANCEL_MARGIN_S):
                    async with conn.cursor(cursor_class) as cursor:
                        if limit is not None:
                            await cursor.execute(limit)
                        await cursor.execute(
                            "START TRANSACTION READ ONLY" if read_only else "START TRANSACTION"
                        )
                        await cursor.execute(sql, values)
                        records = await cursor.fetchmany(max_rows + 1) if cursor.description else []
                        truncated = len(records) > max_rows
                        if read_only:  # closing the cursor skips the rows left
                            data: Any = _rows(records[:max_rows])
                        else:
                            data = {"rows_affected": max(cursor.rowcount, len(records))}
                            if cursor.description:
                                data["rows"] = _rows(records[:max_rows])
                    await conn.commit()
            except TimeoutError:
                broken = True
                await self._kill_query(conn)
                raise UpstreamTimeout(
                    f"the statement did not finish within {seconds:.1f}s and was cancelled"
                ) from None
            except BaseException:
                broken = True
                raise
        finally:
            if broken:
                conn.close()
            pool.release(conn)
        return data, truncated

    async def _kill_query(self, conn: Any) -> None:
        """Stop what `conn` is running, from a connection of its own (the pool may be full)."""
        import aiomysql

        target = self._target
        try:
            killer = await aiomysql.connect(
                host=conn.host,
                port=target.port,
                user=target.user or "",
                password=target.password or "",
                connect_timeout=CONNECT_TIMEOUT_S,
            )
        except Exception:
            return
        try:
            async with killer.cursor() as cursor:
                await cursor.execute(f"KILL QUERY {int(conn.server_thread_id[0])}")
        except Exception:
            pass
        finally:
            killer.close()

    # errors ---------------------------------------------------------------------------------

    def _classify(self, exc: BaseException, values: list[object]) -> UpstreamError:
        where = f"{self.dialect} database at {self._target.host}:{self._target.port}"
        if isinstance(exc, TimeoutError):
            return UpstreamTimeout(f"the {where} did not answer in time; the call was cancelled")
        if self.dialect == "postgres":
            error = _classify_postgres(exc, where, values)
        else:
            error = _classify_mysql(exc, where, values)
        if error is not None:
            return error
        if isinstance(exc, OSError | ConnectionError | EOFError):
            return NetworkError(f"could not reach the {where}: {type(exc).__name__}")
        return UpstreamStatusError(f"the {where} failed: {type(exc).__name__}", status_code=None)


def _classify_postgres(
    exc: BaseException, where: str, values: list[object]
) -> UpstreamError | None:
    import asyncpg

    if isinstance(
        exc, asyncpg.InvalidPasswordError | asyncpg.InvalidAuthorizationSpecificationError
    ):
        return UpstreamAuthError(f"the {where} refused the credentials", status_code=None)
    if isinstance(exc, asyncpg.QueryCanceledError):
        return UpstreamTimeout(
            f"the statement did not finish within its timeout and was cancelled by the {where}"
        )
    if isinstance(
        exc,
        asyncpg.ConnectionDoesNotExistError
        | asyncpg.CannotConnectNowError
        | asyncpg.TooManyConnectionsError
        | asyncpg.exceptions.ConnectionFailureError
        | asyncpg.InterfaceError,
    ):
        return NetworkError(f"the connection to the {where} failed: {type(exc).__name__}")
    if isinstance(exc, asyncpg.DataError) and "query argument" in str(exc):
        return RequestBuildError(
            "a parameter's value does not fit the statement: "
            + redact_values(_argument_problem(str(exc)), values)
        )
    if isinstance(exc, asyncpg.PostgresError):
        message = redact_values(getattr(exc, "message", None) or str(exc), values)
        sqlstate = getattr(exc, "sqlstate", None)
        return UpstreamStatusError(
            f"the database refused the statement: {message}",
            status_code=None,
            upstream_message=f"{message} (SQLSTATE {sqlstate})" if sqlstate else message,
        )
    return None


def _argument_problem(text: str) -> str:
    """asyncpg's 'invalid input for query argument $1: <value> (<why>)', without the value."""
    match = re.match(r"invalid input for query argument (\$\d+): .*\((.*)\)\s*$", text, re.S)
    if match is None:
        return "invalid input for a query argument"
    return f"argument {match.group(1)}: {match.group(2)}"


# MySQL/MariaDB error numbers (mysqld_error.h, errmsg.h)
_MYSQL_AUTH = {1044, 1045, 1698, 1227}
_MYSQL_TIMEOUT = {1969, 3024, 1317}
_MYSQL_NETWORK = {2002, 2003, 2005, 2006, 2013, 2055, 1040, 1053}


def _classify_mysql(exc: BaseException, where: str, values: list[object]) -> UpstreamError | None:
    import pymysql

    if not isinstance(exc, pymysql.err.Error):
        return None
    args = exc.args
    number = args[0] if args and isinstance(args[0], int) else None
    text = str(args[1]) if len(args) > 1 else str(exc)
    if number in _MYSQL_AUTH:
        return UpstreamAuthError(f"the {where} refused the credentials", status_code=None)
    if number in _MYSQL_TIMEOUT:
        return UpstreamTimeout(
            f"the statement did not finish within its timeout and was cancelled by the {where}"
        )
    if number in _MYSQL_NETWORK or isinstance(exc, pymysql.err.InterfaceError):
        return NetworkError(f"the connection to the {where} failed (error {number})")
    message = redact_values(text, values)
    return UpstreamStatusError(
        f"the database refused the statement: {message}",
        status_code=None,
        upstream_message=f"{message} (error {number})" if number else message,
    )


async def _fetch_limited(conn: Any, sql: str, args: list[Any], limit: int, timeout: float) -> Any:
    """At most `limit` rows of `sql`: asyncpg's own fetch with the protocol's row limit (the
    Execute message's), so the server stops sending after `limit` rows. `Connection._execute`
    is what `Connection.fetch` calls with a limit of 0; it uses the statement cache."""
    return await conn._execute(sql, args, limit, timeout)


def _affected(status: str | None, returned: int) -> int:
    """Rows a statement touched, from PostgreSQL's command tag (`UPDATE 3`, `INSERT 0 2`)."""
    if status:
        last = status.rsplit(" ", 1)[-1]
        if last.isdigit():
            return int(last)
    return returned


def _bindable(value: Any) -> Any:
    """A mapped value as the drivers bind it: objects and lists as JSON text."""
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return value


async def _init_postgres(conn: Any) -> None:
    """JSON and JSONB columns arrive as documents, not as their text."""
    for name in ("json", "jsonb"):
        await conn.set_type_codec(
            name,
            encoder=lambda value: value if isinstance(value, str) else orjson.dumps(value).decode(),
            decoder=orjson.loads,
            schema="pg_catalog",
        )


# save-time checks and the factory -----------------------------------------------------------


class DatabaseAdapterFactory:
    """Builds `DatabaseIntegration`s (integration type `database`)."""

    def validate(self, spec: IntegrationSpec, options: AdapterOptions) -> list[Problem]:
        url, problems = url_problems(spec, _SCHEMES)
        problems += auth_problems(spec, (AuthType.NONE, AuthType.BASIC_AUTH))
        dialect = _DIALECTS.get(url.scheme.lower()) if url is not None else None
        for name, endpoint in spec.endpoints.items():
            where = ("endpoints", name)
            if not endpoint.query or not endpoint.query.strip():
                problems.append(((*where, "query"), "is required: the SQL statement to run"))
                continue
            if dialect is None:
                continue
            try:
                statement = compile_statement(endpoint.query, dialect)
            except StatementError as exc:
                problems.append(((*where, "query"), str(exc)))
                continue
            mapped = {key.split(".", 1)[0] for key in endpoint.request_mapping.body}
            for parameter in statement.parameters:
                if parameter not in mapped:
                    problems.append(
                        (
                            (*where, "query"),
                            f"parameter :{parameter} is not mapped: add "
                            f"request_mapping.body.{parameter}",
                        )
                    )
            if endpoint.format is not None:
                problems.append(((*where, "format"), "applies to file_system integrations only"))
        return problems

    def create(
        self, spec: IntegrationSpec, auth: BaseAuthHandler, context: AdapterContext
    ) -> DatabaseIntegration:
        return DatabaseIntegration(
            spec,
            pool_size=context.options.pool_size,
            guard=DestinationGuard(allow_private=context.options.allow_private_networks),
        )
