"""The OpenAPI description of the OCPI interface."""

import pytest
import yaml

pytestmark = pytest.mark.django_db


def test_schema_describes_every_ocpi_route_and_the_token_scheme(client):
    response = client.get("/ocpi/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    paths = {p.rstrip("/") for p in schema["paths"]}
    assert {
        "/ocpi/versions",
        "/ocpi/2.2.1",
        "/ocpi/2.2.1/credentials",
        "/ocpi/2.2.1/locations",
        "/ocpi/2.2.1/locations/{location_id}/{evse_uid}/{connector_id}",
        "/ocpi/2.2.1/tokens/{country_code}/{party_id}/{token_uid}",
        "/ocpi/2.2.1/hubclientinfo/{country_code}/{party_id}",
        "/ocpi/2.2.1/tariffs",
    } <= paths
    assert not any("schema" in p for p in paths)
    assert set(schema["paths"]["/ocpi/2.2.1/credentials/"]) >= {"get", "post", "put", "delete"}
    assert schema["components"]["securitySchemes"]["ocpiCredentialsToken"]["name"] == "Authorization"
    assert client.get("/ocpi/schema/?format=json").status_code == 200
