"""schemathesis over the web app's whole OpenAPI description, signed in as the home's
operator: whatever a route is sent, it answers with a status that says whose fault it
was, never a 5xx. Every router the app mounts is covered as it is added."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.web.homes import BASE_URL, Chain, signed_in_client, web_node

pytestmark = pytest.mark.slow

# Signing out would end the session the rest of the run needs; the sign-in routes'
# refusals are covered by test_auth.
SKIPPED = ("/api/v1/auth/logout",)
EXAMPLES = 8


def test_no_input_gets_a_server_error(web_chain: Chain) -> None:
    with web_node(web_chain.party("fuzzed")) as node:
        http = signed_in_client(node)
        headers = {"X-CSRF-Token": http.headers["X-CSRF-Token"]}
        cookies = dict(http.cookies)
        # Loaded from the app itself: the guard refuses the loader's own Host name.
        schema = schemathesis.openapi.from_dict(node.app.openapi())
        schema.app = node.app
        operations = [
            result.ok() for result in schema.include(path_regex=r"^/api/v1/").get_all_operations()
        ]
        operations = [op for op in operations if op.path not in SKIPPED]
        assert len(operations) >= 4  # the sign-in routes at least
        failures: list[str] = []
        for operation in operations:

            @given(case=operation.as_strategy())
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def fuzz(case: schemathesis.Case) -> None:
                response = case.call(base_url=BASE_URL, headers=headers, cookies=cookies)
                if response.status_code >= 500:
                    failures.append(
                        f"{case.method} {case.formatted_path} -> {response.status_code}: "
                        f"{response.text[:300]}"
                    )

            fuzz()
        assert failures == []
