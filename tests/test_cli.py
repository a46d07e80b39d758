"""The `adaptor` command, run as a user would (in-process through click's runner)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet

from adaptor.cli import main


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name in ("POSTGRES_URI", "REDIS_URL", "ADMIN_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    return {"DATA_DIR": str(tmp_path / "data"), "ENCRYPTION_KEY": Fernet.generate_key().decode()}


@pytest.mark.parametrize(
    "args",
    [[], ["serve"], ["migrate"], ["api-keys"], ["api-keys", "create"], ["rotate-key"]],
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
    monkeypatch.setattr("adaptor.drain.DrainingServer.run", lambda *args: started.append(args))
    result = CliRunner().invoke(main, ["serve"], env={**env, "ENCRYPTION_KEY": ""})
    assert result.exit_code == 0, result.output
    assert len(started) == 1
    assert not (tmp_path / "data" / "encryption.key").exists()
