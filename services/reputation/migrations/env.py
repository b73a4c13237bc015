from services.kit.migrations import run_env
from services.reputation.storage import metadata

run_env(metadata)
