"""docs/risk.md and okxlab/risk/reasons.py stay in step: every code and every limit is documented."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from okxlab.risk import reasons as R
from okxlab.risk.limits import RiskLimits

DOC = (Path(__file__).resolve().parents[2] / "docs" / "risk.md").read_text()
CODES = {v for k, v in vars(R).items() if k.isupper() and isinstance(v, str)}


def test_every_reason_code_has_a_description_and_is_its_own_name():
    assert CODES == set(R.DESCRIPTIONS)
    assert all(getattr(R, code) == code for code in CODES)


def test_every_reason_code_is_documented():
    assert [code for code in sorted(CODES) if f"| `{code}` |" not in DOC] == []


def test_every_limit_is_documented_with_its_default():
    table = {line.split("|")[1].strip(" `"): line.split("|")[2].strip() for line in DOC.splitlines()
             if line.startswith("| `") and line.count("|") >= 4}
    for f in fields(RiskLimits):
        assert f.name in table, f.name
        default, shown = f.default, table[f.name]
        if isinstance(default, bool) or default == ():
            assert shown == ("[]" if default == () else str(default).lower()), f.name
        else:
            assert float(shown) == default, (f.name, shown)


def test_uncounted_rejections_are_the_gates_and_missing_inputs():
    assert R.GATE_REASONS < R.UNCOUNTED_REJECTIONS
    assert R.UNCOUNTED_REJECTIONS - R.GATE_REASONS == {R.NO_MARKET_DATA, R.BAD_MARKET_DATA, R.NO_EQUITY}
