"""Content service: the advocacy board, captions, scheduling, policy, programme membership."""
