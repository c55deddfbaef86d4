"""Roles and the permissions they grant.

A permission is named ``scope:resource:action``. Every route declares the permission it needs with
``rempart.identity.deps.requires``; a route that declares none refuses everybody (deny by default).
Other domains add their permission here, next to the role that holds it.
"""

from __future__ import annotations

from enum import StrEnum


class Permission(StrEnum):
    # Professional channels: practice software and the professional portal.
    CARE_RIGHTS_CHECK_CREATE = "care:rights-check:create"
    CARE_QUOTE_CREATE = "care:quote:create"
    CARE_PRIOR_APPROVAL_CREATE = "care:prior-approval:create"
    CARE_PRIOR_APPROVAL_READ = "care:prior-approval:read"
    CARE_PRIOR_APPROVAL_CANCEL = "care:prior-approval:cancel"
    CARE_CLAIM_CREATE = "care:claim:create"
    CARE_CLAIM_READ = "care:claim:read"
    CARE_REMITTANCE_READ = "care:remittance:read"
    # Who am I acting as: lets integrators check their client, key and DPoP setup.
    CARE_CALLER_READ = "care:caller:read"
    # A practice's administration of its own clients, keys and professionals.
    PRACTICE_CLIENT_MANAGE = "practice:client:manage"
    PRACTICE_PROFESSIONAL_INVITE = "practice:professional:invite"
    # Insurer back office.
    INSURER_PRODUCT_READ = "insurer:product:read"
    INSURER_PRODUCT_MANAGE = "insurer:product:manage"
    INSURER_MEMBER_READ = "insurer:member:read"
    INSURER_MEMBER_IMPORT = "insurer:member:import"
    INSURER_CLAIM_READ = "insurer:claim:read"
    INSURER_CLAIM_REVIEW = "insurer:claim:review"
    INSURER_PAYMENT_RUN_MANAGE = "insurer:payment-run:manage"
    INSURER_EXPORT_REQUEST = "insurer:export:request"
    INSURER_EXPORT_APPROVE = "insurer:export:approve"
    INSURER_STAFF_INVITE = "insurer:staff:invite"
    INSURER_ACCESS_LOG_READ = "insurer:access-log:read"
    INSURER_ACCESS_LOG_MANAGE = "insurer:access-log:manage"  # e.g. show staff names to members
    INSURER_INCIDENT_READ = "insurer:incident:read"
    INSURER_BENEFICIARY_INVITE = "insurer:beneficiary:invite"
    # The insurer's API clients (its nightly jobs): registering them, their keys and scopes.
    INSURER_CLIENT_MANAGE = "insurer:client:manage"
    # Beneficiary portal: their own card, rights and access log.
    ME_CARD_READ = "me:card:read"
    ME_RIGHTS_READ = "me:rights:read"
    ME_ACCESS_LOG_READ = "me:access-log:read"
    # Every human account: own passkeys, sessions and security events.
    ACCOUNT_SELF_MANAGE = "account:self:manage"
    # Security console.
    SECURITY_ALERT_READ = "security:alert:read"
    SECURITY_ALERT_MANAGE = "security:alert:manage"
    SECURITY_ACCOUNT_CONTAIN = "security:account:contain"
    SECURITY_KILL_SWITCH_MANAGE = "security:kill-switch:manage"
    SECURITY_INCIDENT_MANAGE = "security:incident:manage"
    SECURITY_EVENT_READ = "security:event:read"
    # Break-glass: one operator asks, a second approves (the access log's four-eyes rule).
    SECURITY_BREAK_GLASS_REQUEST = "security:break-glass:request"
    SECURITY_BREAK_GLASS_APPROVE = "security:break-glass:approve"
    # Platform administration.
    PLATFORM_INSURER_CREATE = "platform:insurer:create"
    PLATFORM_INSURER_ADMIN_INVITE = "platform:insurer-admin:invite"
    PLATFORM_PRACTICE_CREATE = "platform:practice:create"
    PLATFORM_SECURITY_OPERATOR_INVITE = "platform:security-operator:invite"


class Role(StrEnum):
    INSURER_ADMIN = "insurer_admin"
    CLAIMS_AGENT = "claims_agent"
    DPO = "dpo"  # the insurer's data protection officer
    PRACTICE_ADMIN = "practice_admin"
    PROFESSIONAL = "professional"
    BENEFICIARY = "beneficiary"
    SECURITY_OPERATOR = "security_operator"
    PLATFORM_ADMIN = "platform_admin"
    # Not a human: the practice's billing software, through an API client.
    PRACTICE_SOFTWARE = "practice_software"


INSURER_ROLES = frozenset({Role.INSURER_ADMIN, Role.CLAIMS_AGENT, Role.DPO})
PRACTICE_ROLES = frozenset({Role.PRACTICE_ADMIN, Role.PROFESSIONAL})
HUMAN_ROLES = frozenset(Role) - {Role.PRACTICE_SOFTWARE}

