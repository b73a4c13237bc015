"""Defaults shared by the node and its launcher (kept free of heavy imports)."""

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5050
DEFAULT_ACCOUNTS = 10
ACCOUNTS_FILE = "accounts.json"
DEPLOYMENT_FILE = "deployment.json"
