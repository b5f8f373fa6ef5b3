"""Gamification's keyed tombstones for erased people (:mod:`advocacy_common.tombstones`, one
implementation for every service).

The service key is ``GAMIFICATION_PSEUDONYM_SECRET`` when it is set, else the random key migration
0007 stored in ``service_secrets``. Tombstones written before 0007 are plain SHA-256 hashes, so
lookups here check both forms (``legacy=True``).
"""

from __future__ import annotations

from advocacy_common.tombstones import Tombstones
from advocacy_gamification.db import ERASURES, SECRETS

TOMBSTONES = Tombstones(ERASURES, SECRETS, legacy=True)


def configure(secret: str | None) -> None:
    """Use a configured secret (from settings) instead of the stored key; None: the stored key."""
    TOMBSTONES.configure(secret)
