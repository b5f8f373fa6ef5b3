"""Digests rendered, queued in PostgreSQL and handed to SMTP (issue 18): ``python -m bench notifications``.

The headline: ``BENCH_DIGESTS`` digests (default 100,000; five items each, text and HTML, every
other person in German, dates and numbers through Babel) rendered from the service's templates and
queued as pending rows in PostgreSQL, then sent the way the worker sends them: ``mail.deliver_pending``
pass after pass (``send_batch`` 1,000), ``BENCH_SESSIONS`` SMTP sessions side by side (default 4,
``smtp_connections``), each claiming groups of ``BENCH_SEND_GROUP`` (default 1, the service's:
each record committed before the session's next hand-over), handing them to the relay through
``adapters/smtp.Relay`` and recording them as sent. The target:
at least 500 messages/s claimed, handed over and recorded. The server is aiosmtpd's ``Sink`` in a
process of its own (it accepts and discards); PostgreSQL is embedded, fsync off.

Side by side on a sample of ``BENCH_SAMPLE`` (10,000): rendering alone, rendering and handing over
without the database, and the PostgreSQL path one message per transaction (1 and n sessions) and in
groups, so the groups' gain is read in one run.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
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
GROUP = int(os.environ.get("BENCH_SEND_GROUP") or 1)  # 50: the operator's groups (a wider window)
BATCH = 1000  # messages a pass (send_batch): the worker loops at once while passes come back full
TARGET_PER_S = 500
# BENCH_MODE=group1: only the sender at send_group=1, this tree's against BENCH_BEFORE's (a commit)
MODE = os.environ.get("BENCH_MODE") or "all"
BEFORE = os.environ.get("BENCH_BEFORE") or "6b6695d"
Deliver = Callable[..., Awaitable[int]]
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


def _rows(start: int, stop: int, tag: str, now: datetime) -> list[dict[str, object]]:
    """Digests ``start``..``stop`` rendered, as the pending rows ``mail.queue`` writes."""
    rows: list[dict[str, object]] = []
    for i in range(start, stop):
        m = _render(i)
        rows.append(
            {
                "id": f"{tag}-{m.message_id}",
                "tenant_id": "bench",
                "employee_id": f"person{i}",
                "dedupe_key": f"bench:{tag}:{i}",
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
    return rows


async def _through_postgres(
    url: str,
    settings: NotificationsSettings,
    n: int,
    tag: str,
    bar: Progress,
    deliver: Deliver = mail.deliver_pending,
) -> tuple[float, float]:
    """``n`` digests rendered and queued as pending rows (1,000 per INSERT), then sent the way the
    worker's loop (app.mail_sender) sends them: ``mail.deliver_pending`` pass after pass until none
    is due, each message claimed, handed to SMTP and recorded as sent. Returns (seconds rendering
    and queueing, seconds delivering); checks every row ended ``sent``."""
    engine = make_engine(url)
    sessionmaker = make_sessionmaker(engine)
    now = datetime.now(UTC)
    table = table_of(Message)
    try:
        queued = bar.add_task(f"rendered and queued in PostgreSQL ({tag})", total=n)
        began = time.perf_counter()
        for start in range(0, n, 1000):
            rows = _rows(start, min(n, start + 1000), tag, now)
            async with sessionmaker() as session, session.begin():
                await session.execute(sa.insert(table), rows)
            bar.update(queued, completed=start + len(rows))
        queue_s = time.perf_counter() - began
        delivered = bar.add_task(f"claimed, handed to SMTP, recorded as sent ({tag})", total=n)
        sent = 0
        began = time.perf_counter()
        while (got := await deliver(sessionmaker, settings, clock=lambda: now)) > 0:
            sent += got
            bar.update(delivered, completed=sent)
        deliver_s = time.perf_counter() - began
        async with sessionmaker() as session:
            left = await session.scalar(
                sa.select(sa.func.count())
                .select_from(table)
                .where(table.c.id.like(f"{tag}-%"), table.c.state != "sent")
            )
        assert sent == n and left == 0, (sent, n, left)
        return queue_s, deliver_s
    finally:
        await engine.dispose()


@contextlib.contextmanager
def _smtp_sink() -> Iterator[int]:
    """An SMTP server that accepts and drops every message: its port, stopped on exit."""
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
        yield port
    finally:
        sink.terminate()
        sink.wait(10)


@contextlib.contextmanager
def _notifications_db() -> Iterator[str]:
    """A migrated notifications database on a throw-away PostgreSQL: its URL, stopped on exit."""
    with tempfile.TemporaryDirectory(prefix="advocacy-bench-") as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg", free_port(), settings=FAST_UNSAFE_SETTINGS)
        pg.start()
        try:
            url = pg.create_database("notifications_bench")
            upgrade("advocacy_notifications", url)
            yield url
        finally:
            pg.stop()


def _sender(port: int, sessions: int, group: int) -> NotificationsSettings:
    return NotificationsSettings(
        dev_mode=True,
        log_json=False,
        smtp_port=port,
        send_batch=BATCH,
        smtp_connections=sessions,
        send_group=group,
    )


def run(people: int = PEOPLE) -> dict[str, float]:
    out: dict[str, float] = {}
    with _smtp_sink() as port, _progress() as bar:
        task = bar.add_task("rendered", total=SAMPLE)
        began, cpu0 = time.perf_counter(), time.process_time()
        for i in range(SAMPLE):
            _render(i)
            if i % 1000 == 0:
                bar.update(task, completed=i)
        bar.update(task, completed=SAMPLE)
        out["render"] = SAMPLE / (time.perf_counter() - began)
        out["render_cpu_ms"] = (time.process_time() - cpu0) / SAMPLE * 1e3
        smtp_only = NotificationsSettings(dev_mode=True, smtp_port=port, log_json=False)
        cpu0 = time.process_time()
        out["one"] = SAMPLE / asyncio.run(_hand_over(smtp_only, SAMPLE, SESSIONS, bar, "rendered and handed over"))
        out["one_cpu_ms"] = (time.process_time() - cpu0) / SAMPLE * 1e3
        with _notifications_db() as url:
            # side by side on the sample: one message per transaction (the service's
            # defaults but for the sessions), then groups
            for name, sessions, group in (
                ("db_1x1", 1, 1),
                ("db_nx1", SESSIONS, 1),
                ("db_nxg", SESSIONS, GROUP),
            ):
                q, d = asyncio.run(_through_postgres(url, _sender(port, sessions, group), SAMPLE, name, bar))
                out[name] = SAMPLE / d
            out["load_before"] = os.getloadavg()[0]
            cpu0 = time.process_time()
            q, d = asyncio.run(_through_postgres(url, _sender(port, SESSIONS, GROUP), people, "all", bar))
            out["all_cpu_ms"] = (time.process_time() - cpu0) / people * 1e3
            out["queue_s"], out["deliver_s"] = q, d
            out["all"] = people / d
            out["end_to_end"] = people / (q + d)
    out["load"] = os.getloadavg()[0]
    return out


def _mail_at(commit: str) -> Deliver:
    """``mail.deliver_pending`` as it was at ``commit`` (the same imports; loaded from git)."""
    path = "services/notifications/advocacy_notifications/features/mail.py"
    source = subprocess.run(["git", "show", f"{commit}:{path}"], check=True, capture_output=True, text=True).stdout
    spec = importlib.util.spec_from_loader(f"bench_mail_{commit}", loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    exec(compile(source, f"{commit}:{path}", "exec"), module.__dict__)
    deliver: Deliver = module.deliver_pending
    return deliver


def run_group1() -> dict[str, float]:
    """send_group=1 only (the issue's window of one message): this tree's sender against
    BENCH_BEFORE's, alternating on 1 and SESSIONS sessions, SAMPLE messages each; wall rate and
    the sender process's CPU per message (delivery alone)."""
    before = _mail_at(BEFORE)
    out: dict[str, float] = {"load_before": os.getloadavg()[0]}
    with _smtp_sink() as port, _progress() as bar, _notifications_db() as url:
        for rnd in (1, 2):
            for sessions in (1, SESSIONS):
                for name, deliver in (("before", before), ("after", mail.deliver_pending)):
                    tag = f"{name}_{sessions}_{rnd}"
                    cpu0 = time.process_time()
                    _q, d = asyncio.run(_through_postgres(url, _sender(port, sessions, 1), SAMPLE, tag, bar, deliver))
                    cpu = time.process_time() - cpu0
                    out[f"{name}_{sessions}_{rnd}"] = SAMPLE / d
                    out[f"{name}_{sessions}_{rnd}_cpu_ms"] = cpu / SAMPLE * 1e3
    out["load"] = os.getloadavg()[0]
    return out


def main_group1() -> None:
    r = run_group1()
    lines = []
    for rnd in (1, 2):
        for sessions in (1, SESSIONS):
            b, a = f"before_{sessions}_{rnd}", f"after_{sessions}_{rnd}"
            lines.append(
                f"| {rnd} | {sessions} | {r[b]:,.0f} | {r[a]:,.0f} | {r[a] / r[b]:.2f}x "
                f"| {r[b + '_cpu_ms']:.2f} | {r[a + '_cpu_ms']:.2f} |"
            )
    table = "\n".join(lines)
    body = f"""
**send_group=1 (one message per transaction), {BEFORE} against this tree**, {SAMPLE:,} digests each,
queued in PostgreSQL then claimed, handed to SMTP and recorded as sent, runs alternating:

| round | SMTP sessions | before msg/s | after msg/s | after/before | before CPU ms/msg | after CPU ms/msg |
| ---: | ---: | ---: | ---: | ---: | ---: | ---: |
{table}

CPU: the bench process's (the sender's), rendering and queueing included (about 0.3 ms of it).
Load average (1 min) at the start: {r["load_before"]:.1f}; at the end: {r["load"]:.1f}.
"""
    print(body)
    append_results("Notifications: the sender at send_group=1, before and after", body)


def main() -> None:
    if MODE == "group1":
        main_group1()
        return
    r = run()
    verdict = "meets" if r["all"] >= TARGET_PER_S else "misses"
    body = f"""
**{PEOPLE:,} digests through PostgreSQL: {r["all"]:,.0f} messages/s** claimed, handed to SMTP and
recorded as sent by the worker's sender (`mail.deliver_pending` pass after pass, {SESSIONS} SMTP
sessions, groups of {GROUP}, {BATCH:,} a pass): {r["deliver_s"]:.1f} s, after {r["queue_s"]:.1f} s rendering
and queueing them (5 items, text + HTML, every other one in German); render, queue and deliver
together {r["end_to_end"]:,.0f} messages/s. Sender process CPU {r["all_cpu_ms"]:.2f} ms per message
(render and queue included). Target at least {TARGET_PER_S} messages/s through PostgreSQL: {verdict} it.

| step ({SAMPLE:,} messages, side by side in this run) | messages/s (wall) |
| --- | ---: |
| render alone (Jinja2, both parts, en/de; {r["render_cpu_ms"]:.2f} ms CPU each) | {r["render"]:,.0f} |
| render and hand over, no database, {SESSIONS} SMTP sessions ({r["one_cpu_ms"]:.2f} ms CPU each) | {r["one"]:,.0f} |
| through PostgreSQL, 1 session, one message per transaction (`send_group=1`) | {r["db_1x1"]:,.0f} |
| through PostgreSQL, {SESSIONS} sessions, one message per transaction | {r["db_nx1"]:,.0f} |
| through PostgreSQL, {SESSIONS} sessions, groups of {GROUP} (`send_group={GROUP}`) | {r["db_nxg"]:,.0f} |

The SMTP server is aiosmtpd's Sink in a process of its own; PostgreSQL is embedded with fsync off
(FAST_UNSAFE_SETTINGS): a production database pays a WAL flush per commit, one per group here.
Load average (1 min) before the {PEOPLE:,} run: {r["load_before"]:.1f}; at the end: {r["load"]:.1f}
(the wall rates share 2 cores with it).
"""
    print(body)
    append_results("Notifications: 100,000 digests through PostgreSQL to SMTP", body)


if __name__ == "__main__":
    main()
