"""Trace context as the CloudEvents distributed-tracing extension: captured only when tracing is on,
kept by the click journal, sent by the click sender, and followed (or linked) by consumer batches."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from advocacy_common import tracing
from advocacy_common.events import new_event
from advocacy_common.events.content import ContentArchived
from advocacy_common.outbox import outbox_row
from advocacy_sharing.adapters.emitter import headers_of
from advocacy_sharing.adapters.spool import decode, encode

AT = datetime(2026, 3, 1, tzinfo=UTC)
PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
OTHER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    yield exporter
    tracing.uninstall()


def test_nothing_is_captured_when_tracing_is_off() -> None:
    assert not tracing.ON
    assert tracing.current_headers() == []
    row = outbox_row(new_event("/advocacy/content", "t1", ContentArchived(content_id="c1", archived_at=AT)))
    assert not [k for k, _ in row["headers"] if k.startswith("ce_trace")]


def test_an_event_written_in_a_span_carries_its_context(spans: InMemorySpanExporter) -> None:
    with tracing.tracer().start_as_current_span("request") as span:
        row = outbox_row(new_event("/advocacy/content", "t1", ContentArchived(content_id="c1", archived_at=AT)))
    ctx = span.get_span_context()
    assert dict(row["headers"])[tracing.TRACEPARENT].startswith(f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-")


def test_a_journal_line_keeps_the_trace_context_and_the_sender_sends_it() -> None:
    rec = decode(encode("t1", "c1", "AbCdEfGhIj", "2026-03-01T12:00:00+00:00", b"{}", [PARENT, "k=v"]).rstrip(b"\n"))
    assert rec is not None and (rec.traceparent, rec.tracestate) == (PARENT, "k=v")
    headers = dict(headers_of(rec))
    assert headers[tracing.TRACEPARENT] == PARENT.encode() and headers[tracing.TRACESTATE] == b"k=v"
    plain = decode(encode("t1", "c1", "AbCdEfGhIj", "2026-03-01T12:00:00+00:00", b"{}").rstrip(b"\n"))
    assert plain is not None and plain.traceparent is None
    assert tracing.TRACEPARENT not in dict(headers_of(plain))


def test_a_malformed_traceparent_is_no_context() -> None:
    assert tracing.context_of("00-zz-yy-01") is None
    assert tracing.context_in([("ce_traceparent", b"garbage")]) is None
    assert tracing.context_in([("ce_traceparent", PARENT.encode())]) is not None


def test_a_batch_from_one_trace_continues_it_and_links_each_event(spans: InMemorySpanExporter) -> None:
    ctx = tracing.context_of(PARENT)
    with tracing.linked_span("g process", [ctx, ctx, None]):
        pass
    (span,) = spans.get_finished_spans()
    assert span.parent is not None and span.parent.span_id == 0xB7AD6B7169203331
    assert span.context is not None and span.context.trace_id == 0x0AF7651916CD43DD8448EB211C80319C
    assert len(span.links) == 2


def test_a_batch_from_several_traces_is_a_trace_of_its_own_linked_to_each(spans: InMemorySpanExporter) -> None:
    with (
        tracing.tracer().start_as_current_span("outer"),
        tracing.linked_span("g process", [tracing.context_of(PARENT), tracing.context_of(OTHER)]),
    ):
        pass
    span = next(s for s in spans.get_finished_spans() if s.name == "g process")
    assert span.parent is None
    assert {link.context.trace_id for link in span.links} == {
        0x0AF7651916CD43DD8448EB211C80319C,
        0x4BF92F3577B34DA6A3CE929D0E0E4736,
    }


def test_a_presampled_root_is_kept_whatever_the_ratio_and_its_children_follow_it() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=tracing._sampler(0.0))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider, sample_ratio=0.0)
    try:
        assert not tracing.sampled()
        t = tracing.tracer()
        with t.start_as_current_span("dropped", context=tracing.new_trace()):
            assert int(tracing.current_texts()[0][-2:], 16) & 1 == 0  # propagated, not sampled
        with t.start_as_current_span("kept", context=tracing.new_trace(), attributes={tracing.PRESAMPLED: True}):
            (texts,) = tracing.current_texts()
            with tracing.linked_span("g process", [tracing.context_of(texts)]):
                pass
    finally:
        tracing.uninstall()
    assert sorted(s.name for s in exporter.get_finished_spans()) == ["g process", "kept"]
