"""The CloudEvents envelope and the typed event models.

Binary mode of the CloudEvents Kafka binding: attributes travel as ``ce_*`` headers, the record
value is the event's data alone (JSON). One model per event type, versioned in the type name.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from sys import intern
from types import NoneType, UnionType
from typing import Any, ClassVar, Generic, TypeVar, Union, get_args, get_origin

import msgspec
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
    # built like a decoded envelope (see _envelope_maker): services publish one per award, share, click
    return _make_envelope(source, tenant_id, data, id or new_event_id(), at or _now(), data.subject())


# Event ids: random (version 4) UUIDs as text, as ``str(uuid.uuid4())`` writes them, from one
# ``os.urandom`` call per _ID_BATCH ids (2.7 -> ~0.6 us an id: gamification's consumer publishes
# ~2,000 events a batch, issue 19). The pool is emptied in a forked child, which must not reuse
# its parent's ids.
_ID_BATCH = 256
_ID_POOL: list[str] = []
_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}  # the variant bits: 10xx
os.register_at_fork(after_in_child=_ID_POOL.clear)


def new_event_id() -> str:
    """A new event id: a random UUID (version 4) as text."""
    try:
        return _ID_POOL.pop()
    except IndexError:
        h = os.urandom(16 * _ID_BATCH).hex()
        v = _VARIANT
        _ID_POOL.extend(
            f"{u[:8]}-{u[8:12]}-4{u[13:16]}-{v[u[16]]}{u[17:20]}-{u[20:]}"
            for u in [h[i : i + 32] for i in range(0, 32 * _ID_BATCH, 32)]
        )
        return _ID_POOL.pop()


def _parse_time(raw: str) -> datetime:
    t = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _envelope_maker() -> Callable[[str, str, EventData, str, datetime, str | None], Envelope[Any]]:
    """A constructor for decoded envelopes that skips the frozen dataclass's ``__init__``.

    The generated ``__init__`` of a frozen dataclass sets each field through
    ``object.__setattr__``: 1.7 us per envelope, a fifth of decoding a click. Setting the slots
    through their descriptors gives the same object (equal, hashable, still frozen) in 0.6 us."""
    new = object.__new__
    set_source, set_tenant, set_data, set_id, set_time, set_subject = (
        Envelope.__dict__[f].__set__ for f in ("source", "tenant_id", "data", "id", "time", "subject")
    )

    def make(
        source: str, tenant_id: str, data: EventData, id: str, time: datetime, subject: str | None
    ) -> Envelope[Any]:
        env: Envelope[Any] = new(Envelope)
        set_source(env, source)
        set_tenant(env, tenant_id)
        set_data(env, data)
        set_id(env, id)
        set_time(env, time)
        set_subject(env, subject)
        return env

    return make


_make_envelope = _envelope_maker()

# Per frozen event model, the set of all its field names, shared by every decoded event that set
# them all (what our producers write: nulls included). Pydantic gives each instance its own
# ``__pydantic_fields_set__``: 728 bytes for a click's 15 fields, more than a third of a decoded
# envelope; a batch of 5,000 held two at a time. Sharing is safe because the models are frozen
# (nothing adds to the set in place; ``model_copy`` copies it first).
_ALL_FIELDS: dict[type[BaseModel], set[str]] = {}


def _all_fields(model: type[BaseModel]) -> set[str] | None:
    shared = _ALL_FIELDS.get(model)
    if shared is None and model.model_config.get("frozen"):
        shared = _ALL_FIELDS[model] = set(model.model_fields)
    return shared


M = TypeVar("M", bound=BaseModel)


def _assembler(model: type[M]) -> Callable[[dict[str, Any]], M]:
    """Builds a frozen ``model`` around a dict of all its fields, in the model's order, without
    validation: what ``model_construct`` sets, through the slots' descriptors (frozen models refuse
    setattr), the set of fields given shared (:data:`_ALL_FIELDS`). For values that already have the
    fields' types: the fast decoder's, and :func:`assembler`'s callers'."""
    fields_set = _all_fields(model)
    if fields_set is None:
        raise TypeError(f"{model.__name__} is not frozen")
    new = object.__new__
    set_dict, set_fields_set, set_extra, set_private = (
        BaseModel.__dict__[slot].__set__
        for slot in ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__")
    )

    def assemble(values: dict[str, Any]) -> M:
        data: M = new(model)
        set_dict(data, values)
        set_fields_set(data, fields_set)
        set_extra(data, None)
        set_private(data, None)
        return data

    return assemble


def assembler(model: type[M]) -> Callable[..., M]:
    """``model(a, b, ...)`` for a frozen model with its fields' values given positionally, every
    field, in the model's order, and already of the fields' types (no validation, no defaults, no
    conversion: 1 us where pydantic's ``__init__`` takes 3.5 for ``points.awarded.v2``; pydantic's
    ``model_construct`` takes 5.6). For events a service computes itself from typed values, in a hot
    loop; anything built from input goes through pydantic. The result is equal to the validated
    model and serialises the same (tests/unit/test_event_fast_decode.py)."""
    names = tuple(model.model_fields)
    assemble = _assembler(model)

    def make(*values: Any) -> M:
        if len(values) != len(names):
            raise TypeError(f"{model.__name__} takes {len(names)} values, got {len(values)}")
        return assemble(dict(zip(names, values, strict=True)))

    return make


# -- the payload's fast path -------------------------------------------------------------------------
# Pydantic's validation of a click's data is more than half of decoding it (3.3 of 5.9 us CPU), and
# every consumer decodes every record. For a *plain* event type (every field a str, int, bool,
# datetime or StrEnum, or one of those or None; no constraints, aliases or validators) msgspec decodes
# the payload into a dict instead, and the model is built around that dict without validation. The
# fast path only ever accepts a subset of what pydantic accepts, with the same values, and otherwise
# steps aside: a payload missing a field (defaults), a number where a string belongs, a datetime other
# than UTC RFC 3339 with whole seconds or microseconds (what our producers write; msgspec would round
# nanoseconds where pydantic truncates), anything malformed is decoded by pydantic as before, which
# accepts it or says why not (a dead letter's reason stays pydantic's).
# tests/unit/test_event_fast_decode.py holds the two paths to the same answers.
_MODEL_CONFIG = {"extra": "ignore", "frozen": True}
_VALIDATORS = ("validators", "field_validators", "root_validators", "model_validators")


def _plain(annotation: Any) -> Any:
    """The msgspec type for a field's annotation (datetimes as checked text), None if not plain."""
    if annotation is str or annotation is int or annotation is bool:
        return annotation
    if annotation is datetime:
        return str  # checked and parsed by _utc_time
    if isinstance(annotation, type) and issubclass(annotation, StrEnum):
        return annotation
    args = get_args(annotation)
    if get_origin(annotation) in (Union, UnionType) and len(args) == 2 and NoneType in args:
        inner = _plain(args[0] if args[1] is NoneType else args[1])
        return None if inner is None else inner | None
    return None


