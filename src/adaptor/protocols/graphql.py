"""GraphQL adapter: a GraphQL-over-HTTP call on the REST builder, parser and transport.

The endpoint's `query` holds the document, `operation_name` picks one operation when the
document has several, and `request_mapping.body` maps the operation's variables by name (dot
paths such as `input.email` build nested input objects). A POST sends
`{"query", "variables", "operationName"}` as JSON; a GET (queries only) sends them as query
parameters. The whole reply is returned (`data_path` reads `data.customers`); a reply with
`errors`, with or without partial `data`, is a `GraphQLResponseError` listing each message and
path. HTTP-level failures are classified as for REST.

Documents are checked when an integration is saved (`GraphQLAdapterFactory.validate`), with
graphql-core and without the upstream's schema: syntax, executable definitions only, one
operation or a named one, fragments and variables that resolve, and every non-null variable
without a default mapped.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import orjson
from graphql import (
    GraphQLError,
    GraphQLField,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLString,
    NonNullTypeNode,
    OperationDefinitionNode,
    OperationType,
    parse,
    validate,
)
from graphql.validation import (
    ExecutableDefinitionsRule,
    KnownFragmentNamesRule,
    LoneAnonymousOperationRule,
    NoFragmentCyclesRule,
    NoUndefinedVariablesRule,
    NoUnusedFragmentsRule,
    UniqueArgumentNamesRule,
    UniqueFragmentNamesRule,
    UniqueOperationNamesRule,
    UniqueVariableNamesRule,
)

from adaptor.domain import EndpointConfig, IntegrationResponse, IntegrationSpec, RetryConfig
from adaptor.protocols.base import CallContext
from adaptor.protocols.errors import RequestBuildError, UpstreamError, UpstreamStatusError
from adaptor.protocols.http import PreparedRequest
from adaptor.protocols.rest import RESTIntegration, relative_path_problems

if TYPE_CHECKING:
    from adaptor.auth_handlers.base import BaseAuthHandler
    from adaptor.protocols.registry import AdapterContext, AdapterOptions, Problem

__all__ = [
    "GraphQLAdapterFactory",
    "GraphQLDocumentError",
    "GraphQLIntegration",
    "GraphQLOperation",
    "GraphQLResponseError",
    "parse_operation",
]

# The checks that need no schema: graphql-core's own rules, run against a placeholder schema.
_RULES: Final = (
    ExecutableDefinitionsRule,
    UniqueOperationNamesRule,
    LoneAnonymousOperationRule,
    KnownFragmentNamesRule,
    UniqueFragmentNamesRule,
    NoUnusedFragmentsRule,
    NoFragmentCyclesRule,
    UniqueVariableNamesRule,
    NoUndefinedVariablesRule,
    UniqueArgumentNamesRule,
)
_PLACEHOLDER_SCHEMA: Final = GraphQLSchema(
    query=GraphQLObjectType("Query", {"_placeholder": GraphQLField(GraphQLString)})
)
_MAX_LISTED_ERRORS = 10
_ACCEPT: Final = "application/graphql-response+json, application/json"


class GraphQLDocumentError(ValueError):
    """A document that cannot run: `problems` are `(field, message)` pairs, where field is
    `query` or `operation_name`."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(message for _, message in problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class GraphQLOperation:
    """The operation an endpoint runs: its document, name, type and variables."""

    document: str
    name: str | None
    type: OperationType
    variables: tuple[str, ...]
    required: tuple[str, ...]
    """Variables declared non-null without a default value."""
    post_prefix: bytes
    """The JSON body of a POST up to the variables' value: `{"query":…,"variables":`."""


