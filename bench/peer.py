"""The peer side by side (`--peer n8n`): what a user would often pick instead of this service.

n8n `N8N_VERSION` runs from a cache folder (`$ADAPTOR_BENCH_CACHE`, default
`~/.cache/adaptor-bench`), installed there with npm on first use: n8n 1.123.x is the last line
that runs on Node 20, and two `overrides` make it install here (`xlsx` 0.18.5 from the npm
registry, since the version n8n pins is a tarball on a host outside the registry; `isolated-vm`
5.0.4, since the 6.x that 1.123.81 asks for needs Node 22).

Each configuration is one n8n process (SQLite in its own `N8N_USER_FOLDER`, pinned to the
service core like the proxies) with two imported, activated workflows on the same nginx:

- `peer_n8n_<config>_plain`: Webhook (POST) -> HTTP Request (GET /small) -> Respond to Webhook
  (first incoming item): the hop of `execute_plain`.
- `peer_n8n_<config>_mapped`: Webhook -> HTTP Request (GET /customers) -> Code (JavaScript: the
  `balance > 0` filter, the 6-field projection, the date and the money text, the summary) ->
  Respond to Webhook: the work of `execute_mapped`, written as an n8n user would write it.

Configurations (`CONFIGURATIONS`): `shipped` is n8n as installed (its default `vm` expression
engine, every execution saved); `lean` is its cheapest honest setup (`N8N_EXPRESSION_ENGINE=
legacy`, successful executions not saved). Both run the Code node on task runners in internal
mode (n8n starts and owns the runner process; its CPU is in n8n's process tree).
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Final

from bench.procs import BenchError, ManagedProcess, child_env, find_program, free_port
from bench.scenarios import DATE_FORMAT, expected_mapped_data, expected_plain_data, expected_summary

N8N_VERSION: Final = "1.123.81"
NODE_HINT: Final = "node and npm (Node.js 20) are needed for --peer n8n"

CONFIGURATIONS: Final[dict[str, dict[str, str]]] = {
    "shipped": {},
    "lean": {
        "N8N_EXPRESSION_ENGINE": "legacy",
        "EXECUTIONS_DATA_SAVE_ON_SUCCESS": "none",
        "EXECUTIONS_DATA_SAVE_ON_PROGRESS": "false",
        "EXECUTIONS_DATA_SAVE_MANUAL_EXECUTIONS": "false",
    },
}
"""Environment of each configuration, on top of `_base_env`."""

PACKAGE_JSON: Final[dict[str, Any]] = {
    "name": "adaptor-bench-n8n",
    "private": True,
    "dependencies": {"n8n": N8N_VERSION},
    "overrides": {"xlsx": "0.18.5", "isolated-vm": "5.0.4"},
}

# The Code node of the mapped workflow: what `execute_mapped`'s mapping does, in JavaScript.
_MAPPED_CODE = """
const body = $input.first().json;
const pad = (n) => String(n).padStart(2, '0');
const date = (epoch) => {
  const d = new Date(epoch * 1000);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
};
const money = (minor, currency) => {
  const code = currency.toUpperCase();
  const format = new Intl.NumberFormat('en-US', { style: 'currency', currency: code });
  return format.format(minor / 10 ** format.resolvedOptions().maximumFractionDigits);
};
const data = body.data.filter((c) => c.balance > 0).map((c) => ({
  id: c.id, email: c.email, name: c.name, created: date(c.created),
  balance: money(c.balance, c.currency), currency: c.currency,
}));
return [{ json: { data, summary: `${data.length} customers with a balance` } }];
"""


def cache_folder() -> Path:
    base = os.environ.get("ADAPTOR_BENCH_CACHE") or str(Path.home() / ".cache" / "adaptor-bench")
    return Path(base) / f"n8n-{N8N_VERSION}"


def install() -> Path:
    """The n8n binary, installed into the cache folder with npm the first time."""
    folder = cache_folder()
    binary = folder / "node_modules" / ".bin" / "n8n"
    if binary.exists():
        return binary
    npm = find_program("npm")
    if npm is None or find_program("node") is None:
        raise BenchError(NODE_HINT)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "package.json").write_text(json.dumps(PACKAGE_JSON, indent=2) + "\n")
    print(f"installing n8n {N8N_VERSION} into {folder} (first use; several minutes)", flush=True)
    done = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 or not binary.exists():
        raise BenchError(f"npm install of n8n failed:\n{done.stderr[-2000:]}")
    return binary


def _node(name: str, kind: str, version: float, x: int, parameters: dict[str, Any]) -> Any:
    return {
        "id": str(uuid.uuid4()),
        "name": name,
        "type": f"n8n-nodes-base.{kind}",
        "typeVersion": version,
        "position": [x, 300],
        "parameters": parameters,
    }


def workflow(name: str, path: str, url: str, code: str | None) -> dict[str, Any]:
    """Webhook -> HTTP Request -> (Code) -> Respond to Webhook, as n8n exports workflows."""
    hook = _node(
        "Webhook",
        "webhook",
        2,
        0,
        {"httpMethod": "POST", "path": path, "responseMode": "responseNode", "options": {}},
    )
    hook["webhookId"] = str(uuid.uuid4())
    nodes = [
        hook,
        _node("HTTP Request", "httpRequest", 4.2, 250, {"url": url, "options": {}}),
    ]
    if code is not None:
        nodes.append(_node("Code", "code", 2, 500, {"jsCode": code}))
    nodes.append(
        _node(
            "Respond to Webhook",
            "respondToWebhook",
            1.1,
            750,
            {"respondWith": "firstIncomingItem", "options": {}},
        )
    )
    connections = {
        earlier["name"]: {"main": [[{"node": later["name"], "type": "main", "index": 0}]]}
        for earlier, later in itertools.pairwise(nodes)
    }
    return {
        "id": uuid.uuid4().hex[:16],
        "name": name,
        "active": False,
        "nodes": nodes,
        "connections": connections,
        "settings": {"executionOrder": "v1"},
    }


class N8n:
    """One n8n configuration: its folder, its two workflows, its process."""

    def __init__(self, config: str, workdir: Path, cpu: int | None, upstream: str) -> None:
        self.config = config
        self.binary = install()
        self.folder = workdir / f"n8n-{config}"
        self.folder.mkdir()
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = child_env({**_base_env(self.folder, self.port), **CONFIGURATIONS[config]})
        self.paths = {"plain": f"plain-{config}", "mapped": f"mapped-{config}"}
        flows = [
            workflow(f"bench plain {config}", self.paths["plain"], f"{upstream}/small", None),
            workflow(
                f"bench mapped {config}",
                self.paths["mapped"],
                f"{upstream}/customers",
                _MAPPED_CODE,
            ),
        ]
        for index, flow in enumerate(flows):
            file = self.folder / f"workflow-{index}.json"
            file.write_text(json.dumps(flow))
            self._cli("import:workflow", f"--input={file}")
        self._cli("update:workflow", "--all", "--active=true")
        self.process = ManagedProcess(
            f"n8n-{config}",
            [str(self.binary), "start"],
            cpu=cpu,
            log_dir=workdir,
            env=self.env,
            cwd=self.folder,
        )

    def _cli(self, *args: str) -> None:
        done = subprocess.run(
            [str(self.binary), *args],
            env=self.env,
            cwd=self.folder,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        if done.returncode != 0:
            raise BenchError(f"n8n {args[0]} failed:\n{(done.stdout + done.stderr)[-2000:]}")

    def url(self, variant: str) -> str:
        return f"{self.base_url}/webhook/{self.paths[variant]}"

    def wait_ready(self, timeout: float = 180.0) -> None:
        """Until both webhooks answer (they register a few seconds after /healthz does)."""
        deadline = time.monotonic() + timeout
        for variant in self.paths:
            while True:
                if not self.process.alive():
                    raise BenchError(f"n8n-{self.config} exited:\n{self.process.log_tail()}")
                try:
                    self.call(variant)
                    break
                except (urllib.error.URLError, OSError):
                    if time.monotonic() > deadline:
                        raise BenchError(
                            f"n8n-{self.config}: webhook {variant} not registered within "
                            f"{timeout:.0f}s:\n{self.process.log_tail()}"
                        ) from None
                    time.sleep(0.5)

    def call(self, variant: str) -> Any:
        request = urllib.request.Request(
            self.url(variant),
            data=b'{"variables": {"limit": 100}}',
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=30) as response:
            return json.loads(response.read())

    def verify(self) -> None:
        """Both workflows answer exactly what the service's scenarios answer."""
        plain = self.call("plain")
        if plain != expected_plain_data():
            raise BenchError(f"n8n-{self.config} plain answered {str(plain)[:300]}")
        mapped = self.call("mapped")
        expected = {"data": expected_mapped_data(), "summary": expected_summary()}
        if mapped != expected:
            got = mapped.get("data", [None])[:1] if isinstance(mapped, dict) else mapped
            raise BenchError(
                f"n8n-{self.config} mapped answered {str(got)[:300]}, expected "
                f"{str(expected['data'][:1])[:300]} ({DATE_FORMAT} dates, en_US money)"
            )

    def stop(self) -> None:
        self.process.stop()


def _base_env(folder: Path, port: int) -> dict[str, str]:
    return {
        "N8N_USER_FOLDER": str(folder),
        "N8N_PORT": str(port),
        "N8N_LISTEN_ADDRESS": "127.0.0.1",
        "N8N_HOST": "127.0.0.1",
        "DB_TYPE": "sqlite",
        "N8N_LOG_LEVEL": "warn",
        "N8N_DIAGNOSTICS_ENABLED": "false",
        "N8N_VERSION_NOTIFICATIONS_ENABLED": "false",
        "N8N_TEMPLATES_ENABLED": "false",
        "N8N_PERSONALIZATION_ENABLED": "false",
        "N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS": "false",
        "N8N_SECURE_COOKIE": "false",
        "N8N_RUNNERS_ENABLED": "true",
        "N8N_RUNNERS_MODE": "internal",
        "N8N_RUNNERS_BROKER_PORT": str(free_port()),
        "N8N_RUNNERS_BROKER_LISTEN_ADDRESS": "127.0.0.1",
        "NODE_ENV": "production",
    }
