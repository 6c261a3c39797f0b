"""Write signed single-message webhook deliveries for wrk (bench/webhook.lua reads them).

Each body carries a unique wamid, so every request is a real insert, not a duplicate.
Usage: python bench/webhook_bodies.py OUT_FILE COUNT PHONE_NUMBER_ID APP_SECRET
"""

from __future__ import annotations

import json
import sys
import time
import uuid

sys.path.insert(0, ".")
from apps.whatsapp.signature import sign  # noqa: E402


def delivery(phone_number_id: str, n: int) -> bytes:
    wa_id = f"52155{n % 100000:05d}00"
    body = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "WABA-BENCH",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550000000",
                                "phone_number_id": phone_number_id,
                            },
                            "contacts": [{"profile": {"name": f"Bench {n}"}, "wa_id": wa_id}],
                            "messages": [
                                {
                                    "from": wa_id,
                                    "id": f"wamid.bench.{uuid.uuid4().hex}",
                                    "timestamp": str(int(time.time())),
                                    "type": "text",
                                    "text": {"body": f"hola {n}"},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }
    return json.dumps(body, separators=(",", ":")).encode()


def main() -> None:
    out, count, phone_number_id, secret = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    with open(out, "w") as fh:
        for n in range(count):
            body = delivery(phone_number_id, n)
            fh.write(sign(body, secret) + "\t" + body.decode() + "\n")


if __name__ == "__main__":
    main()
