"""Issue 15, safe rollouts (ADR 0008): in every rendered overlay, each API and worker pod migrates
its database in an init container before its app container starts, and nothing else migrates."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.conftest import OVERLAYS, SERVICES, build, of_kind, one


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _by_name(containers: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in containers}


def test_migrations_run_before_the_app_container_in_every_pod(overlay: str) -> None:
    objects = build(overlay)
    for svc in SERVICES:
        for role in ("api", "worker"):
            d = one(objects, "Deployment", f"{svc}-{role}")
            spec = d["spec"]["template"]["spec"]
            init = spec.get("initContainers", [])
            assert [c["name"] for c in init] == ["migrate"], f"{svc}-{role}: migrate is not its one init container"
            migrate, app = init[0], _by_name(spec["containers"])["app"]
            assert migrate["command"] == [f"advocacy-{svc}", "migrate"], f"{svc}-{role}"
            # The same code and the same database as the app it prepares.
            assert migrate["image"] == app["image"], f"{svc}-{role}"
            assert migrate["envFrom"] == app["envFrom"], f"{svc}-{role}"
            url = f"{svc.upper()}_DATABASE_URL"
            app_url = [e for e in app.get("env", []) if e["name"] == url]
            assert [e for e in migrate.get("env", []) if e["name"] == url] == app_url, f"{svc}-{role}: {url}"
            # Hardened like the app container (restricted Pod Security checks init containers too).
            sc = migrate["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
            assert sc["capabilities"]["drop"] == ["ALL"] and sc["runAsNonRoot"] is True
            assert any(m["mountPath"] == "/tmp" for m in migrate["volumeMounts"])
            assert {"cpu", "memory"} <= set(migrate["resources"]["limits"])
            # The app is not Ready on a schema behind its code (/readyz checks it).
            assert app["readinessProbe"]["httpGet"]["path"] == "/readyz"
            # Old pods keep serving until new ones are Ready (a rollout never drops below its count).
            assert d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_no_migration_job_for_a_gitops_tool_to_fight(overlay: str) -> None:
    """A Job's pod template is immutable and the old ones deleted themselves: gone, not replaced."""
    objects = build(overlay)
    assert of_kind(objects, "Job") == []
    assert of_kind(objects, "CronJob") == []
