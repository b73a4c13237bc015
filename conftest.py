"""Root conftest: loads the shared Keiko test plugin (fixtures, engine selection)."""

from hypothesis import HealthCheck, settings

pytest_plugins = ["services.kit.testing"]

# CI machines are shared and noisy: a property test is judged on its examples, never on how
# fast they ran (no deadline, no "too slow" health check). Tests may still set their own
# example counts.
settings.register_profile("keiko", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("keiko")