def _utc_time(text: str) -> datetime:
    """``YYYY-MM-DDTHH:MM:SSZ`` or ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` as an aware datetime; ValueError
    for anything else (the separators are checked here, the digits and ranges by ``fromisoformat``,
    which also takes shapes pydantic refuses, such as ``20260101T000000Z``)."""
    n = len(text)
    if not (
        (n == 20 or (n == 27 and text[19] == "."))
        and text[-1] == "Z"
        and text[10] == "T"
        and text[4] == "-"
        and text[7] == "-"
        and text[13] == ":"
        and text[16] == ":"
    ):
        raise ValueError(text)
    return datetime.fromisoformat(text)


def _time_fields(model: type[EventData]) -> tuple[str, ...]:
    return tuple(n for n, f in model.model_fields.items() if datetime in (f.annotation, *get_args(f.annotation)))


def _payload_decoder(model: type[EventData]) -> Callable[[bytes], EventData | None] | None:
    """The fast path for ``model`` (None when it is not plain): the model, or None to ask pydantic."""
    if dict(model.model_config) != _MODEL_CONFIG or model.__pydantic_post_init__:
        return None
    if any(getattr(model.__pydantic_decorators__, kind) for kind in _VALIDATORS):
        return None
    types: dict[str, Any] = {}
    for name, f in model.model_fields.items():
        t = _plain(f.annotation)
        if t is None or f.metadata or f.alias or f.validation_alias or f.discriminator:
            return None
        types[name] = t
    # Every field required: a payload without one (an older producer) goes to pydantic for defaults.
    # A struct, then its dict: the model's order of fields whatever the payload's (pydantic serialises
    # in the dict's order), for about the cost of decoding into a dict.
    payload = msgspec.defstruct(f"{model.__name__}Payload", list(types.items()))
    decoder = msgspec.json.Decoder(payload)
    as_dict = msgspec.structs.asdict
    times = _time_fields(model)
    assemble = _assembler(model)  # every field was given
    parse = _utc_time

    def decode_payload(value: bytes) -> EventData | None:
        try:
            values = as_dict(decoder.decode(value))
            for name in times:
                text = values[name]
                if text is not None:
                    values[name] = parse(text)
        except (msgspec.MsgspecError, ValueError):  # UnicodeDecodeError is a ValueError
            return None
        return assemble(values)

    return decode_payload


