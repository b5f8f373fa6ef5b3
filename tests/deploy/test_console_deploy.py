"""The web console's deployment files (issue 20, ADR 0014): its image recipe, its service in
docker-compose.yml, and the Kubernetes Component the overlays add. Read as data and
built with ``kubectl kustomize``; no Docker engine, no cluster."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import SchemaNotFoundError

from advocacy_common.settings import DEV_ISSUER
from advocacy_console.app import VENDOR_FILES
from advocacy_console.settings import ConsoleSettings
from tests.deploy.conftest import K8S, OVERLAYS, ROOT, build, one, public_routes

DOCKERFILE = ROOT / "deploy" / "docker" / "console.Dockerfile"
COMPONENT = K8S / "components" / "console"
CONSOLE_ENV = {f"CONSOLE_{name.upper()}" for name in ConsoleSettings.model_fields} | {"DEV_MODE"}


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    """Every overlay adds the console Component (prod, and so strimzi-cnpg and prod-ingress-nginx; dev)."""
    return str(request.param)


def console_objects(overlay: str) -> dict[str, dict[str, Any]]:
    return {
        f"{o['kind']}/{o['metadata']['name']}": o
        for o in build(overlay)
        if o["metadata"].get("labels", {}).get("app.kubernetes.io/name") == "console"
        or "console" in o["metadata"]["name"]
    }


def console_env(overlay: str) -> dict[str, str]:
    """The console container's environment as the overlay sets it (Secrets: the operator's, so only
    their presence is checked here), as a pod would see it."""
    objects = build(overlay)
    (c,) = console_objects(overlay)["Deployment/console"]["spec"]["template"]["spec"]["containers"]
    env: dict[str, str] = {}
    for source in c["envFrom"]:
        if "configMapRef" in source:
            env |= one(objects, "ConfigMap", source["configMapRef"]["name"])["data"]
        else:
            # the operator's console-secrets (dev: generated, so with kustomize's hash suffix)
            name = source["secretRef"]["name"]
            assert (name.rsplit("-", 1)[0] if overlay == "dev" else name) == "console-secrets", name
            assert "optional" not in source["secretRef"]
            # what the operator's Secret holds (prod's kustomization.yaml lists its keys)
            env |= {
                "CONSOLE_DATABASE_URL": "postgresql+asyncpg://advocacy_console:pw@console-db:5432/advocacy_console",
                "CONSOLE_SECRET_KEY": "k" * 43,
            }
    for e in c.get("env", []):
        env[e["name"]] = e.get("value") or "postgresql://advocacy_console:pw@console-db-rw:5432/advocacy_console"
    return env


def test_the_component_builds_validates_and_is_hardened(overlay: str) -> None:
    objects = console_objects(overlay)
    edge = "Ingress/console" if overlay == "prod-ingress-nginx" else "HTTPRoute/console"
    assert {"ConfigMap/console-config", "Deployment/console", "Service/console", edge} <= set(objects)
    routed = public_routes(build(overlay))
    pages = ("/login", "/logout", "/board", "/share", "/wall", "/me", "/rewards", "/challenges", "/coaching", "/admin")
    assert {p: routed[p] for p in (*pages, "/static")} == dict.fromkeys((*pages, "/static"), "console")
    namespace = "advocacy-dev" if overlay == "dev" else "advocacy"
    for key, obj in objects.items():
        assert obj["metadata"].get("namespace") == namespace, key
        try:
            kubernetes_validate.validate(obj, "1.31", strict=True)
        except SchemaNotFoundError:
            assert obj["kind"] in ("HTTPRoute", "Cluster"), key
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
    assert not any(o["kind"] == "HorizontalPodAutoscaler" for o in objects.values())


def _console_paths() -> set[str]:
    from advocacy_console.app import create_app

    def paths(routes: list[Any]) -> Iterator[str]:
        for r in routes:
            if hasattr(r, "original_router"):  # an included router
                yield from paths(r.original_router.routes)
            elif hasattr(r, "path"):
                yield str(r.path)

    return set(paths(create_app(ConsoleSettings()).router.routes))


def test_every_page_the_console_serves_is_routed_to_it_and_its_probes_are_not(overlay: str) -> None:
    routed = public_routes(build(overlay))
    served = _console_paths()
    assert {"/board", "/wall/ticket", "/login/oidc/callback", "/admin/rules"} <= served
    assert "/" in served
    # the root page by an exact match: a "/" prefix would be a catch-all
    assert routed.get("=/") == "console", f"{overlay}: / reaches no console (an Exact match of /)"
    for path in served - {"/", "/healthz", "/readyz"}:
        prefix = "/" + path.split("/")[1]
        assert routed.get(prefix) == "console", f"{overlay}: {path} reaches no console"
    assert not {"/healthz", "/readyz", "/", "=/healthz", "=/readyz"} & set(routed)


def test_replicas_share_sessions_in_the_consoles_own_database(overlay: str) -> None:
    """Sessions in the console's own table everywhere, dev too (ADR 0014): two replicas share them;
    dev runs one, as it runs one of everything."""
    objects = console_objects(overlay)
    deployment = objects["Deployment/console"]
    env = console_env(overlay)
    if overlay == "dev":
        assert deployment["spec"]["replicas"] == 1
        (generated,) = [
            o for o in build(overlay) if o["kind"] == "Secret" and o["metadata"]["name"].startswith("console-secrets")
        ]
        assert {"CONSOLE_DATABASE_URL", "CONSOLE_SECRET_KEY"} <= set(generated["data"])
        assert objects["Service/console-db"]["spec"]["externalName"] == "postgres.advocacy-dev.svc.cluster.local"
        return
    assert deployment["spec"]["replicas"] == 2
    pdb = objects["PodDisruptionBudget/console"]
    assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    assert pdb["spec"]["maxUnavailable"] == 1 and pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    (c,) = deployment["spec"]["template"]["spec"]["containers"]
    if overlay == "strimzi-cnpg":
        # its own CloudNativePG cluster and database, the URL from the Secret the operator makes
        cluster = objects["Cluster/console-db"]
        assert cluster["spec"]["bootstrap"]["initdb"]["database"] == "advocacy_console"
        assert cluster["spec"]["instances"] >= 2
        (ref,) = [e["valueFrom"]["secretKeyRef"] for e in c["env"] if e["name"] == "CONSOLE_DATABASE_URL"]
        assert ref == {"name": "console-db-app", "key": "uri"}
        assert "Service/console-db" not in objects
    else:
        assert objects["Service/console-db"]["spec"]["type"] == "ExternalName"
        assert "value" not in str(c.get("env", [])), "no database URL in a manifest"
    # the settings start outside dev mode: a shared secret key, OIDC complete, sessions in the table
    settings = ConsoleSettings.model_validate({k.removeprefix("CONSOLE_").lower(): v for k, v in env.items()})
    assert settings.dev_mode is False and settings.database_url and settings.secret_key is not None
    assert settings.oidc_enabled and settings.oidc_redirect_url == "https://advocacy.example.com/login/oidc/callback"
    jwt_issuer = one(build(overlay), "ConfigMap", "advocacy-config")["data"]["JWT_ISSUER"]
    assert settings.issuer_config.issuer == jwt_issuer, "the console names people as the services do"


def test_the_config_names_only_what_the_settings_read_and_reaches_the_apis_by_service_name(overlay: str) -> None:
    data = console_objects(overlay)["ConfigMap/console-config"]["data"]
    assert set(data) <= CONSOLE_ENV, set(data) - CONSOLE_ENV
    # the dev login in the dev overlay alone (test_the_dev_overlay_alone_has_the_dev_login_...)
    assert data["CONSOLE_DEV_MODE"] == ("true" if overlay == "dev" else "false")
    assert not {"CONSOLE_SECRET_KEY", "CONSOLE_DATABASE_URL", "CONSOLE_OIDC_CLIENT_SECRET"} & set(data)
    services = {o["metadata"]["name"] for o in build(overlay) if o["kind"] == "Service"}
    for svc in ("content", "sharing", "metrics", "gamification"):
        assert data[f"CONSOLE_{svc.upper()}_URL"] == f"http://{svc}-api" and f"{svc}-api" in services


def test_network_policies_let_the_console_reach_the_apis_its_database_and_the_idp(overlay: str) -> None:
    objects = console_objects(overlay)
    egress = objects["NetworkPolicy/console-egress"]["spec"]["egress"]
    by_port = {p["port"]: rule.get("to") for rule in egress for p in rule["ports"]}
    assert set(by_port) == {8001, 8002, 8003, 8004, 5432, 443}, "never Kafka"
    for port in (8001, 8002, 8003, 8004):
        assert by_port[port] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/component": "api"}}}]
    # its own database: only the port where it is outside the cluster, its own cluster where it is in
    db = [{"podSelector": {"matchLabels": {"cnpg.io/cluster": "console-db"}}}] if overlay == "strimzi-cnpg" else None
    assert by_port[5432] == db
    assert by_port[443] == [{"ipBlock": {"cidr": "0.0.0.0/0"}}]
    admitted = objects["NetworkPolicy/api-ingress-from-console"]["spec"]["ingress"]
    assert admitted[0]["from"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "console"}}}]
    edge = "ingress-nginx" if overlay == "prod-ingress-nginx" else "envoy-gateway-system"
    (peer,) = objects["NetworkPolicy/console-ingress"]["spec"]["ingress"][0]["from"]
    assert peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] == edge


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


def _secret_mount(workload: dict[str, Any], secret: str) -> tuple[str, list[str] | None]:
    """Where the workload's container mounts the Secret ``secret`` (read-only), and the keys it takes
    (None: every key)."""
    spec = workload["spec"]["template"]["spec"]
    (volume,) = [v for v in spec["volumes"] if v.get("secret", {}).get("secretName") == secret]
    (c,) = spec["containers"]
    (mount,) = [m for m in c["volumeMounts"] if m["name"] == volume["name"]]
    assert mount["readOnly"] is True
    items = volume["secret"].get("items")
    return mount["mountPath"], [i["key"] for i in items] if items is not None else None


def test_the_dev_overlay_alone_has_the_dev_login_signed_by_a_key_every_service_trusts(overlay: str) -> None:
    """The dev cluster's console has a login without an OIDC client: the dev login, on in the dev
    overlay only (never prod), signing with the key `make secrets` writes to dev-login/ as the JWT_*
    issuer; every service there trusts that key too (JWT_JWKS_PATH: the JWKS each pod mounts)."""
    from advocacy_common.auth.devkeys import JWKS_FILE, PRIVATE_KEY_FILE

    objects = build(overlay)
    env = console_env(overlay)
    settings = ConsoleSettings.model_validate({k.removeprefix("CONSOLE_").lower(): v for k, v in env.items()})
    shared = one(objects, "ConfigMap", "advocacy-config")["data"]
    keys = [o for o in objects if o["kind"] == "Secret" and o["metadata"]["name"].startswith("dev-login-keys")]
    if overlay != "dev":
        assert settings.dev_mode is False and settings.dev_keys_dir is None and not keys
        assert "JWT_JWKS_PATH" not in shared
        return
    assert settings.dev_mode is True and settings.dev_keys_dir is not None
    assert (settings.dev_token_issuer, settings.dev_token_audience) == (shared["JWT_ISSUER"], shared["JWT_AUDIENCE"])
    assert settings.dev_token_issuer != DEV_ISSUER  # the services refuse the dev stack's issuer outside dev mode
    (secret,) = keys
    assert set(secret["data"]) == {PRIVATE_KEY_FILE, JWKS_FILE}
    name = secret["metadata"]["name"]
    assert _secret_mount(one(objects, "Deployment", "console"), name) == (str(settings.dev_keys_dir), None)
    jwks = PurePosixPath(shared["JWT_JWKS_PATH"])
    services = [o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] != "console"]
    assert len(services) == 10 and jwks.name == JWKS_FILE
    for w in services:  # the JWKS alone, never the private key
        assert _secret_mount(w, name) == (str(jwks.parent), [JWKS_FILE]), w["metadata"]["name"]
