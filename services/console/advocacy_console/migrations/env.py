from advocacy_common.migrations import run_env
from advocacy_console.sessiondb import metadata

run_env(metadata)
