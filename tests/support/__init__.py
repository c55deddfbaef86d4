"""Helpers shared by the test suites of every domain (practice clients, passkeys, clocks)."""
