"""`python -m bench.imports [FOLDER]`: size, time and peak memory of importing each OpenAPI
document (a dry run: converted and validated, nothing stored), one fresh process per document.

FOLDER defaults to the test suite's vendor descriptions, `tests/fixtures/openapi`:
every `*.json` in it and in `full/`, and `full/sendgrid-multifile/oas_v3.json` (its `$ref`s
reach 62 sibling files, as from the CLI). Memory is the process's peak RSS during the import
minus its RSS once the service's modules are loaded.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FOLDER = ROOT / "tests" / "fixtures" / "openapi"

_CHILD = r"""
import asyncio, json, resource, sys, time
from pathlib import Path

from adaptor.imports.schemas import ImportRequest
from adaptor.imports.service import ImportService
from adaptor.integrations.service import IntegrationService
from adaptor.mapping import MappingEngine
from adaptor.security.crypto import SecretBox
from adaptor.storage.database import Database


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def run(path: Path) -> dict:
    database = Database("sqlite+aiosqlite:///:memory:")
    service = ImportService(
        IntegrationService(database, SecretBox([SecretBox.generate_key()]), MappingEngine())
    )
    before = rss_mb()
    started = time.perf_counter()
    text = path.read_text(encoding="utf-8")
    request = ImportRequest(format="openapi", document=text, dry_run=True)
    outcome = await service.import_openapi("bench", request, path=path)
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    await database.close()
    return {
        "operations": outcome.operations,
        "endpoints": len(outcome.integration.endpoints),
        "seconds": round(elapsed, 2),
        "peak_rss_mb": round(peak, 1),
        "added_mb": round(peak - before, 1),
    }


print(json.dumps(asyncio.run(run(Path(sys.argv[1])))))
"""


def documents(folder: Path) -> list[Path]:
    found = sorted(folder.glob("*.json")) + sorted((folder / "full").glob("*.json"))
    multifile = folder / "full" / "sendgrid-multifile" / "oas_v3.json"
    return found + ([multifile] if multifile.exists() else [])


def size_of(path: Path) -> int:
    if path.name == "oas_v3.json":
        return sum(p.stat().st_size for p in path.parent.rglob("*.json"))
    return path.stat().st_size


def main(argv: list[str]) -> int:
    folder = Path(argv[0]) if argv else DEFAULT_FOLDER
    paths = documents(folder)
    if not paths:
        print(f"no OpenAPI documents in {folder}", file=sys.stderr)
        return 1
    print(
        f"{'document':<40} {'bytes':>11} {'ops':>5} {'endpoints':>9} {'s':>6} "
        f"{'peak MB':>8} {'+MB':>6}"
    )
    for path in paths:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True, check=False
        )
        name = str(path.relative_to(folder))
        if done.returncode != 0:
            print(f"{name:<40} failed: {done.stderr.strip().splitlines()[-1:]}")
            continue
        row = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"{name:<40} {size_of(path):>11,} {row['operations']:>5} {row['endpoints']:>9} "
            f"{row['seconds']:>6.2f} {row['peak_rss_mb']:>8.1f} {row['added_mb']:>6.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
