"""reference nomenclature: the act and device codes the platform accepts per care domain, their
reimbursement base, compulsory rate and 100 % Santé facts, one set per version and effective date

Revision ID: 0017_reference_acts
Revises: 0016_product_events

Platform-wide data, read by every insurer's quotes and claims: no insurer_id, so no row-level
security; the application role's default privileges (0001) already grant it access.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import rempart.db

revision = "0017_reference_acts"
down_revision = "0016_product_events"
branch_labels = None
depends_on = None

_TIME = rempart.db.UTCDateTime(timezone=True)
_DOMAINS = ("PHAR", "OPTI", "AUDI", "DENT", "HOSP", "CONS", "LABO", "AUXM", "RADI", "TRAN")


def _enum(name: str, length: int, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=length)


def upgrade() -> None:
    op.create_table(
        "reference_versions",
        sa.Column("version", sa.String(length=20), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("loaded_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_reference_versions")),
        sa.UniqueConstraint("effective_from", name=op.f("uq_reference_versions_effective_from")),
    )
    op.create_table(
        "reference_acts",
        sa.Column("version", sa.String(length=20), nullable=False),
        sa.Column("care_domain", _enum("caredomain", 4, *_DOMAINS), nullable=False),
        sa.Column("code", sa.String(length=20), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("base_cents", sa.Integer(), nullable=False),
        sa.Column("amo_rate_pct", sa.Integer(), nullable=False),
        sa.Column("sante_100_class", _enum("sante100class", 1, "A", "B"), nullable=True),
        sa.Column("regulated_price_cents", sa.Integer(), nullable=True),
        sa.Column("device_kind", _enum("devicekind", 11, "frame", "lens", "hearing_aid"), nullable=True),
        sa.Column("correction", _enum("correction", 12, "simple", "complex", "very_complex"), nullable=True),
        sa.Column("hearing_class", _enum("hearingclass", 2, "I", "II"), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.CheckConstraint("base_cents >= 0", name=op.f("ck_reference_acts_base_not_negative")),
        sa.CheckConstraint("amo_rate_pct BETWEEN 0 AND 100", name=op.f("ck_reference_acts_rate_is_a_percentage")),
        sa.CheckConstraint(
            "regulated_price_cents IS NULL OR regulated_price_cents >= 0",
            name=op.f("ck_reference_acts_price_not_negative"),
        ),
        sa.CheckConstraint(
            "sante_100_class IS NULL OR sante_100_class <> 'A' OR regulated_price_cents IS NOT NULL",
            name=op.f("ck_reference_acts_class_a_has_a_regulated_price"),
        ),
        sa.ForeignKeyConstraint(
            ["version"], ["reference_versions.version"], name=op.f("fk_reference_acts_version_reference_versions")
        ),
        sa.PrimaryKeyConstraint("version", "care_domain", "code", name=op.f("pk_reference_acts")),
    )
    op.create_index("ix_reference_acts_lookup", "reference_acts", ["care_domain", "code", "effective_from"])


def downgrade() -> None:
    op.drop_index("ix_reference_acts_lookup", table_name="reference_acts")
    op.drop_table("reference_acts")
    op.drop_table("reference_versions")
