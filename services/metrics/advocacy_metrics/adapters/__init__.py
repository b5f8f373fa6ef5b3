"""What the use cases and the entry points stand on that is neither a use case nor a table: HTTP
layers outside the router, journals, senders, streams, cursors, statement helpers, loops. ADR 0006."""
