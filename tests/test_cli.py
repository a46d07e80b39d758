"""The `adaptor` command, run as a user would (in-process through click's runner)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet

from adaptor.cli import main
from tests.prism import free_port


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name in ("POSTGRES_URI", "REDIS_URL", "ADMIN_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    return {"DATA_DIR": str(tmp_path / "data"), "ENCRYPTION_KEY": Fernet.generate_key().decode()}


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["serve"],
        ["migrate"],
        ["api-keys"],
        ["api-keys", "create"],
        ["rotate-key"],
        ["marketplace"],
        ["marketplace", "validate"],
    ],
)
def test_every_command_has_help(args: list[str]) -> None:
    result = CliRunner().invoke(main, [*args, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output


def test_key_lifecycle_from_the_shell(env: dict[str, str]) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["migrate"], env=env).exit_code == 0
    created = runner.invoke(main, ["api-keys", "create", "--tenant", "acme"], env=env)
    assert created.exit_code == 0, created.output
    key_id, plain = created.output.strip().split("\t")
    assert plain.startswith("adk_")
    listed = runner.invoke(main, ["api-keys", "list"], env=env)
    assert key_id in listed.output
    assert plain not in listed.output
    assert "active" in listed.output
    assert runner.invoke(main, ["api-keys", "revoke", key_id], env=env).exit_code == 0
    assert "revoked" in runner.invoke(main, ["api-keys", "list"], env=env).output


def test_create_needs_tenant_or_admin(env: dict[str, str]) -> None:
    result = CliRunner().invoke(main, ["api-keys", "create"], env=env)
    assert result.exit_code == 2
    assert "--tenant" in result.output


def test_revoking_an_unknown_key_fails_clearly(env: dict[str, str]) -> None:
    runner = CliRunner()
    runner.invoke(main, ["migrate"], env=env)
    result = runner.invoke(main, ["api-keys", "revoke", "nope"], env=env)
    assert result.exit_code == 1
    assert "does not exist" in result.output


def test_bad_setting_is_one_line(env: dict[str, str]) -> None:
    result = CliRunner().invoke(main, ["migrate"], env={**env, "CONNECTION_POOL_SIZE": "lots"})
    assert result.exit_code == 1
    assert result.output.strip() == "Error: CONNECTION_POOL_SIZE: expects a whole number"


def test_production_without_encryption_key_refuses(env: dict[str, str]) -> None:
    result = CliRunner().invoke(
        main, ["rotate-key"], env={**env, "ENCRYPTION_KEY": "", "ENVIRONMENT": "production"}
    )
    assert result.exit_code == 1
    assert "ENCRYPTION_KEY" in result.output


def test_serve_refuses_a_malformed_encryption_key_before_starting(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[object] = []
    monkeypatch.setattr("uvicorn.run", lambda *args, **kwargs: started.append(args))
    monkeypatch.setattr("adaptor.drain.DrainingServer.run", lambda *args: started.append(args))
    result = CliRunner().invoke(main, ["serve"], env={**env, "ENCRYPTION_KEY": "not-a-key"})
    assert result.exit_code == 1
    assert "ENCRYPTION_KEY" in result.output
    assert started == []


def test_serve_leaves_the_development_key_to_the_app(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The start-up check creates nothing, so the app's own warning can say it created the
    key file on a first start."""
    started: list[object] = []
    monkeypatch.setattr("uvicorn.run", lambda *args, **kwargs: started.append(args))
    # One worker runs the draining server itself, not uvicorn.run.
    monkeypatch.setattr("adaptor.drain.DrainingServer.run", lambda self: started.append(self))
    port = str(free_port())  # serve checks that its port is free before starting
    result = CliRunner().invoke(main, ["serve", "--port", port], env={**env, "ENCRYPTION_KEY": ""})
    assert result.exit_code == 0, result.output
    assert len(started) == 1
    assert not (tmp_path / "data" / "encryption.key").exists()


