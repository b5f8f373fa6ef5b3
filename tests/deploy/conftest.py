"""Shared helpers for the deployment checks: no cluster, no Docker engine, only files and kubectl."""

from __future__ import annotations

import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
# prod-ingress-nginx: prod with the optional ingress-nginx edge (components/ingress-nginx).
OVERLAYS = ("dev", "prod", "strimzi-cnpg", "prod-ingress-nginx")
SERVICES = ("content", "sharing", "metrics", "gamification", "notifications")


def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        pytest.fail(
            "kubectl is not on PATH: the Kubernetes checks build the overlays with `kubectl kustomize` "
            "(it ships in this machine image; elsewhere install kubectl >= 1.27)",
            pytrace=False,
        )
    return path


_BUILT: dict[str, tuple[dict[str, Any], ...]] = {}


# Written by `make secrets`, git-ignored: the dev overlay's signing keys (never in the repository).
DEV_SIGNING_KEYS = ("SHARING_VISITOR_SECRET", "SHARING_CLICK_ID_SECRET")


def _k8s_tree() -> Path:
    """A copy of deploy/k8s with the dev overlay's git-ignored signing-keys.env, console-keys.env and
    dev-login/ generated as `make secrets` does, so the build never depends on (or reads) a developer's own keys."""
    tree = Path(tempfile.mkdtemp(prefix="advocacy-k8s-")) / "k8s"
    from advocacy_common.auth.devkeys import ensure_dev_keys

    shutil.copytree(K8S, tree, ignore=shutil.ignore_patterns("signing-keys.env", "console-keys.env", "dev-login"))
    keys = "".join(f"{k}={secrets.token_urlsafe(32)}\n" for k in DEV_SIGNING_KEYS)
    (tree / "overlays" / "dev" / "signing-keys.env").write_text(keys)
    (tree / "overlays" / "dev" / "console-keys.env").write_text(f"CONSOLE_SECRET_KEY={secrets.token_urlsafe(32)}\n")
    ensure_dev_keys(tree / "overlays" / "dev" / "dev-login")  # the console's dev login key
    return tree


def _build_all() -> None:
    """Build every overlay at once (kubectl runs in parallel); keep the parsed objects."""
    tree = _k8s_tree()
    try:
        procs = {
            o: subprocess.Popen(
                [kubectl(), "kustomize", str(tree / "overlays" / o)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for o in OVERLAYS
        }
        for overlay, proc in procs.items():
            out, err = proc.communicate(timeout=120)
            if proc.returncode != 0:
                raise AssertionError(f"kubectl kustomize deploy/k8s/overlays/{overlay} failed:\n{err}")
            _BUILT[overlay] = tuple(d for d in yaml.safe_load_all(out) if d)
    finally:
        shutil.rmtree(tree.parent, ignore_errors=True)


def build(overlay: str) -> list[dict[str, Any]]:
    """The overlay's objects, as `kubectl kustomize` renders them (parsed YAML)."""
    if overlay not in _BUILT:
        _build_all()
    return list(_BUILT[overlay])


def one(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected exactly one {kind} {name}, found {len(found)}"
    return found[0]


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def public_routes(objects: list[dict[str, Any]]) -> dict[str, str]:
    """Path prefix (no trailing slash) -> the Service it is sent to, from the HTTPRoutes or the
    Ingresses an overlay renders (a prefix routed twice fails). An exact match is keyed "=" + its
    path ("=/" is the root page alone), so it is never mistaken for a prefix: "/" would be a catch-all."""
    routed: dict[str, str] = {}

    def add(kind: str, path: str, backend: str) -> None:
        if kind == "Exact":
            key = "=" + path
        else:
            assert kind in ("PathPrefix", "Prefix"), f"{path}: match type {kind} is neither exact nor a prefix"
            key = path.rstrip("/") or "/"
        assert key not in routed, f"{key} routed twice"
        routed[key] = backend

    for route in of_kind(objects, "HTTPRoute"):
        for rule in route["spec"]["rules"]:
            (backend,) = rule["backendRefs"]
            for match in rule["matches"]:
                add(match["path"]["type"], match["path"]["value"], backend["name"])
    for ing in of_kind(objects, "Ingress"):
        for rule in ing["spec"]["rules"]:
            for p in rule["http"]["paths"]:
                add(p["pathType"], p["path"], p["backend"]["service"]["name"])
    return routed


def settings_classes() -> dict[str, type[Any]]:
    from advocacy_content.settings import ContentSettings
    from advocacy_gamification.settings import GamificationSettings
    from advocacy_metrics.settings import MetricsSettings
    from advocacy_notifications.settings import NotificationsSettings
    from advocacy_sharing.settings import SharingSettings

    return {
        "content": ContentSettings,
        "sharing": SharingSettings,
        "metrics": MetricsSettings,
        "gamification": GamificationSettings,
        "notifications": NotificationsSettings,
    }


def env_prefix(cls: type[Any]) -> str:
    return str(cls.model_config.get("env_prefix", ""))


def shared_env_names() -> set[str]:
    from advocacy_common.settings import SHARED_NAMES

    return {n.upper() for n in SHARED_NAMES}


def env_names(service: str) -> set[str]:
    """Every environment variable one service's settings read: prefixed fields, plus the shared ones."""
    cls = settings_classes()[service]
    prefix = env_prefix(cls)
    return {f"{prefix}{name}".upper() for name in cls.model_fields} | shared_env_names()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No settings variables from the test process leak into a settings instance."""
    import os

    prefixes = ("CONTENT_", "SHARING_", "METRICS_", "GAMIFICATION_")
    for name in list(os.environ):
        if name.startswith(prefixes) or name in shared_env_names():
            monkeypatch.delenv(name)
    return monkeypatch
