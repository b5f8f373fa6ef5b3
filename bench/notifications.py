"""Digests rendered and handed to SMTP (issue 18): ``python -m bench notifications``.

For ``BENCH_DIGESTS`` people (default 100,000): the digest rendered from the service's templates
(five items each, text and HTML; every other person in German, dates and numbers through Babel) and
handed to a local SMTP server through the service's own sender (``adapters/smtp.Relay``: ``smtplib``
in a worker thread, the message written by ``smtp.build``), over ``BENCH_SESSIONS`` SMTP sessions
side by side (default 4), each taking the next message as ``features/mail.deliver_pending`` does
with ``smtp_connections``. The server is aiosmtpd's ``Sink`` in a process of its own (it accepts
and discards), so its work does not share this process's interpreter.

Figures: rendering alone and both on one session, on a sample of ``BENCH_SAMPLE`` (10,000), and the
whole run (the target: at least 500 messages/s rendered and handed over). Composition (the database
pass) is not in it.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from advocacy_common.db import make_engine, make_sessionmaker, table_of
from advocacy_common.migrations import upgrade
from advocacy_dev.devstack.net import free_port
from advocacy_dev.devstack.postgres import FAST_UNSAFE_SETTINGS, EmbeddedPostgres
from advocacy_notifications.adapters import templates
from advocacy_notifications.adapters.smtp import Outgoing, Relay
from advocacy_notifications.db import Message
from advocacy_notifications.features import mail
from advocacy_notifications.settings import NotificationsSettings
from bench.common import append_results

PEOPLE = int(os.environ.get("BENCH_DIGESTS") or 100_000)
SAMPLE = min(PEOPLE, int(os.environ.get("BENCH_SAMPLE") or 10_000))
SESSIONS = int(os.environ.get("BENCH_SESSIONS") or 4)
TARGET_PER_S = 500
PUBLISHED = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
ITEMS = [
    {
        "title": f"Our new product line, part {i}: what it means for you",
        "url": f"https://example.com/news/{i}",
        "published_at": PUBLISHED,
    }
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
            "time_zone": "Europe/Berlin",
        },
        "de" if i % 2 else "en",
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


async def _hand_over(settings: NotificationsSettings, n: int, sessions: int, bar: Progress, description: str) -> float:
    """Render and hand over ``n`` digests on ``sessions`` SMTP sessions side by side."""
    task = bar.add_task(description, total=n)
    numbers = iter(range(n))
    done = [0]

    async def session() -> None:
        async with Relay(settings) as relay:
            for i in numbers:
                await relay.send(_render(i))
                done[0] += 1
                if done[0] % 500 == 0:
                    bar.update(task, completed=done[0])

    began = time.perf_counter()
    await asyncio.gather(*(session() for _ in range(sessions)))
    bar.update(task, completed=n)
    return time.perf_counter() - began


async def _deliver_from_the_database(url: str, port: int, n: int, sessions: int) -> float:
    """``n`` rendered digests queued as pending rows, then ``features/mail.deliver_pending`` (one
    transaction per message: lock, hand over, record) on ``sessions`` SMTP sessions: messages/s."""
    engine = make_engine(url)
    sessionmaker = make_sessionmaker(engine)
    now = datetime.now(UTC)
    try:
        for start in range(0, n, 1000):
            rows = []
            for i in range(start, min(n, start + 1000)):
                m = _render(i)
                rows.append(
                    {
                        "id": f"{sessions}-{m.message_id}",
                        "tenant_id": "bench",
                        "employee_id": f"person{i}",
                        "dedupe_key": f"bench:{sessions}:{i}",
                        "category": "digest",
                        "channel": "email",
                        "recipient": m.recipient,
                        "subject": m.subject,
                        "body_text": m.text,
                        "body_html": m.html,
                        "headers": dict(m.headers),
                        "state": "pending",
                        "attempts": 0,
                        "created_at": now,
                        "next_attempt_at": now,
                    }
                )
            async with sessionmaker() as session, session.begin():
                await session.execute(sa.insert(table_of(Message)), rows)
        settings = NotificationsSettings(
            dev_mode=True, log_json=False, smtp_port=port, send_batch=n, smtp_connections=sessions
        )
        began = time.perf_counter()
        sent = await mail.deliver_pending(sessionmaker, settings, clock=lambda: now)
        took = time.perf_counter() - began
        assert sent == n, (sent, n)
        return n / took
    finally:
        await engine.dispose()


def _through_the_database(port: int, n: int, bar: Progress) -> dict[int, float]:
    """The sender as the worker runs it, against its own PostgreSQL (embedded, fsync off)."""
    out: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="advocacy-bench-") as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg", free_port(), settings=FAST_UNSAFE_SETTINGS)
        pg.start()
        try:
            url = pg.create_database("notifications_bench")
            upgrade("advocacy_notifications", url)
            for sessions in (1, SESSIONS):
                task = bar.add_task(f"queued and delivered by deliver_pending, {sessions} session(s)", total=n)
                out[sessions] = asyncio.run(_deliver_from_the_database(url, port, n, sessions))
                bar.update(task, completed=n)
        finally:
            pg.stop()
    return out


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
            task = bar.add_task("rendered", total=SAMPLE)
            began, cpu0 = time.perf_counter(), time.process_time()
            for i in range(SAMPLE):
                _render(i)
                if i % 1000 == 0:
                    bar.update(task, completed=i)
            bar.update(task, completed=SAMPLE)
            render_s = time.perf_counter() - began
            cpu1 = time.process_time()
            one_s = asyncio.run(_hand_over(settings, SAMPLE, 1, bar, "rendered and handed over, 1 session"))
            cpu2 = time.process_time()
            load_before = os.getloadavg()[0]
            all_s = asyncio.run(
                _hand_over(settings, people, SESSIONS, bar, f"rendered and handed over, {SESSIONS} sessions")
            )
            cpu3 = time.process_time()
            db = _through_the_database(port, SAMPLE, bar)
    finally:
        sink.terminate()
        sink.wait(10)
    return {
        "render": SAMPLE / render_s,
        "one": SAMPLE / one_s,
        "all": people / all_s,
        "all_s": all_s,
        # this process's CPU per message: what the rate would be with a core of its own
        "render_cpu_ms": (cpu1 - cpu0) / SAMPLE * 1e3,
        "one_cpu_ms": (cpu2 - cpu1) / SAMPLE * 1e3,
        "all_cpu_ms": (cpu3 - cpu2) / people * 1e3,
        "db_one": db[1],
        "db_all": db[SESSIONS],
        "load_before": load_before,
        "load": os.getloadavg()[0],
    }


def main() -> None:
    r = run()
    verdict = "meets" if r["all"] >= TARGET_PER_S else "misses"
    rows = [
        (f"render (Jinja2, both parts, en/de), {SAMPLE:,}", r["render"], r["render_cpu_ms"]),
        (f"render and hand over, 1 SMTP session, {SAMPLE:,}", r["one"], r["one_cpu_ms"]),
        (f"render and hand over, {SESSIONS} sessions, {PEOPLE:,} ({r['all_s']:.1f} s)", r["all"], r["all_cpu_ms"]),
    ]
    table = "\n".join(f"| {name} | {wall:,.0f} | {cpu:.2f} ms | {1e3 / cpu:,.0f} |" for name, wall, cpu in rows)
    table += (
        f"\n| queued in PostgreSQL, sent by `mail.deliver_pending`, 1 session, {SAMPLE:,} | {r['db_one']:,.0f} | | |"
        f"\n| the same, {SESSIONS} sessions (`smtp_connections`), {SAMPLE:,} | {r['db_all']:,.0f} | | |"
    )
    body = f"""
{PEOPLE:,} digests (5 items, text + HTML, every other one in German) rendered and handed to aiosmtpd's
Sink in another process through the service's sender (`adapters/smtp.Relay`, `smtp.build`):

| step | messages/s (wall) | sender CPU per message | messages/s on a core of its own |
| --- | --- | --- | --- |
{table}

Load average (1 min) before the {PEOPLE:,} run: {r["load_before"]:.1f}; at the end: {r["load"]:.1f}
(the wall rates share 2 cores with it). The PostgreSQL rows run on an embedded server with fsync
off (FAST_UNSAFE_SETTINGS): a production database pays a WAL flush per message's commit on top.
Target at least {TARGET_PER_S} messages/s rendered and handed over (wall, {SESSIONS} sessions): {verdict} it.
"""
    print(body)
    append_results("Notifications: digests rendered and handed to SMTP", body)


if __name__ == "__main__":
    main()
