"""identity: practices, professionals, API clients and tokens; tenant walls (RLS) and the app role

Revision ID: 0002_identity
Revises: 0001_foundation
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import rempart.db
from rempart.config import get_settings
from rempart.tenancy import (
    DEFAULT_APP_ROLE,
    FOUNDATION_TENANT_TABLES,
    app_role_sql,
    disable_tenant_rls,
    enable_tenant_rls,
)

revision = "0002_identity"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None

_PROFESSIONS = (
    "pharmacist",
    "optician",
    "audioprosthetist",
    "dentist",
    "physician",
    "midwife",
    "nurse",
    "physiotherapist",
    "lab",
    "radiology",
    "hospital",
    "transport",
)


def _enum(name: str, *values: str, length: int) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=length)


def _when() -> rempart.db.UTCDateTime:
    return rempart.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "practices",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("finess", sa.String(length=9), nullable=True),
        sa.Column("am_number", sa.String(length=9), nullable=True),
        sa.Column("profession", _enum("profession", *_PROFESSIONS, length=20), nullable=False),
        sa.Column("status", _enum("practicestatus", "active", "suspended", length=10), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.CheckConstraint("am_number IS NULL OR length(am_number) = 9", name=op.f("ck_practices_am_number_length")),
        sa.CheckConstraint("finess IS NOT NULL OR am_number IS NOT NULL", name=op.f("ck_practices_identified")),
        sa.CheckConstraint("finess IS NULL OR length(finess) = 9", name=op.f("ck_practices_finess_length")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_practices")),
        sa.UniqueConstraint("am_number", name=op.f("uq_practices_am_number")),
        sa.UniqueConstraint("finess", name=op.f("uq_practices_finess")),
    )
    op.create_table(
        "professionals",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("rpps", sa.String(length=11), nullable=False),
        sa.Column("profession", _enum("profession", *_PROFESSIONS, length=20), nullable=False),
        sa.Column("status", _enum("professionalstatus", "active", "suspended", length=10), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.CheckConstraint("length(rpps) = 11", name=op.f("ck_professionals_rpps_length")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_professionals")),
        sa.UniqueConstraint("rpps", name=op.f("uq_professionals_rpps")),
    )
    op.create_table(
        "practice_memberships",
        sa.Column("practice_id", sa.Uuid(), nullable=False),
        sa.Column("professional_id", sa.Uuid(), nullable=False),
        sa.Column("started_at", _when(), nullable=False),
        sa.Column("ended_at", _when(), nullable=True),
        sa.CheckConstraint(
            "ended_at IS NULL OR ended_at >= started_at", name=op.f("ck_practice_memberships_period_ordered")
        ),
        sa.ForeignKeyConstraint(
            ["practice_id"],
            ["practices.id"],
            name=op.f("fk_practice_memberships_practice_id_practices"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["professional_id"],
            ["professionals.id"],
            name=op.f("fk_practice_memberships_professional_id_professionals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("practice_id", "professional_id", name=op.f("pk_practice_memberships")),
    )
    op.create_index("ix_practice_memberships_professional", "practice_memberships", ["professional_id"])
    op.create_table(
        "api_clients",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("practice_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("status", _enum("clientstatus", "active", "revoked", length=10), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("expires_at", _when(), nullable=True),
        sa.Column("revoked_at", _when(), nullable=True),
        sa.CheckConstraint(
            "(status = 'revoked') = (revoked_at IS NOT NULL)", name=op.f("ck_api_clients_revocation_dated")
        ),
        sa.ForeignKeyConstraint(
            ["practice_id"], ["practices.id"], name=op.f("fk_api_clients_practice_id_practices"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_clients")),
    )
    op.create_index(op.f("ix_api_clients_practice_id"), "api_clients", ["practice_id"])
    op.create_table(
        "api_client_keys",
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("public_jwk", sa.Text(), nullable=False),
        sa.Column("status", _enum("clientkeystatus", "active", "revoked", length=10), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("revoked_at", _when(), nullable=True),
        sa.CheckConstraint(
            "(status = 'revoked') = (revoked_at IS NOT NULL)", name=op.f("ck_api_client_keys_revocation_dated")
        ),
        sa.ForeignKeyConstraint(
            ["client_id"], ["api_clients.id"], name=op.f("fk_api_client_keys_client_id_api_clients"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("client_id", "kid", name=op.f("pk_api_client_keys")),
        sa.UniqueConstraint("kid", name=op.f("uq_api_client_keys_kid")),
    )
    op.create_table(
        "access_tokens",
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("jkt", sa.String(length=64), nullable=False),
        sa.Column("issued_at", _when(), nullable=False),
        sa.Column("expires_at", _when(), nullable=False),
        sa.CheckConstraint("expires_at > issued_at", name=op.f("ck_access_tokens_lifetime_positive")),
        sa.ForeignKeyConstraint(
            ["client_id"], ["api_clients.id"], name=op.f("fk_access_tokens_client_id_api_clients"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_access_tokens")),
    )
    op.create_index("ix_access_tokens_client", "access_tokens", ["client_id"])
    op.create_index("ix_access_tokens_expires_at", "access_tokens", ["expires_at"])

    op.create_table(
        "accounts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("login", sa.String(length=254), nullable=False),
        sa.Column("user_handle", sa.LargeBinary(length=32), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "invited",
                "active",
                "suspended",
                name="accountstatus",
                native_enum=False,
                create_constraint=True,
                length=10,
            ),
            nullable=False,
        ),
        sa.Column("insurer_id", sa.Uuid(), nullable=True),
        sa.Column("practice_id", sa.Uuid(), nullable=True),
        sa.Column("professional_id", sa.Uuid(), nullable=True),
        sa.Column("beneficiary_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", rempart.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "beneficiary_id IS NULL OR insurer_id IS NOT NULL", name=op.f("ck_accounts_beneficiary_of_insurer")
        ),
        sa.CheckConstraint("insurer_id IS NULL OR practice_id IS NULL", name=op.f("ck_accounts_one_scope")),
        sa.CheckConstraint("login = lower(login) AND length(login) >= 3", name=op.f("ck_accounts_login_normalised")),
        sa.CheckConstraint(
            "professional_id IS NULL OR practice_id IS NOT NULL", name=op.f("ck_accounts_professional_in_practice")
        ),
        sa.ForeignKeyConstraint(
            ["insurer_id", "beneficiary_id"],
            ["beneficiaries.insurer_id", "beneficiaries.id"],
            name=op.f("fk_accounts_insurer_id_beneficiary_id_beneficiaries"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["insurer_id"], ["insurers.id"], name=op.f("fk_accounts_insurer_id_insurers"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["practice_id"], ["practices.id"], name=op.f("fk_accounts_practice_id_practices"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["professional_id"],
            ["professionals.id"],
            name=op.f("fk_accounts_professional_id_professionals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("login", name=op.f("uq_accounts_login")),
        sa.UniqueConstraint("user_handle", name=op.f("uq_accounts_user_handle")),
    )
    op.create_index(op.f("ix_accounts_insurer_id"), "accounts", ["insurer_id"])
    op.create_index(op.f("ix_accounts_practice_id"), "accounts", ["practice_id"])
    op.create_table(
        "account_roles",
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column(
            "role",
            sa.Enum(
                "insurer_admin",
                "claims_agent",
                "dpo",
                "practice_admin",
                "professional",
                "beneficiary",
                "security_operator",
                "platform_admin",
                "practice_software",
                name="role",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("granted_at", rempart.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("granted_by", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_account_roles_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("account_id", "role", name=op.f("pk_account_roles")),
    )
    op.create_table(
        "account_sessions",
        sa.Column("id_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("ref", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", rempart.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", rempart.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", rempart.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("authenticated_at", rempart.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=200), nullable=True),
        sa.Column("revoked_at", rempart.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_reason", sa.String(length=32), nullable=True),
        sa.CheckConstraint("expires_at > created_at", name=op.f("ck_account_sessions_lifetime_positive")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_account_sessions_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id_hash", name=op.f("pk_account_sessions")),
        sa.UniqueConstraint("ref", name=op.f("uq_account_sessions_ref")),
    )
    op.create_index(op.f("ix_account_sessions_account_id"), "account_sessions", ["account_id"])
    op.create_table(
        "enrolments",
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column(
            "purpose",
            sa.Enum("invitation", "recovery", name="enrolmentpurpose", native_enum=False, create_constraint=True),
            nullable=False,
        ),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", rempart.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", rempart.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", rempart.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("expires_at > created_at", name=op.f("ck_enrolments_lifetime_positive")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_enrolments_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_enrolments")),
    )
    op.create_index(op.f("ix_enrolments_account_id"), "enrolments", ["account_id"])
    op.create_table(
        "passkeys",
        sa.Column("credential_id", sa.LargeBinary(length=1023), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("ref", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("sign_count", sa.Integer(), nullable=False),
        sa.Column("aaguid", sa.String(length=36), nullable=False),
        sa.Column("backed_up", sa.Boolean(), nullable=False),
        sa.Column("created_at", rempart.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", rempart.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("clone_suspected_at", rempart.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("sign_count >= 0", name=op.f("ck_passkeys_sign_count_non_negative")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_passkeys_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("credential_id", name=op.f("pk_passkeys")),
        sa.UniqueConstraint("ref", name=op.f("uq_passkeys_ref")),
    )
    op.create_index(op.f("ix_passkeys_account_id"), "passkeys", ["account_id"])
    op.create_table(
        "recovery_codes",
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=200), nullable=False),
        sa.Column("created_at", rempart.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", rempart.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("slot BETWEEN 0 AND 15", name=op.f("ck_recovery_codes_slot_range")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_recovery_codes_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("account_id", "slot", name=op.f("pk_recovery_codes")),
    )
    op.create_table(
        "security_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("at", rempart.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "account_invited",
                "enrolment_completed",
                "login",
                "login_failed",
                "new_device",
                "step_up",
                "passkey_added",
                "passkey_removed",
                "passkey_clone_suspected",
                "recovery_codes_created",
                "recovery_code_used",
                "session_revoked",
                "all_sessions_revoked",
                "logout",
                "role_changed",
                "account_suspended",
                "token_refused",
                "client_created",
                "client_key_added",
                "client_key_revoked",
                "client_revoked",
                name="securityeventkind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("account_id", sa.Uuid(), nullable=True),
        sa.Column("practice_id", sa.Uuid(), nullable=True),
        sa.Column("client_id", sa.Uuid(), nullable=True),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_security_events_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_security_events")),
    )
    op.create_index("ix_security_events_account_at", "security_events", ["account_id", "at"])
    op.create_index("ix_security_events_practice_at", "security_events", ["practice_id", "at"])
    op.create_table(
        "webauthn_ceremonies",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "purpose",
            sa.Enum(
                "register",
                "login",
                "step_up",
                name="ceremonypurpose",
                native_enum=False,
                create_constraint=True,
                length=10,
            ),
            nullable=False,
        ),
        sa.Column("challenge", sa.LargeBinary(length=64), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=True),
        sa.Column("login_digest", sa.LargeBinary(length=32), nullable=True),
        sa.Column("enrolment_hash", sa.LargeBinary(length=32), nullable=True),
        sa.Column("session_hash", sa.LargeBinary(length=32), nullable=True),
        sa.Column("expires_at", rempart.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_webauthn_ceremonies_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webauthn_ceremonies")),
    )
    op.create_index(op.f("ix_webauthn_ceremonies_expires_at"), "webauthn_ceremonies", ["expires_at"])

    # -- tenant walls (PostgreSQL only) ----------------------------------------------------------
    if op.get_bind().dialect.name == "postgresql":
        for statement in app_role_sql(get_settings().database_app_role or DEFAULT_APP_ROLE):
            op.execute(statement)
    enable_tenant_rls(op, *FOUNDATION_TENANT_TABLES)


def downgrade() -> None:
    disable_tenant_rls(op, *FOUNDATION_TENANT_TABLES)
    for table in (
        "webauthn_ceremonies",
        "security_events",
        "recovery_codes",
        "passkeys",
        "enrolments",
        "account_sessions",
        "account_roles",
        "accounts",
    ):
        op.drop_table(table)
    op.drop_index("ix_access_tokens_expires_at", table_name="access_tokens")
    op.drop_index("ix_access_tokens_client", table_name="access_tokens")
    op.drop_table("access_tokens")
    op.drop_table("api_client_keys")
    op.drop_index(op.f("ix_api_clients_practice_id"), table_name="api_clients")
    op.drop_table("api_clients")
    op.drop_index("ix_practice_memberships_professional", table_name="practice_memberships")
    op.drop_table("practice_memberships")
    op.drop_table("professionals")
    op.drop_table("practices")
