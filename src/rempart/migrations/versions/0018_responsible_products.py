"""products: whether each is a "contrat responsable" (art. L.871-1 and R.871-2 CSS); every existing
product is, as almost every French complementary contract is

Revision ID: 0018_responsible_products
Revises: 0017_reference_acts
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018_responsible_products"
down_revision = "0017_reference_acts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NOT NULL with a server default: the rows already there are responsible, and so is any row an
    # older client inserts without the column.
    op.add_column("products", sa.Column("responsible", sa.Boolean(), server_default=sa.true(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("products") as batch:
        batch.drop_column("responsible")
