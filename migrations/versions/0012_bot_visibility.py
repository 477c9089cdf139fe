"""bot visibility: private (the default), unlisted or public

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 23:09:24.091823

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade():
    # Every existing bot stays private: nobody chose to show it.
    with op.batch_alter_table("bots", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("visibility", sa.String(length=16), server_default="private", nullable=False)
        )
    op.create_check_constraint(
        op.f("ck_bots_visibility_known"), "bots", "visibility IN ('private','unlisted','public')"
    )


def downgrade():
    op.drop_constraint(op.f("ck_bots_visibility_known"), "bots", type_="check")
    with op.batch_alter_table("bots", schema=None) as batch_op:
        batch_op.drop_column("visibility")
