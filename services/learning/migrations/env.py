from services.kit.migrations import run_env
from services.learning.storage import metadata

run_env(metadata)
