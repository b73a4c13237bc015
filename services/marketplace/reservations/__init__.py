"""Reservations: booking a space with no double booking, confirming, cancelling, completing."""
