"""A tiny service used to prove the migration kit: its own schema, tables and migrations."""
