from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from advocacy_common.settings import ServiceSettings
from advocacy_common.signing_keys import SigningKey


class GamificationSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GAMIFICATION_", extra="ignore")
    service_name: ClassVar[str] = "gamification"
    default_port: ClassVar[int] = 8004

    # A backlog is drained in batches this large: the per-person rows (window totals, balances,
    # member stats, one ``points.awarded.v2`` each) move once per batch, so a larger batch moves fewer
    # rows per event (harness, 2,000 people: 5,000 -> 10,000 cut the consumer's CPU per click 18 % and
    # the database's 16 %). Memory bounds it: Python's allocator keeps an arena (1 MiB) while one
    # object in it lives, so the RSS left after a drain follows the drain's largest moment. In a
    # backlog the consumer no longer fetches ahead (consumers.py), so one batch is in hand, not two:
    # pipeline bench, 200,000 clicks, RSS after the trim 141-145 MB (5,000, fetch ahead), 123 (5,000),
    # 133-134 (7,000), 137-139 (8,000), 182-184 (10,000, fetch ahead); 7,000 drained at 19,400-23,700
    # events/s (ADR 0036, bench/RESULTS.md). With clicks as light data (no pydantic model a click),
    # 9,000: 138-140 MB, median 25,360 events/s against 23,418 at 7,000 (ADR 0036's addendum). A
    # caught-up consumer gets small batches whatever this says.
    consumer_batch_max: int = 9000

    # Tenants (comma-separated; ``*``: all) whose partners still read ``points.awarded.v1``, one
    # event per ledger entry, beside the per-batch ``points.awarded.v2`` every tenant gets. Deprecated:
    # honoured until 2027-06-30 (docs/adr/0019-points-awarded-per-batch.md). At most 10,000 characters.
    points_awarded_v1_tenants: str = Field("", max_length=10_000)

    # Key for SSE stream tickets, the same on every replica. Unset: a random key is created once
    # and kept in the database, which every replica reads. Set: outside dev mode it must be at least
    # 32 bytes and not a published value (advocacy_common.signing_keys checks the secret itself; the
    # signer only ever sees its SHA-256).
    stream_ticket_secret: Annotated[SecretStr | None, SigningKey(generated_when_unset=True)] = None
    # Key for erasure tombstones (adapters/pseudonyms.py). Unset: the random key migration 0007
    # stored in the database. Never change it once erasures were recorded: tombstones made under the
    # old key are no longer found.
    pseudonym_secret: Annotated[SecretStr | None, SigningKey(generated_when_unset=True)] = None
    # Live boards: a board's feed re-reads the board at most once per interval, so everything that
    # changed meanwhile is one read and one message per stream (0.1 s: at most 10 a second). A feed
    # reads only when told its tenant's totals moved (a consumer commit's NOTIFY), and under load
    # gamification commits 5-8 batches a second (batches of 60-140 ms), so in practice a busy board
    # is read once per commit. A change that lands just after a read waits up to this (stage
    # ``board`` of docs/latency-budget.md): at 0.25 s the stage's p99 was 281-312 ms at 250-1,000
    # clicks/s (bench/RESULTS.md, 2026-12-04 03:53), at 0.1 s 129-138 ms; a top-50 read is ~2 ms.
    stream_min_interval_seconds: float = Field(0.1, gt=0)
    stream_keepalive_seconds: float = Field(15.0, gt=0)
    # Open live boards allowed at once in one process (429 with Retry-After beyond): per person,
    # per tenant, in all, and distinct boards (window, team, size) per tenant.
    stream_max_per_user: int = Field(5, ge=1)
    stream_max_per_tenant: int = Field(500, ge=1)
    stream_max_per_process: int = Field(5000, ge=1)
    stream_max_feeds_per_tenant: int = Field(50, ge=1)
    # Challenges are finalised this long after they end (late events still count), by one worker.
    challenge_finalise_grace_seconds: float = Field(5.0, ge=0)
    challenge_scheduler_interval_seconds: float = Field(2.0, gt=0)


# The CloudEvents source of every event this service publishes.
SOURCE = GamificationSettings.event_source()
