"""RESTResponseParser: content types and error messages, from raw responses."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from adaptor.protocols import MalformedResponse, RawResponse, RESTResponseParser

from .upstream import BILLION_LAUGHS, EXTERNAL_ENTITY, XML_DOCUMENT

parser = RESTResponseParser()


def raw(body: bytes, content_type: str | None = None, status: int = 200) -> RawResponse:
    headers = {"content-type": content_type} if content_type else {}
    return RawResponse(
        status=status, headers=headers, body=body, url="https://api.example.com/x", elapsed_ms=1.0
    )


def test_json() -> None:
    assert parser.parse(raw(b'{"a": [1, 2]}', "application/json; charset=utf-8")) == {"a": [1, 2]}


def test_json_suffix_types() -> None:
    assert parser.parse(raw(b'{"title": "x"}', "application/problem+json")) == {"title": "x"}


def test_json_in_another_charset() -> None:
    body = '{"name": "Zoë"}'.encode("latin-1")
    assert parser.parse(raw(body, "application/json; charset=latin-1")) == {"name": "Zoë"}


def test_malformed_json_is_a_clear_error() -> None:
    with pytest.raises(MalformedResponse, match="not valid JSON") as caught:
        parser.parse(raw(b'{"a": ', "application/json"))
    assert caught.value.code == "upstream_error"


def test_xml_becomes_a_dict() -> None:
    assert parser.parse(raw(XML_DOCUMENT, "application/xml")) == {
        "customers": {
            "@count": "2",
            "customer": [
                {"@id": "1", "name": "Ada", "plan": "pro"},
                {"@id": "2", "name": "Grace"},
            ],
            "note": {"@lang": "en", "#text": "two found"},
            "empty": None,
        }
    }


@pytest.mark.parametrize("document", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["bomb", "xxe"])
def test_xml_entities_are_refused(document: bytes) -> None:
    with pytest.raises(MalformedResponse, match="entities"):
        parser.parse(raw(document, "text/xml"))


def test_broken_xml_is_a_clear_error() -> None:
    with pytest.raises(MalformedResponse, match="well-formed"):
        parser.parse(raw(b"<a><b></a>", "application/xml"))


def test_deep_xml_is_refused() -> None:
    document = b"<a>" * 300 + b"</a>" * 300
    with pytest.raises(MalformedResponse, match="deeper"):
        parser.parse(raw(document, "application/xml"))


def test_text() -> None:
    assert parser.parse(raw("grüße".encode(), "text/plain; charset=utf-8")) == "grüße"


def test_binary_is_base64() -> None:
    assert parser.parse(raw(b"\x89PNG", "image/png")) == {
        "content_type": "image/png",
        "base64": base64.b64encode(b"\x89PNG").decode(),
    }


def test_form_encoded() -> None:
    body = b"access_token=t&scope=a&scope=b"
    assert parser.parse(raw(body, "application/x-www-form-urlencoded")) == {
        "access_token": "t",
        "scope": ["a", "b"],
    }


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", None])
def test_empty_body_is_none(content_type: str | None) -> None:
    assert parser.parse(raw(b"", content_type)) is None


def test_missing_content_type_is_sniffed() -> None:
    assert parser.parse(raw(b' {"a": 1}')) == {"a": 1}
    assert parser.parse(raw(b"plain words")) == "plain words"
    binary = b"\xff\xfe\x00"
    assert parser.parse(raw(binary))["base64"] == base64.b64encode(binary).decode()


@pytest.mark.parametrize(
    ("expected_format", "expected"),
    [("json", {"a": 1}), ("text", '{"a": 1}'), ("binary", {"content_type": "text/plain"})],
)
def test_expected_format_overrides_the_content_type(expected_format: str, expected: Any) -> None:
    parsed = parser.parse(raw(b'{"a": 1}', "text/plain"), expected_format)
    if expected_format == "binary":
        assert parsed["content_type"] == "text/plain"
    else:
        assert parsed == expected


def test_unknown_expected_format_is_refused() -> None:
    with pytest.raises(ValueError, match="expected_format"):
        parser.parse(raw(b"{}", "application/json"), "yaml")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"error": {"message": "card declined", "code": "x"}}, "card declined"),
        (
            {"error": "invalid_grant", "error_description": "code expired"},
            "invalid_grant: code expired",
        ),
        ({"error": "not_found"}, "not_found"),
        ({"message": "no such customer"}, "no such customer"),
        ({"error_description": "bad client"}, "bad client"),
        ({"errors": [{"message": "email is taken"}, {"message": "other"}]}, "email is taken"),
        ({"errors": ["first problem"]}, "first problem"),
        ({"errors": [{"detail": "json:api detail"}]}, "json:api detail"),
        ({"detail": "stale version"}, "stale version"),
        ({"detail": [{"loc": ["body", "x"], "msg": "field required"}]}, "field required"),
        ({"title": "Conflict"}, "Conflict"),
        ({"Error": {"Code": "Boom", "Message": "disk full"}}, "disk full"),
        ({"response": {"message": "wrapped"}}, "wrapped"),
        ({"fault": {"faultstring": "soap fault"}}, "soap fault"),
    ],
)
def test_error_message_extraction(body: Any, message: str) -> None:
    assert parser.extract_error_message(body) == message


def test_error_message_falls_back_to_the_text_body_truncated() -> None:
    message = parser.extract_error_message("bad   gateway\n" + "x" * 1000)
    assert message is not None
    assert message.startswith("bad gateway x")
    assert len(message) == 500


def test_error_message_from_undecodable_json_uses_the_raw_text() -> None:
    response = raw(b"upstream exploded", "application/json", status=500)
    assert parser.extract_error_message(parser.parse_quietly(response), response) == (
        "upstream exploded"
    )


def test_no_message_in_an_unrelated_body() -> None:
    assert parser.extract_error_message(orjson.loads(b'{"id": 1, "x": 2}')) is None
