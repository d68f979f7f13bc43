"""The OpenAPI document tells the truth about errors, too (tests/test_schemathesis.py holds it to that).

Every error is the contract's `{"error": {"code", "message", "details"}}` (web/schemas.ErrorSchema),
whichever layer answered. The statuses every operation can give are added here, by rule, so that no
view has to repeat them:

- 400 (malformed JSON, a NUL character in a parameter) and 401 (no valid bearer token) everywhere but
  on the public login;
- 404 on every path with a parameter (no such thing, or not in your scope);
- 413 and 422 wherever there is a request body;
- 403 and 409 on the operations listed in ROLE_AND_STATE below;
- text/csv beside JSON where `?format=csv` is offered.

A status a view documents itself (e.g. the login's 401 and 429) is left as the view wrote it.
"""
from __future__ import annotations

import http

from apispec import BasePlugin

PUBLIC = {("post", "/api/v1/auth/tokens")}  # no bearer token needed
BINARY = {"type": "string", "format": "binary"}
TEXT = {"type": "string"}
ERROR = {"$ref": "#/components/schemas/Error"}

# (method, path) -> statuses beyond the generic ones: 403 your role may not, 409 not in this state / stale version
ROLE_AND_STATE = {
    ("post", "/api/v1/cases"): (403,),
    ("post", "/api/v1/cases/{case_id}/transitions"): (403, 409),
    ("post", "/api/v1/cases/{case_id}/documents"): (403, 409),
    ("post", "/api/v1/documents/{document_id}/signatures"): (403, 409),
}


def _name(status: int) -> str:
    """The response component flask-smorest registers for a status (by its HTTPStatus name)."""
    return http.HTTPStatus(status).name


class ErrorResponses(BasePlugin):
    """apispec plugin: the generic error responses of every operation, as references to components."""

    def operation_helper(self, path=None, operations=None, **kwargs):
        for method, operation in (operations or {}).items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            responses = operation.setdefault("responses", {})
            statuses = [400]
            if (method, path) in PUBLIC:
                operation["security"] = []
            else:
                statuses.append(401)
            if "{" in (path or ""):
                statuses.append(404)
            if "requestBody" in operation:
                statuses += [413, 422]
            statuses += ROLE_AND_STATE.get((method, path), ())
            documented = {str(code) for code in responses}
            for status in statuses:
                if str(status) not in documented:
                    responses[str(status)] = _name(status)
            for code, response in responses.items():
                # an error a view documented with a description only: it is in the error shape all the same
                if str(code).isdigit() and int(code) >= 400 and isinstance(response, dict) \
                        and not response.get("content"):
                    response["content"] = {"application/json": {"schema": ERROR}}
            if _offers_csv(operation):
                ok = next((r for c, r in responses.items() if str(c) == "200"), None)
                if isinstance(ok, dict):
                    ok.setdefault("content", {})["text/csv"] = {"schema": TEXT}


def _offers_csv(operation: dict) -> bool:
    """`?format=csv` answers text/csv (the overview, the access log)."""
    for param in operation.get("parameters") or []:
        if isinstance(param, dict) and param.get("in") == "query" and param.get("name") == "format" \
                and "csv" in (param.get("schema") or {}).get("enum", []):
            return True
    return False
