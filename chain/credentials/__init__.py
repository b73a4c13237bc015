"""W3C Verifiable Credentials for Keiko passports: Data Integrity EdDSA proofs
(``eddsa-rdfc-2022``, ``eddsa-jcs-2022``), ``did:key``, the bundled JSON-LD contexts,
Bitstring Status List, Keiko's learning records with their Keikochain anchors, and
presentations.

Shared by the three parties: the passport service builds credentials, the chain
translator signs them where the keys live, and the independent verifier
(``chain.verify.credentials``) checks them. Nothing here does I/O except reading the
bundled context files. See ``docs/credentials.md``.
"""
