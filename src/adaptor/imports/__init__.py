"""Integrations imported from a vendor's OpenAPI description (3.0 and 3.1).

`documents` reads the text (JSON or YAML) and checks that it is OpenAPI 3; `references`
resolves `$ref`s with `referencing` (the JSON Reference library underneath `jsonschema`,
`jsonschema-path` and `openapi-spec-validator`); `openapi` turns the operations into an
`IntegrationSpec`; `service` validates and stores it.
"""

from adaptor.imports.documents import ImportProblems, load_document
from adaptor.imports.openapi import ImportedDocument, ImportOptions, convert_document
from adaptor.imports.references import DocumentResolver

__all__ = [
    "DocumentResolver",
    "ImportOptions",
    "ImportProblems",
    "ImportedDocument",
    "convert_document",
    "load_document",
]
