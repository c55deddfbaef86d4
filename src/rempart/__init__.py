"""Rempart: third-party payment for complementary health insurers, built to survive a phished login."""

__version__ = "0.1.0"
