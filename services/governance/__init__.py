"""Governance: communities with their own rules, proposals, one-human-one-vote voting,
quorum, the proposal lifecycle, anchored results and versioned community standards."""
