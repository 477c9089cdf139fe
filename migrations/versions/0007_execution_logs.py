"""execution logs

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 09:00:00.000000

"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "execution_logs",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("bot_id", sa.Uuid(), nullable=False),
        sa.Column(
            "ts",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("level", sa.String(length=8), nullable=False),
        sa.Column("event", sa.String(length=40), nullable=False),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("candle_ts", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "level IN ('info','warning','error')",
            name=op.f("ck_execution_logs_level_known"),
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["bot_runs.id"],
            name=op.f("fk_execution_logs_run_id_bot_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_execution_logs")),
    )
    op.create_index("ix_execution_logs_bot_id_id", "execution_logs", ["bot_id", "id"], unique=False)


def downgrade():
    op.drop_index("ix_execution_logs_bot_id_id", table_name="execution_logs")
    op.drop_table("execution_logs")
