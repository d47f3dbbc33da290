"""template-app keeps its OpenAPI contract: schemathesis drives generated requests (valid and
invalid) at the real backend, with a real worker and redis-server behind it, and runs all of its
checks on every response: status codes, bodies and headers as declared, bad input rejected.
Then Redis is stopped and every route that can answer 503 must answer it as declared."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from template_support import Stack, base_env

from scalr_queue.testing import RedisServer

pytestmark = [pytest.mark.slow]

# generated cases per operation and mode (valid, invalid): five operations, some hundreds in all
EXAMPLES_PER_OPERATION = 100


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The backend as the image runs it and the worker as compose runs it, on a fresh Redis."""
    server = RedisServer().start()
    env = base_env(server.url, SCALR_QUEUE_MAX_TRIES="1", SCALR_QUEUE_HEALTH_INTERVAL="1s")
    stack = Stack(redis=server, log_dir=tmp_path_factory.mktemp("contract"), env=env)
    try:
        stack.start_backend()
        stack.start_worker()
        yield stack
    finally:
        stack.close()


@pytest.mark.timeout(120)
def test_every_generated_request_gets_a_declared_status_body_and_headers(live: Stack) -> None:
    api = schemathesis.openapi.from_url(f"{live.base_url}/openapi.json")
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) == 5, [op.label for op in operations]
    cases: list[str] = []
    for operation in operations:
        # invalid input needs a parameter to be invalid in: routes without one get valid requests only
        has_parameters = any(True for _ in operation.iter_parameters())
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)[: 2 if has_parameters else 1]:

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                database=None,  # nothing written into the checkout
                suppress_health_check=list(HealthCheck),
            )
            def check(case: schemathesis.Case) -> None:
                cases.append(case.method)
                case.call_and_validate()  # every built-in check; raises on the first violation

            check()
    print(f"\nschemathesis: {len(cases)} generated requests over {len(operations)} operations")
    assert len(cases) >= 100


@pytest.mark.timeout(60)
def test_routes_answer_their_declared_503_while_redis_is_down(stack: Stack) -> None:
    stack.start_backend()
    api = schemathesis.openapi.from_url(f"{stack.base_url}/openapi.json")
    stack.redis.stop()  # this test's own redis-server, by its PID

    calls = {
        ("POST", "/invoices/{invoice_id}/send"): {"invoice_id": 1},
        ("GET", "/jobs/{job_id}"): {"job_id": "0123abcd"},
        ("GET", "/healthz"): {},
    }
    declared = {
        (method.upper(), path)
        for path, operations in api.raw_schema["paths"].items()
        for method, operation in operations.items()
        if "503" in operation["responses"]
    }
    assert declared == set(calls), "every route that reaches Redis declares its 503, and only those"
    for (method, path), params in calls.items():
        case = api[path][method].Case(path_parameters=params)
        # every other check still runs: 503 declared, its body model, its Retry-After header
        response = case.call_and_validate(excluded_checks=[not_a_server_error])
        assert response.status_code == 503, response.text
