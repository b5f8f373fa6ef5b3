"""Shared code for every Advocacy service: settings, events, outbox/inbox, auth, observability."""

from advocacy_common.unused_imports import skip_httpx_cli

# before anything of ours imports httpx (lazily, where it calls out): not its command line (ADR 0024)
skip_httpx_cli()
