"""Digests rendered and handed to SMTP (issue 18): ``python -m bench notifications``.

For ``BENCH_DIGESTS`` people (default 100,000): the digest rendered from the service's templates
(five items each, text and HTML) and handed to a local SMTP server over one connection through the
service's own sender (``adapters/smtp.Relay``: ``smtplib`` in a worker thread, the message built with
the ``email`` package). The server is aiosmtpd's ``Sink`` in a process of its own (it accepts and
discards), so its work does not share this process's interpreter. Three figures: rendering alone,
handing over pre-built messages alone, and both (the target: at least 500 messages/s to the local
server). Composition (the database pass) is not in it.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from advocacy_notifications.adapters import templates
from advocacy_notifications.adapters.smtp import Outgoing, Relay
from advocacy_notifications.settings import NotificationsSettings
from bench.common import append_results

PEOPLE = int(os.environ.get("BENCH_DIGESTS") or 100_000)
TARGET_PER_S = 500
ITEMS = [
    {"title": f"Our new product line, part {i}: what it means for you", "url": f"https://example.com/news/{i}"}
    for i in range(5)
]


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _render(i: int) -> Outgoing:
    parts = templates.render(
        "digest",
        {
            "name": f"Person {i}",
            "frequency": "daily",
            "items": ITEMS,
            "unsubscribe_url": f"https://advocacy.example.com/v1/notifications/unsubscribe?token=u1.{i:032x}.sig",
        },
    )
    return Outgoing(
        message_id=f"{i:032x}",
        sender="Advocacy <advocacy@example.com>",
        recipient=f"person{i}@example.com",
        subject=parts.subject,
        text=parts.text,
        html=parts.html,
        headers={
            "List-Unsubscribe": "<https://advocacy.example.com/u>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )


async def _hand_over(settings: NotificationsSettings, messages: list[Outgoing] | None, n: int, bar: Progress) -> float:
    task = bar.add_task("rendered and handed over" if messages is None else "handed over", total=n)
    began = time.perf_counter()
    async with Relay(settings) as relay:
        for i in range(n):
            await relay.send(_render(i) if messages is None else messages[i])
            if i % 500 == 0:
                bar.update(task, completed=i)
    bar.update(task, completed=n)
    return time.perf_counter() - began


def run(people: int = PEOPLE) -> dict[str, float]:
    port = _free_port()
    sink = subprocess.Popen(
        [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}", "-c", "aiosmtpd.handlers.Sink"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        settings = NotificationsSettings(dev_mode=True, smtp_port=port, log_json=False)
        with _progress() as bar:
            task = bar.add_task("rendered", total=people)
            began, cpu0 = time.perf_counter(), time.process_time()
            messages = []
            for i in range(people):
                messages.append(_render(i))
                if i % 1000 == 0:
                    bar.update(task, completed=i)
            bar.update(task, completed=people)
            render_s = time.perf_counter() - began
            cpu1 = time.process_time()
            send_s = asyncio.run(_hand_over(settings, messages, people, bar))
            cpu2 = time.process_time()
            del messages
            both_s = asyncio.run(_hand_over(settings, None, people, bar))
            cpu3 = time.process_time()
    finally:
        sink.terminate()
        sink.wait(10)
    return {
        "render": people / render_s,
        "send": people / send_s,
        "both": people / both_s,
        "both_s": both_s,
        # this process's CPU per message: what the rate would be with a core of its own
        "render_cpu_ms": (cpu1 - cpu0) / people * 1e3,
        "send_cpu_ms": (cpu2 - cpu1) / people * 1e3,
        "both_cpu_ms": (cpu3 - cpu2) / people * 1e3,
        "load": os.getloadavg()[0],
    }


def main() -> None:
    r = run()
    verdict = "meets" if r["both"] >= TARGET_PER_S else "misses"
    rows = [
        ("render (Jinja2, both parts)", r["render"], r["render_cpu_ms"]),
        ("hand over pre-rendered (`email` build, smtplib in a thread)", r["send"], r["send_cpu_ms"]),
        (f"render and hand over ({r['both_s']:.1f} s in all)", r["both"], r["both_cpu_ms"]),
    ]
    table = "\n".join(f"| {name} | {wall:,.0f} | {cpu:.2f} ms | {1e3 / cpu:,.0f} |" for name, wall, cpu in rows)
    body = f"""
{PEOPLE:,} digests (5 items, text + HTML), one SMTP connection to aiosmtpd's Sink in another process,
through the service's sender (`adapters/smtp.Relay`):

| step | messages/s (wall) | sender CPU per message | messages/s on a core of its own |
| --- | --- | --- | --- |
{table}

Load average at the end: {r["load"]:.1f} (the wall rates share the machine with it).
Target at least {TARGET_PER_S} messages/s rendered and handed over (wall): {verdict} it.
"""
    print(body)
    append_results("Notifications: digests rendered and handed to SMTP", body)


if __name__ == "__main__":
    main()
