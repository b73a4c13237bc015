"""Consent (issue 9): the invitations a booking sends, and the invitees' answers."""
