"""The seven stages, in order, each with its gather (I/O) and record (database) steps."""

from __future__ import annotations

from okxlab.execution.stage import order_gather, order_record
from okxlab.marketdata.stages import features_stage, quality_stage, snapshot_gather, snapshot_record
from okxlab.pipeline.stages import STAGES, Stage
from okxlab.planning.stages import plan_gather, plan_record, validate_stage
from okxlab.risk.stage import risk_stage

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
