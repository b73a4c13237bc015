from services.kit.migrations import run_env
from services.passport.storage import metadata

run_env(metadata)
