"""Errors raised by the mapping engine.

    Exception
    ├── MappingConfigError   an endpoint's mapping configuration is unusable (422 at save time)
    ├── MappingError         a document could not be mapped (request: 422, response: mapping_error)
    ├── TransformError       one transform failed on one value (collected as a warning)
    └── PathError            a malformed dot path, or a value in the way of setting one

Problems are `(loc, msg)` pairs. A `loc` is a tuple of keys and indices: relative to the endpoint
configuration for `MappingConfigError` (e.g. `("request_mapping", "body", "email")`), relative to
the mapped document for `MappingError` (e.g. `("path_params", "id")` or `("data", 3, "amount")`).
"""

from __future__ import annotations

from collections.abc import Iterable

Loc = tuple[str | int, ...]
Problem = tuple[Loc, str]


def format_loc(loc: Loc) -> str:
    """Render a loc as a dot path with list indices, e.g. `data[3].amount`."""
    out: list[str] = []
    for part in loc:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif out:
            out.append(f".{part}")
        else:
            out.append(part)
    return "".join(out)


def _summarise(problems: list[Problem], limit: int = 5) -> str:
    shown = "; ".join(f"{format_loc(loc) or '<root>'}: {msg}" for loc, msg in problems[:limit])
    if len(problems) > limit:
        shown += f"; and {len(problems) - limit} more"
    return shown


class _ProblemsError(Exception):
    """Base for errors that carry every problem found, each with its location."""

    headline = "Problems found"

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        super().__init__(f"{self.headline}: {_summarise(self.problems)}")

    def prefixed(self, prefix: Loc) -> list[Problem]:
        """The problems with `prefix` put in front of every loc."""
        return [(prefix + loc, msg) for loc, msg in self.problems]


class MappingConfigError(_ProblemsError):
    """An endpoint's mapping configuration cannot be used; `problems` names every mistake."""

    headline = "Invalid mapping configuration"


class MappingError(_ProblemsError):
    """A document could not be mapped; `problems` names every offending field."""

    headline = "Mapping failed"


class TransformError(Exception):
    """A transform could not be applied to a value (e.g. `date_format` on `"banana"`)."""


class PathError(ValueError):
    """A dot path is malformed, or an existing value of another type is in the way."""
