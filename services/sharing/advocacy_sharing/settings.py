from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from advocacy_common import action_links
from advocacy_common.settings import ServiceSettings
from advocacy_common.signing_keys import DEV_CLICK_ID_SECRET, DEV_VISITOR_SECRET, SigningKey


class SharingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SHARING_", extra="ignore")
    service_name: ClassVar[str] = "sharing"
    default_port: ClassVar[int] = 8002

    public_base_url: str = "http://127.0.0.1:8002"
    # Secret for the daily-rotating visitor key (keyed hash of IP + user agent). The dev default is
    # refused outside dev mode, as is any value under 32 bytes (advocacy_common.signing_keys).
    visitor_secret: Annotated[str, SigningKey()] = DEV_VISITOR_SECRET
    # Signs click ids (link, time, nonce) so a conversion's click id is verified without a lookup.
    click_id_secret: Annotated[str, SigningKey()] = DEV_CLICK_ID_SECRET
    # Where the redirect journals every click before answering (the durable spool; see spool.py).
    spool_dir: str = ".data/spool"
    journal_retention_days: int = 7
    journal_segment_seconds: int = 3600
    # The journal's fully sent segments are deleted, oldest first, while it holds more than this
    # (768 MiB: the Kubernetes base gives it a 1 GiB volume). Unsent clicks are never deleted.
    journal_max_bytes: int = Field(768 * 1024 * 1024, ge=16 * 1024 * 1024)
    # The verdict worker's batch (stages ``verdict_wait`` and ``verdict_batch`` of
    # docs/latency-budget.md): a caught-up worker judges what arrived during its last batch (tens of
    # clicks at 250 a second), so this only bounds a backlog's batches. Each batch costs a handful of
    # statements whatever its size; at 1,000 clicks/s on a loaded 2-core machine batches of 1,000
    # took ~620 ms (bench/RESULTS.md, 2026-12-04): larger would drain faster and answer later.
    consumer_batch_max: int = Field(1000, ge=1, le=10_000)
    # The click sender (journal -> ``advocacy.clicks.raw``; stage ``send`` of docs/latency-budget.md).
    # The redirect wakes a sleeping sender when it appends, and a busy one takes the next batch as soon
    # as the broker acknowledged the last, so a click does not wait for a timer: this is only how long
    # a sender that found nothing sleeps before it looks again (a missed wake-up costs at most this).
    click_send_idle_seconds: float = Field(0.05, gt=0, le=1.0)
    # ... and at most this many clicks per produce (one Kafka batch per partition): larger batches
    # amortise the broker round trip under load; a batch of 500 is sent in a few ms.
    click_send_batch_records: int = Field(500, ge=1, le=5000)
    # How often the journal is fsynced: what a power cut may lose (ADR 0001). Off the click's path:
    # the sender reads from the page cache, not the disk.
    journal_fsync_seconds: float = Field(1.0, gt=0, le=10.0)
    link_cache_size: int = 200_000
    # ... and at most this many bytes (64 MiB, estimated per entry: its strings + 640 bytes): 200,000
    # links of 2 KB URLs would otherwise hold 400 MB.
    link_cache_max_bytes: int = Field(64 * 1024 * 1024, ge=1024 * 1024)
    # How long another replica may serve a link from its cache before re-reading it (archive/expiry
    # events update the cache of the process that consumes them at once; see redirect.py).
    link_cache_ttl_seconds: float = 30.0
    # The redirect remembers the resolved address and network of this many recent visitors (two
    # caches of ~250 bytes an entry; docs/adr/0020 and 0029) whose address takes parsing: several
    # forwarded hops, IPv6 (~30 us a miss). One forwarded IPv4 address is read at once (~1.5 us) and
    # not remembered. A new visitor, most of them, misses whatever the size.
    redirect_address_cache_size: int = Field(16_384, ge=0, le=1_000_000)
    # Requests per visitor per link per minute before the redirect answers 429.
    rate_limit_per_minute: int = 30
    # Load shedding on /r/ (admission.py): when the event loop's lag stays above this budget while
    # the process is busy, a shrinking fraction of redirects is answered 503 with Retry-After at
    # once (nothing journaled). 0 turns shedding off.
    redirect_lag_budget_ms: float = 50.0
    # Shed only while at least this many redirects a second arrive: a process made late by its
    # neighbours (a crowded machine) or a pause, not by its own traffic, gains nothing by shedding.
    redirect_shed_min_rate: float = 200.0
    # Never admit less than this fraction of redirects while shedding.
    redirect_min_admit: float = 0.02
    # Link-cache misses (one database read each) in flight before a new miss is answered 503.
    redirect_max_link_loads: int = 64
    redirect_retry_after_seconds: int = 1
    # A trusted header carrying the visitor's country (set by the CDN in front of us).
    country_header: str = "cf-ipcountry"
    # Authenticity: warn when at least this many colleagues posted a near-identical message.
    authenticity_min_colleagues: int = 3
    authenticity_similarity: float = 0.85
    # Signed conversions: refuse timestamps further than this from now (replays).
    conversion_max_skew_seconds: int = 300
    # After a rotation the previous conversion secret keeps working this long.
    conversion_secret_grace_hours: int = 24
    # How often to check whether the broker lost its log (topics missing) to re-publish.
    broker_watch_seconds: float = 3.0
    # One-click share buttons in messages (ADR 0016): the public half (a P-256 JWK) of the key
    # notifications signs them with. Unset: the published dev pair in dev mode (refused outside it),
    # else no button works (each gets a page that explains).
    # (Marked SigningKey, unset allowed: when set, a published value is refused outside dev mode.)
    action_link_public_key: Annotated[str | None, SigningKey(generated_when_unset=True)] = Field(None, max_length=4096)
    # Where the pages behind those buttons send a person when a link did nothing (the console's board).
    board_url: str = Field("http://127.0.0.1:8010/board", max_length=2048)

    @model_validator(mode="after")
    def _action_link_key(self) -> SharingSettings:
        self.action_link_public_key = action_links.configured_key(
            self.action_link_public_key, private=False, dev_mode=self.dev_mode, env="SHARING_ACTION_LINK_PUBLIC_KEY"
        )
        return self


# The CloudEvents source of every event this service publishes.
SOURCE = SharingSettings.event_source()
