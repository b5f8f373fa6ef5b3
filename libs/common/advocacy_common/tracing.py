"""OpenTelemetry tracing: off by default, on with one variable, carried through Kafka as CloudEvents.

``OTEL_EXPORTER_OTLP_ENDPOINT`` (e.g. ``http://jaeger:4318``) turns tracing on in every service: spans
go by OTLP/HTTP to ``<endpoint>/v1/traces`` in batches, a fraction ``TRACING_SAMPLE_RATIO`` (1 %) of new
traces sampled (a trace that arrives sampled or not keeps its parent's decision). Unset, nothing is
built, and the hot paths ask :data:`ON` (a module attribute) before doing any tracing work.

What is traced: HTTP requests (the FastAPI instrumentation; sharing's ``/r/`` by hand, it is
answered before FastAPI), database statements (the SQLAlchemy instrumentation, per engine), and the
event flow by hand. The W3C trace context travels as the CloudEvents distributed-tracing extension,
headers ``ce_traceparent`` and ``ce_tracestate``: it is stored with the outbox row and with the
click-journal line when the event is written (the relay and the click sender publish later, in
their own context, and pass the stored headers on). A consumer applies a batch in one span linked
to each event's context; when every event of the batch comes from one trace the batch span is
that trace's child, so a click's trace runs ``/r/`` -> verdict -> metrics and gamification.

The aiokafka instrumentation is not used: it makes a span per record sent or received (the click
sender sends thousands a second) and injects the *sender's* context as ``traceparent``, which
after an outbox is the relay's, not the event's.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanContext, SpanKind, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import TracerProvider
    from sqlalchemy.ext.asyncio import AsyncEngine

    from advocacy_common.settings import ServiceSettings

TRACEPARENT = "ce_traceparent"
TRACESTATE = "ce_tracestate"
# Not traced: probes and scrapes (every few seconds, per pod, and of no interest in a trace).
_EXCLUDED_URLS = "healthz,readyz,metrics"

_PROPAGATOR = TraceContextTextMapPropagator()

# Whether this process traces. Read on hot paths: one attribute lookup when off.
ON = False
# The fraction of new traces kept (settings.tracing_sample_ratio; 1 for an installed provider).
SAMPLE_RATIO = 1.0
# A root span with this attribute set is kept whatever the ratio: the caller sampled already
# (:func:`sampled`), before doing any tracing work (sharing's /r/ does, per request).
PRESAMPLED = "advocacy.presampled"
_provider: TracerProvider | None = None
_tracer: Tracer = trace.NoOpTracer()


def install(provider: TracerProvider, sample_ratio: float = 1.0) -> None:
    """Trace to ``provider`` from now on (tests: one with an in-memory exporter, installed before
    the apps are made; a later :func:`configure` keeps it)."""
    global ON, SAMPLE_RATIO, _provider, _tracer
    _provider = provider
    _tracer = provider.get_tracer("advocacy")
    SAMPLE_RATIO = sample_ratio
    ON = True


def uninstall() -> None:
    global ON, SAMPLE_RATIO, _provider, _tracer
    ON = False
    SAMPLE_RATIO = 1.0
    _provider = None
    _tracer = trace.NoOpTracer()


def sampled() -> bool:
    """Whether a new trace is kept (one random number): a hot path asks this first and does no
    tracing work at all for the traces it does not keep (their events carry no trace context, and
    the consumers' batches are traces of their own, sampled at the same ratio)."""
    return random.random() < SAMPLE_RATIO  # sampling, not security


def _sampler(ratio: float) -> Any:
    """Parent-based (a trace keeps its parent's decision); a new trace is kept at ``ratio``, or
    always when its root span says it was sampled already (:data:`PRESAMPLED`)."""
    from opentelemetry.sdk.trace.sampling import Decision, ParentBased, Sampler, SamplingResult, TraceIdRatioBased

    class _Presampled(Sampler):
        def __init__(self) -> None:
            self._ratio = TraceIdRatioBased(ratio)

        def should_sample(self, parent_context: Any, trace_id: int, name: str, *args: Any, **kw: Any) -> Any:
            attributes = kw.get("attributes", args[1] if len(args) > 1 else None)
            if attributes and attributes.get(PRESAMPLED):
                return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)
            return self._ratio.should_sample(parent_context, trace_id, name, *args, **kw)

        def get_description(self) -> str:
            return f"Presampled{{{self._ratio.get_description()}}}"

    return ParentBased(root=_Presampled())


