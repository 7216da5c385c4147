//! Completes the generated OpenAPI document with the answers every route shares, so it lists every
//! status a route can really give (schemathesis checks this against the running server):
//!
//! - `401` and `403` on every operation that takes credentials (the operator routes' 403 says
//!   so; elsewhere it is an access token without the route's scope, or a quota);
//! - `400`, `415` and `422` where the request has parameters or a JSON body (the extractors'
//!   rejections: a malformed value, a body without `Content-Type: application/json`, a body of the
//!   wrong shape);
//! - `429` on the rate-limited sign-in routes, `503` everywhere (the database out of reach);
//! - a schema for every error answer: `{error}` (the `/api` dialect), or the `/api/v1` dialect's envelope
//!   under `/api/v1`, whose successful answers are wrapped in `{statusCode, message, data}` too;
//! - event streams described as their events: a handler names the JSON its events carry, and
//!   this pass writes the event objects OpenAPI 3.1 tools read (`{event, data}`, `data` a string
//!   of that JSON), plus the closing `end` event whose data is a plain sentence.
//!
//! Handlers annotate what is particular to them; this pass adds what is common, and never
//! replaces what a handler wrote.

use serde_json::{json, Map, Value};

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

/// Adds the shared answers to every operation of `doc` (an OpenAPI 3.1 document as JSON).
pub fn complete(doc: &mut Value, rate_limited: &[&str]) {
    let schemas = &mut doc["components"]["schemas"];
    if let Some(schemas) = schemas.as_object_mut() {
        schemas.insert("V1Error".into(), v1_error_schema());
    }
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        for method in METHODS {
            if let Some(op) = item.get_mut(method).and_then(Value::as_object_mut) {
                complete_operation(path, op, rate_limited.contains(&path.as_str()));
            }
        }
    }
}

fn complete_operation(path: &str, op: &mut Map<String, Value>, rate_limited: bool) {
    let v1 = path.starts_with("/api/v1/");
    let secured = op
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|s| {
            s.iter()
                .any(|r| r.as_object().is_some_and(|r| !r.is_empty()))
        });
    let has_params = op
        .get("parameters")
        .and_then(Value::as_array)
        .is_some_and(|p| !p.is_empty());
    let json_body = op
        .get("requestBody")
        .and_then(|b| b.get("content"))
        .and_then(|c| c.get("application/json"))
        .is_some();

    let responses = op
        .entry("responses")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("responses is an object");
    let mut add = |status: &str, description: &str| {
        responses
            .entry(status.to_owned())
            .or_insert_with(|| json!({ "description": description }));
    };
    if secured {
        add("401", "Missing, invalid, expired or revoked credentials");
        if path.starts_with("/api/admin/") {
            add("403", "The caller is not an operator");
        }
        // Any route refuses an access token without the scope it needs (`http::scopes`), and
        // creating or starting machines or commands refuses what would pass a quota.
        add(
            "403",
            "The access token lacks the scope this route needs, or an account quota would be passed",
        );
    }
    if has_params || json_body {
        add("400", "A parameter or the body is malformed");
    }
    if json_body {
        add(
            "415",
            "The body is not sent as `Content-Type: application/json`",
        );
        add(
            "422",
            "The body is JSON of the wrong shape (a missing or mistyped field)",
        );
    }
    if rate_limited {
        add(
            "429",
            "Too many attempts from this address or for this account; see `Retry-After`",
        );
    }
    add(
        "503",
        "The database (or, for top-ups, the payment provider) is out of reach; retry after `Retry-After` seconds",
    );

    for (status, response) in responses.iter_mut() {
        let Some(response) = response.as_object_mut() else {
            continue;
        };
        if response.contains_key("$ref") {
            continue;
        }
        let error = status.starts_with('4') || status.starts_with('5');
        if error && !response.contains_key("content") {
            let schema = if v1 {
                json!({ "$ref": "#/components/schemas/V1Error" })
            } else if status == "402" {
                json!({ "$ref": "#/components/schemas/InsufficientBalanceBody" })
            } else {
                json!({ "$ref": "#/components/schemas/ErrorBody" })
            };
            response.insert(
                "content".into(),
                json!({ "application/json": { "schema": schema } }),
            );
        } else if v1 && status.starts_with('2') {
            wrap_in_envelope(response);
        }
        if let Some(stream) = response
            .get_mut("content")
            .and_then(|c| c.get_mut("text/event-stream"))
            .and_then(Value::as_object_mut)
        {
            describe_events(stream);
        }
    }
}

