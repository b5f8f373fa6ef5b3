"""The dev stack's mail: a real SMTP server (aiosmtpd) in the `make run` process that keeps every
message it receives in a Maildir under the data directory (``.data/mail``), so a newcomer sees the
digests without any mail account. ``advocacy mail`` lists what it kept and prints one.

The notifications service's default relay is this server (``NOTIFICATIONS_SMTP_PORT``, 8025);
production points the service at any relay by settings.
"""

from __future__ import annotations

import email
import email.policy
import mailbox
import os
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

DEFAULT_SMTP_PORT = 8025


def smtp_port() -> int:
    return int(os.environ.get("ADVOCACY_SMTP_PORT") or DEFAULT_SMTP_PORT)


class MailServer:
    """aiosmtpd's controller (its own thread and loop) storing into a Maildir."""

    def __init__(self, maildir: Path, port: int) -> None:
        self.maildir = maildir
        self.port = port
        self._controller: Any = None

    def start(self) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.handlers import Mailbox

        self.maildir.parent.mkdir(parents=True, exist_ok=True)
        self._controller = Controller(Mailbox(self.maildir), hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@dataclass(frozen=True)
class Kept:
    number: int
    key: str
    message: EmailMessage

    @property
    def when(self) -> str:
        raw = self.message.get("Date")
        try:
            return parsedate_to_datetime(str(raw)).strftime("%Y-%m-%d %H:%M") if raw else ""
        except (TypeError, ValueError):
            return str(raw)


def kept(maildir: Path) -> list[Kept]:
    """Every message the server kept, oldest first, numbered from 1."""
    if not maildir.exists():
        return []
    box = mailbox.Maildir(str(maildir), create=False)
    found: list[tuple[float, str, EmailMessage]] = []
    for key in box.iterkeys():
        delivered = box.get_message(key).get_date()  # when the server stored it
        msg = email.message_from_bytes(box.get_bytes(key), policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        found.append((delivered, key, msg))
    found.sort(key=lambda t: (t[0], t[1]))
    return [Kept(i, key, msg) for i, (_, key, msg) in enumerate(found, start=1)]


def show(message: EmailMessage) -> str:
    """A message as a reader wants it: the headers that matter, then the text part."""
    lines = [f"{h}: {message[h]}" for h in ("Date", "From", "To", "Subject", "List-Unsubscribe") if message[h]]
    body = message.get_body(preferencelist=("plain", "html"))
    lines.append("")
    lines.append(body.get_content() if body is not None else "")
    return "\n".join(lines)