def configure(settings: ServiceSettings) -> bool:
    """Turn tracing on when the settings name an OTLP endpoint (once per process: the first
    configuration, or an :func:`install`-ed provider, wins). Returns whether this process traces."""
    if ON or not settings.otel_exporter_otlp_endpoint:
        return ON
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(
        resource=Resource.create({"service.name": settings.service_name, "service.namespace": "advocacy"}),
        sampler=_sampler(settings.tracing_sample_ratio),
    )
    endpoint = settings.otel_exporter_otlp_endpoint.rstrip("/") + "/v1/traces"
    # BatchSpanProcessor: spans are queued (bounded, 2048) and exported off the event loop by its
    # thread; a full queue drops spans rather than slowing requests.
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, timeout=5)))
    install(provider, settings.tracing_sample_ratio)
    return True


def flush() -> None:
    """Export what is queued (on shutdown)."""
    if _provider is not None:
        _provider.force_flush(5000)


def tracer() -> Tracer:
    return _tracer


def new_trace() -> Context:
    """A context with no span: a span started in it begins a trace of its own."""
    return Context()


def instrument_app(app: FastAPI, service: str) -> None:
    """HTTP server spans for the app's routes (when tracing is on)."""
    if not ON or _provider is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=_provider, excluded_urls=_EXCLUDED_URLS, exclude_spans=["receive", "send"]
    )


def instrument_engine(engine: AsyncEngine) -> None:
    """A span per statement on this engine (when tracing is on)."""
    if not ON:
        return
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer

    usage = metrics.get_meter("advocacy").create_up_down_counter("db.client.connections.usage")
    EngineTracer(_tracer, engine.sync_engine, usage)  # type: ignore[no-untyped-call]


def current_headers() -> list[tuple[str, str]]:
    """The current span's context as ``ce_traceparent`` (and ``ce_tracestate``) header texts; empty
    when tracing is off or no span is current."""
    if not ON:
        return []
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    out = []
    if "traceparent" in carrier:
        out.append((TRACEPARENT, carrier["traceparent"]))
        if carrier.get("tracestate"):
            out.append((TRACESTATE, carrier["tracestate"]))
    return out


def current_texts() -> tuple[str, ...]:
    """The current span's ``traceparent`` as text (a 1-tuple), or ``()`` when no span is current:
    what the click journal keeps (cheaper than the propagator: the redirect asks per request)."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return ()
    return (f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags) & 0xFF:02x}",)


def context_of(traceparent: str | bytes | None, tracestate: str | bytes | None = None) -> SpanContext | None:
    """The remote span context a ``traceparent`` names, or None (absent or malformed)."""
    if not traceparent:
        return None
    carrier = {"traceparent": traceparent.decode("latin-1") if isinstance(traceparent, bytes) else traceparent}
    if tracestate:
        carrier["tracestate"] = tracestate.decode("latin-1") if isinstance(tracestate, bytes) else tracestate
    ctx = trace.get_current_span(_PROPAGATOR.extract(carrier)).get_span_context()
    return ctx if ctx.is_valid else None


def context_in(headers: Iterable[tuple[str, Any]] | None) -> SpanContext | None:
    """The trace context carried in a record's (or a stored row's) headers."""
    parent = state = None
    for k, v in headers or ():
        if k == TRACEPARENT:
            parent = v
        elif k == TRACESTATE:
            state = v
    return context_of(parent, state)


@contextlib.contextmanager
def linked_span(
    name: str,
    contexts: Sequence[SpanContext | None],
    *,
    kind: SpanKind = SpanKind.CONSUMER,
    attributes: dict[str, Any] | None = None,
    follow: bool = True,
) -> Iterator[None]:
    """A span over work done for many events (a consumed batch, a relay batch), linked to each
    event's context. Events all from one trace and ``follow``: the span continues that trace (a
    child of the first); otherwise a trace of its own. A no-op when tracing is off."""
    if not ON:
        yield
        return
    valid = [c for c in contexts if c is not None]
    parent = Context()  # a trace of its own, whatever is current
    if follow and valid and all(c.trace_id == valid[0].trace_id for c in valid):
        parent = trace.set_span_in_context(trace.NonRecordingSpan(valid[0]))
    links = [Link(c) for c in valid]
    with _tracer.start_as_current_span(name, context=parent, kind=kind, links=links, attributes=attributes):
        yield
