"""The Adaptor Service benchmark: `python -m bench` (see bench/README.md).

What it answers: how much latency and CPU the service adds on top of an upstream that answers
instantly (nginx serving static JSON), compared with the smallest honest hand-written proxy
(`bench/reference.py`) doing the same hop with the same mappings.

Modules:
- `upstream`   generates the Stripe-like JSON bodies and runs nginx on a free loopback port;
- `reference`  the reference proxy (FastAPI + aiohttp + orjson, same JMESPath mappings);
- `procs`      starts pinned processes, cleans them up, reads CPU ticks and RSS from /proc;
- `loadgen`    drives wrk with a generated Lua script (fixed request count, POST bodies);
- `contract`   talks to the service only through its HTTP contract (keys, integrations);
- `scenarios`  the integration configs, request bodies and response checks;
- `report`     medians with spreads, the gates, the table and the JSON file;
- `cli`        orchestration: setup, verification, interleaved rounds, memory run.
"""
