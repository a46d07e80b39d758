"""Atlassian Document Format transforms (Jira descriptions and comments)."""

from __future__ import annotations

from adaptor.domain import EndpointConfig
from adaptor.mapping import MappingEngine
from adaptor.mapping.adf import adf_to_text, text_to_adf

# A description as Jira Cloud returns it (ADF structure reference, developer.atlassian.com).
JIRA_DESCRIPTION = {
    "type": "doc",
    "version": 1,
    "content": [
        {
            "type": "heading",
            "attrs": {"level": 2},
            "content": [{"type": "text", "text": "Steps"}],
        },
        {
            "type": "paragraph",
            "content": [
                {"type": "text", "text": "Printer on "},
                {"type": "text", "text": "fire", "marks": [{"type": "strong"}]},
                {"type": "hardBreak"},
                {"type": "mention", "attrs": {"id": "5b10", "text": "@Ada"}},
                {"type": "text", "text": " please look"},
            ],
        },
        {
            "type": "bulletList",
            "content": [
                {
                    "type": "listItem",
                    "content": [
                        {"type": "paragraph", "content": [{"type": "text", "text": "unplug it"}]}
                    ],
                },
                {
                    "type": "listItem",
                    "content": [
                        {
                            "type": "paragraph",
                            "content": [{"type": "text", "text": "call facilities"}],
                        }
                    ],
                },
            ],
        },
    ],
}


def test_plain_text_becomes_paragraphs_with_hard_breaks() -> None:
    assert text_to_adf("Line one\nline two\n\nSecond paragraph") == {
        "type": "doc",
        "version": 1,
        "content": [
            {
                "type": "paragraph",
                "content": [
                    {"type": "text", "text": "Line one"},
                    {"type": "hardBreak"},
                    {"type": "text", "text": "line two"},
                ],
            },
            {"type": "paragraph", "content": [{"type": "text", "text": "Second paragraph"}]},
        ],
    }


def test_adf_becomes_readable_text() -> None:
    assert adf_to_text(JIRA_DESCRIPTION) == (
        "Steps\n\nPrinter on fire\n@Ada please look\n\n- unplug it\n- call facilities"
    )


def test_text_round_trips() -> None:
    text = "First\nsecond\n\nThird"
    assert adf_to_text(text_to_adf(text)) == text


def test_the_transforms_run_in_request_and_response_mappings() -> None:
    endpoint = EndpointConfig.model_validate(
        {
            "path": "/issue",
            "method": "POST",
            "request_mapping": {
                "body": {"fields.description": "text"},
                "transformations": [
                    {"field": "body.fields.description", "transform": "text_to_adf"}
                ],
            },
            "response_mapping": {
                "field_mappings": {"description": "fields.description"},
                "transformations": [{"field": "description", "transform": "adf_to_text"}],
            },
        }
    )
    compiled = MappingEngine().compile_endpoint(endpoint)
    request = compiled.map_request({"text": "Hello"})
    assert request.body["fields"]["description"]["type"] == "doc"
    response = compiled.map_response({"fields": {"description": JIRA_DESCRIPTION}})
    assert response.data["description"].startswith("Steps")


def test_whole_body_target_merges_an_object_at_the_root() -> None:
    endpoint = EndpointConfig.model_validate(
        {
            "path": "/sobjects/Account",
            "method": "POST",
            "request_mapping": {"body": {"@": "fields", "Name": "name"}},
        }
    )
    compiled = MappingEngine().compile_endpoint(endpoint)
    request = compiled.map_request({"fields": {"Name": "x", "Industry": "Tech"}, "name": "Acme"})
    assert request.body == {"Name": "Acme", "Industry": "Tech"}
