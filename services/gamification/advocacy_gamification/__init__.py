"""Gamification service: points ledger, leaderboards, badges, challenges and rewards."""
