"""Offline attestations: signed tokens a beneficiary can show without a connection."""
