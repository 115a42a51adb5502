"""Live events for the dashboard: Postgres NOTIFY on channel okxlab_events when a run ends, a fill is booked, an
order or an agent's trading state changes, a global control changes, or a replay records runs

Triggers, not application code: every writer (workers, CLI, API, reconciler) is covered by one definition, and a
notification is delivered only when its transaction commits. Replay books are left out of the row events (a
replay writes thousands of rows a second); a replay's progress (runs recorded) is one event per
statement that inserts runs instead. SQLite (the
embedded demo) has no NOTIFY: nothing is created there.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

CHANNEL = "okxlab_events"

FUNCTIONS = f"""
CREATE OR REPLACE FUNCTION okxlab_notify_row() RETURNS trigger AS $$
DECLARE
    payload jsonb;
BEGIN
    payload := jsonb_build_object('kind', TG_ARGV[0], 'agent', NEW.agent, 'book', NEW.book);
    IF TG_TABLE_NAME = 'runs' THEN
        payload := payload || jsonb_build_object('id', NEW.id, 'status', NEW.status);
    ELSIF TG_TABLE_NAME = 'fills' THEN
        payload := payload || jsonb_build_object('id', NEW.id, 'symbol', NEW.symbol, 'side', NEW.side,
                                                 'ts', NEW.ts);
    ELSIF TG_TABLE_NAME = 'orders' THEN
        payload := payload || jsonb_build_object('id', NEW.id, 'symbol', NEW.symbol, 'state', NEW.state);
    ELSIF TG_TABLE_NAME = 'risk_states' THEN
        payload := payload || jsonb_build_object('state', NEW.trading_state);
    END IF;
    PERFORM pg_notify('{CHANNEL}', payload::text);
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION okxlab_notify_control() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', jsonb_build_object('kind', 'control',
                                                      'key', COALESCE(NEW.key, OLD.key))::text);
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION okxlab_notify_replay_runs() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', jsonb_build_object('kind', 'replay', 'id', replay_id)::text)
       FROM (SELECT DISTINCT replay_id FROM new_rows WHERE replay_id IS NOT NULL) AS touched;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION okxlab_notify_replay() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', jsonb_build_object('kind', 'replay', 'id', NEW.id,
                                                      'status', NEW.status)::text);
    RETURN NULL;
END $$ LANGUAGE plpgsql;
"""

TRADING = "NEW.book NOT LIKE 'replay:%' AND NEW.book NOT LIKE 'dry:%'"
TRIGGERS = f"""
CREATE TRIGGER okxlab_run_status AFTER UPDATE OF status ON runs FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status AND {TRADING}) EXECUTE FUNCTION okxlab_notify_row('run');
CREATE TRIGGER okxlab_fill_booked AFTER INSERT ON fills FOR EACH ROW
    WHEN ({TRADING}) EXECUTE FUNCTION okxlab_notify_row('fill');
CREATE TRIGGER okxlab_order_state AFTER UPDATE OF state ON orders FOR EACH ROW
    WHEN (OLD.state IS DISTINCT FROM NEW.state AND {TRADING}) EXECUTE FUNCTION okxlab_notify_row('order');
CREATE TRIGGER okxlab_order_new AFTER INSERT ON orders FOR EACH ROW
    WHEN ({TRADING}) EXECUTE FUNCTION okxlab_notify_row('order');
CREATE TRIGGER okxlab_state_new AFTER INSERT ON risk_states FOR EACH ROW
    EXECUTE FUNCTION okxlab_notify_row('state');
CREATE TRIGGER okxlab_state_change AFTER UPDATE OF trading_state ON risk_states FOR EACH ROW
    WHEN (OLD.trading_state IS DISTINCT FROM NEW.trading_state) EXECUTE FUNCTION okxlab_notify_row('state');
CREATE TRIGGER okxlab_control AFTER INSERT OR UPDATE OR DELETE ON controls FOR EACH ROW
    EXECUTE FUNCTION okxlab_notify_control();
CREATE TRIGGER okxlab_replay_runs AFTER INSERT ON runs REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION okxlab_notify_replay_runs();
CREATE TRIGGER okxlab_replay AFTER INSERT OR UPDATE OF status ON replays FOR EACH ROW
    EXECUTE FUNCTION okxlab_notify_replay();
"""

DROPS = [("okxlab_run_status", "runs"), ("okxlab_fill_booked", "fills"), ("okxlab_order_state", "orders"),
         ("okxlab_order_new", "orders"), ("okxlab_state_new", "risk_states"),
         ("okxlab_state_change", "risk_states"), ("okxlab_control", "controls"), ("okxlab_replay_runs", "runs"),
         ("okxlab_replay", "replays")]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(FUNCTIONS)
    op.execute(TRIGGERS)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, table in DROPS:
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
    for fn in ("okxlab_notify_row", "okxlab_notify_control", "okxlab_notify_replay_runs", "okxlab_notify_replay"):
        op.execute(f"DROP FUNCTION IF EXISTS {fn}()")
