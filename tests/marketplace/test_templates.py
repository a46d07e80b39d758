"""The shipped templates: each loads through the same validation as a tenant's integration,
the catalogue is broad enough, and every endpoint matches the vendor's official description."""

from __future__ import annotations

from pathlib import Path

import graphql
import pytest

from adaptor.domain.marketplace import MarketplaceItemSpec
from adaptor.mapping import MappingEngine
from adaptor.marketplace.catalog import builtin_template_files, load_file
from adaptor.protocols.registry import default_registry
from tests.marketplace.openapi import endpoint_problems
from tests.prism import OPENAPI_FIXTURES

FULL = OPENAPI_FIXTURES / "full"
DESCRIPTIONS: dict[str, Path] = {
    "stripe": OPENAPI_FIXTURES / "stripe.json",
    "hubspot": OPENAPI_FIXTURES / "hubspot.json",
    "hubspot-oauth": OPENAPI_FIXTURES / "hubspot.json",
    "jira-oauth": OPENAPI_FIXTURES / "jira.json",
    "jira": OPENAPI_FIXTURES / "jira.json",
    "twilio-sms": FULL / "twilio-api-v2010.json",
    "twilio-verify": FULL / "twilio-verify-v2.json",
    "sendgrid": FULL / "sendgrid.json",
    "intercom": FULL / "intercom.json",
    "asana": FULL / "asana.json",
    "slack": FULL / "negative" / "slack-web.json",
}
"""Templates whose vendor publishes a description (Slack's is Swagger 2.0)."""
GATEWAYS = {"jira-oauth": "/ex/jira/x"}
"""Path prefixes of the vendors' API gateways (placeholders read as `x`)."""


def load_all() -> dict[str, MarketplaceItemSpec]:
    engine, adapters = MappingEngine(), default_registry()
    items = [load_file(path, engine, adapters) for path in builtin_template_files()]
    return {item.item_id: item for item in items}


ITEMS = load_all()


def test_the_catalogue_has_twenty_templates_in_six_categories() -> None:
    assert len(ITEMS) >= 20
    assert len({item.category for item in ITEMS.values()}) >= 6
    assert {"salesforce", "shopify", "hubspot", "stripe", "jira"} <= set(ITEMS)


def test_each_template_file_is_named_by_its_slug() -> None:
    assert sorted(f"{slug}.json" for slug in ITEMS) == [
        path.name for path in builtin_template_files()
    ]


@pytest.mark.parametrize("item_id", sorted(DESCRIPTIONS))
def test_every_endpoint_is_in_the_vendors_description_with_required_parameters_mapped(
    item_id: str,
) -> None:
    item = ITEMS[item_id]
    problems = [
        problem
        for endpoint in item.template.endpoints
        for problem in endpoint_problems(
            item, endpoint, DESCRIPTIONS[item_id], gateway=GATEWAYS.get(item_id, "")
        )
    ]
    assert problems == []


def test_the_hubspot_contacts_endpoints_match_the_full_contacts_description() -> None:
    item = ITEMS["hubspot"]
    contacts = [e for e in item.template.endpoints if "contact" in e.name]
    assert len(contacts) == 4
    for endpoint in contacts:
        assert endpoint_problems(item, endpoint, FULL / "hubspot-crm-contacts.json") == []


def test_the_description_check_catches_a_wrong_path_and_an_unmapped_field() -> None:
    item = ITEMS["stripe"].model_copy(deep=True)
    create = next(e for e in item.template.endpoints if e.name == "create_payment_intent")
    create.request_mapping.body.pop("currency")
    wrong = next(e for e in item.template.endpoints if e.name == "get_invoice")
    wrong.path = "/v1/invoice/{invoice}"
    stripe = DESCRIPTIONS["stripe"]
    assert endpoint_problems(item, create, stripe) == [
        "create_payment_intent: required body field 'currency' is not mapped"
    ]
    assert endpoint_problems(item, wrong, stripe) == [
        "GET /v1/invoice/{invoice} is not in stripe.json"
    ]


def test_shopify_graphql_documents_parse_and_map_exactly_their_variables() -> None:
    item = ITEMS["shopify"]
    assert str(item.type) == "graphql"
    for endpoint in item.template.endpoints:
        assert endpoint.query is not None, endpoint.name
        document = graphql.parse(endpoint.query)
        assert graphql.validate(graphql.build_ast_schema(graphql.parse(_SCHEMA)), document) == []
        operation = document.definitions[0]
        assert isinstance(operation, graphql.OperationDefinitionNode)
        declared = {v.variable.name.value for v in operation.variable_definitions or ()}
        assert set(endpoint.request_mapping.body) == declared, endpoint.name
        if endpoint.pagination is not None:
            assert endpoint.pagination.cursor_in == "body"
            assert endpoint.pagination.cursor_param in declared


def test_shopify_base_url_comes_from_the_shop_domain() -> None:
    config = ITEMS["shopify"].template.base_config
    assert config["base_url"] == "https://{{shop}}"
    assert config["auth_config"] == {
        "type": "api_key",
        "api_key_header": "X-Shopify-Access-Token",
    }


# The part of Shopify's Admin GraphQL schema the template's documents use, written from the
# Admin API reference (shopify.dev/docs/api/admin-graphql), so graphql-core checks each field,
# argument and variable type.
_SCHEMA = """
scalar DateTime
scalar Decimal
type Query {
  orders(
    first: Int, after: String, query: String, sortKey: OrderSortKeys, reverse: Boolean
  ): OrderConnection!
  order(id: ID!): Order
  products(first: Int, after: String, query: String): ProductConnection!
  customers(first: Int, after: String, query: String): CustomerConnection!
  shop: Shop!
}
enum OrderSortKeys { CREATED_AT PROCESSED_AT TOTAL_PRICE ID }
type PageInfo {
  hasNextPage: Boolean! endCursor: String hasPreviousPage: Boolean! startCursor: String
}
type MoneyV2 { amount: Decimal! currencyCode: String! }
type MoneyBag { shopMoney: MoneyV2! presentmentMoney: MoneyV2! }
type Customer { id: ID! displayName: String! email: String phone: String numberOfOrders: String! }
type LineItem { title: String! quantity: Int! sku: String }
type LineItemEdge { node: LineItem! cursor: String! }
type LineItemConnection { edges: [LineItemEdge!]! pageInfo: PageInfo! }
type Order {
  id: ID! name: String! createdAt: DateTime! displayFinancialStatus: String
  displayFulfillmentStatus: String! totalPriceSet: MoneyBag! customer: Customer
  lineItems(first: Int, after: String): LineItemConnection!
}
type OrderEdge { node: Order! cursor: String! }
type OrderConnection { edges: [OrderEdge!]! pageInfo: PageInfo! }
type Product { id: ID! title: String! handle: String! status: String! totalInventory: Int! }
type ProductEdge { node: Product! cursor: String! }
type ProductConnection { edges: [ProductEdge!]! pageInfo: PageInfo! }
type CustomerEdge { node: Customer! cursor: String! }
type CustomerConnection { edges: [CustomerEdge!]! pageInfo: PageInfo! }
type Shop { name: String! myshopifyDomain: String! currencyCode: String! }
"""
