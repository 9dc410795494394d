"""The OpenAPI 3.1 document, built from the route declarations (so it cannot miss a route)."""

from __future__ import annotations

import re
from typing import Any

from flask import jsonify
from flask.typing import ResponseReturnValue

from hub.web.api.framework import ROUTES, bp

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {},
            },
        }
    },
}
ERROR_STATUSES = {
    "400": "Malformed request (bad JSON, bad or unknown query parameter)",
    "401": "No valid API token",
    "403": "The token's role lacks the permission",
    "404": "Not found in the caller's tenant",
    "405": "Method not allowed",
    "409": "Conflicts with the current state (illegal transition, duplicate, not enough stock)",
    "413": "Body too large",
    "415": "Wrong content type",
    "422": "The body does not validate; details name the field",
}


# An upload: the ``file`` part of a multipart form.
MULTIPART_FILE: dict[str, Any] = {
    "schema": {
        "type": "object",
        "required": ["file"],
        "properties": {"file": {"type": "string", "format": "binary"}},
    }
}


def document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for r in ROUTES:
        path = "/api/v1" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", r.rule)
        params = [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": {"type": "string", "minLength": 1, "pattern": r"^[^/?#]+$"},
            }
            for name in re.findall(r"<(?:\w+:)?(\w+)>", r.rule)
        ]
        params += [
            {
                "name": p.name,
                "in": "query",
                "required": False,
                "schema": p.schema(),
                **({"description": p.description} if p.description else {}),
            }
            for p in r.query
        ]
        success: dict[str, Any] = {"type": "object"}
        if r.list_response:
            success = {
                "type": "object",
                "required": ["items", "total"],
                "properties": {"items": {"type": "array"}, "total": {"type": "integer"}},
            }
        op: dict[str, Any] = {
            "operationId": r.endpoint,
            "summary": r.summary,
            "tags": [r.tag],
            "parameters": params,
            "responses": {
                str(r.status): {
                    "description": "Success",
                    "content": {"application/json": {"schema": success}},
                },
                **{
                    code: {
                        "description": text,
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                        },
                    }
                    for code, text in ERROR_STATUSES.items()
                },
            },
        }
        if r.permission:
            op["description"] = f"Needs the `{r.permission}` permission."
        if r.body is not None:
            if r.body_kind == "file":
                content = {"multipart/form-data": MULTIPART_FILE}
            elif r.body_kind == "csv":
                content = {
                    "text/csv": {"schema": {"type": "string"}},
                    "multipart/form-data": MULTIPART_FILE,
                }
            else:
                content = {"application/json": {"schema": r.body}}
            op["requestBody"] = {"required": True, "content": content}
        paths.setdefault(path, {})[r.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "OrderHub API",
            "version": "1",
            "description": "Orders, stock and catalogue of one tenant, chosen by the token.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": ERROR},
        },
        "paths": paths,
    }


@bp.get("/openapi.json")
def openapi_json() -> ResponseReturnValue:
    return jsonify(document())
