"""Content's keyed tombstones of erased people (:mod:`advocacy_common.tombstones`): the partner feed
it hosts drops events about them, however late they arrive."""

from __future__ import annotations

from advocacy_common.tombstones import ERASURES, SERVICE_SECRETS, Tombstones
from advocacy_content.db import metadata

TOMBSTONES = Tombstones(metadata.tables[ERASURES.name], metadata.tables[SERVICE_SECRETS.name])
