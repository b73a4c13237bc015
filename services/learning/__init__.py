"""The learning service's domain layer: pure Python, no I/O.

* `services.learning.xapi`: strict xAPI 1.0.3 / 2.0 statement validation
  (`validate_statement`, `validate_statements`, `parse_version_header`), RFC 8785
  `canonical_bytes` and `statement_hash` (what the chain translator signs and anchors),
  `agent_key` (the string storage indexes agents by), vocabulary IRIs (`xapi.vocab`).
* `services.learning.hierarchy`: Course, Class, TutorialSession, StudySession, their rules,
  Keiko's activity IRI scheme and `HierarchyContext.to_xapi_context()`.
* `services.learning.interactions`: question, answer, exercise, discussion, evaluation and
  feedback, and `build_statement` (always a validated statement, deterministic id).
* `services.learning.imports`: Learning Locker, SCORM Cloud, Moodle and Canvas webhook
  payloads mapped to validated statements with idempotent ids, plus request
  authentication helpers.

Storage (`storage.py`), the gRPC servicer (`servicer.py`) and migrations build on these.
"""
