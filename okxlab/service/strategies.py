"""Checking a strategy document sent inline (or a builtin by name). Never a path: a caller over the network
must not make the server read its files."""

from __future__ import annotations

from typing import Any

from okxlab.errors import UserError
from okxlab.strategies.load import BUILTIN_PREFIX, StrategyError, build_strategy, read_document


def validate(document: Any | None, builtin: str | None, params: dict[str, Any]) -> dict[str, Any]:
    """{"valid": true, name, version} or {"valid": false, problems: [{path, message}]}."""
    if (document is None) == (builtin is None):
        raise UserError("give exactly one of document (a strategy JSON object) or builtin (a builtin's name)")
    source = "<document>"
    if builtin is not None:
        document, source = read_document(BUILTIN_PREFIX + builtin)
    try:
        strategy = build_strategy(document, params, source)
    except StrategyError as exc:
        return {"valid": False, "source": source,
                "problems": [{"path": p.path, "message": p.message} for p in exc.problems]}
    return {"valid": True, "source": source, "name": strategy.name, "version": strategy.version_tag}
