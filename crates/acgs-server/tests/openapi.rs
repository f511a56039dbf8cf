//! The OpenAPI document tells a generated client the truth: query parameters are in the query, every error is
//! an `application/problem+json` problem document, every operation lists the errors it can give and the
//! `X-Constitutional-Hash` header, the request schemas constrain what the server checks, and real responses
//! validate against their schemas. (CI also runs schemathesis against a live server: scripts/api-fuzz.sh.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use acgs_auth::Role;
use acgs_server::access::{Access, ENDPOINTS};
use acgs_server::{MAX_BATCH_REQUESTS, ServerSettings};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::server;
use serde_json::{Value, json};

fn document() -> Value {
    use utoipa::OpenApi;
    serde_json::to_value(acgs_server::ApiDoc::openapi()).unwrap()
}

/// Follow a local `$ref` (`#/components/...`).
fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference.strip_prefix('#').unwrap();
            resolve(
                doc,
                doc.pointer(pointer).unwrap_or_else(|| panic!("dangling {reference}")),
            )
        }
        None => value,
    }
}

fn operation<'a>(doc: &'a Value, method: &str, path: &str) -> &'a Value {
    &doc["paths"][path][method.to_lowercase()]
}

fn schema<'a>(doc: &'a Value, name: &str) -> &'a Value {
    &doc["components"]["schemas"][name]
}

/// Errors of `value` against `schema`: the JSON Schema keywords utoipa emits (types, properties, required,
/// additionalProperties, items, enum, allOf/oneOf/anyOf, lengths, sizes and bounds).
fn violations(doc: &Value, schema: &Value, value: &Value, at: &str) -> Vec<String> {
    let schema = resolve(doc, schema);
    let mut errors = Vec::new();
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let fits = types.iter().any(|t| match *t {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            "null" => value.is_null(),
            _ => false,
        });
        if !fits {
            errors.push(format!("{at}: {value} is not of type {types:?}"));
            return errors;
        }
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array)
        && !options.contains(value)
    {
        errors.push(format!("{at}: {value} is not one of {options:?}"));
    }
    for all in schema.get("allOf").and_then(Value::as_array).into_iter().flatten() {
        errors.extend(violations(doc, all, value, at));
    }
    for keyword in ["oneOf", "anyOf"] {
        if let Some(options) = schema.get(keyword).and_then(Value::as_array)
            && !options.iter().any(|o| violations(doc, o, value, at).is_empty())
        {
            errors.push(format!("{at}: {value} matches none of {keyword}"));
        }
    }
    if let Some(object) = value.as_object() {
        let properties = schema.get("properties").and_then(Value::as_object);
        for name in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
            if !object.contains_key(name.as_str().unwrap()) {
                errors.push(format!("{at}: lacks required `{name}`"));
            }
        }
        for (name, member) in object {
            match properties.and_then(|p| p.get(name)) {
                Some(s) => errors.extend(violations(doc, s, member, &format!("{at}.{name}"))),
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    errors.push(format!("{at}: `{name}` is not allowed (additionalProperties: false)"));
                }
                None => {}
            }
        }
    }
    if let Some(items) = value.as_array() {
        if let Some(s) = schema.get("items") {
            for (i, item) in items.iter().enumerate() {
                errors.extend(violations(doc, s, item, &format!("{at}[{i}]")));
            }
        }
        let n = items.len() as u64;
        if schema.get("minItems").and_then(Value::as_u64).is_some_and(|m| n < m)
            || schema.get("maxItems").and_then(Value::as_u64).is_some_and(|m| n > m)
        {
            errors.push(format!("{at}: {n} items out of bounds"));
        }
    }
    if let Some(text) = value.as_str() {
        let n = text.chars().count() as u64;
        if schema.get("minLength").and_then(Value::as_u64).is_some_and(|m| n < m)
            || schema.get("maxLength").and_then(Value::as_u64).is_some_and(|m| n > m)
        {
            errors.push(format!("{at}: length {n} out of bounds"));
        }
    }
    if let Some(number) = value.as_f64()
        && (schema
            .get("minimum")
            .and_then(Value::as_f64)
            .is_some_and(|m| number < m)
            || schema
                .get("maximum")
                .and_then(Value::as_f64)
                .is_some_and(|m| number > m))
    {
        errors.push(format!("{at}: {number} out of bounds"));
    }
    errors
}

