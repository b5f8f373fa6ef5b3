"""Gamification's running parts, held by the process's runtime (:attr:`Runtime.parts`)."""

from __future__ import annotations

from dataclasses import dataclass

from advocacy_common.runtime import Runtime
from advocacy_gamification.adapters.stream import BoardHub, Tickets


@dataclass
class GamificationParts:
    """The live board's parts (API processes)."""

    tickets: Tickets
    board_hub: BoardHub


def parts_of(runtime: Runtime) -> GamificationParts:
    parts = runtime.parts
    if not isinstance(parts, GamificationParts):
        raise RuntimeError("gamification's parts are not set up (an API process's on_start has not run)")
    return parts
