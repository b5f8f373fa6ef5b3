from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class LeaderboardEntry(BaseModel):
    rank: int
    employee_id: str | None
    name: str | None
    team: str | None
    points: int


class Leaderboard(BaseModel):
    window: str
    starts_at: datetime | None
    ends_at: datetime | None
    items: list[LeaderboardEntry]
    next_cursor: str | None = None