def parse_operation(query: str | None, operation_name: str | None) -> GraphQLOperation:
    """The operation `query` runs (the one named `operation_name` when it has several).

    Raises `GraphQLDocumentError` naming every problem graphql-core finds.
    """
    if query is None or not query.strip():
        raise GraphQLDocumentError([("query", "is required: the GraphQL document to send")])
    try:
        document = parse(query, no_location=False)
    except GraphQLError as exc:
        raise GraphQLDocumentError([("query", _located(exc))]) from None
    problems = [
        ("query", _located(error)) for error in validate(_PLACEHOLDER_SCHEMA, document, _RULES)
    ]
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if not operations:
        problems.append(("query", "holds no operation (query or mutation)"))
    if problems:
        raise GraphQLDocumentError(problems)
    names = [op.name.value for op in operations if op.name is not None]
    if operation_name is not None:
        chosen = [
            op for op in operations if op.name is not None and op.name.value == operation_name
        ]
        if not chosen:
            raise GraphQLDocumentError(
                [
                    (
                        "operation_name",
                        f"{operation_name!r} is not an operation of the document "
                        f"({', '.join(names) or 'none is named'})",
                    )
                ]
            )
        operation = chosen[0]
    elif len(operations) > 1:
        raise GraphQLDocumentError(
            [
                (
                    "operation_name",
                    f"is required: the document holds several operations ({', '.join(names)})",
                )
            ]
        )
    else:
        operation = operations[0]
    if operation.operation is OperationType.SUBSCRIPTION:
        raise GraphQLDocumentError(
            [("query", "a subscription cannot run as one request; use a query or a mutation")]
        )
    definitions = operation.variable_definitions or ()
    variables = tuple(v.variable.name.value for v in definitions)
    required = tuple(
        v.variable.name.value
        for v in definitions
        if isinstance(v.type, NonNullTypeNode) and v.default_value is None
    )
    name = operation.name.value if operation.name is not None else operation_name
    prefix = b'{"query":' + orjson.dumps(query)
    if name is not None:
        prefix += b',"operationName":' + orjson.dumps(name)
    return GraphQLOperation(
        document=query,
        name=name,
        type=operation.operation,
        variables=variables,
        required=required,
        post_prefix=prefix + b',"variables":',
    )


def _encode_variables(variables: Mapping[str, Any]) -> bytes:
    try:
        return orjson.dumps(
            variables if isinstance(variables, dict) else dict(variables),
            option=orjson.OPT_NON_STR_KEYS,
        )
    except TypeError as exc:
        raise RequestBuildError(f"the GraphQL variables cannot be encoded as JSON: {exc}") from exc


def _located(error: GraphQLError) -> str:
    where = ""
    if error.locations:
        first = error.locations[0]
        where = f" (line {first.line}, column {first.column})"
    return f"{error.message}{where}"