def test_marketplace_list_and_show() -> None:
    runner = CliRunner()
    listed = runner.invoke(main, ["marketplace", "list"])
    assert listed.exit_code == 0, listed.output
    rows = [line.split("\t") for line in listed.output.strip().splitlines()]
    assert len(rows) >= 20
    assert ["stripe", "payments", "rest_api", "12", "Stripe"] in rows
    shown = runner.invoke(main, ["marketplace", "show", "jira"])
    assert shown.exit_code == 0
    assert "search_issues\tGET /rest/api/3/search/jql" in shown.output
    assert "password\tAPI token (secret, required)" in shown.output
    assert runner.invoke(main, ["marketplace", "show", "nope"]).exit_code == 1


def test_marketplace_validate_accepts_a_good_file_and_locates_problems(tmp_path: Path) -> None:
    import orjson

    from adaptor.marketplace.catalog import builtin_template_files

    source = next(p for p in builtin_template_files() if p.name == "github.json")
    good = tmp_path / "github.json"
    good.write_bytes(source.read_bytes())
    runner = CliRunner()
    ok = runner.invoke(main, ["marketplace", "validate", str(good)])
    assert ok.exit_code == 0, ok.output
    assert "github is valid (6 endpoints)" in ok.output

    document = orjson.loads(source.read_bytes())
    document["template"]["endpoints"][1]["path"] = "/repos/{owner}/{repository}/issues"
    document["template"]["endpoints"][2]["method"] = "FETCH"
    document["template"]["wizard"][0]["fields"][0]["secret"] = False
    broken = tmp_path / "broken.json"
    broken.write_bytes(orjson.dumps(document))
    failed = runner.invoke(main, ["marketplace", "validate", str(broken)])
    assert failed.exit_code == 1
    assert f"{broken}: template.endpoints.2.method:" in failed.output
    not_json = tmp_path / "not.json"
    not_json.write_text("{")
    assert (
        "is not valid JSON"
        in runner.invoke(main, ["marketplace", "validate", str(not_json)]).output
    )


def test_marketplace_validate_reports_every_template_rule(tmp_path: Path) -> None:
    import orjson

    from adaptor.marketplace.catalog import builtin_template_files

    source = next(p for p in builtin_template_files() if p.name == "github.json")
    document = orjson.loads(source.read_bytes())
    document["template"]["endpoints"][1]["path"] = "/repos/{owner}/{repository}/issues"
    document["template"]["wizard"][0]["fields"][0]["secret"] = False
    broken = tmp_path / "broken.json"
    broken.write_bytes(orjson.dumps(document))
    failed = CliRunner().invoke(main, ["marketplace", "validate", str(broken)])
    assert failed.exit_code == 1
    assert "template.wizard.0.fields.0.secret: 'token' is stored as a secret" in failed.output
    assert "template.endpoints.1.path: placeholder {repository}" in failed.output
    assert "template.endpoints.1.request_mapping.path_params.repo: {repo} does not appear" in (
        failed.output
    )
    assert "3 problem(s)" in failed.output


def test_every_command_migrates_a_fresh_development_database(env: dict[str, str]) -> None:
    result = CliRunner().invoke(main, ["api-keys", "list"], env=env)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output


def test_an_unmigrated_production_database_is_one_line(env: dict[str, str]) -> None:
    result = CliRunner().invoke(
        main, ["api-keys", "list"], env={**env, "ENVIRONMENT": "production"}
    )
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: the database schema is missing or out of date: run `adaptor migrate` first"
    ]


