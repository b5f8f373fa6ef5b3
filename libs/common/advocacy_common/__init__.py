"""Shared code for every Advocacy service: settings, events, outbox/inbox, auth, observability."""
