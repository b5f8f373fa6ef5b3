#!/usr/bin/env python3
"""The image's HEALTHCHECK: GET /healthz on this container's service port (the slim image has no curl).

The service is ``ADVOCACY_SERVICE`` (set from the build argument); its port is ``<SERVICE>_PORT``
when set, else the service's default. Exit 0 when the process answers 200, 1 otherwise.
"""

from __future__ import annotations

import os
import sys
import urllib.request

DEFAULT_PORTS = {"content": 8001, "sharing": 8002, "metrics": 8003, "gamification": 8004, "notifications": 8005}


def health_url(environ: dict[str, str] | os._Environ[str]) -> str:
    service = environ.get("ADVOCACY_SERVICE", "")
    if service not in DEFAULT_PORTS:
        raise ValueError(f"ADVOCACY_SERVICE must be one of {sorted(DEFAULT_PORTS)}, got {service!r}")
    port = int(environ.get(f"{service.upper()}_PORT") or DEFAULT_PORTS[service])
    return f"http://127.0.0.1:{port}/healthz"


def main() -> int:
    try:
        url = health_url(os.environ)
        with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 - a fixed http://127.0.0.1 URL
            return 0 if response.status == 200 else 1
    except Exception as e:
        print(f"unhealthy: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
