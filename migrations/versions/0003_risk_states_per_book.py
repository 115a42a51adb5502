"""risk_states: an agent's trading state per book (a replay's halts never touch live trading)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_STATE = ("trading_state", "state_reason", "state_changed_at", "consecutive_invalid_plans", "consecutive_rejections",
          "daily_loss_day", "drawdown_reset_snapshot_id")


def upgrade() -> None:
    op.create_table(
        "risk_states",
        sa.Column("agent", sa.String(length=40), nullable=False),
        sa.Column("book", sa.String(length=24), nullable=False),
        sa.Column("trading_state", sa.String(length=12), nullable=False),
        sa.Column("state_reason", sa.Text(), nullable=True),
        sa.Column("state_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("consecutive_invalid_plans", sa.Integer(), nullable=False),
        sa.Column("consecutive_rejections", sa.Integer(), nullable=False),
        sa.Column("daily_loss_day", sa.Date(), nullable=True),
        sa.Column("drawdown_reset_snapshot_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["agent"], ["agents.name"], name=op.f("fk_risk_states_agent_agents")),
        sa.PrimaryKeyConstraint("agent", "book", name=op.f("pk_risk_states")),
    )
    # Until now one state per agent served every book; it belonged to the scheduled (sim) pipeline.
    op.execute(
        "INSERT INTO risk_states (agent, book, " + ", ".join(_STATE) + ", updated_at) "
        "SELECT name, 'sim', " + ", ".join(_STATE) + ", updated_at FROM agents"
    )
    with op.batch_alter_table("agents") as batch_op:
        for column in _STATE:
            batch_op.drop_column(column)


def downgrade() -> None:
    with op.batch_alter_table("agents") as batch_op:
        batch_op.add_column(sa.Column("trading_state", sa.String(length=12), nullable=False, server_default="ACTIVE"))
        batch_op.add_column(sa.Column("state_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("state_changed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("consecutive_invalid_plans", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("consecutive_rejections", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("daily_loss_day", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("drawdown_reset_snapshot_id", sa.Integer(), nullable=True))
    op.drop_table("risk_states")
