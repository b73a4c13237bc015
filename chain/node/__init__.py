"""Embedded Keikochain dev node: executes the compiled Cairo contracts in cairo-lang's
VM and serves Starknet JSON-RPC (spec 0.10) over HTTP, in its own process.

Entry points: :func:`chain.node.service.main` (``keiko chain node``) and
:func:`chain.node.process.start_node_process` (run it as a child process).
"""
