"""bot runs

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 09:00:00.000000

"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "bot_runs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("bot_id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="running", nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("initial_capital", sa.Float(), nullable=False),
        sa.Column("broker_state", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("last_candle_ts", sa.BigInteger(), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('running','paused','stopped','error')",
            name=op.f("ck_bot_runs_status_known"),
        ),
        sa.CheckConstraint(
            "consecutive_failures >= 0", name=op.f("ck_bot_runs_failures_non_negative")
        ),
        sa.ForeignKeyConstraint(
            ["bot_id"], ["bots.id"], name=op.f("fk_bot_runs_bot_id_bots"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_bot_runs_owner_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bot_runs")),
    )
    op.create_index(
        "ix_bot_runs_bot_id_started_at", "bot_runs", ["bot_id", "started_at"], unique=False
    )
    op.create_index("ix_bot_runs_owner_id", "bot_runs", ["owner_id"], unique=False)
    op.create_index(
        "uq_bot_runs_bot_id_active",
        "bot_runs",
        ["bot_id"],
        unique=True,
        postgresql_where=sa.text("status IN ('running','paused')"),
    )


def downgrade():
    op.drop_index("uq_bot_runs_bot_id_active", table_name="bot_runs")
    op.drop_index("ix_bot_runs_owner_id", table_name="bot_runs")
    op.drop_index("ix_bot_runs_bot_id_started_at", table_name="bot_runs")
    op.drop_table("bot_runs")
