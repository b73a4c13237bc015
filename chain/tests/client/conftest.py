"""The client tests share one dev node (a child process) for the session."""

from chain.tests.node.conftest import devchain, node  # noqa: F401  (fixtures)
