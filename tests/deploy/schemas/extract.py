"""Writes gateway-crds.json: the openAPIV3Schema of the Gateway API and Envoy Gateway kinds the
manifests use, descriptions dropped, from pinned releases. Run from a directory holding checkouts
of both repositories at those tags:

    git clone --branch v1.6.1 https://github.com/kubernetes-sigs/gateway-api
    git clone --branch v1.9.0 https://github.com/envoyproxy/gateway
    python tests/deploy/schemas/extract.py gateway-api gateway > tests/deploy/schemas/gateway-crds.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

SOURCES = {
    "gateway-api": ("kubernetes-sigs/gateway-api", "v1.6.1", "config/crd/standard/gateway.networking.k8s.io_{}.yaml"),
    "gateway": (
        "envoyproxy/gateway",
        "v1.9.0",
        "charts/gateway-helm/charts/crds/crds/generated/gateway.envoyproxy.io_{}.yaml",
    ),
}
KINDS = {
    "gateway-api": ("gateways", "httproutes"),
    "gateway": ("backendtrafficpolicies", "clienttrafficpolicies"),
}


def strip(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: strip(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node


def main(gateway_api: str, envoy_gateway: str) -> None:
    roots = {"gateway-api": Path(gateway_api), "gateway": Path(envoy_gateway)}
    out: dict[str, Any] = {"sources": {}, "schemas": {}}
    for key, (repo, tag, pattern) in SOURCES.items():
        out["sources"][repo] = {"tag": tag, "files": [pattern.format(k) for k in KINDS[key]]}
        for plural in KINDS[key]:
            crd = yaml.safe_load((roots[key] / pattern.format(plural)).read_text())
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if version.get("served"):
                    schema = strip(version["schema"]["openAPIV3Schema"])
                    out["schemas"][f"{group}/{version['name']}/{kind}"] = schema
    json.dump(out, sys.stdout, sort_keys=True, separators=(",", ":"))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(*sys.argv[1:3])
