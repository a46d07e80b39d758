"""A webhook receiver that verifies Standard Webhooks signatures with the `standardwebhooks`
library, for trying outbound webhooks by hand (see docs/protocols.md).

    WEBHOOK_SECRET=whsec_... .venv/bin/python examples/webhooks/receiver.py 8780

Prints each delivery's id and whether its signature verified; answers 204 when it did, 401
when it did not.
"""

from __future__ import annotations

import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

from standardwebhooks import Webhook, WebhookVerificationError

WEBHOOK = Webhook(os.environ["WEBHOOK_SECRET"])


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        try:
            payload = WEBHOOK.verify(body, dict(self.headers))
        except WebhookVerificationError as exc:
            print(f"{self.headers.get('webhook-id')}: REJECTED ({exc})", flush=True)
            self.send_response(401)
        else:
            print(f"{self.headers.get('webhook-id')}: verified {payload}", flush=True)
            self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8780
    print(f"listening on http://127.0.0.1:{port}/", flush=True)
    HTTPServer(("127.0.0.1", port), Handler).serve_forever()
