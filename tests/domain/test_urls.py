"""The one URL check every URL field uses."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from adaptor.domain import HttpUrlStr, UrlStr, url_problem


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://", "must name a host"),
        ("https://", "must name a host"),
        ("http://:80", "must name a host"),
        ("http:///path", "must name a host"),
        ("http://exa mple.com", "without spaces"),
        ("http://[::1", "IPv6"),
        ("http://example.com:65536", "1 to 65535"),
        ("http://example.com:0", "port 0"),
        ("http://example.com:http", "1 to 65535"),
        ("https://user:pw@example.com", "credentials"),
        ("https://user@example.com", "credentials"),
        ("ftp://example.com", "not ftp://"),
        ("example.com", "absolute http"),
        ("http://exa_mple..com", "invalid host name"),
        ("http://[zz::1]/", "IPv6"),
    ],
)
def test_refused_http_urls_say_what_is_wrong(url: str, expected: str) -> None:
    problem = url_problem(url)
    assert problem is not None
    assert expected in problem


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com",
        "https://api.example.com:8443/v1/",
        "http://127.0.0.1:4010",
        "http://[::1]:8080/x?y=1#z",
        "HTTPS://Example.COM",
        "https://bücher.example/",
        "http://my_service.internal:80",
    ],
)
def test_accepted_http_urls(url: str) -> None:
    assert url_problem(url) is None
    assert TypeAdapter(HttpUrlStr).validate_python(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://db.internal:5432/app",
        "mysql://127.0.0.1:3306/app",
        "file:///srv/exports",
        "s3://bucket/prefix",
        "amqp://rabbit:5672/vhost",
        "nats://127.0.0.1:4222",
        "redis://127.0.0.1:6379/0",
        "kafka://broker:9092",
        "kafka://b1:9092,b2:9092",
        "nats://n1:4222,n2:4222/",
        "postgresql://postgres@127.0.0.1:5432/test",
        "mysql://root@127.0.0.1:3306/shop",
        "amqp://guest@rabbit:5672/vhost",
    ],
)
def test_other_schemes_pass_the_general_check(url: str) -> None:
    assert TypeAdapter(UrlStr).validate_python(url) == url
    assert url_problem(url) is not None  # but they are not http(s) URLs


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://user:pw@db:5432/app",
        "mysql://root:@db:3306/app",
        "amqp://",
        "nats://host:99999",
        "file://",
        "kafka://b1:9092,,b2:9092",
        "kafka://b1:9092,u:p@b2:9092",
    ],
)
def test_the_general_check_still_refuses_malformed_urls(url: str) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(UrlStr).validate_python(url)
