"""Every OCPI operation of our OpenAPI description (/ocpi/schema/), fuzzed by schemathesis (hypothesis) with a valid
partner token: whatever the path parameters, query and body, the answer is the OCPI envelope and never a 5xx.

Requests go through Django's test client (in the test's transaction, so a few hundred of them stay fast). Bounded
examples per operation keep the whole run well under a minute."""

import json
from urllib.parse import urlencode

import pytest
import schemathesis
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings

import ocpi_api.urls  # noqa: F401  (imported before ocpi_api.schema, whose URLconf includes it)
from tests.ocpi_api.factories import auth, make_partner

ENVELOPE = {"data", "status_code", "status_message", "timestamp"}
EXAMPLES = 10


# What /ocpi/schema/ serves (ocpi_api.schema.OcpiSchemaView), generated at collection time.
schema = schemathesis.openapi.from_dict(
    SchemaGenerator(urlconf="ocpi_api.schema").get_schema(request=None, public=True)
)
# Valid requests and ones that break the description (wrong types, missing fields, bad parameters).
schema.config.generation.update(modes=list(schemathesis.GenerationMode))


@pytest.fixture
def partner(db):
    return make_partner(token="fuzz-partner-token")


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_ocpi_operation_answers_the_envelope_and_never_a_server_error(case, client, partner):
    headers = {"HTTP_" + name.upper().replace("-", "_"): value for name, value in (case.headers or {}).items()}
    headers.update(auth("fuzz-partner-token"))
    body = None if isinstance(case.body, schemathesis.core.NotSet) else case.body
    data = body if isinstance(body, bytes) else json.dumps(body, default=repr) if body is not None else ""
    response = client.generic(
        case.method,
        case.formatted_path,
        data=data,
        content_type="application/json",
        QUERY_STRING=_query(case.query),
        **headers,
    )
    assert response.status_code < 500, (case.method, case.formatted_path, response.content)
    assert response["Content-Type"] == "application/json", response.content
    answer = response.json()
    assert set(answer) == ENVELOPE, answer
    assert isinstance(answer["status_code"], int) and 1000 <= answer["status_code"] < 5000, answer


def _query(query: dict | None) -> str:
    return urlencode(query or {}, doseq=True)
