"""Identity service: users, roles, profiles, passwordless WebAuthn login, JWT sessions.

Modules: `domain` (rules, no I/O), `relying_party` (WebAuthn options and verification
through the `webauthn` package, no I/O), `storage/` (tables in schema `identity` and the
repository, a module a capability), `service/` (use cases: registration, login, sessions,
users, credentials), `servicer` (gRPC) with `messages` (its encoding) and `wiring` (the
service on the platform's runtime, background jobs), `settings`. The proof-of-humanity
pipeline lives in `humanity/`.

What a client gets for each failure (gRPC code: message):

- malformed email: INVALID_ARGUMENT `email: not a valid email address: ...`
- unknown ceremony id: INVALID_ARGUMENT `registration_id: unknown registration ceremony`
  (`login_id: unknown login ceremony`)
- replayed ceremony: FAILED_PRECONDITION `registration challenge was already used`
  (`login challenge was already used`)
- expired ceremony: FAILED_PRECONDITION `registration challenge expired` (`login ...`)
- registration from another origin / for another RP id / for another challenge:
  INVALID_ARGUMENT on `credential_json`: `origin '<o>' is not an allowed origin`,
  `RP ID hash does not match RP ID '<rp>'`, `challenge does not match the registration
  ceremony`
- login failures: UNAUTHENTICATED `login rejected: <reason>`, reason one of the above or
  `unknown credential`, `credential is not allowed for this login`, `user handle does not
  match the credential`, `invalid signature`, `sign count did not increase (possible
  cloned authenticator)`; each counts towards the account lockout
- locked account: FAILED_PRECONDITION `account locked until <iso>Z after <n> failed logins`
- too many ceremony requests: RESOURCE_EXHAUSTED `too many attempts; retry in <n> s`
- unknown email at login: NOT_FOUND `unknown user: no account with this email`
- unknown user id: NOT_FOUND `user not found`
- refresh: UNAUTHENTICATED `unknown refresh token`, `refresh token expired`,
  `session has been revoked`, `refresh token reuse detected: the session has been revoked`
- tampered / expired access token (kit interceptor): UNAUTHENTICATED
  `invalid token signature` / `token expired`
"""
