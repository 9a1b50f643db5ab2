"""The OpenAPI 3.1 description of the RA API (tests/server/ra/test_openapi.py checks it against
the routes the server really has).

The last of the five files a new workflow step touches (server/ra/workflow.py lists them): its
path here; the step's tests go to tests/server/ra/ (the table's in test_transitions.py)."""

from __future__ import annotations

from typing import Any

_PROBLEM = {"$ref": "#/components/responses/Problem"}
_APP = {
    "description": "The application",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Application"}}},
}
_ID = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]
_NAME = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _action(summary: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "parameters": _ID,
        "responses": {"200": _APP, "4XX": _PROBLEM},
    }
    if body is not None:
        operation["requestBody"] = _body(body)
    return {"post": operation}


def _object(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "required": list(required),
        "properties": {**required, **(optional or {})},
        "additionalProperties": False,
    }


_STR = {"type": "string"}
_BOOL = {"type": "boolean"}
_DATE = {"type": "string", "format": "date"}
_REASON = _object({"reason": _STR})

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "jitsuin RA API",
        "version": "1",
        "description": "Registration-authority workflow of the seed's 12 steps (docs/flow.md). "
        "Operators authenticate with 'Authorization: Bearer <token>' or, on the HTTPS "
        "listener, with a TLS client certificate of this CA that an admin bound to them "
        "(PUT /ra/operators/{name}/certificate). The certificate counts only when the request "
        "has no Authorization header: if both are present the token decides. Errors are RFC "
        "9457 problem documents.",
    },
    "security": [{"operatorToken": []}, {"operatorCertificate": []}],
    "paths": {
        "/ra/openapi.json": {
            "get": {
                "summary": "This document",
                "security": [],
                "responses": {"200": {"description": "OpenAPI 3.1"}},
            }
        },
        "/ra/applications": {
            "get": {
                "summary": "List applications (audited personal-data read)",
                "parameters": [
                    {"name": "state", "in": "query", "schema": _STR},
                    {"name": "limit", "in": "query", "schema": {"type": "integer"}},
                    {"name": "offset", "in": "query", "schema": {"type": "integer"}},
                ],
                "responses": {"200": {"description": "Applications"}, "4XX": _PROBLEM},
            },
            "post": {
                "summary": "Create an application from the mailed form (seed step 1)",
                "requestBody": _body({"$ref": "#/components/schemas/NewApplication"}),
                "responses": {"201": _APP, "4XX": _PROBLEM},
            },
        },
        "/ra/applications/{id}": {
            "get": {
                "summary": "Read one application (audited)",
                "parameters": _ID,
                "responses": {"200": _APP, "4XX": _PROBLEM},
            }
        },
        "/ra/applications/{id}/review": _action(
            "Record the document review (SEED-R6..R9)", {"$ref": "#/components/schemas/Review"}
        ),
        "/ra/applications/{id}/resubmit": _action("New documents arrived: review again"),
        "/ra/applications/{id}/inquiry": {
            "post": {
                "summary": "Dispatch the inquiry letter (SEED-R10, R12); returns the one-time "
                "access code and the printable letter (Accept: text/html for the letter alone)",
                "parameters": _ID,
                "requestBody": _body(_object({"trackingNumber": _STR})),
                "responses": {"200": {"description": "Credential and letter"}, "4XX": _PROBLEM},
            }
        },
        "/ra/applications/{id}/letter": _action(
            "The inquiry letter came back signed and sealed (SEED-R10)",
            _object({"signed": _BOOL, "sealed": _BOOL, "selfInking": _BOOL}),
        ),
        "/ra/applications/{id}/payment": _action(
            "Record the payment against the invoice",
            _object({"invoiceNumber": _STR, "amount": {"type": "integer", "minimum": 0}}),
        ),
        "/ra/applications/{id}/approve": _action(
            "Approve (SEED-R11, two-person rule); the PIN e-mail is queued (SEED-R13). 403 when "
            "a person who entered or reviewed it would approve, under any operator name: the "
            "persons behind an action are the operator and whoever set the credential it used"
        ),
        "/ra/applications/{id}/reissue-pin": _action("Send a new PIN; the old one dies"),
        "/ra/applications/{id}/reject": _action("Reject (any open state)", _REASON),
        "/ra/applications/{id}/abandon": _action("Abandon (any open state)", _REASON),
        "/ra/applications/{id}/revoke": _action(
            "Request revocation of the issued certificate (RFC 5280 reason name)", _REASON
        ),
        "/ra/applications/{id}/disclosure": {
            "get": {
                "summary": "Export all personal data held on the person (SEED-R18; admin)",
                "parameters": _ID,
                "responses": {"200": {"description": "Disclosure"}, "4XX": _PROBLEM},
            }
        },
        "/ra/mail": {
            "get": {
                "summary": "The PIN e-mail outbox, with failures",
                "parameters": [{"name": "status", "in": "query", "schema": _STR}],
                "responses": {"200": {"description": "Mail"}, "4XX": _PROBLEM},
            }
        },
        "/ra/mail/{id}/retry": {
            "post": {
                "summary": "Queue a failed mail again",
                "parameters": _ID,
                "responses": {"202": {"description": "Queued"}, "4XX": _PROBLEM},
            }
        },
        "/ra/audit": {
            "get": {
                "summary": "Read the hash-chained audit log (admin)",
                "parameters": [
                    {"name": "after", "in": "query", "schema": {"type": "integer"}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer"}},
                ],
                "responses": {"200": {"description": "Entries"}, "4XX": _PROBLEM},
            }
        },
        "/ra/audit/verify": {
            "get": {
                "summary": "Verify the audit hash chain (admin)",
                "responses": {
                    "200": {"description": "Intact"},
                    "409": {"description": "Broken"},
                    "4XX": _PROBLEM,
                },
            }
        },
        "/ra/reenrollments": {
            "get": {
                "summary": "EST re-enrollment requests (those waiting for an operator)",
                "parameters": [{"name": "status", "in": "query", "schema": _STR}],
                "responses": {"200": {"description": "Requests"}, "4XX": _PROBLEM},
            }
        },
        "/ra/reenrollments/{id}/approve": {
            "post": {
                "summary": "Approve a waiting re-enrollment; the client's retry gets it",
                "parameters": _ID,
                "responses": {"200": {"description": "Approved"}, "4XX": _PROBLEM},
            }
        },
        "/ra/reenrollments/{id}/reject": {
            "post": {
                "summary": "Reject a waiting re-enrollment",
                "parameters": _ID,
                "responses": {"200": {"description": "Rejected"}, "4XX": _PROBLEM},
            }
        },
        "/ra/ca/rollover": {
            "post": {
                "summary": "Roll the CA over: the next generation and its link certificates "
                "(SEED-R15...R17; admin)",
                "responses": {"201": {"description": "The new generation"}, "4XX": _PROBLEM},
            }
        },
        "/ra/operators/{name}/certificate": {
            "put": {
                "summary": "Bind the operator to one TLS client certificate issued by this CA, "
                "replacing an earlier one (an admin, or the operator themself presenting it as the "
                "TLS client certificate of the request; audited). Refused "
                "unless a CA generation signed it, it is neither revoked nor expired, and its "
                "extended key usage has clientAuth (RFC 5280 §4.2.1.12)",
                "parameters": _NAME,
                "requestBody": _body(_object({"certificate": {"type": "string"}})),
                "responses": {
                    "200": {"description": "The binding: sha256, generation, serial"},
                    "4XX": _PROBLEM,
                },
            },
            "delete": {
                "summary": "Remove the operator's certificate binding (admin; audited); the API "
                "token still works",
                "parameters": _NAME,
                "responses": {"204": {"description": "Unbound"}, "4XX": _PROBLEM},
            },
        },
        "/ra/operators/{name}/disable": {
            "post": {
                "summary": "Disable the operator (admin; audited): its API token and bound TLS "
                "client certificate get 401 from the next request on. An admin cannot disable "
                "themself (403); disabling a disabled operator is 409",
                "parameters": _NAME,
                "responses": {
                    "200": {"description": "name, disabled (true), disabledAt"},
                    "4XX": _PROBLEM,
                },
            }
        },
        "/ra/operators/{name}/enable": {
            "post": {
                "summary": "Enable a disabled operator again (admin; audited): its token and bound "
                "certificate work again. Enabling an enabled operator is 409",
                "parameters": _NAME,
                "responses": {
                    "200": {"description": "name, disabled (false), disabledAt (null)"},
                    "4XX": _PROBLEM,
                },
            }
        },
        "/ra/operators/{name}/token": {
            "post": {
                "summary": "A new API token for the operator (an admin, or the operator "
                "themself; audited), in this response only and stored only as its keyed hash; "
                "the old token gets 401 at once. setBy names who else may know it (two-person "
                "rule): an operator who replaces the token the host CLI gave them owns it",
                "parameters": _NAME,
                "responses": {"200": {"description": "name and token"}, "4XX": _PROBLEM},
            }
        },
        "/ra/acme/eab-keys": {
            "post": {
                "summary": "An ACME External Account Binding key for the tls-server profile, with "
                "its policy (RFC 8555 §7.3.4); the HMAC key is in this response only",
                "requestBody": _body(
                    _object(
                        {"allowed": {"type": "array", "items": _STR}},
                        {
                            "certificateLifetimeDays": {"type": "integer"},
                            "maxCertificates": {"type": "integer"},
                            "expiresInDays": {"type": "integer"},
                            "note": _STR,
                        },
                    )
                ),
                "responses": {"201": {"description": "kid and hmacKey"}, "4XX": _PROBLEM},
            },
            "get": {
                "summary": "The ACME EAB keys and their policies (never the HMAC keys)",
                "responses": {"200": {"description": "The keys"}, "4XX": _PROBLEM},
            },
        },
        "/ra/acme/eab-keys/{kid}": {
            "get": {
                "summary": "One ACME EAB key: policy, and the account it was bound to",
                "parameters": [{"name": "kid", "in": "path", "required": True, "schema": _STR}],
                "responses": {"200": {"description": "The key"}, "4XX": _PROBLEM},
            }
        },
        "/ra/acme/eab-keys/{kid}/disable": {
            "post": {
                "summary": "Disable an ACME EAB key: no new account, no new order under it",
                "parameters": [{"name": "kid", "in": "path", "required": True, "schema": _STR}],
                "responses": {"200": {"description": "The key"}, "4XX": _PROBLEM},
            }
        },
        "/applicant/status": {
            "post": {
                "summary": "Where the application stands, by the enrollment ID alone: the state "
                "and the PIN's expiry and lock, never personal data (SEED-R18)",
                "security": [],
                "requestBody": _body(_object({"enrollmentId": _STR})),
                "responses": {"200": {"description": "State"}, "4XX": _PROBLEM},
            }
        },
        "/applicant/online-input": {
            "post": {
                "summary": "Seed step 6: the applicant confirms the online input with the "
                "enrollment ID and access code from the letter (single use; locked after "
                "max_attempts wrong codes; after a wrong code the address waits: 429 with "
                "Retry-After)",
                "security": [],
                "requestBody": _body(
                    _object({"enrollmentId": _STR, "accessCode": _STR, "confirm": _BOOL})
                ),
                "responses": {"200": {"description": "The vetted data"}, "4XX": _PROBLEM},
            }
        },
    },
    "components": {
        "securitySchemes": {
            "operatorToken": {"type": "http", "scheme": "bearer"},
            "operatorCertificate": {
                "type": "mutualTLS",
                "description": "A TLS client certificate of this CA bound to the operator",
            },
        },
        "responses": {
            "Problem": {
                "description": "RFC 9457 problem document",
                "content": {"application/problem+json": {"schema": {"type": "object"}}},
            }
        },
        "schemas": {
            "NewApplication": _object(
                {
                    "profile": {"enum": ["general", "document-manager"]},
                    "familyName": _STR,
                    "givenName": _STR,
                    "email": {"type": "string", "pattern": "^[^A-Z]+$"},
                    "qualificationGroup": _STR,
                    "qualificationNumber": _STR,
                    "postalAddress": _STR,
                    "dateOfBirth": _DATE,
                    "billing": _object(
                        {"addressee": {"enum": ["self", "company"]}}, {"company": _STR}
                    ),
                }
            ),
            "Review": _object(
                {
                    "receivedOn": _DATE,
                    "residentRecord": _object(
                        {
                            "issuedOn": _DATE,
                            "original": _BOOL,
                            "showsIndividualNumber": _BOOL,
                            "nameMatches": _BOOL,
                            "addressMatches": _BOOL,
                            "dateOfBirthMatches": _BOOL,
                        }
                    ),
                    "seal": _object({"selfInking": _BOOL}),
                }
            ),
            "Application": {"type": "object", "required": ["id", "state", "version"]},
        },
    },
}
