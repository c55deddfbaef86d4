"""Moved to :mod:`rempart.tenancy` (the readers that answer "not found" for missing and forbidden).

Re-exported here for tests that still import it from identity; new code imports ``rempart.tenancy``.
"""

from __future__ import annotations

from rempart.tenancy import access_owned, owned_by

__all__ = ["access_owned", "owned_by"]
