"""docs/openapi.json and the router agree on paths with parameters: a value
the router cannot match (a newline, a '/') is answered 404, so every
operation on a path with a parameter documents 404 (schemathesis found
PUT /api/agent/bundles/%0A… answered with an undocumented 404)."""

from __future__ import annotations

from server_stub.openapi import document


def test_every_operation_with_a_path_parameter_documents_404():
    missing = [f"{method.upper()} {path}" for path, ops in document()["paths"].items() if "{" in path
               for method, op in ops.items() if "404" not in op.get("responses", {})]
    assert missing == []
