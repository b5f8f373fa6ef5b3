"""Sharing's running parts, held by the process's runtime (:attr:`Runtime.parts`)."""

from __future__ import annotations

from dataclasses import dataclass

from advocacy_common.runtime import Runtime
from advocacy_sharing.clickid import ClickIds
from advocacy_sharing.emitter import ClickSender
from advocacy_sharing.redirect import LinkCache, Redirector
from advocacy_sharing.spool import ClickJournal


@dataclass
class SharingParts:
    """``click_ids`` in every role; the rest only where HTTP is served (the redirect's parts)."""

    click_ids: ClickIds
    journal: ClickJournal | None = None
    sender: ClickSender | None = None
    cache: LinkCache | None = None
    redirector: Redirector | None = None


def parts_of(runtime: Runtime) -> SharingParts:
    parts = runtime.parts
    if not isinstance(parts, SharingParts):
        raise RuntimeError("sharing's parts are not set up (its on_start has not run)")
    return parts