_FAST: dict[type[EventData], Callable[[bytes], EventData | None] | None] = {}


def _fast_decoder(model: type[EventData]) -> Callable[[bytes], EventData | None] | None:
    try:
        return _FAST[model]
    except KeyError:
        fast = _FAST[model] = _payload_decoder(model)
        return fast


# -- light data: a plain model's payload as a msgspec Struct twin (``ConsumerSpec.light_types``) -----------
# A consumer whose handler only reads a hot type's fields (metrics' clicks) need not have a pydantic
# model per event: the payload decoded into a frozen msgspec Struct with the model's fields, in its
# order, of its types, is read the same way, and costs less to build, read, free and collect (no
# dict, no model, not tracked by the collector): a click 5.65 -> 3.70 us over decode, the handler's
# reads, deallocation and the young collections (harness, 2026-12-04, /tmp/lead/p10/MD.md). Its
# acceptance is the fast path's (the same Struct decoder, every field required, datetimes by
# _utc_time): what it refuses goes down the fast path, then pydantic, as for any other consumer, so a
# dead letter's reason is unchanged. tests/unit/test_event_light.py holds it to the model's answers.
_TWINS: dict[type[EventData], type[msgspec.Struct]] = {}
_LIGHT: dict[type[EventData], Callable[[bytes], Any]] = {}


def _dump(data: msgspec.Struct) -> dict[str, Any]:
    """A twin's ``model_dump()``: its fields by name, in order, as the model's (enums, datetimes)."""
    return msgspec.structs.asdict(data)


def twin(model: type[EventData]) -> type[msgspec.Struct]:
    """The light twin of a plain ``model`` (TypeError if it is not plain: see :func:`_payload_decoder`):
    its fields, its ``TYPE``, ``TOPIC``, ``partition_key`` and ``subject``, ``MODEL`` (the model) and a
    ``model_dump()`` equal to the model's. Frozen and hashable, like the model; not a pydantic model."""
    t = _TWINS.get(model)
    if t is not None:
        return t
    if _fast_decoder(model) is None:
        raise TypeError(f"{model.__name__} is not a plain event type: it has no light twin")
    namespace = {
        "TYPE": model.TYPE,
        "TOPIC": model.TOPIC,
        "PARTNER_VISIBLE": model.PARTNER_VISIBLE,
        "MODEL": model,
        "partition_key": model.partition_key,
        "subject": model.subject,
        "model_dump": _dump,
    }
    fields = [(name, _plain(f.annotation)) for name, f in model.model_fields.items()]
    t = _TWINS[model] = msgspec.defstruct(
        f"{model.__name__}Light", fields, frozen=True, gc=False, namespace=namespace, module=__name__
    )
    return t