class GraphQLResponseError(UpstreamError):
    """The GraphQL server answered with `errors` (with or without partial `data`).

    `errors` holds each error's `message` and `path`; the message lists them all. The upstream
    answered, so this is final (not retried) and says nothing against its health.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None,
        errors: list[dict[str, Any]],
        partial_data: bool,
    ) -> None:
        super().__init__(message, status_code=status_code)
        self.errors = errors
        self.partial_data = partial_data

    def details(self) -> dict[str, Any]:
        return {**super().details(), "errors": self.errors, "partial_data": self.partial_data}


def _error_summary(errors: Sequence[Any]) -> list[dict[str, Any]]:
    summary: list[dict[str, Any]] = []
    for error in errors:
        if isinstance(error, Mapping):
            message = error.get("message")
            path = error.get("path")
            summary.append(
                {
                    "message": str(message) if message is not None else "(no message)",
                    "path": [p for p in path if isinstance(p, str | int)]
                    if isinstance(path, list)
                    else None,
                }
            )
        else:
            summary.append({"message": str(error), "path": None})
    return summary


def _graphql_failure(
    reply: Any, status_code: int | None, *, answered: bool = False
) -> GraphQLResponseError | None:
    """The failure a reply with `errors` stands for, or None when it has none."""
    errors = reply.get("errors") if isinstance(reply, Mapping) else None
    if not errors:
        return None
    listed = _error_summary(errors if isinstance(errors, list) else [errors])
    shown = "; ".join(_describe(e) for e in listed[:_MAX_LISTED_ERRORS])
    if len(listed) > _MAX_LISTED_ERRORS:
        shown += f"; and {len(listed) - _MAX_LISTED_ERRORS} more"
    partial = isinstance(reply, Mapping) and reply.get("data") is not None
    status = f" {status_code}" if answered and status_code is not None else ""
    return GraphQLResponseError(
        f"The GraphQL server answered{status} with {len(listed)} error(s)"
        f"{' and partial data' if partial else ''}: {shown}",
        status_code=status_code,
        errors=listed,
        partial_data=partial,
    )


def _describe(error: Mapping[str, Any]) -> str:
    path = error.get("path")
    if path:
        return f"{error['message']} (at {'.'.join(map(str, path))})"
    return str(error["message"])


class GraphQLIntegration(RESTIntegration):
    """The GraphQL adapter of one integration (`type: graphql`).

    Each endpoint's operation is parsed once, when the adapter is built; `base_url` + `path` is
    the GraphQL endpoint. Auth, redirects, the destination guard, rate-limit headers and
    HTTP-status classification are the REST adapter's.
    """

    def __init__(
        self, config: IntegrationSpec, auth_handler: BaseAuthHandler, *args: Any, **kwargs: Any
    ) -> None:
        super().__init__(config, auth_handler, *args, **kwargs)
        self._configured_headers = frozenset(name.lower() for name in config.headers)
        self._operations: dict[tuple[str | None, str | None], GraphQLOperation] = {}
        for endpoint in config.endpoints.values():
            # A document saved before a stricter check existed fails its own calls (as a
            # mapping error naming the problem), not the whole integration.
            with contextlib.suppress(RequestBuildError):
                self.operation(endpoint)

    def __repr__(self) -> str:
        return super().__repr__().replace("RESTIntegration(", "GraphQLIntegration(", 1)

    def build_request(
        self, endpoint: str, method: str, request_data: Mapping[str, Any] | None = None
    ) -> PreparedRequest:
        """The REST builder's request, then GraphQL's `Accept` and, for a POST, its JSON
        `Content-Type`, unless the integration's headers or the mapped ones set them."""
        request = self.builder.build(endpoint, method, request_data)
        mapped = (request_data or {}).get("headers")
        names = self._configured_headers
        if mapped:
            names = names | {str(name).lower() for name in mapped}
        if "accept" not in names:
            request.set_header("Accept", _ACCEPT)
        if request.method == "POST" and "content-type" not in names:
            request.set_header("Content-Type", "application/json")
        return request

    def operation(self, endpoint: EndpointConfig) -> GraphQLOperation:
        """The parsed operation of `endpoint` (parsed on first use, then kept)."""
        key = (endpoint.query, endpoint.operation_name)
        operation = self._operations.get(key)
        if operation is None:
            try:
                operation = parse_operation(endpoint.query, endpoint.operation_name)
            except GraphQLDocumentError as exc:
                raise RequestBuildError(f"the GraphQL document cannot run: {exc}") from None
            if len(self._operations) < 1024:
                self._operations[key] = operation
        return operation

    def repeats_safely(self, endpoint: EndpointConfig) -> bool:
        """A query only reads, so it may be repeated even when it is sent as a POST."""
        try:
            operation = self.operation(endpoint)
        except RequestBuildError:
            return False
        return operation.type is OperationType.QUERY or endpoint.retry_non_idempotent

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
        allow_non_idempotent: bool = False,
    ) -> IntegrationResponse:
        """Run the endpoint's operation with the mapped body as its variables.

        `call` is required: it carries the endpoint's document. Raises `GraphQLResponseError`
        for a reply with `errors`, and what `RESTIntegration.execute` raises otherwise.
        """
        if call is None:
            raise RequestBuildError("a GraphQL call needs its endpoint's document (call context)")
        operation = self.operation(call.endpoint)
        source = request_data or {}
        variables = source.get("body") or {}
        if not isinstance(variables, Mapping):
            raise RequestBuildError("GraphQL variables must be an object")
        mapped_headers = source.get("headers") or {}
        query_params = source.get("query_params") or {}
        verb = str(method).upper()
        if verb == "POST":
            # The document part of the body is encoded once per operation; only the variables
            # are encoded per call.
            body: bytes | None = operation.post_prefix + _encode_variables(variables) + b"}"
        elif verb == "GET":
            if operation.type is not OperationType.QUERY:
                raise RequestBuildError("a GraphQL mutation must be sent with POST")
            query_params = {**query_params, "query": operation.document}
            if variables:
                query_params["variables"] = _encode_variables(variables).decode()
            if operation.name is not None:
                query_params["operationName"] = operation.name
            body = None
        else:
            raise RequestBuildError(f"GraphQL is sent with GET or POST, not {verb}")
        data = {
            "path_params": source.get("path_params") or {},
            "query_params": query_params,
            "headers": mapped_headers,
            "body": body,
        }
        try:
            response = await super().execute(
                endpoint,
                verb,
                data,
                timeout_ms,
                retry_config,
                deadline=deadline,
                call=call,
                allow_non_idempotent=allow_non_idempotent,
            )
        except UpstreamStatusError as exc:
            # GraphQL-over-HTTP servers answer a request error (or `data: null`) with a 4xx
            # that carries the `errors` list: report it like any other GraphQL error.
            if type(exc) is not UpstreamStatusError:
                raise
            failure = _graphql_failure(exc.body, exc.status_code, answered=True)
            if failure is None:
                raise
            failure.retries = exc.retries
            failure.retry_after = exc.retry_after
            self._redact_error(failure)
            raise failure from None
        failure = _graphql_failure(response.data, response.status_code)
        if failure is not None:
            failure.retries = response.retries
            self._redact_error(failure)
            raise failure
        return response


