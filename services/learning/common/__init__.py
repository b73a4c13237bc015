"""What every learning capability shares: the schema's MetaData, page tokens, idempotency
keys, the outbox, and the use-case context (database, clock, after-commit callbacks)."""
