from advocacy_common.migrations import run_env
from advocacy_notifications.db import metadata

run_env(metadata)
