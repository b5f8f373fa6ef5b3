"""A clock that tests can set from outside the process (dev mode only).

Schedulers take their clock as an argument (a digest at 9 o'clock local time, a weekly report on
Monday), so unit and integration tests pass one in. An end-to-end test drives separate processes;
it cannot pass anything in, and must not sleep until 9 o'clock. So a service's worker may read
"now" from a file the test writes (``<PREFIX>_CLOCK_FILE``): one ISO 8601 instant with its offset.
Unset (always, outside dev mode: the settings refuse it), the real time. A file missing, empty or
unreadable also gives the real time, so a test that has not written it yet sees ordinary behaviour.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

#: A clock file holds one instant; anything longer is not one.
MAX_BYTES = 64


class FileClock:
    """``clock()``: the instant in ``path`` when it holds one, else the real time."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path else None

    def __call__(self) -> datetime:
        if self.path is None:
            return datetime.now(UTC)
        try:
            with self.path.open("rb") as f:
                raw = f.read(MAX_BYTES + 1)
            if len(raw) > MAX_BYTES:
                return datetime.now(UTC)
            at = datetime.fromisoformat(raw.decode().strip())
        except (OSError, ValueError, UnicodeError):
            return datetime.now(UTC)
        return at if at.tzinfo is not None else datetime.now(UTC)


def set_clock(path: str | Path, at: datetime) -> None:
    """Write ``at`` (aware) to the clock file, atomically (a reader never sees half of it)."""
    if at.tzinfo is None:
        raise ValueError("a clock file holds an instant with its offset")
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(at.isoformat(), encoding="utf-8")
    tmp.replace(target)
