"""`$ref` resolution for OpenAPI documents, with `referencing`.

`referencing` resolves a reference against the base URI of the resource it sits in, so a
reference inside a file that was itself reached through a reference resolves relative to that
file, as JSON Reference requires. What may be retrieved is decided here:

- a document sent over HTTP resolves references within itself only; a reference to another
  file or to a URL is an error naming it;
- a document read from disk (the CLI) may also reach files in its own folder and below, read
  as JSON or YAML and cached per file; never a URL, never a file outside that folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from referencing import Registry, Resource
from referencing.exceptions import PointerToNowhere, Unresolvable

from adaptor.imports.documents import parse_text

if TYPE_CHECKING:
    from referencing._core import Resolver  # the type `Registry.resolver()` returns

INLINE_URI = "urn:adaptor:import:document"
"""Base URI of a document sent inline: nothing else can be reached from it."""


class UnresolvableReference(Exception):
    """A `$ref` that cannot be followed; the message says why (without the document's data)."""


class DocumentResolver:
    """Follows `$ref`s from one root document (see the module docstring for what is allowed)."""

    def __init__(self, document: dict[str, Any], *, path: Path | None = None) -> None:
        self._files: dict[str, Resource[Any]] = {}
        if path is None:
            self.base_uri = INLINE_URI
            self._root_dir: Path | None = None
        else:
            resolved = path.resolve()
            self.base_uri = resolved.as_uri()
            self._root_dir = resolved.parent
        registry: Registry[Any] = Registry(retrieve=self._retrieve)  # type: ignore[call-arg]
        self.root: Resolver[Any] = registry.with_resource(
            self.base_uri, Resource.opaque(document)
        ).resolver(base_uri=self.base_uri)

    def _retrieve(self, uri: str) -> Resource[Any]:
        parts = urlsplit(uri)
        if self._root_dir is None or parts.scheme != "file":
            raise UnresolvableReference("not retrievable")
        target = Path(unquote(parts.path)).resolve()
        if not target.is_relative_to(self._root_dir):
            raise UnresolvableReference("outside the document's folder")
        cached = self._files.get(str(target))
        if cached is None:
            cached = Resource.opaque(parse_text(target.read_bytes()))
            self._files[str(target)] = cached
        return cached

    def lookup(self, ref: object, resolver: Resolver[Any]) -> tuple[Any, Resolver[Any]]:
        """`(contents, resolver for references inside it)` of `ref` seen from `resolver`."""
        if not isinstance(ref, str):
            raise UnresolvableReference("must be a string")
        if self._root_dir is None and not ref.startswith("#"):
            raise UnresolvableReference(
                f"refers to another document ({ref}); send one self-contained document "
                "(the CLI, `adaptor import openapi FILE`, follows references to files beside it)"
            )
        scheme = urlsplit(ref).scheme
        if scheme and scheme != "file":
            raise UnresolvableReference(
                f"refers to a URL ({ref}); references to URLs are not followed"
            )
        try:
            resolved = resolver.lookup(ref)
        except PointerToNowhere:
            raise UnresolvableReference(f"refers to {ref}, which does not exist") from None
        except Unresolvable as exc:
            cause = exc.__cause__.__cause__ if exc.__cause__ is not None else None
            why = f" ({cause})" if isinstance(cause, UnresolvableReference) else ""
            if isinstance(cause, FileNotFoundError | IsADirectoryError):
                why = " (no such file)"
            raise UnresolvableReference(f"refers to {ref}, which cannot be read{why}") from None
        except (ValueError, LookupError):
            raise UnresolvableReference(
                f"refers to {ref}, which is not a valid JSON pointer"
            ) from None
        return resolved.contents, resolved.resolver
