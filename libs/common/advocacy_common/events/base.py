"""The CloudEvents envelope and the typed event models.

Binary mode of the CloudEvents Kafka binding: attributes travel as ``ce_*`` headers, the record
value is the event's data alone (JSON). One model per event type, versioned in the type name.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError

SPECVERSION = "1.0"
CONTENT_TYPE = "application/json"


class InvalidEvent(Exception):
    """A record that is not a well-formed event of a known type (it goes to the dead-letter topic)."""


class EventData(BaseModel):
    """Base for every event payload. Subclasses set TYPE and TOPIC and say how they are keyed."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    TYPE: ClassVar[str] = ""
    TOPIC: ClassVar[str] = ""
    # Partner feed: whether this type is forwarded to partners (ids only; see partner docs).
    PARTNER_VISIBLE: ClassVar[bool] = False

    def partition_key(self, tenant_id: str) -> str:
        """Kafka key: keeps order where it matters. Override per type."""
        return tenant_id

    def subject(self) -> str | None:
        return None


D = TypeVar("D", bound=EventData)

REGISTRY: dict[str, type[EventData]] = {}


def register(cls: type[D]) -> type[D]:
    """Class decorator: add an event model to the registry (one model per type)."""
    if not cls.TYPE or not cls.TOPIC:
        raise TypeError(f"{cls.__name__} must set TYPE and TOPIC")
    if cls.TYPE in REGISTRY and REGISTRY[cls.TYPE] is not cls:
        raise TypeError(f"event type {cls.TYPE} registered twice")
    REGISTRY[cls.TYPE] = cls
    return cls


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Envelope(Generic[D]):
    """One event: CloudEvents attributes plus typed data."""

    source: str
    tenant_id: str
    data: D
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    time: datetime = field(default_factory=_now)
    subject: str | None = None

    @property
    def type(self) -> str:
        return self.data.TYPE

    @property
    def topic(self) -> str:
        return self.data.TOPIC

    @property
    def key(self) -> str:
        return self.data.partition_key(self.tenant_id)

    def header_texts(self) -> list[tuple[str, str]]:
        """The CloudEvents headers as text (what :meth:`headers` encodes; the outbox stores these)."""
        hs = [
            ("ce_specversion", SPECVERSION),
            ("ce_id", self.id),
            ("ce_source", self.source),
            ("ce_type", self.data.TYPE),
            ("ce_time", self.time.isoformat().replace("+00:00", "Z")),
            ("ce_tenantid", self.tenant_id),
            ("content-type", CONTENT_TYPE),
        ]
        if self.subject:
            hs.append(("ce_subject", self.subject))
        return hs

    def headers(self) -> list[tuple[str, bytes]]:
        return [(k, v.encode()) for k, v in self.header_texts()]

    def value(self) -> bytes:
        return self.data.__pydantic_serializer__.to_json(self.data)


def new_event(
    source: str, tenant_id: str, data: D, *, at: datetime | None = None, id: str | None = None
) -> Envelope[D]:
    return Envelope(
        source=source,
        tenant_id=tenant_id,
        data=data,
        id=id or str(uuid.uuid4()),
        time=at or _now(),
        subject=data.subject(),
    )


def _parse_time(raw: str) -> datetime:
    t = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=UTC)


# The attributes an Envelope is made of, and their headers (other ``ce_`` extensions are ignored).
_ATTRIBUTES = tuple((a, f"ce_{a}") for a in ("id", "source", "type", "tenantid", "time", "subject"))


def decode(headers: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...], value: bytes | None) -> Envelope[Any]:
    """Parse a Kafka record into an Envelope; raise InvalidEvent for anything malformed."""
    raw = dict(headers or ())  # the last of a repeated header wins
    try:
        attrs = {a: v.decode() for a, h in _ATTRIBUTES if (v := raw.get(h)) is not None}
    except UnicodeDecodeError as e:
        raise InvalidEvent(f"header is not UTF-8: {e}") from e
    for required in ("id", "source", "type", "tenantid"):
        if not attrs.get(required):
            raise InvalidEvent(f"missing header ce_{required}")
    model = REGISTRY.get(attrs["type"])
    if model is None:
        raise InvalidEvent(f"unknown event type {attrs['type']!r}")
    if value is None:
        raise InvalidEvent("empty record value")
    try:
        data = model.__pydantic_validator__.validate_json(value)
    except ValidationError as e:
        raise InvalidEvent(f"{attrs['type']}: {e.error_count()} invalid field(s): {e.errors()[0]['msg']}") from e
    try:
        time = _parse_time(attrs["time"]) if attrs.get("time") else _now()
    except ValueError as e:
        raise InvalidEvent(f"bad ce_time: {e}") from e
    return Envelope(
        source=attrs["source"],
        tenant_id=attrs["tenantid"],
        data=data,
        id=attrs["id"],
        time=time,
        subject=attrs.get("subject"),
    )


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)
