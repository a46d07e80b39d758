"""URL fields, checked once at save time for what execution will need of them.

`url_problem` is the one check; `HttpUrlStr` (an absolute http(s) URL: token URLs, webhook
targets, `metadata.endpoint_url`) and `UrlStr` (any scheme, well formed: a `base_url` of a
database, file or queue integration) are the annotated types that apply it. Both refuse
credentials in the URL (`user:password@`): they belong in `auth_config`, where they are
encrypted and masked, not in a field every read shows. A user name alone is no secret: the
protocols' own schemes accept it (`postgresql://app@db:5432/shop`, the database or broker
user), http(s) URLs do not.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any
from urllib.parse import urlsplit

import idna
from pydantic import AfterValidator, WithJsonSchema

HTTP_SCHEMES = ("http", "https")

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")
_HOSTLESS_SCHEMES = frozenset({"file", "unix"})
"""Schemes whose URLs may name no host (`file:///abs/dir`)."""

HTTP_URL_PATTERN = r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s/?#@\[\]]+([/?#][^\s]*)?$"
URL_PATTERN = r"^[A-Za-z][A-Za-z0-9+.-]*://([^\s/?#@:]+@)?[^\s@]*$"


def url_problem(value: str, *, schemes: tuple[str, ...] | None = HTTP_SCHEMES) -> str | None:
    """What is wrong with `value` as an absolute URL (None when nothing is). `schemes` limits
    the scheme (None: any scheme, for non-HTTP integration types)."""
    expected = (
        "an absolute http:// or https:// URL"
        if schemes == HTTP_SCHEMES
        else f"an absolute URL ({', '.join(f'{s}://' for s in schemes)})"
        if schemes
        else "an absolute URL such as scheme://host:port/path"
    )
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in value):
        return f"must be {expected} without spaces or control characters"
    scheme, sep, rest = value.partition("://")
    if not sep or not _SCHEME.fullmatch(scheme):
        return f"must be {expected}"
    if schemes is not None and scheme.lower() not in schemes:
        return f"must be {expected}, not {scheme}://"
    authority = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    if schemes is None and "," in authority:
        # A broker list (`kafka://b1:9092,b2:9092`): each host checked on its own.
        for host in authority.split(","):
            problem = url_problem(f"{scheme}://{host}", schemes=None)
            if problem:
                return problem
        return None
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:  # "Invalid IPv6 URL", "Port out of range 0-65535", ...
        return f"is not a valid URL: {_reason(exc)}"
    if parts.password is not None or ("@" in parts.netloc and schemes is not None):
        # A non-HTTP system may be named with its user (`mysql://app@db/shop`); a password
        # never: it would be stored and shown like configuration.
        return "must not hold credentials (user:password@): put them in auth_config"
    host = parts.hostname or ""
    if not host:
        if scheme.lower() in _HOSTLESS_SCHEMES and parts.netloc == "":
            return None if parts.path.startswith("/") else f"must name a path ({scheme}:///dir)"
        return f"must name a host ({scheme}://host/...)"
    if parts.netloc.endswith(":") or (port is None and ":" in parts.netloc.rsplit("]", 1)[-1]):
        return "has an empty or non-numeric port"
    if port == 0:
        return "has port 0; a port is 1-65535"
    if parts.netloc.startswith("["):
        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            return f"has an invalid IPv6 address [{host}]"
        return None
    try:
        # IDNA 2008 with UTS #46 mapping, as yarl encodes the host when the call is made.
        ascii_host = host if host.isascii() else idna.encode(host, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        return f"has an invalid host name {host!r}"
    labels = ascii_host.removesuffix(".").split(".")
    if not all(_LABEL.fullmatch(label) for label in labels) or len(ascii_host) > 253:
        return f"has an invalid host name {host!r}"
    return None


def _reason(exc: ValueError) -> str:
    text = str(exc)
    if "Port" in text or "port" in text:
        return "the port must be a number from 1 to 65535"
    if "IPv6" in text:
        return "an IPv6 address must be one bracketed literal, e.g. http://[::1]:8080"
    return text


def _http_url(value: str) -> str:
    problem = url_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _any_url(value: str) -> str:
    problem = url_problem(value, schemes=None)
    if problem:
        raise ValueError(problem)
    return value


def _schema(pattern: str, description: str) -> dict[str, Any]:
    # `iri`, not `uri`: a host or path may hold non-ASCII characters (encoded when called).
    return {
        "type": "string",
        "format": "iri",
        "pattern": pattern,
        "maxLength": 2048,
        "description": description,
    }


HttpUrlStr = Annotated[
    str,
    AfterValidator(_http_url),
    WithJsonSchema(_schema(HTTP_URL_PATTERN, "An absolute http(s) URL, without credentials.")),
]
"""An absolute http:// or https:// URL with a valid host and port and no userinfo."""

UrlStr = Annotated[
    str,
    AfterValidator(_any_url),
    WithJsonSchema(
        _schema(
            URL_PATTERN,
            "An absolute URL (scheme://host:port/path); at most a user name before the host.",
        )
    ),
]
"""An absolute URL of any scheme, well formed; a user name is allowed (a database's), a
password never."""
