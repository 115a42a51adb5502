"""JSON output: datetimes as ISO strings, and non-finite floats (a profit factor with no losses) as null, since
JSON has no NaN or Infinity."""

from __future__ import annotations

import json
import math
from typing import Any

from fastapi.responses import JSONResponse

from okxlab.api.errors import ErrorBody


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


class SafeJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return json.dumps(_finite(content), ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The documented error responses of a route (every one has the same body)."""
    return {s: {"model": ErrorBody} for s in statuses}


READ_ERRORS = errors(401, 403, 404, 422)
WRITE_ERRORS = errors(400, 401, 403, 404, 409, 422)
