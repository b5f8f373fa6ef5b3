from advocacy_common.migrations import run_env
from advocacy_gamification.db import metadata

run_env(metadata)
