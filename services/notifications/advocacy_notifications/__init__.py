"""Notifications service: digests and notices by email, fed by the other services' events."""
