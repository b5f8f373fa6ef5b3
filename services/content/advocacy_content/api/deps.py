"""Dependencies the content routes share."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request


def _link_sample(request: Request) -> str | None:
    return getattr(request.app.state.settings, "tracked_link_sample", None)


LinkSample = Annotated[str | None, Depends(_link_sample)]