@pytest.mark.parametrize("command", [["migrate"], ["api-keys", "list"], ["serve"]])
def test_an_unreachable_postgresql_is_one_line_without_the_password(
    env: dict[str, str], command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("uvicorn.run", lambda *args, **kwargs: pytest.fail("started"))
    uri = "postgresql://adaptor:hunter2pw@127.0.0.1:1/adaptor"
    result = CliRunner().invoke(main, command, env={**env, "POSTGRES_URI": uri})
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith(
        "Error: POSTGRES_URI: cannot reach PostgreSQL at 127.0.0.1:1/adaptor"
    )
    assert "hunter2pw" not in result.output


def test_serve_with_several_workers_needs_redis(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("uvicorn.run", lambda *args, **kwargs: pytest.fail("started"))
    result = CliRunner().invoke(main, ["serve", "--workers", "2"], env=env)
    assert result.exit_code == 1
    assert "REDIS_URL" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_serve_on_a_taken_port_fails_before_its_banner(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    monkeypatch.setattr("uvicorn.run", lambda *args, **kwargs: pytest.fail("started"))
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = CliRunner().invoke(main, ["serve", "--port", str(port)], env=env)
    assert result.exit_code == 1
    assert f"port {port} on 127.0.0.1 is already in use" in result.output
    assert "/docs" not in result.output


def test_production_refuses_a_short_admin_key(env: dict[str, str]) -> None:
    result = CliRunner().invoke(
        main, ["migrate"], env={**env, "ENVIRONMENT": "production", "ADMIN_API_KEY": "abc123"}
    )
    assert result.exit_code == 1
    assert result.output.startswith("Error: ADMIN_API_KEY: expects at least 32 characters")
    assert "abc123" not in result.output


def test_generate_key_prints_a_usable_fernet_key() -> None:
    result = CliRunner().invoke(main, ["generate-key"])
    assert result.exit_code == 0
    Fernet(result.output.strip().encode())


def test_data_dir_is_absolute_wherever_the_command_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from adaptor.config import Settings, default_data_dir

    monkeypatch.delenv("DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert Settings().data_dir == default_data_dir()
    assert default_data_dir().is_absolute()
    assert not str(default_data_dir()).startswith(str(tmp_path))
    assert Settings(DATA_DIR="rel").data_dir == tmp_path / "rel"  # type: ignore[call-arg]


def test_admin_keys_with_an_expiry_from_the_shell(env: dict[str, str]) -> None:
    runner = CliRunner()
    created = runner.invoke(
        main, ["api-keys", "create", "--admin", "--expires-at", "2099-01-31"], env=env
    )
    assert created.exit_code == 0, created.output
    key_id, plain = created.output.strip().split("\t")
    listed = runner.invoke(main, ["api-keys", "list"], env=env).output
    line = next(row for row in listed.splitlines() if row.startswith(key_id))
    assert "\tadmin\t" in line
    assert "expires 2099-01-31T00:00:00+00:00" in line
    assert plain[:10] in line
    past = runner.invoke(
        main, ["api-keys", "create", "--admin", "--expires-at", "2001-01-01"], env=env
    )
    assert past.exit_code == 2
    assert "future" in past.output


def test_revoking_says_when_replicas_refuse_the_key(env: dict[str, str]) -> None:
    runner = CliRunner()
    key_id = runner.invoke(main, ["api-keys", "create", "--tenant", "a"], env=env).output.split()[0]
    result = runner.invoke(main, ["api-keys", "revoke", key_id], env=env)
    assert result.exit_code == 0, result.output
    assert "within 2 s" in result.output


def test_migrate_names_the_database_it_migrated(env: dict[str, str]) -> None:
    result = CliRunner().invoke(main, ["migrate"], env=env)
    assert result.exit_code == 0, result.output
    database = Path(env["DATA_DIR"]) / "adaptor.db"
    assert (
        result.output.strip() == f"the database schema of the SQLite file {database} is up to date"
    )


def test_several_workers_log_json_lines_only(tmp_path: Path, redis_url: str) -> None:
    """`serve --workers 2` (with REDIS_URL): every worker's stdout line is JSON, and the
    service answers."""
    import json
    import os
    import subprocess
    import sys
    import time

    import httpx

    port = free_port()
    env = {
        **os.environ,
        "DATA_DIR": str(tmp_path / "data"),
        "REDIS_URL": redis_url,
        "ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "ADMIN_API_KEY": "adk_workers_test_admin_key_0123456789abcdef",
        "HTTP_PORT": str(port),
        "POSTGRES_URI": "",
    }
    adaptor = Path(sys.executable).parent / "adaptor"
    process = subprocess.Popen(
        [str(adaptor), "serve", "--workers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health/live").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "the service did not start"
            time.sleep(0.2)
    finally:
        process.terminate()
        out, err = process.communicate(timeout=30)
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines
    events = [json.loads(line)["event"] for line in lines]  # every line is JSON
    assert "app.started" in events
    assert "Adaptor Service on" in err
