"""bot trades and equity

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 09:00:00.000000

"""

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "bot_trades",
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("client_order_id", sa.String(length=80), nullable=False),
        sa.Column("side", sa.String(length=5), nullable=False),
        sa.Column("units", sa.Float(), nullable=False),
        sa.Column("entry_ts", sa.BigInteger(), nullable=False),
        sa.Column("entry_price", sa.Float(), nullable=False),
        sa.Column("exit_ts", sa.BigInteger(), nullable=False),
        sa.Column("exit_price", sa.Float(), nullable=False),
        sa.Column("fees", sa.Float(), nullable=False),
        sa.Column("pnl", sa.Float(), nullable=False),
        sa.Column("pnl_pct", sa.Float(), nullable=False),
        sa.Column("exit_reason", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["bot_runs.id"],
            name=op.f("fk_bot_trades_run_id_bot_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "client_order_id", name=op.f("pk_bot_trades")),
    )
    op.create_index(
        "ix_bot_trades_run_id_exit_ts", "bot_trades", ["run_id", "exit_ts"], unique=False
    )
    op.create_table(
        "bot_equity",
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("equity", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["bot_runs.id"],
            name=op.f("fk_bot_equity_run_id_bot_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "ts", name=op.f("pk_bot_equity")),
    )


def downgrade():
    op.drop_table("bot_equity")
    op.drop_index("ix_bot_trades_run_id_exit_ts", table_name="bot_trades")
    op.drop_table("bot_trades")
