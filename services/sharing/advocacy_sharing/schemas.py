from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from advocacy_common.networks import Network


class ShareCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content_id: str = Field(min_length=1, max_length=64)
    network: Network
    message: str | None = Field(default=None, max_length=70000)


class SharePublic(BaseModel):
    id: str
    code: str
    link: str
    intent_url: str | None
    network: str
    content_id: str
    message: str | None
    warnings: list[str] = []
