"""Webhook imports: Learning Locker, SCORM Cloud, Moodle and Canvas push deliveries that
are authenticated, mapped to xAPI (the `services.learning.imports` mappers) and stored."""
