from advocacy_common.migrations import run_env
from advocacy_metrics.db import metadata

run_env(metadata)
