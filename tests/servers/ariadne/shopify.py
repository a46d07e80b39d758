"""A Shopify-like Admin GraphQL API: what shopify.dev documents, served by Ariadne on uvicorn.

    uvicorn tests.servers.ariadne.shopify:app --port 8765

`POST /admin/api/{version}/graphql.json` with `X-Shopify-Access-Token` (any token starting
`shpat_`; anything else is Shopify's 401 `{"errors": "[API] Invalid API key ..."}`) runs a
subset of the Admin schema: `shop`, `products`, `orders`, `customers` as connections
(`edges { node }`, `pageInfo { hasNextPage endCursor }`, opaque cursors) and `order(id:)`.

Every answer carries `extensions.cost` as Shopify reports it: a leaky bucket per access token
(`maximumAvailable` 100 points, `restoreRate` 20 points/s, each connection costing `first` + 2
points); a query that costs more than the bucket holds is answered `THROTTLED` without running,
as Shopify does. `GET /_seen` lists the GraphQL requests received (time, token, variables).
"""

from __future__ import annotations

import base64
import time
from typing import Any

from ariadne import QueryType, graphql, make_executable_schema
from graphql import GraphQLResolveInfo
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

TYPE_DEFS = """
type Query {
  shop: Shop!
  products(first: Int!, after: String, query: String): ProductConnection!
  orders(
    first: Int!, after: String, query: String, sortKey: OrderSortKeys, reverse: Boolean
  ): OrderConnection!
  customers(first: Int!, after: String, query: String): CustomerConnection!
  order(id: ID!): Order
}

enum OrderSortKeys { CREATED_AT ID }

type Shop { name: String! myshopifyDomain: String! currencyCode: String! }

type PageInfo {
  hasNextPage: Boolean! hasPreviousPage: Boolean! endCursor: String startCursor: String
}

type Product { id: ID! title: String! handle: String! status: String! totalInventory: Int }
type ProductEdge { cursor: String! node: Product! }
type ProductConnection { edges: [ProductEdge!]! pageInfo: PageInfo! }

type MoneyV2 { amount: String! currencyCode: String! }
type MoneyBag { shopMoney: MoneyV2! }
type LineItem { title: String! quantity: Int! sku: String }
type LineItemEdge { node: LineItem! }
type LineItemConnection { edges: [LineItemEdge!]! }
type Customer {
  id: ID! displayName: String! email: String phone: String numberOfOrders: String!
}
type CustomerEdge { cursor: String! node: Customer! }
type CustomerConnection { edges: [CustomerEdge!]! pageInfo: PageInfo! }
type Order {
  id: ID! name: String! createdAt: String! displayFinancialStatus: String
  displayFulfillmentStatus: String! totalPriceSet: MoneyBag! customer: Customer
  lineItems(first: Int!): LineItemConnection!
}
type OrderEdge { cursor: String! node: Order! }
type OrderConnection { edges: [OrderEdge!]! pageInfo: PageInfo! }
"""

MAXIMUM_AVAILABLE = 100.0
RESTORE_RATE = 20.0

PRODUCTS = [
    {
        "id": f"gid://shopify/Product/{1000 + n}",
        "title": f"Product {n}",
        "handle": f"product-{n}",
        "status": "ACTIVE" if n % 3 else "DRAFT",
        "totalInventory": 10 * n,
    }
    for n in range(1, 101)
]
CUSTOMERS = [
    {
        "id": "gid://shopify/Customer/1",
        "displayName": "Ada Lovelace",
        "email": "ada@example.com",
        "phone": None,
        "numberOfOrders": "2",
    }
]
ORDERS = [
    {
        "id": f"gid://shopify/Order/{5000 + n}",
        "name": f"#{1000 + n}",
        "createdAt": f"2026-11-{n:02d}T10:00:00Z",
        "displayFinancialStatus": "PAID" if n % 2 else "PENDING",
        "displayFulfillmentStatus": "UNFULFILLED",
        "totalPriceSet": {"shopMoney": {"amount": f"{10 * n}.00", "currencyCode": "EUR"}},
        "customer": CUSTOMERS[0],
        "lineItems": [{"title": f"Product {n}", "quantity": 1, "sku": f"SKU-{n}"}],
    }
    for n in range(1, 6)
]

query = QueryType()


def _cursor(kind: str, index: int) -> str:
    return base64.b64encode(f'{{"{kind}":{index}}}'.encode()).decode()


