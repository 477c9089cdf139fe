"""execution logs: a BRIN index on ts for the retention purge

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25 14:10:00.000000

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_execution_logs_ts_brin", "execution_logs", ["ts"], postgresql_using="brin")


def downgrade():
    op.drop_index("ix_execution_logs_ts_brin", table_name="execution_logs")
