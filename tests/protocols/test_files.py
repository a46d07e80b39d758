"""File-system integrations through the HTTP API: a local root, and S3 on moto_server."""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import botocore.session
import pytest

from tests.protocols.data_app import create, data_service, execute, refused
from tests.protocols.data_servers import moto_s3

__all__ = ["moto_s3"]

CSV_EXPORT = "id,name,total\r\n1,Ada,12.50\r\n2,Grace,7.00\r\n"


def files_document(base_url: str, **overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "name": "Exports",
        "type": "file_system",
        "category": "storage",
        "base_url": base_url,
        "timeout_ms": 5000,
        "retry_config": {"max_retries": 0},
        "endpoints": {
            "daily_export": {
                "method": "GET",
                "path": "/exports/{day}.csv",
                "request_mapping": {"path_params": {"day": "day"}},
            },
            "read": {
                "method": "GET",
                "path": "{name}",
                "request_mapping": {"path_params": {"name": "name"}},
            },
            "read_as": {
                "method": "GET",
                "path": "{name}",
                "format": "text",
                "request_mapping": {"path_params": {"name": "name"}},
            },
            "write": {
                "method": "PUT",
                "path": "{name}",
                "request_mapping": {"path_params": {"name": "name"}, "body": {"rows": "rows"}},
            },
            "write_doc": {
                "method": "PUT",
                "path": "{name}",
                "format": "json",
                "request_mapping": {"path_params": {"name": "name"}, "body": {"doc": "doc"}},
            },
            "remove": {
                "method": "DELETE",
                "path": "{name}",
                "request_mapping": {"path_params": {"name": "name"}},
            },
            "folder": {"method": "GET", "path": "exports/"},
            "csv_files": {
                "method": "GET",
                "path": "exports/*.csv",
                "request_mapping": {"query_params": {"content": "content"}},
            },
        },
    }
    document.update(overrides)
    return document


@pytest.fixture
def root(tmp_path: Path) -> Path:
    directory = tmp_path / "root"
    (directory / "exports").mkdir(parents=True)
    (directory / "exports" / "2026-11-30.csv").write_text(CSV_EXPORT, newline="")
    (directory / "exports" / "notes.txt").write_text("hello")
    return directory


@pytest.fixture
async def service(tmp_path: Path, root: Path) -> AsyncIterator[Any]:
    async with data_service(tmp_path, file_roots=str(root), max_file_bytes=4096) as pair:
        yield pair


async def test_reads_a_csv_export_as_objects(service: Any, root: Path) -> None:
    client, tenant = service
    integration_id = await create(client, tenant, files_document(f"file://{root}"))
    result = await execute(client, tenant, integration_id, "daily_export", {"day": "2026-11-30"})
    assert result["success"] is True, result
    assert result["data"] == [
        {"id": "1", "name": "Ada", "total": "12.50"},
        {"id": "2", "name": "Grace", "total": "7.00"},
    ]
    missing = await execute(client, tenant, integration_id, "daily_export", {"day": "2026-01-01"})
    assert missing["error"]["code"] == "upstream_error"
    assert missing["metadata"]["status_code"] == 404


ROWS = [{"id": 1, "name": "Ada, Countess", "note": 'says "hi"'}, {"id": 2, "name": "Grace"}]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "out/rows.csv",
            [
                {"id": "1", "name": "Ada, Countess", "note": 'says "hi"'},
                {"id": "2", "name": "Grace", "note": ""},
            ],
        ),
        ("out/rows.json", {"rows": ROWS}),
        ("out/rows.ndjson", ROWS),
    ],
)
async def test_structured_round_trips(service: Any, root: Path, name: str, expected: Any) -> None:
    client, tenant = service
    integration_id = await create(client, tenant, files_document(f"file://{root}"))
    written = await execute(client, tenant, integration_id, "write", {"name": name, "rows": ROWS})
    assert written["success"] is True, written
    assert written["data"]["path"] == name
    read = await execute(client, tenant, integration_id, "read", {"name": name})
    assert read["data"] == expected
    assert not [p for p in (root / "out").iterdir() if p.name.startswith(".adaptor-")]


async def test_text_and_binary_round_trips(service: Any, root: Path) -> None:
    client, tenant = service
    integration_id = await create(client, tenant, files_document(f"file://{root}"))
    await execute(client, tenant, integration_id, "write", {"name": "a.txt", "rows": "héllo\n"})
    assert (root / "a.txt").read_text(encoding="utf-8") == "héllo\n"
    text = await execute(client, tenant, integration_id, "read", {"name": "a.txt"})
    assert text["data"] == "héllo\n"
    blob = bytes(range(256))
    encoded = base64.b64encode(blob).decode()
    await execute(client, tenant, integration_id, "write", {"name": "b.bin", "rows": encoded})
    assert (root / "b.bin").read_bytes() == blob
    binary = await execute(client, tenant, integration_id, "read", {"name": "b.bin"})
    assert binary["data"] == encoded
    as_text = await execute(
        client, tenant, integration_id, "read_as", {"name": "exports/notes.txt"}
    )
    assert as_text["data"] == "hello"


