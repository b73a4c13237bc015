from services.kit.migrations import run_env
from services.marketplace.storage import metadata

run_env(metadata)
