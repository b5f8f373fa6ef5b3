"""Typed event models with a registry; importing this package registers every type."""

from advocacy_common.events import content, gamification, metrics, sharing
from advocacy_common.events.base import (
    REGISTRY,
    Envelope,
    EventData,
    InvalidEvent,
    decode,
    new_event,
    register,
)

__all__ = [
    "REGISTRY",
    "Envelope",
    "EventData",
    "InvalidEvent",
    "content",
    "decode",
    "gamification",
    "metrics",
    "new_event",
    "register",
    "sharing",
]