async def test_put_replaces_atomically_and_delete_removes(service: Any, root: Path) -> None:
    client, tenant = service
    integration_id = await create(client, tenant, files_document(f"file://{root}"))
    target = root / "doc.json"
    target.write_text('{"old": true}')
    inode = target.stat().st_ino
    await execute(
        client, tenant, integration_id, "write_doc", {"name": "doc.json", "doc": {"v": 2}}
    )
    assert target.stat().st_ino != inode  # a new file renamed over the old one
    read = await execute(client, tenant, integration_id, "read", {"name": "doc.json"})
    assert read["data"] == {"doc": {"v": 2}}
    removed = await execute(client, tenant, integration_id, "remove", {"name": "doc.json"})
    assert removed["data"] == {"path": "doc.json", "deleted": True}
    assert not target.exists()
    again = await execute(client, tenant, integration_id, "remove", {"name": "doc.json"})
    assert again["error"]["code"] == "upstream_error"


async def test_folders_and_globs_list_files(service: Any, root: Path) -> None:
    client, tenant = service
    integration_id = await create(client, tenant, files_document(f"file://{root}"))
    listing = await execute(client, tenant, integration_id, "folder")
    assert [entry["name"] for entry in listing["data"]] == [
        "exports/2026-11-30.csv",
        "exports/notes.txt",
    ]
    assert listing["data"][0]["size"] == len(CSV_EXPORT)
    assert listing["data"][0]["modified"].endswith("Z")
    globbed = await execute(client, tenant, integration_id, "csv_files", {"content": True})
    assert [entry["name"] for entry in globbed["data"]] == ["exports/2026-11-30.csv"]
    assert globbed["data"][0]["content"][0] == {"id": "1", "name": "Ada", "total": "12.50"}


@pytest.mark.parametrize(
    "name",
    ["../secret.txt", "exports/../../secret.txt", "/etc/passwd", "escape/secret.txt", "escape"],
)
async def test_paths_out_of_the_root_are_blocked(service: Any, root: Path, name: str) -> None:
    client, tenant = service
    (root.parent / "secret.txt").write_text("top secret")
    os.symlink(root.parent, root / "escape")
    integration_id = await create(client, tenant, files_document(f"file://{root}"))
    result = await execute(client, tenant, integration_id, "read", {"name": name})
    assert result["success"] is False
    assert result["error"]["code"] == "blocked_destination"
    assert str(root.parent) not in str(result)
    assert "top secret" not in str(result)
    write = await execute(client, tenant, integration_id, "write", {"name": name, "rows": "x"})
    assert write["error"]["code"] == "blocked_destination"
    assert (root.parent / "secret.txt").read_text() == "top secret"


async def test_symlinks_inside_the_root_are_followed(service: Any, root: Path) -> None:
    client, tenant = service
    os.symlink(root / "exports" / "notes.txt", root / "latest.txt")
    integration_id = await create(client, tenant, files_document(f"file://{root}"))
    result = await execute(client, tenant, integration_id, "read", {"name": "latest.txt"})
    assert result["data"] == "hello"


async def test_files_over_the_cap_are_refused_unread(service: Any, root: Path) -> None:
    client, tenant = service
    (root / "big.txt").write_bytes(b"x" * 5000)
    integration_id = await create(client, tenant, files_document(f"file://{root}"))
    result = await execute(client, tenant, integration_id, "read", {"name": "big.txt"})
    assert result["error"]["code"] == "upstream_error"
    assert "MAX_FILE_BYTES" in result["error"]["message"]


async def test_directories_outside_file_roots_are_refused_at_save(
    service: Any, root: Path, tmp_path: Path
) -> None:
    client, tenant = service
    problems = await refused(client, tenant, files_document(f"file://{tmp_path}"))
    assert "FILE_ROOTS" in problems["body.base_url"]
    traversal = files_document(
        f"file://{root}", endpoints={"up": {"method": "GET", "path": "../{x}"}}
    )
    assert "body.endpoints.up.path" in await refused(client, tenant, traversal)


async def test_without_file_roots_no_directory_is_allowed(tmp_path: Path, root: Path) -> None:
    async with data_service(tmp_path) as (client, tenant):
        problems = await refused(client, tenant, files_document(f"file://{root}"))
    assert "no FILE_ROOTS" in problems["body.base_url"]


# S3 -----------------------------------------------------------------------------------------

S3_CREDENTIALS = {"access_key_id": "AKIDEXAMPLE", "secret_access_key": "wJalr-S3-SECRET-KEY"}


@pytest.fixture
def bucket(moto_s3: str) -> Iterator[tuple[str, Any]]:
    """A bucket of its own on moto_server, with botocore's own client to check it."""
    name = f"exports-{uuid.uuid4().hex[:10]}"
    s3 = botocore.session.get_session().create_client(
        "s3",
        region_name="eu-west-1",
        endpoint_url=moto_s3,
        aws_access_key_id=S3_CREDENTIALS["access_key_id"],
        aws_secret_access_key=S3_CREDENTIALS["secret_access_key"],
    )
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_object(Bucket=name, Key="nightly/exports/2026-11-30.csv", Body=CSV_EXPORT.encode())
    s3.put_object(Bucket=name, Key="nightly/exports/notes.txt", Body=b"hello")
    s3.put_object(Bucket=name, Key="elsewhere/secret.txt", Body=b"top secret")
    try:
        yield name, s3
    finally:
        s3.close()


