"""bot schedules

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 09:00:00.000000

"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column(
        "bots",
        sa.Column("schedule", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )
    op.create_index(
        "ix_bots_status_scheduled",
        "bots",
        ["status"],
        unique=False,
        postgresql_where=sa.text("schedule IS NOT NULL"),
    )
    op.add_column("bot_runs", sa.Column("paused_by", sa.String(length=16), nullable=True))
    op.create_check_constraint(
        op.f("ck_bot_runs_paused_by_known"), "bot_runs", "paused_by IN ('owner','schedule')"
    )


def downgrade():
    op.drop_constraint(op.f("ck_bot_runs_paused_by_known"), "bot_runs", type_="check")
    op.drop_column("bot_runs", "paused_by")
    op.drop_index("ix_bots_status_scheduled", table_name="bots")
    op.drop_column("bots", "schedule")