/// `reply` matches what the document says `method path` answers with its status.
fn assert_documented(doc: &Value, method: &str, path: &str, reply: &common::Reply) {
    let status = reply.status.as_u16().to_string();
    let response = operation(doc, method, path)["responses"]
        .get(&status)
        .unwrap_or_else(|| panic!("{method} {path} does not document {status}: {}", reply.text));
    let response = resolve(doc, response);
    let media = reply.content_type().split(';').next().unwrap().trim().to_owned();
    let content = response["content"]
        .get(&media)
        .unwrap_or_else(|| panic!("{method} {path} {status} does not document {media}"));
    let errors = violations(doc, &content["schema"], &reply.json(), "$");
    assert!(errors.is_empty(), "{method} {path} {status}: {errors:#?}");
    assert!(
        response["headers"].get("X-Constitutional-Hash").is_some(),
        "{method} {path} {status} lacks the hash header"
    );
}

#[test]
fn query_parameters_are_in_the_query_and_path_parameters_in_the_path() {
    let doc = document();
    for (path, method, expected) in [
        (
            "/v1/decisions",
            "get",
            &[
                ("outcome", false),
                ("principal_type", false),
                ("principal_id", false),
                ("action", false),
                ("before_seq", false),
                ("limit", false),
            ][..],
        ),
        (
            "/v1/audit/proof/inclusion",
            "get",
            &[("seq", true), ("size", false)][..],
        ),
        (
            "/v1/audit/proof/consistency",
            "get",
            &[("from", true), ("to", true)][..],
        ),
    ] {
        let parameters = doc["paths"][path][method]["parameters"].as_array().unwrap();
        for (name, required) in expected {
            let p = parameters
                .iter()
                .find(|p| p["name"] == *name)
                .unwrap_or_else(|| panic!("{path} lacks `{name}`"));
            assert_eq!(p["in"], "query", "{path} `{name}`");
            assert_eq!(p["required"], *required, "{path} `{name}`");
        }
    }
    // Everywhere: a path parameter is in the path template, and every template variable is a required path
    // parameter.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let parameters = op["parameters"].as_array().cloned().unwrap_or_default();
            for p in &parameters {
                if p["in"] == "path" {
                    let name = p["name"].as_str().unwrap();
                    assert!(
                        path.contains(&format!("{{{name}}}")),
                        "{method} {path}: path parameter `{name}`"
                    );
                    assert_eq!(p["required"], true);
                }
            }
            for variable in path.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}')) {
                assert!(
                    parameters.iter().any(|p| p["in"] == "path" && p["name"] == variable),
                    "{method} {path}: `{variable}` is not declared"
                );
            }
        }
    }
}

#[test]
fn every_error_is_a_problem_document_and_every_operation_lists_the_errors_it_can_give() {
    let doc = document();
    assert!(doc.to_string().contains("application/problem+json"));
    for endpoint in ENDPOINTS {
        let (method, path) = (endpoint.method, endpoint.path);
        let op = operation(&doc, method, path);
        let responses = op["responses"].as_object().unwrap();
        for (status, response) in responses {
            let response = resolve(&doc, response);
            assert!(
                !response["description"].as_str().unwrap().is_empty(),
                "{method} {path} {status} has no description"
            );
            if status.starts_with('2') && status != "204" {
                assert!(
                    response.get("content").is_some(),
                    "{method} {path} {status} has no content"
                );
            }
            assert!(
                response["headers"].get("X-Constitutional-Hash").is_some(),
                "{method} {path} {status} lacks the X-Constitutional-Hash header"
            );
            if status.as_str() < "400" || (path == "/ready" && status == "503") {
                continue;
            }
            let content = response["content"].as_object().unwrap();
            assert_eq!(
                content.keys().collect::<Vec<_>>(),
                ["application/problem+json"],
                "{method} {path} {status}"
            );
            assert_eq!(
                content["application/problem+json"]["schema"]["$ref"], "#/components/schemas/Problem",
                "{method} {path} {status}"
            );
        }
        let has = |status: &str| responses.contains_key(status);
        let mut expected = vec!["400", "409", "413", "500"];
        match endpoint.access {
            Access::Public => {}
            Access::Authenticated => expected.extend(["401", "503"]),
            Access::Permission(_) | Access::UserPermission(_) | Access::Metrics => {
                expected.extend(["401", "403", "503"])
            }
        }
        if op.get("requestBody").is_some() {
            expected.extend(["408", "415", "503"]);
        }
        if path.contains('{') {
            expected.push("404");
        }
        if path == "/v1/auth/login" {
            expected.extend(["401", "429", "503"]);
        }
        for status in expected {
            assert!(has(status), "{method} {path} does not document {status}");
        }
        // The optional request header, once.
        let hash_headers: Vec<&Value> = op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["in"] == "header" && p["name"] == "X-Constitutional-Hash")
            .collect();
        assert_eq!(hash_headers.len(), 1, "{method} {path}");
        assert_eq!(hash_headers[0]["required"], false);
    }
    // `GET /v1/decisions/batch` reaches the batch route, which has only POST.
    assert!(
        operation(&doc, "GET", "/v1/decisions/{decision_id}")["responses"]
            .get("405")
            .is_some()
    );
    assert!(
        operation(&doc, "GET", "/v1/decisions")["responses"]
            .get("405")
            .is_none()
    );
    // 401 says how to authenticate; 503 when to retry.
    let unauthorized = &doc["components"]["responses"]["Unauthorized"];
    assert!(unauthorized["headers"].get("WWW-Authenticate").is_some());
    assert!(
        doc["components"]["responses"]["Unavailable"]["headers"]
            .get("Retry-After")
            .is_some()
    );
}

