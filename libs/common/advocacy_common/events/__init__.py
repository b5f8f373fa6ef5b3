"""Typed event models with a registry; importing this package registers every type."""

from advocacy_common.events import content, gamification, metrics, sharing
from advocacy_common.events.base import (
    REGISTRY,
    Envelope,
    EventData,
    InvalidEvent,
    assembler,
    decode,
    new_event,
    new_event_id,
    register,
)

__all__ = [
    "REGISTRY",
    "Envelope",
    "EventData",
    "InvalidEvent",
    "assembler",
    "content",
    "decode",
    "gamification",
    "metrics",
    "new_event",
    "new_event_id",
    "register",
    "sharing",
]
