"""Reading request parameters the way OKX checks them: every malformed value is an OkxError, never a crash."""

from __future__ import annotations

import math
import re
from typing import Any

from okxlab.simulator.errors import OkxError, missing, param_error

_CLORD = re.compile(r"^[A-Za-z0-9]{1,32}$")
_TAG = re.compile(r"^[A-Za-z0-9]{1,16}$")
# A decimal as OKX reads one: ASCII digits only (Python's float() also takes "1_0", "١", " 1 ", "nan", "inf").
_DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_INTEGER = re.compile(r"[+-]?[0-9]{1,30}")


def text(src: dict[str, Any], name: str, required: bool = False, default: str = "") -> str:
    value = src.get(name)
    if value is None or value == "":
        if required:
            raise missing(name)
        return default
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise param_error(name)
    return str(value)


def number(src: dict[str, Any], name: str, required: bool = False, positive: bool = True,
           allow_minus_one: bool = False) -> float | None:
    """A decimal parameter (OKX sends numbers as strings; ccxt sometimes sends JSON numbers)."""
    value = src.get(name)
    if value is None or value == "":
        if required:
            raise missing(name)
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise param_error(name)
    if isinstance(value, str) and (len(value) > 64 or not _DECIMAL.fullmatch(value)):
        raise param_error(name)
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: a JSON integer beyond a float
        raise param_error(name) from None
    if not math.isfinite(x):
        raise param_error(name)
    if allow_minus_one and x == -1:
        return x
    if positive and x <= 0:
        raise param_error(name)
    return x


def integer(src: dict[str, Any], name: str, default: int | None = None, lo: int | None = None,
            hi: int | None = None) -> int | None:
    value = src.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise param_error(name)
    if isinstance(value, str) and not _INTEGER.fullmatch(value):
        raise param_error(name)
    x = int(value)
    x = max(-(1 << 62), min(x, 1 << 62))  # keep it inside int64 for numpy lookups
    if lo is not None and x < lo:
        raise param_error(name)
    if hi is not None and x > hi:
        return hi
    return x


def boolean(src: dict[str, Any], name: str, default: bool = False) -> bool:
    value = src.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise param_error(name)


def choice(src: dict[str, Any], name: str, options: tuple[str, ...], required: bool = False,
           default: str = "") -> str:
    value = text(src, name, required=required, default=default)
    if value and value not in options:
        raise param_error(name)
    return value


def cl_ord_id(src: dict[str, Any], name: str = "clOrdId") -> str:
    value = text(src, name)
    if value and not _CLORD.match(value):
        raise param_error(name)
    return value


def tag(src: dict[str, Any]) -> str:
    value = text(src, "tag")
    if value and not _TAG.match(value):
        raise param_error("tag")
    return value


def ids(value: str) -> list[str]:
    """A comma-separated list parameter (instId=A,B)."""
    return [v for v in value.split(",") if v]


def body_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise OkxError("50002")
    return body


def body_list(body: Any, limit: int) -> list[dict[str, Any]]:
    items = body if isinstance(body, list) else [body] if isinstance(body, dict) else None
    if items is None or not items:
        raise OkxError("50002")
    if len(items) > limit:
        raise OkxError("51111", param0=str(limit))
    return items
