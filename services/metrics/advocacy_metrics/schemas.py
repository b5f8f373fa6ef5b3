from __future__ import annotations

from pydantic import BaseModel


class ClicksByVerdict(BaseModel):
    counted: int
    bot: int
    duplicate: int
    self: int
    rate_limited: int
    invalidated: int


class EmployeeMetrics(BaseModel):
    employee_id: str
    shares: int
    clicks: int
    clicks_by_verdict: ClicksByVerdict
    conversions: int
    conversion_value: list[dict[str, str]]
    reach: int
