"""Tutor sessions: a tutor and a student in a space, held by a reservation."""
