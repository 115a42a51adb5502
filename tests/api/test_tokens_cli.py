"""`okxlab tokens create | list | revoke`: the token printed once on stdout, then only its name and scope."""

from __future__ import annotations

from click.testing import CliRunner
from sqlalchemy import select

from okxlab.cli.main import main
from okxlab.db.models import ApiToken
from okxlab.db.session import session_factory, session_scope
from okxlab.service import tokens


def test_create_list_revoke(api_env: str) -> None:
    created = CliRunner().invoke(main, ["tokens", "create", "grafana", "--scope", "read"])
    assert created.exit_code == 0, created.output
    token = created.stdout.strip()
    assert token.startswith("okxlab_") and len(token.splitlines()) == 1 and "shown only now" in created.stderr
    assert tokens.authenticate(session_factory(api_env), token) == {"name": "grafana", "scope": "read"}
    with session_scope(api_env) as s:
        assert s.scalar(select(ApiToken.token_sha256).where(ApiToken.name == "grafana")) == tokens.digest(token)
    listed = CliRunner().invoke(main, ["tokens", "list"])
    assert "grafana  read" in listed.stdout and token not in listed.stdout
    assert CliRunner().invoke(main, ["tokens", "revoke", "grafana"]).stdout == "token grafana revoked\n"
    assert tokens.authenticate(session_factory(api_env), token) is None
    again = CliRunner().invoke(main, ["tokens", "revoke", "grafana"])
    assert again.exit_code == 2 and again.stderr.startswith("okxlab: error: token 'grafana' was already revoked")


def test_mistakes_are_one_line(api_env: str) -> None:
    CliRunner().invoke(main, ["tokens", "create", "ci", "--scope", "operate"])
    dup = CliRunner().invoke(main, ["tokens", "create", "ci", "--scope", "read"])
    assert dup.exit_code == 2 and dup.stderr == "okxlab: error: a token named 'ci' already exists; revoke it or pick " \
                                                 "another name\n"
    bad = CliRunner().invoke(main, ["tokens", "create", "bad name!", "--scope", "read"])
    assert bad.exit_code == 2 and bad.stderr.startswith("okxlab: error: token name 'bad name!' must be")
    scope = CliRunner().invoke(main, ["tokens", "create", "x", "--scope", "root"])
    assert scope.exit_code == 2 and "'root' is not one of 'read', 'operate', 'admin'" in scope.stderr