def s3_document(bucket: str, endpoint_url: str) -> dict[str, Any]:
    return files_document(
        f"s3://{bucket}/nightly",
        auth_config={
            "type": "custom",
            "custom_handler": "aws_sigv4",
            "credentials": S3_CREDENTIALS,
        },
        metadata={"region": "eu-west-1", "endpoint_url": endpoint_url},
    )


async def test_s3_reads_writes_lists_and_deletes(
    service: Any, bucket: tuple[str, Any], moto_s3: str
) -> None:
    client, tenant = service
    name, s3 = bucket
    integration_id = await create(client, tenant, s3_document(name, moto_s3))
    read = await client.get(f"/api/v2/integrations/{integration_id}", headers=tenant.headers)
    assert read.json()["auth_config"]["credentials"]["secret_access_key"] == "********"

    export = await execute(client, tenant, integration_id, "daily_export", {"day": "2026-11-30"})
    assert export["success"] is True, export
    assert export["data"][1] == {"id": "2", "name": "Grace", "total": "7.00"}

    written = await execute(
        client, tenant, integration_id, "write", {"name": "out/rows.ndjson", "rows": ROWS}
    )
    assert written["success"] is True, written
    stored = s3.get_object(Bucket=name, Key="nightly/out/rows.ndjson")["Body"].read()
    assert (
        stored.decode().splitlines()[0] == '{"id":1,"name":"Ada, Countess","note":"says \\"hi\\""}'
    )

    listing = await execute(client, tenant, integration_id, "folder")
    assert [entry["name"] for entry in listing["data"]] == [
        "exports/2026-11-30.csv",
        "exports/notes.txt",
    ]
    globbed = await execute(client, tenant, integration_id, "csv_files", {"content": True})
    assert [entry["name"] for entry in globbed["data"]] == ["exports/2026-11-30.csv"]
    assert globbed["data"][0]["content"][0]["name"] == "Ada"

    removed = await execute(client, tenant, integration_id, "remove", {"name": "out/rows.ndjson"})
    assert removed["data"]["deleted"] is True
    missing = await execute(client, tenant, integration_id, "read", {"name": "out/rows.ndjson"})
    assert missing["metadata"]["status_code"] == 404

    escape = await execute(
        client, tenant, integration_id, "read", {"name": "../elsewhere/secret.txt"}
    )
    assert escape["error"]["code"] == "blocked_destination"
    assert "wJalr-S3-SECRET-KEY" not in str([export, listing, escape])


async def test_s3_objects_over_the_cap_are_refused(
    service: Any, bucket: tuple[str, Any], moto_s3: str
) -> None:
    client, tenant = service
    name, s3 = bucket
    s3.put_object(Bucket=name, Key="nightly/big.bin", Body=b"x" * 5000)
    integration_id = await create(client, tenant, s3_document(name, moto_s3))
    result = await execute(client, tenant, integration_id, "read", {"name": "big.bin"})
    assert "MAX_FILE_BYTES" in result["error"]["message"]


async def test_s3_needs_its_keys_at_save(service: Any, moto_s3: str) -> None:
    client, tenant = service
    document = s3_document("bucket", moto_s3)
    document["auth_config"]["credentials"] = {"access_key_id": "AKID"}
    document["metadata"]["endpoint_url"] = "ftp://example.com"
    problems = await refused(client, tenant, document)
    assert "body.auth_config.credentials.secret_access_key" in problems
    assert "body.metadata.endpoint_url" in problems


async def test_the_debug_trace_names_the_action_and_path_not_the_content(
    service: Any, root: Path
) -> None:
    client, tenant = service
    integration_id = await create(client, tenant, files_document(f"file://{root}"))
    marker = f"content-{uuid.uuid4().hex[:8]}"

    def call_stage(result: dict[str, Any]) -> dict[str, Any]:
        stage: dict[str, Any] = next(s for s in result["metadata"]["trace"] if s["stage"] == "call")
        return stage

    written = await execute(
        client,
        tenant,
        integration_id,
        "write_doc",
        {"name": "traced.json", "doc": {"secret_note": marker}},
        options={"debug_mode": True},
    )
    assert written["success"] is True, written
    stage = call_stage(written)
    assert stage["input"]["attempts"] == [
        {"operation": "file", "action": "write", "store": "local", "path": "traced.json"}
    ]
    assert marker not in str(stage)

    missing = await execute(
        client,
        tenant,
        integration_id,
        "read",
        {"name": "absent.json"},
        options={"debug_mode": True},
    )
    assert missing["success"] is False
    [attempt] = call_stage(missing)["input"]["attempts"]
    assert attempt["operation"] == "file"
    assert attempt["action"] == "read"
    assert attempt["path"] == "absent.json"
    assert attempt["error"]