def _connection(kind: str, rows: list[dict[str, Any]], first: int, after: str | None) -> Any:
    start = 0
    if after:
        start = int(base64.b64decode(after).decode().split(":")[1].rstrip("}")) + 1
    chosen = rows[start : start + first]
    edges = [{"cursor": _cursor(kind, start + i), "node": row} for i, row in enumerate(chosen)]
    return {
        "edges": edges,
        "pageInfo": {
            "hasNextPage": start + first < len(rows),
            "hasPreviousPage": start > 0,
            "startCursor": edges[0]["cursor"] if edges else None,
            "endCursor": edges[-1]["cursor"] if edges else None,
        },
    }


def _filtered(rows: list[dict[str, Any]], search: str | None, field: str) -> list[dict[str, Any]]:
    """Shopify's search syntax, the one form the tests use: `field:value`."""
    if not search or ":" not in search:
        return rows
    _, value = search.split(":", 1)
    return [row for row in rows if str(row.get(field, "")).lower() == value.lower()]


@query.field("shop")
def resolve_shop(_: Any, info: GraphQLResolveInfo) -> dict[str, Any]:
    return {
        "name": "Loopback Shop",
        "myshopifyDomain": "loopback.myshopify.com",
        "currencyCode": "EUR",
    }


@query.field("products")
def resolve_products(
    _: Any, info: GraphQLResolveInfo, first: int, after: str | None = None, query: str | None = None
) -> Any:
    return _connection("product", _filtered(PRODUCTS, query, "status"), first, after)


@query.field("orders")
def resolve_orders(
    _: Any,
    info: GraphQLResolveInfo,
    first: int,
    after: str | None = None,
    query: str | None = None,
    sortKey: str | None = None,
    reverse: bool = False,
) -> Any:
    rows = _filtered(ORDERS, query, "displayFinancialStatus")
    return _connection("order", list(reversed(rows)) if reverse else rows, first, after)


@query.field("customers")
def resolve_customers(
    _: Any, info: GraphQLResolveInfo, first: int, after: str | None = None, query: str | None = None
) -> Any:
    return _connection("customer", _filtered(CUSTOMERS, query, "email"), first, after)


@query.field("order")
def resolve_order(_: Any, info: GraphQLResolveInfo, id: str) -> dict[str, Any] | None:
    found = next((o for o in ORDERS if o["id"] == id), None)
    if found is None:
        return None
    items = [{"node": item} for item in found["lineItems"]]
    return {**found, "lineItems": {"edges": items}}


schema = make_executable_schema(TYPE_DEFS, query)

_INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"
_buckets: dict[str, tuple[float, float]] = {}
"""Per access token: (points available, when last computed)."""
_seen: list[dict[str, Any]] = []


def _available(token: str, now: float) -> float:
    points, at = _buckets.get(token, (MAXIMUM_AVAILABLE, now))
    return min(MAXIMUM_AVAILABLE, points + (now - at) * RESTORE_RATE)


def _requested_cost(body: dict[str, Any]) -> float:
    text = str(body.get("query") or "")
    if "edges" not in text:
        return 1.0
    variables = body.get("variables") or {}
    first = variables.get("first")
    return float(first if isinstance(first, int) else 10) + 2.0


async def graphql_endpoint(request: Request) -> JSONResponse:
    token = request.headers.get("x-shopify-access-token", "")
    if not token.startswith("shpat_"):
        return JSONResponse(
            {"errors": _INVALID_TOKEN},
            status_code=401,
        )
    body = await request.json()
    now = time.time()
    _seen.append({"at": now, "token": token, "variables": body.get("variables") or {}})
    requested = _requested_cost(body)
    available = _available(token, now)
    throttled = requested > available
    if not throttled:
        available -= requested
        _buckets[token] = (available, now)
        _, result = await graphql(schema, body, context_value={"request": request})
    else:
        result = {
            "errors": [
                {
                    "message": "Throttled",
                    "extensions": {
                        "code": "THROTTLED",
                        "documentation": "https://shopify.dev/api/usage/rate-limits",
                    },
                }
            ]
        }
    result["extensions"] = {
        "cost": {
            "requestedQueryCost": requested,
            "actualQueryCost": None if throttled else requested,
            "throttleStatus": {
                "maximumAvailable": MAXIMUM_AVAILABLE,
                "currentlyAvailable": available,
                "restoreRate": RESTORE_RATE,
            },
        }
    }
    return JSONResponse(result)


async def seen(request: Request) -> JSONResponse:
    return JSONResponse(_seen)


app = Starlette(
    routes=[
        Route("/admin/api/{version}/graphql.json", graphql_endpoint, methods=["POST"]),
        Route("/_seen", seen, methods=["GET"]),
    ]
)
