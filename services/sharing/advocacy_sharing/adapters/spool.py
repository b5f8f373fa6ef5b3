"""The click journal: the redirect's durable local spool, and the re-publish log.

Every click is appended to the journal (one ``write`` to an append-only segment file, in the page
cache) *before* the redirect answers, so a click that got its 302 survives the process dying. A
sender task reads the journal from its cursor and hands the records to Kafka; only when the broker
has acknowledged them does the cursor advance (persisted atomically). So:

- broker unreachable: redirects keep answering, the journal grows, the cursor waits; when the broker
  returns the records go out in journal order;
- SIGTERM: the sender flushes what is left before the process exits; if it cannot (no broker), the
  next start sends it;
- a broker that lost its log: rewind the cursor and re-send everything retained (default 7 days);
  the verdict consumer's inbox makes a re-send harmless.

Segments roll every ``segment_seconds`` and are deleted once fully sent and older than the
retention, or sooner, oldest first, while the journal is over ``max_bytes`` (the volume it lives on
is finite; what is fully sent is only kept for re-sending to a broker that lost its log). A segment
not yet sent is never deleted: those are answered clicks. Each process takes its own slot
directory (``spool_dir/<n>``, locked with ``flock``), so two processes on one host never share a
journal, and a restarted one gets its slot back.

Record format, one line per click: ``<json header>\t<json value>\n`` where the header is
``[tenant, click_id, code, time]`` (JSON escapes control characters, so neither part contains a raw
tab or newline).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger("advocacy.sharing.spool")

_SUFFIX = ".log"


@dataclass(frozen=True, slots=True)
class Record:
    tenant_id: str
    click_id: str
    code: str
    time: str
    value: bytes
    # the W3C trace context the click was journaled in (tracing on), sent as ce_traceparent/ce_tracestate
    traceparent: str | None = None
    tracestate: str | None = None


@dataclass(frozen=True, slots=True)
class Position:
    segment: int
    offset: int


def encode(tenant_id: str, click_id: str, code: str, at_iso: str, value: bytes, trace: Sequence[str] = ()) -> bytes:
    """One journal line: ``[tenant, click id, code, time, (traceparent, (tracestate))]`` TAB value.
    The trace context is there only while tracing is on (a line without it is what older code
    wrote; older code skips a line with it as malformed, so a rollback drops the traced clicks not
    yet sent: turn tracing off before rolling back past this)."""
    return orjson.dumps([tenant_id, click_id, code, at_iso, *trace]) + b"\t" + value + b"\n"


def decode(line: bytes) -> Record | None:
    head, sep, value = line.partition(b"\t")
    if not sep:
        return None
    try:
        tenant, click_id, code, at, *trace = orjson.loads(head)
    except (orjson.JSONDecodeError, ValueError, TypeError):
        return None
    parent = trace[0] if trace and isinstance(trace[0], str) else None
    state = trace[1] if parent and len(trace) > 1 and isinstance(trace[1], str) else None
    return Record(tenant, click_id, code, at, value, parent, state)


class ClickJournal:
    def __init__(
        self,
        root: str | Path,
        *,
        retention_seconds: float = 7 * 86400,
        segment_seconds: float = 3600,
        max_bytes: int | None = None,
        clock: Any = time.time,
    ) -> None:
        self.root = Path(root)
        self.retention_seconds = retention_seconds
        self.max_bytes = max_bytes
        self.segment_seconds = segment_seconds
        self.clock = clock
        self.dir: Path | None = None
        self._lock_fd = -1
        self._fd = -1
        self._segment = 0
        self._segment_opened = 0.0
        self.cursor = Position(0, 0)
        self.appended = 0
        self.dirty = False  # written since the last fsync

    # -- lifecycle -------------------------------------------------------------------------------
    def open(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        slot = 0
        while True:
            d = self.root / str(slot)
            d.mkdir(exist_ok=True)
            fd = os.open(d / "lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                slot += 1
                continue
            self._lock_fd = fd
            self.dir = d
            break
        self.cursor = self._load_cursor()
        segments = self.segments()
        if segments and self.cursor.segment < segments[0]:
            self.cursor = Position(segments[0], 0)
        # Never append to an old segment: its last line may be torn by a crash.
        self._roll(max(segments, default=0) + 1)
        log.info(
            "click journal opened",
            extra={
                "dir": str(self.dir),
                "segment": self.cursor.segment,
                "offset": self.cursor.offset,
                "segments": len(segments),
            },
        )

    def close(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1
        self._save_cursor()
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    # -- the hot path ----------------------------------------------------------------------------
    def append(self, line: bytes) -> None:
        os.write(self._fd, line)
        self.appended += 1
        self.dirty = True

    def maybe_roll(self) -> None:
        """Called by the sender, off the hot path: start a new segment when the current one is old."""
        if self.clock() - self._segment_opened >= self.segment_seconds:
            self._roll(self._segment + 1)

    # -- reading ---------------------------------------------------------------------------------
    def segments(self) -> list[int]:
        assert self.dir is not None
        out = []
        for p in self.dir.iterdir():
            if p.suffix == _SUFFIX and p.stem.isdigit():
                out.append(int(p.stem))
        return sorted(out)

    def _path(self, segment: int) -> Path:
        assert self.dir is not None
        return self.dir / f"{segment:012d}{_SUFFIX}"

    def read(self, max_records: int = 5000, max_bytes: int = 4 << 20) -> tuple[list[Record], Position]:
        """Records after the cursor (complete lines only) and the position just after them."""
        records: list[Record] = []
        pos = self.cursor
        for seg in self.segments():
            if seg < pos.segment:
                continue
            if seg != pos.segment:
                if pos.segment >= self._segment:
                    break  # the cursor is in the live segment: nothing later to read
                pos = Position(seg, 0)
            try:
                with self._path(seg).open("rb") as f:
                    f.seek(pos.offset)
                    data = f.read(max_bytes)
            except FileNotFoundError:
                continue
            off = 0
            while len(records) < max_records:
                nl = data.find(b"\n", off)
                if nl < 0:
                    break
                rec = decode(data[off:nl])
                if rec is None:
                    log.warning("click journal: malformed line skipped", extra={"dir": str(self.dir), "segment": seg})
                else:
                    records.append(rec)
                off = nl + 1
            if off < len(data) and len(records) < max_records and len(data) < max_bytes and seg != self._segment:
                log.warning("click journal: torn last line dropped", extra={"dir": str(self.dir), "segment": seg})
                off = len(data)
            pos = Position(seg, pos.offset + off)
            if len(records) >= max_records or off < len(data) or len(data) >= max_bytes or seg == self._segment:
                break
        return records, pos

    def caught_up(self) -> bool:
        return self.cursor.segment == self._segment and self.cursor.offset >= self._size(self._segment)

    def _size(self, segment: int) -> int:
        try:
            return self._path(segment).stat().st_size
        except FileNotFoundError:
            return 0

    def pending_bytes(self) -> int:
        total = 0
        for seg in self.segments():
            if seg < self.cursor.segment:
                continue
            size = self._size(seg)
            total += size - (self.cursor.offset if seg == self.cursor.segment else 0)
        return total

    # -- cursor ----------------------------------------------------------------------------------
    def advance(self, pos: Position) -> None:
        self.cursor = pos
        self._save_cursor()

    def rewind(self, since_epoch: float | None = None) -> None:
        """Re-send what the journal retains (from segments opened since ``since_epoch``, or all)."""
        segs = self.segments()
        if since_epoch is not None:
            segs = [s for s in segs if self._path(s).stat().st_mtime >= since_epoch] or segs[-1:]
        if segs:
            self.advance(Position(segs[0], 0))

    def _cursor_path(self) -> Path:
        assert self.dir is not None
        return self.dir / "cursor"

    def _load_cursor(self) -> Position:
        try:
            seg, off = orjson.loads(self._cursor_path().read_bytes())
            return Position(int(seg), int(off))
        except (FileNotFoundError, ValueError, TypeError, orjson.JSONDecodeError):
            return Position(0, 0)

    def _save_cursor(self) -> None:
        if self.dir is None:
            return
        tmp = self.dir / "cursor.tmp"
        tmp.write_bytes(orjson.dumps([self.cursor.segment, self.cursor.offset]))
        os.replace(tmp, self._cursor_path())

    # -- segments --------------------------------------------------------------------------------
    def _roll(self, segment: int) -> None:
        old = self._fd
        self._fd = os.open(self._path(segment), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._segment = segment
        self._segment_opened = self.clock()
        if old >= 0:
            with contextlib.suppress(OSError):
                os.fsync(old)
            os.close(old)

    def fsync(self) -> None:
        if self._fd >= 0 and self.dirty:
            self.dirty = False
            os.fsync(self._fd)

    def purge(self) -> int:
        """Delete fully sent segments older than the retention; then, oldest first, fully sent
        segments while the journal holds more than ``max_bytes``. Returns how many were deleted."""
        cutoff = self.clock() - self.retention_seconds
        removed = 0
        sent = [seg for seg in self.segments() if seg < self.cursor.segment and seg != self._segment]
        kept = []
        for seg in sent:
            path = self._path(seg)
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
                    continue
            except FileNotFoundError:
                continue
            kept.append(seg)
        if self.max_bytes is not None:
            total = self.total_bytes()
            for seg in kept:
                if total <= self.max_bytes:
                    break
                size = self._size(seg)
                with contextlib.suppress(FileNotFoundError):
                    self._path(seg).unlink()
                    removed += 1
                    total -= size
        return removed

    def total_bytes(self) -> int:
        return sum(self._size(seg) for seg in self.segments())

    def volume_free_ratio(self) -> float:
        """Free space left on the journal's file system (0..1): the alert fires before it fills."""
        if self.dir is None:
            return 1.0
        st = os.statvfs(self.dir)
        return st.f_bavail / st.f_blocks if st.f_blocks else 1.0
