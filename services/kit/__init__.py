"""The small kit every Keiko service shares: errors, clock, database, events, auth, gRPC."""
