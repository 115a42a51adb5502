"""The seven stages, in order, each with its gather (I/O) and record (decide and write) steps."""

from __future__ import annotations

from okxlab.domain import STAGES
from okxlab.pipeline.context import Stage
from okxlab.pipeline.market_stages import features_stage, quality_stage, snapshot_gather, snapshot_record
from okxlab.pipeline.order_stage import order_gather, order_record
from okxlab.pipeline.plan_stages import plan_gather, plan_record, validate_stage
from okxlab.pipeline.risk_stage import risk_stage

_DEFINITIONS = {
    "snapshot": Stage("snapshot", snapshot_record, snapshot_gather),
    "quality": Stage("quality", quality_stage),
    "features": Stage("features", features_stage),
    "plan": Stage("plan", plan_record, plan_gather),
    "validate": Stage("validate", validate_stage),
    "risk": Stage("risk", risk_stage),
    "order": Stage("order", order_record, order_gather),
}
assert tuple(_DEFINITIONS) == STAGES


def stage_named(name: str) -> Stage:
    return _DEFINITIONS[name]
