"""One default TLS context for every httpx client the tests make.

httpx builds a new ``ssl.SSLContext`` for each client (each transport), loading certifi's CA bundle:
20-80 ms of CPU on this project's 2-core runners, and the tests make thousands of short-lived
clients (the role matrix alone about 1,100). :func:`share_default_ssl_context` makes every client
that asks for the default verification (``verify=True``, no client certificate) use one context
built the same way (per ``SSL_CERT_FILE``/``SSL_CERT_DIR`` value, which httpx reads); anything else
(a test's own CA, ``verify=False``, a client certificate) still gets a context of its own. A context is meant to be
shared (the standard library shares one between all the sockets it wraps), and httpx never changes
the one it is given.
"""

from __future__ import annotations

import functools
import os
import ssl
from collections.abc import Callable
from typing import Any


def share_default_ssl_context() -> None:
    """Patch httpx's transports (this process only) to share the default context. Idempotent."""
    from httpx._transports import default

    original: Callable[..., ssl.SSLContext] = getattr(default, "create_ssl_context")  # noqa: B009 (not exported)
    if getattr(original, "shares_default", False):
        return

    @functools.cache
    def shared(trust_env: bool, env_ca: tuple[str | None, str | None]) -> ssl.SSLContext:
        return original(trust_env=trust_env)  # reads SSL_CERT_FILE/SSL_CERT_DIR itself

    def create_ssl_context(verify: Any = True, cert: Any = None, trust_env: bool = True) -> ssl.SSLContext:
        if verify is True and cert is None:
            return shared(trust_env, (os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")))
        return original(verify=verify, cert=cert, trust_env=trust_env)

    create_ssl_context.shares_default = True  # type: ignore[attr-defined]
    setattr(default, "create_ssl_context", create_ssl_context)  # noqa: B010