_CARE = frozenset(
    {
        Permission.CARE_RIGHTS_CHECK_CREATE,
        Permission.CARE_QUOTE_CREATE,
        Permission.CARE_PRIOR_APPROVAL_CREATE,
        Permission.CARE_PRIOR_APPROVAL_READ,
        Permission.CARE_PRIOR_APPROVAL_CANCEL,
        Permission.CARE_CLAIM_CREATE,
        Permission.CARE_CLAIM_READ,
        Permission.CARE_REMITTANCE_READ,
        Permission.CARE_CALLER_READ,
    }
)
_SELF = frozenset({Permission.ACCOUNT_SELF_MANAGE})

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.PRACTICE_SOFTWARE: _CARE,
    Role.PROFESSIONAL: _CARE | _SELF,
    Role.PRACTICE_ADMIN: _CARE | _SELF | {Permission.PRACTICE_CLIENT_MANAGE, Permission.PRACTICE_PROFESSIONAL_INVITE},
    Role.INSURER_ADMIN: _SELF
    | {
        Permission.INSURER_PRODUCT_READ,
        Permission.INSURER_PRODUCT_MANAGE,
        Permission.INSURER_MEMBER_READ,
        Permission.INSURER_MEMBER_IMPORT,
        Permission.INSURER_CLAIM_READ,
        Permission.INSURER_PAYMENT_RUN_MANAGE,
        Permission.INSURER_EXPORT_REQUEST,
        Permission.INSURER_EXPORT_APPROVE,
        Permission.INSURER_STAFF_INVITE,
        Permission.INSURER_BENEFICIARY_INVITE,
        Permission.INSURER_CLIENT_MANAGE,
        Permission.INSURER_INCIDENT_READ,
    },
    Role.CLAIMS_AGENT: _SELF
    | {
        Permission.INSURER_PRODUCT_READ,
        Permission.INSURER_MEMBER_READ,
        Permission.INSURER_CLAIM_READ,
        Permission.INSURER_CLAIM_REVIEW,
        Permission.INSURER_EXPORT_REQUEST,
    },
    Role.DPO: _SELF
    | {
        Permission.INSURER_ACCESS_LOG_READ,
        Permission.INSURER_ACCESS_LOG_MANAGE,
        Permission.INSURER_INCIDENT_READ,
        Permission.INSURER_EXPORT_APPROVE,
        Permission.INSURER_PRODUCT_READ,
    },
    Role.BENEFICIARY: _SELF | {Permission.ME_CARD_READ, Permission.ME_RIGHTS_READ, Permission.ME_ACCESS_LOG_READ},
    Role.SECURITY_OPERATOR: _SELF
    | {
        Permission.SECURITY_ALERT_READ,
        Permission.SECURITY_ALERT_MANAGE,
        Permission.SECURITY_ACCOUNT_CONTAIN,
        Permission.SECURITY_KILL_SWITCH_MANAGE,
        Permission.SECURITY_INCIDENT_MANAGE,
        Permission.SECURITY_EVENT_READ,
        Permission.SECURITY_BREAK_GLASS_REQUEST,
        Permission.SECURITY_BREAK_GLASS_APPROVE,
    },
    Role.PLATFORM_ADMIN: _SELF
    | {
        Permission.PLATFORM_INSURER_CREATE,
        Permission.PLATFORM_INSURER_ADMIN_INVITE,
        Permission.PLATFORM_PRACTICE_CREATE,
        Permission.PLATFORM_SECURITY_OPERATOR_INVITE,
    },
}

# Roles whose holders can reach personal data; they log in with passkeys only (invariant 1).
PERSONAL_DATA_ROLES = frozenset(
    role
    for role, perms in ROLE_PERMISSIONS.items()
    if perms
    & {
        Permission.CARE_RIGHTS_CHECK_CREATE,
        Permission.INSURER_MEMBER_READ,
        Permission.INSURER_ACCESS_LOG_READ,
        Permission.ME_CARD_READ,
        Permission.SECURITY_INCIDENT_MANAGE,
    }
)


def permissions_of(roles: frozenset[Role]) -> frozenset[Permission]:
    granted: frozenset[Permission] = frozenset()
    for role in roles:
        granted |= ROLE_PERMISSIONS[role]
    return granted


# -- insurer API clients: a machine's grant is its scopes, never a role ---------------------------


class ClientScope(StrEnum):
    """What an insurer's API client (a nightly job, no person involved) may be granted."""

    MEMBERS_IMPORT = "members:import"
    CLAIMS_REVIEW = "claims:review"
    PAYMENT_RUNS = "payment-runs"
    ACCESS_LOG_READ = "access-log:read"


# Deliberately absent: INSURER_MEMBER_READ (a machine never reads members' identities: the bulk
# leak Rempart exists to stop), product management, exports, staff and beneficiary invitations,
# and every ``account:``/``security:`` permission.
SCOPE_PERMISSIONS: dict[ClientScope, frozenset[Permission]] = {
    ClientScope.MEMBERS_IMPORT: frozenset({Permission.INSURER_MEMBER_IMPORT}),
    ClientScope.CLAIMS_REVIEW: frozenset({Permission.INSURER_CLAIM_READ, Permission.INSURER_CLAIM_REVIEW}),
    ClientScope.PAYMENT_RUNS: frozenset({Permission.INSURER_PAYMENT_RUN_MANAGE}),
    ClientScope.ACCESS_LOG_READ: frozenset({Permission.INSURER_ACCESS_LOG_READ}),
}


def parse_scopes(value: str) -> frozenset[ClientScope]:
    """The scopes of a stored ``scopes`` column; an unknown word grants nothing."""
    known = {s.value: s for s in ClientScope}
    return frozenset(known[word] for word in value.split() if word in known)


def permissions_of_scopes(scopes: frozenset[ClientScope]) -> frozenset[Permission]:
    granted: frozenset[Permission] = frozenset()
    for scope in scopes:
        granted |= SCOPE_PERMISSIONS[scope]
    return granted