#[test]
fn request_schemas_constrain_what_the_server_checks() {
    let doc = document();
    let roles: Vec<Value> = Role::ALL.iter().map(|r| json!(r.as_str())).collect();
    for (name, property) in [("NewUser", "roles"), ("NewApiKey", "roles"), ("UserPatch", "roles")] {
        let p = &schema(&doc, name)["properties"][property];
        assert_eq!(p["minItems"], 1, "{name}.{property}");
        assert_eq!(resolve(&doc, &p["items"])["enum"], json!(roles), "{name}.{property}");
    }
    let new_key = &schema(&doc, "NewApiKey")["properties"];
    assert_eq!(new_key["name"]["minLength"], 1);
    assert_eq!(new_key["name"]["maxLength"], 200);
    assert_eq!(new_key["expires_in_days"]["minimum"], 1);
    assert_eq!(new_key["expires_in_days"]["maximum"], 36500);
    let new_user = &schema(&doc, "NewUser")["properties"];
    assert_eq!(new_user["username"]["minLength"], 1);
    assert_eq!(new_user["username"]["maxLength"], 64);
    assert_eq!(new_user["password"]["minLength"], 12);
    assert_eq!(
        schema(&doc, "PasswordChange")["properties"]["new_password"]["minLength"],
        12
    );
    let patch = schema(&doc, "UserPatch");
    assert_eq!(patch["minProperties"], 1);
    for (name, property) in patch["properties"].as_object().unwrap() {
        // `"entity": null` unbinds the account from its entity; no other member may be null.
        let nullable = property.to_string().contains("null");
        assert_eq!(nullable, name == "entity", "UserPatch.{name}: nullable {nullable}");
    }
    let requests = &schema(&doc, "BatchRequest")["properties"]["requests"];
    assert_eq!(requests["minItems"], 1);
    assert_eq!(requests["maxItems"], MAX_BATCH_REQUESTS);
    // Request bodies refuse members they do not declare, as the server does.
    for name in [
        "DecisionRequest",
        "BatchRequest",
        "LoginRequest",
        "NewUser",
        "UserPatch",
        "NewApiKey",
        "PasswordChange",
    ] {
        assert_eq!(schema(&doc, name)["additionalProperties"], false, "{name}");
    }
}

