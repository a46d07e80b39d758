"""RESTRequestBuilder: URLs, query strings, headers and bodies, without the network."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import orjson
import pytest

from adaptor.protocols import DEFAULT_USER_AGENT, RequestBuildError, RESTRequestBuilder

BASE = "https://api.example.com/v1"


def build(endpoint: str, method: str = "GET", **data: Any) -> Any:
    return RESTRequestBuilder(BASE, {"X-Team": "integration"}).build(endpoint, method, data)


def test_placeholders_are_substituted_and_encoded() -> None:
    request = build(
        "/users/{user_id}/files/{name}", path_params={"user_id": "a/b c", "name": "ü?#"}
    )
    assert request.url == "https://api.example.com/v1/users/a%2Fb%20c/files/%C3%BC%3F%23"


def test_missing_placeholder_names_it() -> None:
    with pytest.raises(RequestBuildError, match="user_id"):
        build("/users/{user_id}", path_params={"other": 1})


def test_none_placeholder_counts_as_missing() -> None:
    with pytest.raises(RequestBuildError, match="id"):
        build("/users/{id}", path_params={"id": None})


def test_absolute_endpoint_is_used_as_given() -> None:
    request = build("https://other.example.com/x/{id}?fixed=1", path_params={"id": 7})
    assert request.url == "https://other.example.com/x/7"
    assert request.params == [("fixed", "1")]


def test_relative_endpoint_without_base_url_is_refused() -> None:
    with pytest.raises(RequestBuildError, match="base_url"):
        RESTRequestBuilder(None).build("/x", "GET")


def test_non_http_absolute_endpoint_is_refused() -> None:
    with pytest.raises(RequestBuildError, match="http"):
        build("ftp://files.example.com/x")


def test_query_lists_repeat_and_booleans_are_lowercase() -> None:
    request = build(
        "/search",
        query_params={"tag": ["a", "b"], "active": True, "deleted": False, "skip": None, "n": 3},
    )
    assert request.params == [
        ("tag", "a"),
        ("tag", "b"),
        ("active", "true"),
        ("deleted", "false"),
        ("n", "3"),
    ]
    assert request.full_url.endswith("/search?tag=a&tag=b&active=true&deleted=false&n=3")


def test_nested_query_objects_use_brackets() -> None:
    request = build("/search", query_params={"filter": {"status": "open"}})
    assert request.params == [("filter[status]", "open")]


def test_default_headers_then_integration_then_request_case_insensitively() -> None:
    builder = RESTRequestBuilder(BASE, {"accept": "application/xml", "X-Team": "a"})
    request = builder.build("/x", "GET", {"headers": {"x-team": "b", "X-Trace": 5}})
    assert request.get_header("Accept") == "application/xml"
    assert request.get_header("X-Team") == "b"
    assert request.get_header("x-trace") == "5"
    assert request.get_header("User-Agent") == DEFAULT_USER_AGENT
    assert sum(1 for name in request.headers if name.lower() == "x-team") == 1


def test_none_header_is_left_out() -> None:
    assert build("/x", headers={"X-Optional": None}).get_header("X-Optional") is None


def test_content_length_from_config_is_ignored() -> None:
    request = build("/x", "POST", headers={"Content-Length": "999"}, body={"a": 1})
    assert request.get_header("Content-Length") is None


def test_header_injection_is_refused() -> None:
    with pytest.raises(RequestBuildError, match="line break"):
        build("/x", headers={"X-Evil": "a\r\nInjected: yes"})


def test_invalid_header_name_is_refused() -> None:
    with pytest.raises(RequestBuildError, match="header name"):
        build("/x", headers={"Bad Name": "a"})


def test_json_is_the_default_body_encoding() -> None:
    request = build("/x", "POST", body={"name": "Ada", "n": [1, 2]})
    assert request.get_header("Content-Type") == "application/json"
    assert orjson.loads(request.body or b"") == {"name": "Ada", "n": [1, 2]}


def test_form_body_uses_stripe_bracket_notation() -> None:
    request = build(
        "/charges",
        "POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        body={
            "amount": 100,
            "capture": True,
            "metadata": {"plan": "pro"},
            "expand": ["customer", "invoice"],
            "items": [{"price": "p_1", "quantity": 2}],
            "skip": None,
        },
    )
    assert parse_qsl((request.body or b"").decode()) == [
        ("amount", "100"),
        ("capture", "true"),
        ("metadata[plan]", "pro"),
        ("expand[]", "customer"),
        ("expand[]", "invoice"),
        ("items[0][price]", "p_1"),
        ("items[0][quantity]", "2"),
    ]


def test_text_body_is_sent_as_is_in_its_charset() -> None:
    request = build(
        "/x", "POST", headers={"Content-Type": "text/plain; charset=latin-1"}, body="héllo"
    )
    assert request.body == "héllo".encode("latin-1")


def test_bytes_body_is_sent_as_is() -> None:
    request = build("/x", "PUT", body=b"\x00\x01")
    assert request.body == b"\x00\x01"
    assert request.get_header("Content-Type") == "application/octet-stream"


def test_object_body_for_a_text_type_is_refused() -> None:
    with pytest.raises(RequestBuildError, match="string or bytes"):
        build("/x", "POST", headers={"Content-Type": "application/xml"}, body={"a": 1})


def test_unserialisable_json_body_is_a_clear_error() -> None:
    with pytest.raises(RequestBuildError, match="JSON"):
        build("/x", "POST", body={"a": object()})


@pytest.mark.parametrize("method", ["GET", "HEAD", "DELETE"])
def test_no_body_unless_given(method: str) -> None:
    request = build("/x", method)
    assert request.body is None
    assert request.get_header("Content-Type") is None


def test_body_is_sent_with_delete_when_given() -> None:
    assert build("/x", "DELETE", body={"reason": "dup"}).body == b'{"reason":"dup"}'


def test_method_is_validated_and_uppercased() -> None:
    assert build("/x", "patch").method == "PATCH"
    with pytest.raises(RequestBuildError, match="TRACE"):
        build("/x", "TRACE")


def test_unknown_request_data_keys_are_refused() -> None:
    with pytest.raises(RequestBuildError, match="bodyy"):
        RESTRequestBuilder(BASE).build("/x", "GET", {"bodyy": {}})


def test_query_in_the_base_url_is_kept() -> None:
    request = RESTRequestBuilder("https://api.example.com/v1?version=2").build(
        "/x", "GET", {"query_params": {"a": 1}}
    )
    assert request.full_url == "https://api.example.com/v1/x?version=2&a=1"


def test_unicode_host_is_idna_encoded() -> None:
    request = RESTRequestBuilder("https://bücher.example").build("/x", "GET")
    assert request.url == "https://xn--bcher-kva.example/x"


def test_repr_shows_no_header_values() -> None:
    request = build("/x", headers={"Authorization": "Bearer sk_live_secret"})
    assert "sk_live_secret" not in repr(request)
    assert request.redacted_headers()["Authorization"] == "********"
