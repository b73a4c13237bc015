from services.kit.migrations import run_env
from services.kit.tests.demo_service.storage import metadata

run_env(metadata)
