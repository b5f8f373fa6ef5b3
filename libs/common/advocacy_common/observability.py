"""Prometheus metrics, the HTTP metrics middleware, health endpoints and JSON logs."""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from opentelemetry import trace
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from advocacy_common import tracing
from advocacy_common.unused_imports import hidden

with hidden("rich"):  # structlog's dev console tracebacks: ours are plain text (ADR 0024)
    import structlog

HTTP_REQUESTS = Counter(
    "advocacy_http_requests_total", "HTTP requests handled", ["service", "method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "advocacy_http_request_duration_seconds",
    "HTTP request latency",
    ["service", "method", "route"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
EVENTS_PUBLISHED = Counter("advocacy_events_published_total", "Events published", ["service", "topic", "type"])
EVENTS_CONSUMED = Counter(
    "advocacy_events_consumed_total",
    "Events consumed, by outcome (applied, duplicate, dead_lettered)",
    ["service", "group", "type", "outcome"],
)
CONSUMER_LAG = Gauge("advocacy_consumer_lag", "Records behind the log end", ["service", "group", "topic", "partition"])
CONSUMER_BATCH_SECONDS = Histogram(
    "advocacy_consumer_batch_seconds", "Time to apply one consumed batch", ["service", "group"]
)
OUTBOX_BACKLOG = Gauge("advocacy_outbox_backlog", "Outbox rows not yet published", ["service"])
OUTBOX_OLDEST_AGE = Gauge("advocacy_outbox_oldest_age_seconds", "Age of the oldest unpublished outbox row", ["service"])
OUTBOX_PARKED = Gauge(
    "advocacy_outbox_parked_rows", "Outbox rows parked: the broker refused them for good", ["service"]
)
OUTBOX_PARKED_TOTAL = Counter(
    "advocacy_outbox_parked_total", "Outbox rows parked, by topic and reason", ["service", "topic", "reason"]
)
TASK_CRASHES = Counter(
    "advocacy_background_task_crashes_total", "Background tasks that raised (and were restarted)", ["service", "task"]
)
HEAP_TRIMMED_AT = Gauge(
    "advocacy_heap_trimmed_at_seconds",
    "When this process last gave freed memory back to the system (a consumer caught up after a backlog)",
)
BROKER_UP = Gauge("advocacy_broker_up", "1 when this process's producer reaches the broker", ["service"])
KAFKA_IDEMPOTENT = Gauge(
    "advocacy_kafka_producer_idempotent",
    "1 when this process's producer is idempotent (KAFKA_IDEMPOTENCE=auto|on|off and what the broker grants)",
    ["service", "mode"],
)


class MetricsMiddleware:
    """Pure ASGI middleware: request count and latency per route template (not per raw path)."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def _send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, _send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            HTTP_REQUESTS.labels(self.service, method, template, str(status)).inc()
            HTTP_LATENCY.labels(self.service, method, template).observe(time.perf_counter() - start)


# A caller's X-Request-ID is kept when it looks like one (a proxy's or a client's), else one is made;
# it goes back on the response and onto every log line written while the request is handled.
REQUEST_ID_HEADER = b"x-request-id"
_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")


class RequestIdMiddleware:
    """Pure ASGI middleware: the request id, accepted or made, returned and bound to the logs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == REQUEST_ID_HEADER), None)
        rid = given if given is not None and _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex.encode()

        async def _send(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (REQUEST_ID_HEADER, rid)]}
            await send(message)

        tokens = structlog.contextvars.bind_contextvars(request_id=rid.decode())
        try:
            await self.app(scope, receive, _send)
        finally:
            structlog.contextvars.reset_contextvars(**tokens)


def metrics_payload() -> tuple[bytes, str]:
    return generate_latest(), CONTENT_TYPE_LATEST


def add_trace_ids(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    """A log line written inside a span carries its ``trace_id`` and ``span_id`` (tracing on), so a
    click's lines are found by the id its trace has in the trace viewer."""
    if tracing.ON:
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            event["trace_id"] = f"{ctx.trace_id:032x}"
            event["span_id"] = f"{ctx.span_id:016x}"
    return event


def configure_logging(service: str, level: str = "INFO", json: bool = True) -> None:
    """structlog for our code, stdlib logging (uvicorn, aiokafka, sqlalchemy) through the same renderer."""
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        add_trace_ids,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        # stdlib calls give their fields as ``extra={...}``: each becomes a JSON field
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            lambda _, __, ev: {**ev, "service": service},
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "uvicorn.access", "sqlalchemy.engine"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


ReadinessCheck = Callable[[], Awaitable[tuple[bool, str]]]
