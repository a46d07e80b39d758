"""Atlassian Document Format (ADF): Jira Cloud's rich text for descriptions and comments.

`text_to_adf` turns plain text into an ADF document (a paragraph per blank-line-separated
block, line breaks kept as `hardBreak`s); `adf_to_text` flattens an ADF document back into
text (paragraphs and headings separated by blank lines, list items on their own lines,
mentions, emoji and links by their text). Both follow the node types of Atlassian's ADF
structure reference; unknown nodes contribute their text content.
"""

from __future__ import annotations

from typing import Any

from adaptor.mapping.errors import TransformError
from adaptor.mapping.transforms import Params, Transform

_BLOCKS = frozenset(
    {"paragraph", "heading", "blockquote", "codeBlock", "panel", "rule", "mediaSingle", "table"}
)


def text_to_adf(text: str) -> dict[str, Any]:
    """An ADF `doc` holding `text`."""
    content: list[dict[str, Any]] = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        if not block.strip():
            continue
        inline: list[dict[str, Any]] = []
        for index, line in enumerate(block.split("\n")):
            if index:
                inline.append({"type": "hardBreak"})
            if line:
                inline.append({"type": "text", "text": line})
        content.append({"type": "paragraph", "content": inline})
    return {"type": "doc", "version": 1, "content": content}


def adf_to_text(node: Any) -> str:
    """The plain text of an ADF node (usually a `doc`)."""
    return _text(node).strip("\n")


def _text(node: Any) -> str:
    if isinstance(node, list):
        return "".join(_text(child) for child in node)
    if not isinstance(node, dict):
        return ""
    kind = node.get("type")
    attrs = node.get("attrs") or {}
    if kind == "text":
        return str(node.get("text", ""))
    if kind == "hardBreak":
        return "\n"
    if kind == "mention":
        return str(attrs.get("text") or "")
    if kind == "emoji":
        return str(attrs.get("text") or attrs.get("shortName") or "")
    if kind in ("inlineCard", "blockCard"):
        return str(attrs.get("url") or "")
    inner = _text(node.get("content") or [])
    if kind == "listItem":
        return f"- {inner.strip()}\n"
    if kind in ("bulletList", "orderedList"):
        return inner + "\n"
    if kind in _BLOCKS:
        return inner + "\n\n"
    return inner


class TextToAdf(Transform):
    """Plain text → an ADF document (for Jira descriptions and comments)."""

    name = "text_to_adf"

    def __init__(self, params: Params) -> None:
        pass

    def apply(self, value: Any, context: Any) -> Any:
        if isinstance(value, dict) and value.get("type") == "doc":
            return value  # already ADF
        if not isinstance(value, str):
            raise TransformError(f"{self.name}: expected text, got {type(value).__name__}")
        return text_to_adf(value)


class AdfToText(Transform):
    """An ADF document → plain text (Jira descriptions and comments for a conversation)."""

    name = "adf_to_text"

    def __init__(self, params: Params) -> None:
        pass

    def apply(self, value: Any, context: Any) -> Any:
        if isinstance(value, str):
            return value
        if not isinstance(value, dict | list):
            raise TransformError(f"{self.name}: expected an ADF document")
        return adf_to_text(value)
