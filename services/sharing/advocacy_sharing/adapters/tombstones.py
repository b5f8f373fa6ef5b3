"""Sharing's keyed tombstones of erased people (:mod:`advocacy_common.tombstones`): a share made
after the erasure is refused (403, ``erased``)."""

from __future__ import annotations

from advocacy_common.tombstones import ERASURES, SERVICE_SECRETS, Tombstones
from advocacy_sharing.db import metadata

TOMBSTONES = Tombstones(metadata.tables[ERASURES.name], metadata.tables[SERVICE_SECRETS.name])
