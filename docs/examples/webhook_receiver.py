"""A partner's webhook receiver for Advocacy's Standard Webhooks, with the ``standardwebhooks`` library.

What it shows (docs/partners.md, "Webhooks", explains each point):

- verify before anything else, over the raw body: ``webhook-id``, ``webhook-timestamp`` and
  ``webhook-signature`` (``v1,<base64 HMAC>``, one per secret during a rotation) checked by
  ``standardwebhooks.Webhook(secret).verify``, which also refuses timestamps more than 5 minutes
  from now; a delivery no secret verifies gets 401 (Advocacy retries it, and its log says so);
- a rotation without a failed delivery: hold the secrets you trust (``WEBHOOK_SECRETS``, comma
  separated, new first); during the overlap Advocacy signs with both, so add the new secret, deploy,
  then drop the old one whenever you like before the overlap ends;
- at least once, applied once: ``webhook-id`` is the event's id, the same on every retry, redelivery
  and replay; it is recorded with the effect in one transaction (here a SQLite file), and a repeat
  is answered 2xx without applying it again;
- answer quickly: the whole call must end within 10 s; store and return 204 (process later);
  unknown event types are accepted and skipped.

Run it (Python 3.11+, ``pip install standardwebhooks==1.1.0``)::

    WEBHOOK_SECRETS=whsec_... python webhook_receiver.py --port 8080 --db events.sqlite

and register ``https://<your host>/`` (TLS in front) with ``POST /v1/partner/webhook-endpoints``.
The file stands alone: it imports nothing from Advocacy.
"""

from __future__ import annotations

import argparse
import logging
import os
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

log = logging.getLogger("webhook_receiver")

MAX_BODY = 1024 * 1024  # Advocacy's events are a few KB; refuse anything far larger unread
HANDLED = {
    "io.advocacy.share.clicked.v1",
    "io.advocacy.conversion.recorded.v1",
    "io.advocacy.points.awarded.v1",
    "io.advocacy.member.erased.v1",
}


class Receiver:
    """Verification and once-only application, apart from HTTP (so it is easy to test)."""

    def __init__(self, secrets: Sequence[str], db_path: str) -> None:
        self.hooks = [Webhook(s) for s in secrets]
        self.db = sqlite3.connect(db_path, check_same_thread=False)
        self.lock = threading.Lock()
        with self.db:
            self.db.execute("CREATE TABLE IF NOT EXISTS applied (webhook_id TEXT PRIMARY KEY, type TEXT, body TEXT)")

    def verify(self, body: bytes, headers: Mapping[str, str]) -> dict[str, Any] | None:
        for hook in self.hooks:
            try:
                event: dict[str, Any] = hook.verify(body, dict(headers))
            except WebhookVerificationError:
                continue
            return event
        return None

    def handle(self, body: bytes, headers: Mapping[str, str]) -> int:
        """The status to answer: 401 unverified, 204 applied or already applied."""
        event = self.verify(body, headers)
        if event is None:
            return 401
        webhook_id = {k.lower(): v for k, v in headers.items()}["webhook-id"]
        with self.lock, self.db:
            seen = self.db.execute("SELECT 1 FROM applied WHERE webhook_id = ?", (webhook_id,)).fetchone()
            if seen:
                return 204  # a retry, redelivery or replay of what we applied: nothing to do
            if event.get("type") in HANDLED:
                pass  # apply the effect here, in this transaction (event["data"] holds ids, amounts, times)
            self.db.execute(
                "INSERT INTO applied (webhook_id, type, body) VALUES (?, ?, ?)",
                (webhook_id, str(event.get("type")), body.decode()),
            )
        return 204

    def applied(self) -> list[tuple[str, str]]:
        with self.lock:
            return [(r[0], r[1]) for r in self.db.execute("SELECT webhook_id, type FROM applied ORDER BY rowid")]


def make_server(receiver: Receiver, host: str, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            if length > MAX_BODY:
                self.send_response(413)
                self.end_headers()
                return
            body = self.rfile.read(length)
            self.send_response(receiver.handle(body, dict(self.headers.items())))
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            log.info(format, *args)

    return ThreadingHTTPServer((host, port), Handler)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--db", default="webhook_events.sqlite")
    args = parser.parse_args()
    secrets = [s.strip() for s in os.environ["WEBHOOK_SECRETS"].split(",") if s.strip()]
    logging.basicConfig(level=logging.INFO)
    server = make_server(Receiver(secrets, args.db), args.host, args.port)
    log.info("listening on %s:%s", args.host, args.port)
    server.serve_forever()


if __name__ == "__main__":
    main()
