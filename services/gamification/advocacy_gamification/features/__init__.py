"""Use cases, one module per feature: what a route or a consumer asks for (load, decide with the
domain, save, add events to the outbox). ADR 0006."""
