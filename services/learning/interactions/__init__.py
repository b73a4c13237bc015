"""Atomic learning interactions (question, answer, exercise, discussion, evaluation,
feedback): recorded as statements in the hierarchy, prepared for device signing, listed
and watched."""
