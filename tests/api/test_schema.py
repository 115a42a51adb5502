"""Schemathesis over /openapi.json: generated requests (a few per operation, as an admin) never get a 5xx and
every response matches the schema. Operations that need an outside service by design are left out: flatten
(the exchange), health (503 is its answer when a part is down), report sending (builds charts: slow)."""

from __future__ import annotations

from typing import Any

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from tests.api.conftest import Api

# Semantic refusals (a crontab with 61 minutes, an unknown agent) are 4xx by design: "valid by the schema must
# be accepted" is not among the checks; every response is still checked against the schema.
CHECKS = [checks.not_a_server_error, checks.response_schema_conformance, checks.status_code_conformance,
          checks.content_type_conformance]
EXCLUDED = r"^/(health|agents/\{name\}/flatten|reports/\{day\}/send)$"


def test_no_server_errors_and_responses_match_the_schema(api: Api) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.app).exclude(path_regex=EXCLUDED)
    headers = {"X-API-Token": api.tokens["admin"]}
    checked = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(operation.as_strategy())
        @settings(max_examples=4, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case: Any) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        check()
        checked.append(operation.label)
    assert len(checked) >= 20, checked


def test_openapi_documents_auth_and_errors(api: Api) -> None:
    spec = TestClient(api.app).get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Token"
    assert "ErrorBody" in spec["components"]["schemas"]
