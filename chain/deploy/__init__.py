"""Putting Keiko's contracts on a Starknet chain (``keiko chain deploy``, and the dev
node's genesis, which runs the same transactions against itself)."""