def light_decoder(model: type[EventData]) -> Callable[[bytes], Any]:
    """Decodes a payload of ``model`` into its :func:`twin`, or None where the fast path would step
    aside too (the caller then goes down that path)."""
    try:
        return _LIGHT[model]
    except KeyError:
        pass
    decoder = msgspec.json.Decoder(twin(model))
    times = _time_fields(model)
    parse = _utc_time
    set_field = msgspec.structs.force_setattr  # the datetimes arrive as checked text

    def light(value: bytes) -> Any:
        try:
            data = decoder.decode(value)
            for name in times:
                text = getattr(data, name)
                if text is not None:
                    set_field(data, name, parse(text))
        except (msgspec.MsgspecError, ValueError):  # UnicodeDecodeError is a ValueError
            return None
        return data

    _LIGHT[model] = light
    return light


def decode(
    headers: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...],
    value: bytes | None,
    light: frozenset[str] = frozenset(),
) -> Envelope[Any]:
    """Parse a Kafka record into an Envelope; raise InvalidEvent for anything malformed.

    Every consumer decodes every record here, so it is written for speed (8.5 -> ~6 us per click,
    of which ~3 us is pydantic's validation of the data, kept whole): one dict of the headers,
    the six attributes read by name, the envelope built without the dataclass ``__init__``. Other
    ``ce_`` extensions are ignored; the last of a repeated header wins. The data of a type in
    ``light`` is its :func:`twin` when the light decoder takes it, else the model as for any other."""
    get = dict(headers or ()).get
    id_b, source_b, type_b = get("ce_id"), get("ce_source"), get("ce_type")
    tenant_b, time_b, subject_b = get("ce_tenantid"), get("ce_time"), get("ce_subject")
    try:
        id_ = id_b.decode() if id_b is not None else None
        source = source_b.decode() if source_b is not None else None
        type_ = type_b.decode() if type_b is not None else None
        tenant = tenant_b.decode() if tenant_b is not None else None
        time_raw = time_b.decode() if time_b is not None else None
        subject = subject_b.decode() if subject_b is not None else None
    except UnicodeDecodeError as e:
        raise InvalidEvent(f"header is not UTF-8: {e}") from e
    if not id_:
        raise InvalidEvent("missing header ce_id")
    if not source:
        raise InvalidEvent("missing header ce_source")
    if not type_:
        raise InvalidEvent("missing header ce_type")
    if not tenant:
        raise InvalidEvent("missing header ce_tenantid")
    model = REGISTRY.get(type_)
    if model is None:
        raise InvalidEvent(f"unknown event type {type_!r}")
    if value is None:
        raise InvalidEvent("empty record value")
    data = light_decoder(model)(value) if light and type_ in light else None
    if data is None:
        fast = _fast_decoder(model)
        data = fast(value) if fast is not None else None
    if data is None:
        try:
            data = model.__pydantic_validator__.validate_json(value)
        except ValidationError as e:
            raise InvalidEvent(f"{type_}: {e.error_count()} invalid field(s): {e.errors()[0]['msg']}") from e
        shared = _all_fields(model)
        # a subset of the model's fields (extra keys are ignored): as many means the same
        if shared is not None and len(data.__pydantic_fields_set__) == len(shared):
            object.__setattr__(data, "__pydantic_fields_set__", shared)
    try:
        time = _parse_time(time_raw) if time_raw else _now()
    except ValueError as e:
        raise InvalidEvent(f"bad ce_time: {e}") from e
    # a batch's events share a few sources and tenants: one string each, not one per event
    return _make_envelope(intern(source), intern(tenant), data, id_, time, subject)


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)