class GraphQLAdapterFactory:
    """Builds `GraphQLIntegration`s (integration type `graphql`) and checks their documents."""

    def validate(self, spec: IntegrationSpec, options: AdapterOptions) -> list[Problem]:
        problems: list[Problem] = list(relative_path_problems(spec))
        for name, endpoint in spec.endpoints.items():
            problems.extend(endpoint_problems(name, endpoint))
        return problems

    def create(
        self, spec: IntegrationSpec, auth: BaseAuthHandler, context: AdapterContext
    ) -> GraphQLIntegration:
        return GraphQLIntegration(spec, auth, context.transport)


def endpoint_problems(name: str, endpoint: EndpointConfig) -> list[Problem]:
    """What keeps one GraphQL endpoint from running, located under `endpoints.<name>`."""
    where = ("endpoints", name)
    try:
        operation = parse_operation(endpoint.query, endpoint.operation_name)
    except GraphQLDocumentError as exc:
        return [((*where, field), message) for field, message in exc.problems]
    problems: list[Problem] = []
    method = str(endpoint.method)
    if method not in ("GET", "POST"):
        problems.append(((*where, "method"), "GraphQL is sent with GET or POST"))
    elif method == "GET" and operation.type is not OperationType.QUERY:
        problems.append(
            ((*where, "method"), "a GraphQL mutation must be sent with POST; set method POST")
        )
    mapped = {target.split(".", 1)[0] for target in endpoint.request_mapping.body}
    for target in endpoint.request_mapping.body:
        variable = target.split(".", 1)[0]
        if variable not in operation.variables:
            declared = ", ".join(f"${v}" for v in operation.variables) or "none"
            problems.append(
                (
                    (*where, "request_mapping", "body", target),
                    f"${variable} is not a variable of the operation (declared: {declared})",
                )
            )
    for variable in operation.required:
        if variable not in mapped:
            problems.append(
                (
                    (*where, "request_mapping", "body"),
                    f"the operation's non-null variable ${variable} is not mapped",
                )
            )
    return problems
