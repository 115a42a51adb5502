"""Trading turns and kill switches at the order: one trading run per (agent, book) at a time

- risk_states.trading_run_id: the run between its risk verdict and the end of its order stage, if any;
  risk_states.trading_epoch: how many turns were ever taken in the book (a snapshot older than the
  latest turn is stale).
- account_snapshots.trading_epoch: the epoch the snapshot was taken in (NULL: taken while another run of
  the same book was trading, so it may miss that run's orders).
- the global pause's control row always exists, so the order claim can lock it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("risk_states") as batch_op:
        batch_op.add_column(sa.Column("trading_run_id", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("trading_epoch", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("account_snapshots") as batch_op:
        batch_op.add_column(sa.Column("trading_epoch", sa.Integer(), nullable=True))
    op.execute("INSERT INTO controls (key, value, updated_at) SELECT 'global_pause', '{\"paused\": false}', "
               "CURRENT_TIMESTAMP WHERE NOT EXISTS (SELECT 1 FROM controls WHERE key = 'global_pause')")


def downgrade() -> None:
    with op.batch_alter_table("account_snapshots") as batch_op:
        batch_op.drop_column("trading_epoch")
    with op.batch_alter_table("risk_states") as batch_op:
        batch_op.drop_column("trading_epoch")
        batch_op.drop_column("trading_run_id")
