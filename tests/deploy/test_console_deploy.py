"""The web console's deployment files (issue 20, ADR 0014): its image recipe, its service in
docker-compose.yml, and the Kubernetes Component the overlays add. Read as data and
built with ``kubectl kustomize``; no Docker engine, no cluster."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import SchemaNotFoundError

from advocacy_console.app import VENDOR_FILES
from advocacy_console.settings import ConsoleSettings
from tests.deploy.conftest import K8S, ROOT, build, public_routes

DOCKERFILE = ROOT / "deploy" / "docker" / "console.Dockerfile"
COMPONENT = K8S / "components" / "console"
CONSOLE_ENV = {f"CONSOLE_{name.upper()}" for name in ConsoleSettings.model_fields} | {"DEV_MODE"}


def built_with_console() -> list[dict[str, Any]]:
    """The dev overlay, which adds the console Component (prod and strimzi-cnpg may)."""
    return build("dev")


def console_objects() -> dict[str, dict[str, Any]]:
    return {
        f"{o['kind']}/{o['metadata']['name']}": o
        for o in built_with_console()
        if o["metadata"].get("labels", {}).get("app.kubernetes.io/name") == "console"
        or "console" in o["metadata"]["name"]
    }


def test_the_component_builds_validates_and_is_hardened() -> None:
    objects = console_objects()
    assert {"ConfigMap/console-config", "Deployment/console", "Service/console", "HTTPRoute/console"} <= set(objects)
    routed = public_routes(built_with_console())
    pages = ("/login", "/board", "/wall", "/me", "/rewards", "/challenges", "/coaching", "/admin", "/static")
    assert {p: routed[p] for p in pages} == dict.fromkeys(pages, "console")
    for key, obj in objects.items():
        assert obj["metadata"].get("namespace") == "advocacy-dev", key
        try:
            kubernetes_validate.validate(obj, "1.31", strict=True)
        except SchemaNotFoundError:
            assert obj["kind"] == "HTTPRoute", key
    deployment = objects["Deployment/console"]
    spec = deployment["spec"]["template"]["spec"]
    (c,) = spec["containers"]
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] == 10001
    assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert spec["automountServiceAccountToken"] is False
    assert c["securityContext"]["readOnlyRootFilesystem"] is True and c["securityContext"]["capabilities"]["drop"] == [
        "ALL"
    ]
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert any(m["mountPath"] == "/tmp" for m in c["volumeMounts"])
    assert {"cpu", "memory"} <= set(c["resources"]["requests"]) and {"cpu", "memory"} <= set(c["resources"]["limits"])
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz" and c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["ports"][0]["containerPort"] == ConsoleSettings().port
    # in-memory sessions: one replica (ADR 0014), never an autoscaler that would split them
    assert deployment["spec"]["replicas"] == 1
    assert not any(o["kind"] == "HorizontalPodAutoscaler" for o in objects.values())


def test_the_config_names_only_what_the_settings_read_and_reaches_the_apis_by_service_name() -> None:
    data = console_objects()["ConfigMap/console-config"]["data"]
    assert set(data) <= CONSOLE_ENV, set(data) - CONSOLE_ENV
    assert data["CONSOLE_DEV_MODE"] == "false"
    services = {o["metadata"]["name"] for o in built_with_console() if o["kind"] == "Service"}
    for svc in ("content", "sharing", "metrics", "gamification"):
        assert data[f"CONSOLE_{svc.upper()}_URL"] == f"http://{svc}-api" and f"{svc}-api" in services


def test_network_policies_let_the_console_reach_the_apis_and_nothing_else() -> None:
    objects = console_objects()
    egress = objects["NetworkPolicy/console-egress"]["spec"]["egress"]
    assert [rule["to"] for rule in egress] == [
        [{"podSelector": {"matchLabels": {"app.kubernetes.io/component": "api"}}}]
    ]
    ports = {p["port"] for rule in egress for p in rule["ports"]}
    assert ports == {8001, 8002, 8003, 8004} and 5432 not in ports and 9092 not in ports
    admitted = objects["NetworkPolicy/api-ingress-from-console"]["spec"]["ingress"]
    assert admitted[0]["from"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "console"}}}]


def test_compose_runs_the_console_hardened_with_names_its_settings_read() -> None:
    main = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    console = main["services"]["console"]
    assert (ROOT / console["build"]["dockerfile"]) == DOCKERFILE
    assert set(console["environment"]) <= CONSOLE_ENV, set(console["environment"]) - CONSOLE_ENV
    assert console["read_only"] is True and console["cap_drop"] == ["ALL"] and console["healthcheck"]["test"]
    assert any(v.get("source") == "idp-keys" and v.get("read_only") for v in console["volumes"])
    for svc in ("content", "sharing", "metrics", "gamification"):
        host = console["environment"][f"CONSOLE_{svc.upper()}_URL"].split("//")[1].split(":")[0]
        assert host in main["services"], host
    assert "idp-keys" in main["volumes"]
    # sessions in the console's own database (ADR 0014), made by the init script like the services'
    assert console["environment"]["CONSOLE_DATABASE_URL"].endswith("@postgres:5432/advocacy_console")
    assert console["depends_on"]["postgres"]["condition"] == "service_healthy"
    # every service allows the console's origin (the wall's stream goes to gamification directly)
    assert "http://localhost:8010" in main["x-advocacy-env"]["CORS_ORIGINS"]


def test_the_image_installs_the_front_end_libraries_from_the_lock_and_runs_as_non_root() -> None:
    text = DOCKERFILE.read_text()
    assert "npm ci" in text and "package-lock.json" in text and "npm install" not in text
    assert "USER 10001:10001" in text.split("AS runtime", 1)[1]
    for relative in VENDOR_FILES.values():  # every file the console serves is in the image
        assert f"/opt/console-assets/{relative}" in text, relative
    ignore = (DOCKERFILE.parent / "console.Dockerfile.dockerignore").read_text()
    assert "!tools/console-assets/package-lock.json" in ignore and "**/node_modules" in ignore


@pytest.mark.parametrize("url", ["https://cdn.jsdelivr.net", "unpkg.com", "cdnjs"])
def test_no_page_loads_anything_from_a_cdn(url: str) -> None:
    templates = ROOT / "services" / "console" / "advocacy_console" / "templates"
    for page in templates.glob("*.html"):
        assert url not in page.read_text(), page.name
