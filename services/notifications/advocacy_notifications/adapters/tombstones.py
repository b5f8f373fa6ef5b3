"""Notifications' keyed tombstones of erased people (:mod:`advocacy_common.tombstones`): an event
about them that arrives after the erasure brings nothing back."""

from __future__ import annotations

from advocacy_common.tombstones import ERASURES, SERVICE_SECRETS, Tombstones
from advocacy_notifications.db import metadata

TOMBSTONES = Tombstones(metadata.tables[ERASURES.name], metadata.tables[SERVICE_SECRETS.name])
