"""The OpenAPI document comes from the schemas that validate requests; the docs page is self-contained."""
from __future__ import annotations


def test_the_openapi_document_describes_the_contract(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    paths = spec["paths"]
    for path in ["/api/v1/auth/tokens", "/api/v1/me", "/api/v1/workflows", "/api/v1/workflows/{key}",
                 "/api/v1/cases", "/api/v1/cases/{case_id}", "/api/v1/cases/{case_id}/transitions",
                 "/api/v1/cases/{case_id}/events", "/api/v1/cases/{case_id}/notifications",
                 "/api/v1/cases/{case_id}/documents", "/api/v1/documents/{document_id}/signatures"]:
        assert path in paths, path
    request = paths["/api/v1/cases/{case_id}/transitions"]["post"]["requestBody"]["content"]["application/json"]
    schema = spec["components"]["schemas"][request["schema"]["$ref"].rsplit("/", 1)[1]]
    assert set(schema["required"]) == {"trigger", "expected_version"}
    assert "bearerAuth" in spec["components"]["securitySchemes"]


def test_the_docs_page_loads_only_local_assets(client):
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in html and "/api/v1/openapi.json" in html
    assert "http://" not in html and "https://" not in html and "<script>" not in html
    assert client.get("/static/vendor/swagger-ui/swagger-ui-bundle.js").status_code == 200


def test_healthz_answers_when_the_database_does(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}
