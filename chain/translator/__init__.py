"""The chain translator's pure core (no I/O): canonical bytes and Ed25519 signatures
(:mod:`.signing`), the custodial key vault (:mod:`.keys`), felts and Poseidon
(:mod:`.felts`, :mod:`.poseidon`), interaction leaves (:mod:`.leaves`), Merkle trees
(:mod:`.merkle`), and batching, anchor states and retry policy (:mod:`.batching`).

The gRPC servicer and the outbox build on these; import the submodules directly.
"""
