from services.kit.migrations import run_env
from services.passport.credentials.storage import metadata  # every passport table

run_env(metadata)
