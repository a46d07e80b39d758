"""A small GraphQL API served by Ariadne on uvicorn: the GraphQL peer of the tests.

    uvicorn tests.servers.ariadne.schema:app --port 8765

Customers can be read, filtered with nested input objects and created by a mutation; `whoami`
echoes the Authorization header the request carried; `customer.secretNote` always fails (errors
with partial data) and `mustExist` fails on a non-null field (errors without data).
"""

from __future__ import annotations

from typing import Any

from ariadne import MutationType, ObjectType, QueryType, make_executable_schema
from ariadne.asgi import GraphQL
from graphql import GraphQLResolveInfo

TYPE_DEFS = """
type Query {
  customer(id: ID!): Customer
  customers(filter: CustomerFilter, limit: Int = 10): [Customer!]!
  mustExist(id: ID!): Customer!
  whoami: String
}

type Mutation {
  createCustomer(input: NewCustomer!): Customer!
}

input CustomerFilter {
  plan: String
  address: AddressInput
}

input AddressInput {
  city: String
  country: String
}

input NewCustomer {
  name: String!
  email: String!
  plan: String
  address: AddressInput
}

type Address {
  city: String
  country: String
}

type Customer {
  id: ID!
  name: String!
  email: String
  plan: String
  address: Address
  secretNote: String
}
"""

CUSTOMERS: dict[str, dict[str, Any]] = {
    "1": {
        "id": "1",
        "name": "Ada",
        "email": "ada@example.com",
        "plan": "pro",
        "address": {"city": "London", "country": "GB"},
    },
    "2": {
        "id": "2",
        "name": "Grace",
        "email": "grace@example.com",
        "plan": "free",
        "address": {"city": "Arlington", "country": "US"},
    },
}

query = QueryType()
mutation = MutationType()
customer = ObjectType("Customer")


@query.field("customer")
def resolve_customer(_: Any, info: GraphQLResolveInfo, id: str) -> dict[str, Any] | None:
    return CUSTOMERS.get(id)


@query.field("customers")
def resolve_customers(
    _: Any, info: GraphQLResolveInfo, filter: dict[str, Any] | None = None, limit: int = 10
) -> list[dict[str, Any]]:
    found = list(CUSTOMERS.values())
    filter = filter or {}
    if filter.get("plan"):
        found = [c for c in found if c["plan"] == filter["plan"]]
    address = filter.get("address") or {}
    for key in ("city", "country"):
        if address.get(key):
            found = [c for c in found if (c.get("address") or {}).get(key) == address[key]]
    return found[:limit]


@query.field("mustExist")
def resolve_must_exist(_: Any, info: GraphQLResolveInfo, id: str) -> dict[str, Any]:
    if id not in CUSTOMERS:
        raise LookupError(f"customer {id} does not exist")
    return CUSTOMERS[id]


@query.field("whoami")
def resolve_whoami(_: Any, info: GraphQLResolveInfo) -> str | None:
    request = info.context["request"]
    value: str | None = request.headers.get("authorization")
    return value


@mutation.field("createCustomer")
def resolve_create(_: Any, info: GraphQLResolveInfo, input: dict[str, Any]) -> dict[str, Any]:
    ident = str(len(CUSTOMERS) + 1)
    created = {"id": ident, **input}
    CUSTOMERS[ident] = created
    return created


@customer.field("secretNote")
def resolve_secret_note(obj: dict[str, Any], info: GraphQLResolveInfo) -> str:
    raise PermissionError("secretNote is restricted")


schema = make_executable_schema(TYPE_DEFS, query, mutation, customer)
app = GraphQL(schema, debug=False, execute_get_queries=True)
