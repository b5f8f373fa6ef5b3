"""Sharing service: tracked links, the redirect, click verdicts, conversions."""