#[tokio::test]
async fn the_server_refuses_what_the_schemas_refuse() {
    let s = server(ServerSettings::default()).await;
    let created = s
        .post(
            "/v1/auth/users",
            json!({"username": "someone", "roles": ["auditor"]}).to_string(),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_documented(&document(), "POST", "/v1/auth/users", &created);
    let patch = |body: Value| {
        Request::patch("/v1/auth/users/someone")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    // `null` is not a change; an empty change is none.
    for body in [
        json!({"roles": null, "disabled": true}),
        json!({}),
        json!({"roles": []}),
    ] {
        s.send(patch(body)).await.assert_problem(StatusCode::BAD_REQUEST);
    }
    let reply = s.send(patch(json!({"disabled": true}))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    for days in [0, 36501, u32::MAX] {
        s.post(
            "/v1/auth/api-keys",
            json!({"name": "k", "roles": ["agent"], "expires_in_days": days}).to_string(),
        )
        .await
        .assert_problem(StatusCode::BAD_REQUEST);
    }
    for days in [json!(-1), json!(1.5), json!("1")] {
        s.post(
            "/v1/auth/api-keys",
            json!({"name": "k", "roles": ["agent"], "expires_in_days": days}).to_string(),
        )
        .await
        .assert_problem(StatusCode::BAD_REQUEST);
    }
    // JSON Schema's integers include `30.0`.
    let created = s
        .post(
            "/v1/auth/api-keys",
            json!({"name": "é".repeat(200), "roles": ["agent"], "expires_in_days": 36500.0}).to_string(),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_documented(&document(), "POST", "/v1/auth/api-keys", &created);
    s.post(
        "/v1/auth/api-keys",
        json!({"name": "é".repeat(201), "roles": ["agent"]}).to_string(),
    )
    .await
    .assert_problem(StatusCode::BAD_REQUEST);
    s.post("/v1/decisions/batch", json!({"requests": []}).to_string())
        .await
        .assert_problem(StatusCode::BAD_REQUEST);
    // Bodies are objects: serde alone would read a struct from an array (`[]` rotated every credential).
    for (path, body) in [
        ("/v1/auth/rotate-all", "[]"),
        ("/v1/auth/rotate-all", " [true]"),
        ("/v1/auth/login", r#"["admin", "password"]"#),
        ("/v1/auth/login", "null"),
    ] {
        s.post(path, body).await.assert_problem(StatusCode::BAD_REQUEST);
    }
    // Sequence numbers and tree sizes are 1 to 2^63 - 1, as documented (2^63 used to overflow).
    for query in [
        "seq=1&size=9223372036854775808",
        "seq=1&size=0",
        "seq=0",
        "seq=9223372036854775808",
    ] {
        s.get(&format!("/v1/audit/proof/inclusion?{query}"))
            .await
            .assert_problem(StatusCode::BAD_REQUEST);
    }
    s.get("/v1/audit/entries/0")
        .await
        .assert_problem(StatusCode::BAD_REQUEST);
    let doc = document();
    let inclusion = operation(&doc, "GET", "/v1/audit/proof/inclusion")["parameters"].to_string();
    assert!(inclusion.contains(r#""minimum":1"#) && inclusion.contains(r#""maximum":9223372036854775807"#));
    let entry = operation(&doc, "GET", "/v1/audit/entries/{seq}")["parameters"].to_string();
    assert!(entry.contains(r#""minimum":1"#), "{entry}");
    // `limit` takes any u32 (and clamps it), so the document does not say int32.
    let list = operation(&doc, "GET", "/v1/decisions")["parameters"].to_string();
    assert!(
        list.contains(r#""maximum":4294967295"#) && !list.contains("int32"),
        "{list}"
    );
}

#[tokio::test]
async fn responses_validate_against_their_schemas() {
    let doc = document();
    let s = server(ServerSettings::default()).await;
    for path in [
        "/v1/constitution/principles",
        "/v1/constitution",
        "/v1/auth/me",
        "/v1/auth/users",
        "/v1/auth/api-keys",
        "/v1/audit/key",
        "/v1/audit/checkpoint",
        "/v1/decisions",
        "/health",
        "/ready",
    ] {
        let reply = s.get(path).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.text);
        assert_documented(&doc, "GET", path, &reply);
    }
    // The principles carry their policies, which the schema must allow.
    let principles = s.get("/v1/constitution/principles").await.json();
    assert!(principles[0]["policies"].is_array());
    // Problems, in the query and in the path.
    let reply = s.get("/v1/audit/proof/inclusion?seq=0").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_documented(&doc, "GET", "/v1/audit/proof/inclusion", &reply);
    let reply = s.get("/v1/decisions/no-such-decision").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_documented(&doc, "GET", "/v1/decisions/{decision_id}", &reply);
    let reply = s.get("/v1/decisions/batch").await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_documented(&doc, "GET", "/v1/decisions/{decision_id}", &reply);
    let reply = s
        .send_raw(Request::get("/v1/constitution").body(Body::empty()).unwrap())
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_documented(&doc, "GET", "/v1/constitution", &reply);
    let reply = s
        .send(
            Request::get("/v1/constitution")
                .header("x-constitutional-hash", "0000000000000000")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert_documented(&doc, "GET", "/v1/constitution", &reply);
    // The document served is the one generated.
    assert_eq!(s.get("/openapi.json").await.json(), doc);
}
