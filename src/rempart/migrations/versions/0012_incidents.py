"""incidents: the breach response's incidents, scopes, per-insurer facts, subjects and timeline

Revision ID: 0012_incidents
Revises: 0011_attestations, 0010_passkey_renamed, 0009_audit_indexes_pg

It joins the domains' branches (care, identity, audit, detection): incidents read all of them, and
a new kind of alert (the 72-hour clock's) changes detection's table.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import rempart.db
from rempart.migrations.constraints import replace_check, values_in
from rempart.tenancy import disable_tenant_rls, enable_tenant_rls

revision = "0012_incidents"
down_revision = ("0011_attestations", "0010_passkey_renamed", "0009_audit_indexes_pg")
branch_labels = None
depends_on = None

_TIME = rempart.db.UTCDateTime(timezone=True)
_ALERT_KINDS = ("containment", "signal", "beneficiary_spread", "aggregate", "counter_store_unreachable")


def _enum(name: str, length: int, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=length)


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("reference", sa.String(length=20), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("nature", sa.String(length=60), nullable=False),
        sa.Column("status", _enum("incidentstatus", 10, "open", "contained", "closed"), nullable=False),
        sa.Column("detected_at", _TIME, nullable=False),
        sa.Column("aware_at", _TIME, nullable=False),
        sa.Column("contained_at", _TIME, nullable=True),
        sa.Column("closed_at", _TIME, nullable=True),
        sa.Column("contact", sa.String(length=300), nullable=False),
        sa.Column("measures_taken", sa.JSON(), nullable=False),
        sa.Column("measures_proposed", sa.JSON(), nullable=False),
        sa.Column("delay_reason", sa.Text(), nullable=True),
        sa.Column("keys_compromised", sa.Boolean(), nullable=False),
        sa.Column("alert_id", sa.Uuid(), nullable=True),
        sa.Column("opened_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("facts_computed_at", _TIME, nullable=True),
        sa.Column("log_verified", sa.Boolean(), nullable=True),
        sa.Column("log_problem", sa.Text(), nullable=True),
        sa.CheckConstraint("aware_at >= detected_at", name=op.f("ck_incidents_aware_after_detection")),
        sa.CheckConstraint("nature <> ''", name=op.f("ck_incidents_has_a_nature")),
        sa.CheckConstraint("status <> 'closed' OR closed_at IS NOT NULL", name=op.f("ck_incidents_closed_has_a_time")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
        sa.UniqueConstraint("reference", name=op.f("uq_incidents_reference")),
    )
    op.create_table(
        "incident_scopes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("since", _TIME, nullable=False),
        sa.Column("until", _TIME, nullable=False),
        sa.Column("actor_ids", sa.JSON(), nullable=False),
        sa.Column("practice_ids", sa.JSON(), nullable=False),
        sa.Column("professional_ids", sa.JSON(), nullable=False),
        sa.Column("added_at", _TIME, nullable=False),
        sa.Column("added_by", sa.Uuid(), nullable=True),
        sa.CheckConstraint("until > since", name=op.f("ck_incident_scopes_window_ordered")),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name=op.f("fk_incident_scopes_incident_id_incidents"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_scopes")),
    )
    op.create_index("ix_incident_scopes_incident", "incident_scopes", ["incident_id"])
    op.create_table(
        "incident_insurers",
        sa.Column("insurer_id", sa.Uuid(), nullable=False),
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("people", sa.Integer(), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("attempted", sa.Integer(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("notice_sent_at", _TIME, nullable=True),
        sa.Column("authority_notified_at", _TIME, nullable=True),
        sa.Column("letters", _enum("lettersdecision", 12, "pending", "send", "not_required"), nullable=False),
        sa.Column("computed_at", _TIME, nullable=False),
        sa.CheckConstraint(
            "people >= 0 AND records >= 0 AND attempted >= 0", name=op.f("ck_incident_insurers_counts_non_negative")
        ),
        sa.ForeignKeyConstraint(
            ["insurer_id"], ["insurers.id"], name=op.f("fk_incident_insurers_insurer_id_insurers"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_incident_insurers_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("insurer_id", "incident_id", name=op.f("pk_incident_insurers")),
    )
    op.create_table(
        "incident_subjects",
        sa.Column("insurer_id", sa.Uuid(), nullable=False),
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("beneficiary_id", sa.Uuid(), nullable=False),
        sa.Column("disclosed", sa.Boolean(), nullable=False),
        sa.Column("fields", sa.String(length=400), nullable=False),
        sa.Column("channels", sa.String(length=200), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("first_seen", _TIME, nullable=True),
        sa.Column("last_seen", _TIME, nullable=True),
        sa.CheckConstraint("disclosed OR fields = ''", name=op.f("ck_incident_subjects_nothing_seen_unless_disclosed")),
        sa.ForeignKeyConstraint(
            ["insurer_id", "incident_id"],
            ["incident_insurers.insurer_id", "incident_insurers.incident_id"],
            name=op.f("fk_incident_subjects_insurer_id_incident_insurers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["insurer_id", "beneficiary_id"],
            ["beneficiaries.insurer_id", "beneficiaries.id"],
            name=op.f("fk_incident_subjects_insurer_id_beneficiaries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("insurer_id", "incident_id", "beneficiary_id", name=op.f("pk_incident_subjects")),
    )
    op.create_index("ix_incident_subjects_beneficiary", "incident_subjects", ["insurer_id", "beneficiary_id"])
    op.create_table(
        "incident_actions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("at", _TIME, nullable=False),
        sa.Column(
            "kind",
            _enum(
                "actionkind",
                20,
                "opened",
                "scope_added",
                "facts_computed",
                "contained",
                "notice_sent",
                "authority_notified",
                "letters_decided",
                "exported",
                "note",
                "closed",
            ),
            nullable=False,
        ),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("insurer_id", sa.Uuid(), nullable=True),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_incident_actions_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_actions")),
    )
    op.create_index("ix_incident_actions_incident", "incident_actions", ["incident_id", "at"])
    enable_tenant_rls(op, "incident_insurers", "incident_subjects")
    replace_check("alerts", "alertkind", values_in("kind", (*_ALERT_KINDS, "incident_deadline")))


def downgrade() -> None:
    alerts = sa.table("alerts", sa.column("kind", sa.String))
    op.execute(sa.delete(alerts).where(alerts.c.kind == "incident_deadline"))
    replace_check("alerts", "alertkind", values_in("kind", _ALERT_KINDS))
    disable_tenant_rls(op, "incident_insurers", "incident_subjects")
    op.drop_table("incident_actions")
    op.drop_table("incident_subjects")
    op.drop_table("incident_insurers")
    op.drop_table("incident_scopes")
    op.drop_table("incidents")