/// Before OpenAPI 3.2, a `text/event-stream` schema describes one event as a whole — its
/// `event` name and its `data` string — not the payload inside it.
fn describe_events(stream: &mut Map<String, Value>) {
    let Some(payload) = stream.remove("schema") else {
        return;
    };
    let event = |name: Value, data: Value| {
        json!({
            "type": "object",
            "required": ["event", "data"],
            "properties": { "event": name, "data": data },
        })
    };
    let event = json!({ "oneOf": [
        event(
            json!({ "type": "string", "not": { "const": "end" } }),
            json!({ "type": "string", "contentMediaType": "application/json", "contentSchema": payload }),
        ),
        event(json!({ "const": "end" }), json!({ "type": "string" })),
    ]});
    stream.insert("schema".into(), event);
}

/// The `/api/v1` dialect answers `{statusCode, message, data}`, and the marketplace adds `pagination`.
fn wrap_in_envelope(response: &mut Map<String, Value>) {
    let Some(schema) = response
        .get_mut("content")
        .and_then(|c| c.get_mut("application/json"))
        .and_then(|j| j.as_object_mut())
        .and_then(|j| j.get_mut("schema"))
    else {
        return;
    };
    let data = schema.take();
    *schema = json!({
        "type": "object",
        "required": ["statusCode", "message", "data"],
        "properties": {
            "statusCode": { "type": "integer" },
            "message": { "type": "string" },
            "data": data,
            "pagination": {
                "type": "object",
                "required": ["total", "limit", "offset"],
                "properties": {
                    "total": { "type": "integer" },
                    "limit": { "type": "integer" },
                    "offset": { "type": "integer" },
                    "next_offset": { "type": ["integer", "null"] }
                }
            }
        }
    });
}

fn v1_error_schema() -> Value {
    json!({
        "description": "An `/api/v1` error: `data` is null, or `{balance, required}` on 402.",
        "type": "object",
        "required": ["statusCode", "message", "data"],
        "properties": {
            "statusCode": { "type": "integer" },
            "message": { "type": "string" },
            "data": {
                "oneOf": [
                    { "type": "null" },
                    {
                        "type": "object",
                        "required": ["balance", "required"],
                        "properties": {
                            "balance": { "type": "number" },
                            "required": { "type": "number" }
                        }
                    }
                ]
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secured_operations_with_bodies_gain_the_shared_answers_without_losing_their_own() {
        let mut doc = json!({
            "components": { "schemas": {} },
            "paths": {
                "/api/keys": { "post": {
                    "security": [{ "bearer": [] }],
                    "requestBody": { "content": { "application/json": { "schema": {} } } },
                    "responses": { "201": { "description": "made" }, "422": { "description": "own" } }
                }},
                "/api/v1/rentals": { "get": {
                    "security": [{ "bearer": [] }],
                    "responses": { "200": { "description": "ok", "content": {
                        "application/json": { "schema": { "type": "array" } } } } }
                }},
                "/health": { "get": { "responses": { "200": { "description": "ok" } } } },
                "/api/vps/{id}/stats": { "get": {
                    "security": [{ "bearer": [] }],
                    "responses": { "200": { "description": "ok", "content": { "text/event-stream": {
                        "schema": { "$ref": "#/components/schemas/MachineStats" } } } } }
                }}
            }
        });
        complete(&mut doc, &[]);
        let keys = &doc["paths"]["/api/keys"]["post"]["responses"];
        for status in ["400", "401", "415", "503"] {
            assert_eq!(
                keys[status]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ErrorBody",
                "{status}"
            );
        }
        assert_eq!(keys["422"]["description"], "own");
        let rentals = &doc["paths"]["/api/v1/rentals"]["get"]["responses"];
        let ok = &rentals["200"]["content"]["application/json"]["schema"];
        assert_eq!(ok["properties"]["data"]["type"], "array");
        assert_eq!(
            rentals["401"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/V1Error"
        );
        let health = &doc["paths"]["/health"]["get"]["responses"];
        let stats = &doc["paths"]["/api/vps/{id}/stats"]["get"]["responses"]["200"]["content"]
            ["text/event-stream"]["schema"]["oneOf"];
        assert_eq!(
            stats[0]["properties"]["data"]["contentSchema"]["$ref"],
            "#/components/schemas/MachineStats"
        );
        assert_eq!(stats[1]["properties"]["event"]["const"], "end");
        assert!(health.get("401").is_none());
        assert!(doc["components"]["schemas"]["V1Error"].is_object());
    }
}
