"""What a running service process holds, and the app factory every service uses.

A service is described by a :class:`ServiceDefinition` (routers, consumers, background tasks);
:func:`create_service_app` builds the FastAPI app whose lifespan creates and disposes every
resource. The role decides what runs: ``api`` serves HTTP, ``worker`` runs consumers, the outbox
relay and schedulers, ``all`` does both. Every role serves ``/healthz``, ``/readyz`` and
``/metrics``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from advocacy_common import migrations, offload, openapi, topics, tracing
from advocacy_common.bodylimit import BodyLimit
from advocacy_common.consumer import ConsumerRunner, ConsumerSpec, Handler
from advocacy_common.db import make_engine, make_sessionmaker, ping
from advocacy_common.errors import install_error_handlers
from advocacy_common.events.base import Envelope
from advocacy_common.kafka import (
    IdempotenceUnavailable,
    ensure_topics,
    make_producer,
    resolve_idempotence,
    start_with_retry,
)
from advocacy_common.observability import (
    BROKER_UP,
    KAFKA_IDEMPOTENT,
    TASK_CRASHES,
    MetricsMiddleware,
    RequestIdMiddleware,
    configure_logging,
    metrics_payload,
)
from advocacy_common.outbox import OutboxRelay
from advocacy_common.settings import ServiceSettings
from advocacy_common.supervision import CrashWindow, backoff
from advocacy_common.textguard import reject_nul_characters
from advocacy_common.topicwatch import watch_topics

log = logging.getLogger("advocacy.runtime")

Task = Callable[["Runtime", asyncio.Event], Awaitable[None]]


@dataclass(frozen=True)
class LateConsumer:
    """A consumer whose handler is built from the running process; group and topics are static
    so deployment checks (KEDA triggers) can read them."""

    group_id: str
    topics: tuple[str, ...]
    build: Callable[[Runtime], Handler]

    def spec(self, runtime: Runtime) -> ConsumerSpec:
        return ConsumerSpec(group_id=self.group_id, topics=self.topics, handler=self.build(runtime))


@dataclass
class ServiceDefinition:
    name: str
    routers: Sequence[APIRouter] = ()
    consumers: Sequence[ConsumerSpec] = ()
    # Consumers whose handler needs the running process (its producer, settings...).
    late_consumers: Sequence[LateConsumer] = ()
    # Run in worker processes (schedulers, projections...).
    worker_tasks: Sequence[Task] = ()
    # Run in API processes (e.g. the click emitter that feeds the producer).
    api_tasks: Sequence[Task] = ()
    # Called once the runtime is up, before serving (e.g. warm a cache).
    on_start: Callable[[Runtime], Awaitable[None]] | None = None
    on_stop: Callable[[Runtime], Awaitable[None]] | None = None
    # Called in a worker process that found the broker had lost its log (after the topics were
    # recreated and the outbox re-published): re-publish what else the service retains.
    on_broker_wiped: Callable[[Runtime], Awaitable[None]] | None = None
    api_needs_producer: bool = False
    # Called with every batch of events a consumer applied (after commit).
    on_applied: Callable[[Runtime, Sequence[Envelope[Any]]], None] | None = None
    title: str = ""
    description: str = ""
    # OpenAPI path items for paths answered before the app's routing (sharing's /r/{code}).
    openapi_paths: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Runtime:
    settings: ServiceSettings
    definition: ServiceDefinition
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    producer: AIOKafkaProducer | None = None
    producer_ready: bool = False
    relay: OutboxRelay | None = None
    consumers: list[ConsumerRunner] = field(default_factory=list)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    # The service's own running parts (its caches, emitters...): one object of a class of the
    # service's, set by its ``on_start`` and read through the service's typed accessor.
    parts: object | None = None
    # Background tasks that died too often (name -> why): /healthz fails while this is not empty.
    failed_tasks: dict[str, str] = field(default_factory=dict)
    _code_revisions: tuple[frozenset[str], frozenset[str]] | None = None

    @property
    def role(self) -> Any:
        return self.settings.role

    async def schema(self) -> str:
        """Where the database stands against this code's migrations (:func:`migrations.schema_state`):
        a pod whose code expects a newer schema is not Ready; one on a schema a newer release
        already migrated is (old pods keep serving during a rollout)."""
        if self._code_revisions is None:
            package = type(self.settings).__module__.partition(".")[0]
            self._code_revisions = migrations.code_revisions(package)
        heads, known = self._code_revisions
        try:
            async with self.engine.connect() as conn:
                found = await migrations.database_revisions(conn)
        except Exception:
            return "unknown"
        return migrations.schema_state(found, heads, known)

    def get_producer(self) -> AIOKafkaProducer | None:
        return self.producer if self.producer_ready else None

    def kick_outbox(self) -> None:
        if self.relay is not None:
            self.relay.kick()

    def spawn(self, start: Callable[[], Awaitable[Any]], name: str, *, restart: bool = True) -> None:
        """Run ``start()`` in the background. If it raises, it is started again after a growing pause
        (``restart``); dying ``task_crash_limit`` times within ``task_crash_window_seconds`` makes
        ``/healthz`` fail (:mod:`advocacy_common.supervision`). A task that returns is done."""
        s = self.settings
        window = CrashWindow(limit=s.task_crash_limit, seconds=s.task_crash_window_seconds)
        loop = asyncio.get_running_loop()

        async def _supervise() -> None:
            pause: float | None = None
            while not self.stop.is_set():
                began = loop.time()
                try:
                    await start()
                    return
                except asyncio.CancelledError:
                    raise
                except Exception as e:
                    log.exception("background task crashed", extra={"task": name})
                    TASK_CRASHES.labels(s.service_name, name).inc()
                    if window.died(loop.time()) and name not in self.failed_tasks:
                        self.failed_tasks[name] = f"died {window.limit} times within {window.seconds:g} s: {e}"[:300]
                        log.error(
                            "background task keeps dying: /healthz now fails",
                            extra={"task": name, "crashes": window.limit, "window_s": window.seconds},
                        )
                    if not restart:
                        return
                    pause = backoff(pause, loop.time() - began)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), pause)

        self.tasks.append(asyncio.create_task(_supervise(), name=name))

    async def _start_producer(self) -> None:
        s = self.settings
        BROKER_UP.labels(s.service_name).set(0)  # until it connects (the alert could never fire)
        idempotent = await self._producer_idempotence()
        if idempotent is None:
            return
        self.producer = make_producer(s.kafka, idempotence=idempotent)
        if await start_with_retry(self.producer, self.stop, what=f"{s.service_name} producer"):
            self.producer_ready = True
            BROKER_UP.labels(s.service_name).set(1)

    async def _producer_idempotence(self) -> bool | None:
        """KAFKA_IDEMPOTENCE resolved against the broker (retried until it answers); None when the
        producer must not start (``on`` against a broker without producer ids: /healthz fails)."""
        s = self.settings
        mode = s.kafka_idempotence
        delay = 0.2
        while not self.stop.is_set():
            try:
                idempotent = await resolve_idempotence(s.kafka, mode)
            except IdempotenceUnavailable as e:
                log.error("producer idempotence unavailable", extra={"error": str(e), "mode": str(mode)})
                self.failed_tasks["producer"] = str(e)
                KAFKA_IDEMPOTENT.labels(s.service_name, str(mode)).set(0)
                return None
            except (KafkaError, OSError, TimeoutError) as e:
                log.warning(
                    "producer: broker unreachable, retrying",
                    extra={"error": f"{type(e).__name__}: {e}", "retry_in_s": delay},
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), delay)
                delay = min(delay * 2, 5.0)
                continue
            log.info("producer started", extra={"idempotent": idempotent, "mode": str(mode)})
            KAFKA_IDEMPOTENT.labels(s.service_name, str(mode)).set(1 if idempotent else 0)
            return idempotent
        return None

    async def _ensure_topics(self) -> None:
        wanted = [*topics.ALL_TOPICS, *(topics.dead_letter(c.spec.group_id) for c in self.consumers)]
        delay = 0.5
        while not self.stop.is_set():
            try:
                await ensure_topics(self.settings.kafka, wanted, self.settings.kafka_topic_partitions)
                return
            except Exception as e:
                log.warning(
                    "creating topics failed, retrying", extra={"error": f"{type(e).__name__}: {e}", "retry_in_s": delay}
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), delay)
                delay = min(delay * 2, 5)

    async def start(self) -> None:
        s = self.settings
        d = self.definition
        needs_producer = s.role.runs_workers or d.api_needs_producer
        # the process pool for checks too heavy for the loop: started on first use, stopped below
        offload.POOL.configure(
            workers=s.offload_workers, max_pending=s.offload_max_pending, wait_seconds=s.offload_wait_seconds
        )
        if s.role.runs_workers:
            await self._ensure_topics_then_start()
        elif needs_producer:
            self.spawn(self._start_producer, "producer")
        if d.on_start is not None:
            await d.on_start(self)
        if s.role.serves_http:
            for t in d.api_tasks:
                self.spawn(functools.partial(t, self, self.stop), getattr(t, "__name__", "api-task"))

    async def _ensure_topics_then_start(self) -> None:
        s = self.settings
        d = self.definition
        self.relay = OutboxRelay(
            self.engine,
            self.get_producer,
            service=s.service_name,
            poll_seconds=s.outbox_poll_seconds,
            send_timeout=s.kafka_send_timeout_seconds,
            retention=timedelta(days=s.outbox_retention_days),
        )
        hook = d.on_applied
        on_applied = (lambda evs: hook(self, evs)) if hook is not None else None
        for spec in [*d.consumers, *(late.spec(self) for late in d.late_consumers)]:
            self.consumers.append(
                ConsumerRunner(
                    spec,
                    service=s.service_name,
                    bootstrap=s.kafka,
                    sessionmaker=self.sessionmaker,
                    producer=self.get_producer,
                    batch_max=s.consumer_batch_max,
                    on_applied=on_applied,
                    session_timeout_ms=s.kafka_session_timeout_ms,
                    dead_letter_partitions=s.kafka_topic_partitions,
                )
            )

        async def _worker_boot() -> None:
            await self._ensure_topics()
            await self._start_producer()
            assert self.relay is not None
            self.spawn(functools.partial(self.relay.run, self.stop), "outbox-relay")
            for c in self.consumers:
                self.spawn(functools.partial(c.run, self.stop), f"consumer-{c.spec.group_id}")
            self.spawn(functools.partial(watch_topics, self, self.stop), "topic-watch")
            for t in d.worker_tasks:
                self.spawn(functools.partial(t, self, self.stop), getattr(t, "__name__", "worker-task"))

        self.spawn(_worker_boot, "worker-boot", restart=False)

    async def shutdown(self) -> None:
        """Stop consumers (they finish and commit the batch in hand), the relay, then flush the producer."""
        self.stop.set()
        if self.definition.on_stop is not None:
            try:
                await self.definition.on_stop(self)
            except Exception:
                log.exception("on_stop failed")
        grace = self.settings.graceful_shutdown_seconds
        if self.tasks:
            _done, pending = await asyncio.wait(self.tasks, timeout=grace)
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.wait(pending, timeout=2)
        if self.producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.producer.stop(), 10)
        await offload.POOL.shutdown()
        await self.engine.dispose()
        await asyncio.to_thread(tracing.flush)

    async def readiness(self) -> tuple[bool, dict[str, str]]:
        checks: dict[str, str] = {}
        db_ok = await ping(self.engine)
        checks["database"] = "ok" if db_ok else "unreachable"
        ok = db_ok
        if db_ok:
            state = await self.schema()
            checks["schema"] = state
            ok = state in (migrations.CURRENT, migrations.AHEAD)
        if self.settings.role.runs_workers:
            broker_ok = self.producer_ready and all(c.connected for c in self.consumers)
            checks["broker"] = "ok" if broker_ok else "unreachable"
            BROKER_UP.labels(self.settings.service_name).set(1 if broker_ok else 0)
            ok = ok and broker_ok
        return ok, checks


def _health_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/healthz")
    async def healthz(request: Request) -> JSONResponse:
        """Liveness: 503 once a background task keeps dying (the orchestrator restarts the pod)."""
        runtime: Runtime | None = getattr(request.app.state, "runtime", None)
        failed = dict(runtime.failed_tasks) if runtime is not None else {}
        if failed:
            return JSONResponse({"status": "failing", "tasks": failed}, status_code=503)
        return JSONResponse({"status": "ok"})

    @router.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        runtime: Runtime = request.app.state.runtime
        ok, checks = await runtime.readiness()
        return JSONResponse({"ready": ok, "checks": checks}, status_code=200 if ok else 503)

    @router.get("/metrics")
    async def metrics() -> Response:
        body, ctype = metrics_payload()
        return Response(body, media_type=ctype)

    return router


def create_service_app(
    settings: ServiceSettings,
    definition: ServiceDefinition,
    *,
    verifier: Any | None = None,
    app_class: type[FastAPI] = FastAPI,
) -> FastAPI:
    """The FastAPI app of one service process. ``verifier`` overrides the JWKS-backed one (tests);
    ``app_class`` is a FastAPI subclass that answers some paths before the framework's layers."""
    configure_logging(settings.service_name, settings.log_level, settings.log_json)
    tracing.configure(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from advocacy_common.auth.issuers import build_verifier

        engine = make_engine(
            settings.database_url, pool_size=settings.db_pool_size, application_name=settings.service_name
        )
        tracing.instrument_engine(engine)
        runtime = Runtime(settings, definition, engine, make_sessionmaker(engine))
        app.state.runtime = runtime
        app.state.settings = settings
        # A worker serves no request: it never loads the token keys (nor joserfc: issue 19).
        app.state.verifier = verifier or (build_verifier(settings) if settings.role.serves_http else None)
        await runtime.start()
        log.info("service started", extra={"role": settings.role.value, "tracing": tracing.ON})
        try:
            yield
        finally:
            await runtime.shutdown()

    app = app_class(
        title=definition.title or f"Advocacy {settings.service_name}",
        description=definition.description,
        version="1.0.0",
        lifespan=lifespan,
        dependencies=[Depends(reject_nul_characters)],
        generate_unique_id_function=openapi.operation_id,
    )
    openapi.install(app, definition.openapi_paths)
    install_error_handlers(app)
    app.include_router(_health_router())
    if settings.role.serves_http:
        for r in definition.routers:
            app.include_router(r)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
        )
    app.add_middleware(MetricsMiddleware, service=settings.service_name)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)  # before anything reads the body
    app.add_middleware(RequestIdMiddleware)  # outermost: every answer, a 413 too, carries the id
    tracing.instrument_app(app, settings.service_name)
    return app
