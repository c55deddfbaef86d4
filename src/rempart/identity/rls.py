"""Moved to :mod:`rempart.tenancy` (the SQL wall and row-level security in one place).

Re-exported here for the modules that still import it from identity: ``rempart.audit.breakglass``
and tests. New code imports ``rempart.tenancy``.
"""

from __future__ import annotations

from rempart.tenancy import (
    DEFAULT_APP_ROLE,
    FOUNDATION_TENANT_TABLES,
    POLICY_NAME,
    app_role_sql,
    bind_tenant,
    bound_tenant,
    disable_tenant_rls,
    enable_tenant_rls,
    rls_active,
    tenant,
    tenant_policy_sql,
    use_app_role,
)

__all__ = [
    "DEFAULT_APP_ROLE",
    "FOUNDATION_TENANT_TABLES",
    "POLICY_NAME",
    "app_role_sql",
    "bind_tenant",
    "bound_tenant",
    "disable_tenant_rls",
    "enable_tenant_rls",
    "rls_active",
    "tenant",
    "tenant_policy_sql",
    "use_app_role",
]
