"""Send a Stripe-signed event to the service's inbound webhook route, signed with the `stripe`
library the way Stripe signs deliveries (see docs/protocols.md).

    STRIPE_WEBHOOK_SECRET=whsec_... .venv/bin/python examples/webhooks/send_stripe_event.py \\
        http://127.0.0.1:8004/api/v2/webhooks/$ID [event_id]

Prints the service's answer. Sending the same event id twice shows `"duplicate": true`.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request

import stripe

url = sys.argv[1]
event_id = sys.argv[2] if len(sys.argv) > 2 else "evt_1NG8Du2eZvKYlo2CUI79vXWy"
payload = json.dumps(
    {
        "id": event_id,
        "object": "event",
        "type": "invoice.paid",
        "data": {"object": {"id": "in_1MtHbELkdIwHu7ixl4OzzPMv", "amount_paid": 4200}},
    }
)
signature = stripe.WebhookSignature.generate_signature_header(
    payload, os.environ["STRIPE_WEBHOOK_SECRET"]
)
request = urllib.request.Request(
    url,
    data=payload.encode(),
    method="POST",
    headers={"Content-Type": "application/json", "Stripe-Signature": signature},
)
try:
    with urllib.request.urlopen(request) as response:
        print(response.status, response.read().decode())
except urllib.error.HTTPError as error:
    print(error.code, error.read().decode())
