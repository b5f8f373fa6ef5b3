"""The dev stack's SMTP server keeps what it receives, and `advocacy mail` lists and prints it."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from pathlib import Path

from typer.testing import CliRunner

from advocacy_dev.cli import app
from advocacy_dev.devstack.mail import MailServer
from advocacy_dev.devstack.net import free_port


def test_the_dev_smtp_server_keeps_mail_and_the_cli_shows_it(tmp_path: Path) -> None:
    port = free_port()
    server = MailServer(tmp_path / "mail", port)
    server.start()
    try:
        for i in (1, 2):
            m = EmailMessage()
            m["From"], m["To"], m["Subject"] = "advocacy@example.com", f"p{i}@example.com", f"Digest {i}"
            m.set_content(f"text part {i}")
            m.add_alternative(f"<p>html part {i}</p>", subtype="html")
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
                smtp.send_message(m)
    finally:
        server.stop()
    runner = CliRunner()
    listed = runner.invoke(app, ["mail", "--data-dir", str(tmp_path)])
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert len(lines) == 2 and "p1@example.com" in lines[0] and "Digest 2" in lines[1]
    shown = runner.invoke(app, ["mail", "2", "--data-dir", str(tmp_path)])
    assert shown.exit_code == 0 and "Subject: Digest 2" in shown.output and "text part 2" in shown.output
    assert "html part" not in shown.output
    missing = runner.invoke(app, ["mail", "3", "--data-dir", str(tmp_path)])
    assert missing.exit_code == 1
