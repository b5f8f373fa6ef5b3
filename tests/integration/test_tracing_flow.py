"""One click, one trace: /r/ -> the verdict (sharing) -> metrics and gamification, through the broker.

Sharing, metrics and gamification run in this process (role ``all``, each on its own database) on a
private Tansu broker, with tracing installed to an in-memory span exporter: the click's trace
context travels as ``ce_traceparent`` in the click-journal line, the outbox rows and the records, and
every service's consumer batch span of that click carries the /r/ request's trace id. (The e2e tier
runs the services as separate processes, where an in-memory exporter cannot see their spans.)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from advocacy_common import tracing
from advocacy_common.auth.devkeys import DevKeys
from advocacy_common.migrations import upgrade
from advocacy_common.runtime import Runtime
from advocacy_dev.devstack.broker import TansuBroker
from advocacy_gamification.app import create_app as create_gamification
from advocacy_gamification.settings import GamificationSettings
from advocacy_metrics.app import create_app as create_metrics
from advocacy_metrics.settings import MetricsSettings
from tests.support.helpers import ACCEPT_LANGUAGE, consumers_joined
from tests.support.sharing import Sharing, running_sharing

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    yield exporter
    tracing.uninstall()
    provider.shutdown()


@contextlib.asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[Runtime]:
    async with app.router.lifespan_context(app):
        runtime: Runtime = app.state.runtime
        await consumers_joined(runtime, "sharing")
        yield runtime


@pytest.fixture(scope="module")
async def stack(
    spans: InMemorySpanExporter,
    pg: Any,
    private_broker: TansuBroker,
    dev_keys: DevKeys,
    mint: Callable[..., str],
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Sharing]:
    common: dict[str, Any] = {
        "kafka_bootstrap_servers": private_broker.bootstrap,
        "dev_mode": True,
        "jwt_jwks_path": str(dev_keys.jwks_path),
        "log_json": False,
        "log_level": "WARNING",
        "kafka_topic_partitions": 2,
    }
    urls = {}
    for package in ("advocacy_metrics", "advocacy_gamification"):
        urls[package] = pg.create_database(f"trace_{uuid.uuid4().hex[:10]}")
        await asyncio.to_thread(upgrade, package, urls[package])
    metrics = create_metrics(MetricsSettings(database_url=urls["advocacy_metrics"], **common))
    gamification = create_gamification(GamificationSettings(database_url=urls["advocacy_gamification"], **common))
    sharing_url = pg.create_database(f"trace_{uuid.uuid4().hex[:10]}")
    async with (
        running_sharing(
            sharing_url, private_broker.bootstrap, dev_keys.jwks_path, tmp_path_factory.mktemp("spool"), mint
        ) as sharing,
        running(metrics),
        running(gamification),
    ):
        yield sharing


def _processed(exporter: InMemorySpanExporter, group: str, trace_id: int) -> list[ReadableSpan]:
    return [
        s
        for s in exporter.get_finished_spans()
        if s.name == f"{group} process" and s.context is not None and s.context.trace_id == trace_id
    ]


async def _wait_for(
    exporter: InMemorySpanExporter, groups: tuple[str, ...], trace_id: int, timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while not all(_processed(exporter, g, trace_id) for g in groups):
        if time.monotonic() > deadline:
            seen = sorted({s.name for s in exporter.get_finished_spans() if s.name.endswith(" process")})
            pytest.fail(f"no span of trace {trace_id:032x} for each of {groups}; batch spans seen: {seen}")
        await asyncio.sleep(0.1)


async def test_one_click_is_one_trace_from_the_redirect_to_metrics_and_gamification(
    stack: Sharing, spans: InMemorySpanExporter
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    content_id = f"c-{uuid.uuid4().hex[:8]}"
    await stack.publish_content(tenant, content_id)
    share = await stack.share(tenant, "alice", content_id)
    # the share's own trace (POST /v1/shares) reaches metrics and gamification first, so the click's
    # events are not batched with it there
    post = [s for s in spans.get_finished_spans() if s.name == "POST /v1/shares"][-1]  # (after 404s)
    assert post.context is not None
    await _wait_for(spans, ("metrics", "gamification"), post.context.trace_id)

    async with stack.client(
        **{"X-Forwarded-For": "198.18.0.7", "User-Agent": CHROME, "Accept-Language": ACCEPT_LANGUAGE}
    ) as c:
        r = await c.get(f"/r/{share['code']}")
    assert r.status_code == 302
    redirect = next(s for s in spans.get_finished_spans() if s.name == "GET /r/{code}")
    assert redirect.kind is SpanKind.SERVER and redirect.parent is None
    assert redirect.context is not None
    trace_id = redirect.context.trace_id

    await _wait_for(spans, ("sharing-clicks", "metrics", "gamification"), trace_id)
    verdict = _processed(spans, "sharing-clicks", trace_id)[0]
    assert verdict.parent is not None and verdict.parent.span_id == redirect.context.span_id
    assert [link.context.span_id for link in verdict.links] == [redirect.context.span_id]
    # the verdict's statements are in the trace too (the SQLAlchemy instrumentation)
    in_trace = [s for s in spans.get_finished_spans() if s.context is not None and s.context.trace_id == trace_id]
    assert any(s.parent is not None and s.parent.span_id == verdict.context.span_id for s in in_trace)
    # the relay published the verdict later, in a trace of its own linked to the click's
    publishes = [
        s
        for s in spans.get_finished_spans()
        if s.name == "sharing outbox publish" and any(link.context.trace_id == trace_id for link in s.links)
    ]
    assert publishes and all(s.parent is None and s.context.trace_id != trace_id for s in publishes)
    assert await stack.wait_clicks(share["code"], 1) == {"counted": 1}


def test_the_trace_id_is_on_the_log_lines_written_in_a_span(
    spans: InMemorySpanExporter, capsys: pytest.CaptureFixture[str]
) -> None:
    from advocacy_common.observability import configure_logging

    configure_logging("test", "INFO", json=True)
    with tracing.tracer().start_as_current_span("work") as span:
        logging.getLogger("advocacy.test").info("inside")
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["trace_id"] == f"{span.get_span_context().trace_id:032x}"
    assert line["span_id"] == f"{span.get_span_context().span_id:016x}"
