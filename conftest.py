"""Root conftest: loads the shared Keiko test plugin (fixtures, engine selection)."""

pytest_plugins = ["services.kit.testing"]
