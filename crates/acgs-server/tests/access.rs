//! Access control over HTTP: every endpoint called with every role, with no credentials and with bad ones
//! (expired, tampered, unknown-`kid`, revoked tokens; a revoked API key; a disabled user), and the exact set of
//! allowed calls asserted; plus logins, refresh rotation, lockout, administration and the audit trail, all
//! through the router.
// Tests and benchmarks fail loudly on unexpected values.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use acgs_auth::{AuthService, AuthSettings, KeyRing, MasterKey, Role, UserChanges};
use acgs_server::ServerSettings;
use acgs_server::access::{Access, ENDPOINTS, access_for};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::{TestServer, server};
use serde_json::{Value, json};

/// A request for `endpoint` whose body (if any) is refused after authentication, so that an allowed call
/// changes nothing: path parameters name nothing that exists.
fn probe(method: &str, path: &str) -> Request<Body> {
    let uri = path
        .replace("{decision_id}", "no-such-decision")
        .replace("{seq}", "999999")
        .replace("{username}", "no-such-user")
        .replace("{id}", "acgs_000000000000")
        .replace("{number}", "999999");
    let builder = Request::builder().method(method).uri(uri);
    match method {
        "POST" | "PATCH" => builder
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(r#"{"not_a_field": true}"#))
            .unwrap(),
        _ => builder.body(Body::empty()).unwrap(),
    }
}

fn with_bearer(mut request: Request<Body>, credential: Option<&str>) -> Request<Body> {
    match credential {
        Some(c) if c.starts_with("Basic ") => {
            request.headers_mut().insert(header::AUTHORIZATION, c.parse().unwrap());
        }
        Some(c) => {
            request
                .headers_mut()
                .insert(header::AUTHORIZATION, format!("Bearer {c}").parse().unwrap());
        }
        None => {}
    }
    request
}

async fn json_post(s: &TestServer, uri: &str, credential: Option<&str>, body: Value) -> common::Reply {
    let request = Request::post(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    s.send_raw(with_bearer(request, credential)).await
}

async fn api_key(s: &TestServer, name: &str, roles: &[Role]) -> String {
    s.state
        .auth
        .create_api_key("test", name, roles.iter().copied().collect(), None)
        .await
        .unwrap()
        .1
}

async fn user_token(s: &TestServer, name: &str, roles: &[Role]) -> String {
    let password = format!("{name} password 123");
    s.state
        .auth
        .create_user("test", name, Some(password.clone()), roles.iter().copied().collect())
        .await
        .unwrap();
    let reply = json_post(
        s,
        "/v1/auth/login",
        None,
        json!({"username": name, "password": password}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.json()["access_token"].as_str().unwrap().to_owned()
}

/// The auth service of the test server, but with its clock set back: tokens it issues are long expired.
async fn service_in_the_past(s: &TestServer) -> AuthService {
    AuthService::new(
        s.store.clone(),
        MasterKey::load(&s.dir.path().join("auth-master.key")).unwrap(),
        AuthSettings::default(),
        Arc::new(|| acgs_auth::system_clock()() - 3_600_000_000),
    )
    .await
    .unwrap()
}

/// What the table says a credential with `roles` (or an invalid one: `None`) gets from `access`.
fn expected(access: Access, roles: Option<&[Role]>, is_user: bool) -> &'static str {
    let allows = |p: acgs_auth::Permission| roles.is_some_and(|r| r.iter().any(|role| role.permissions().contains(&p)));
    match (access, roles) {
        (Access::UserPermission(p), Some(_)) if is_user && allows(p) => "passes",
        (Access::UserPermission(_), Some(_)) => "403",
        (Access::Public, _) => "passes",
        (_, None) => "401",
        (Access::Authenticated, Some(_)) => "passes",
        (Access::Metrics, _) if allows(acgs_auth::Permission::MetricsRead) => "passes",
        (Access::Metrics, _) => "403",
        (Access::Permission(p), _) if allows(p) => "passes",
        (Access::Permission(_), _) => "403",
    }
}

fn outcome(status: StatusCode) -> &'static str {
    match status {
        StatusCode::UNAUTHORIZED => "401",
        StatusCode::FORBIDDEN => "403",
        _ => "passes",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_with_every_credential_gets_exactly_what_the_table_says() {
    let s = server(ServerSettings::default()).await;
    // Credentials: one API key and one user per role, and every kind of bad credential.
    let mut credentials: Vec<(String, Option<String>, Option<Vec<Role>>)> = Vec::new();
    for role in Role::ALL {
        let key = api_key(&s, &format!("{role} key"), &[role]).await;
        credentials.push((format!("api key {role}"), Some(key), Some(vec![role])));
        let token = user_token(&s, &format!("user-{role}"), &[role]).await;
        credentials.push((format!("user {role}"), Some(token), Some(vec![role])));
    }
    let both = api_key(&s, "auditor+operator", &[Role::Auditor, Role::Operator]).await;
    credentials.push((
        "api key auditor+operator".into(),
        Some(both),
        Some(vec![Role::Auditor, Role::Operator]),
    ));
    credentials.push(("none".into(), None, None));
    credentials.push(("not bearer".into(), Some("Basic YWRtaW46YWRtaW4=".into()), None));
    credentials.push(("garbage bearer".into(), Some("not-a-credential".into()), None));
    let admin_token = user_token(&s, "matrix-admin", &[Role::Admin]).await;
    // Expired: issued an hour ago, by the same keys.
    let past = service_in_the_past(&s).await;
    past.create_user(
        "test",
        "old-timer",
        Some("old timer password".into()),
        [Role::Admin].into_iter().collect(),
    )
    .await
    .unwrap();
    let expired = past
        .login("old-timer", "old timer password", "10.0.0.1")
        .await
        .unwrap()
        .access_token;
    credentials.push(("expired token".into(), Some(expired), None));
    // Tampered: the payload edited (roles), the signature kept.
    let parts: Vec<&str> = admin_token.split('.').collect();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut payload: Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    payload["roles"] = json!(["admin", "operator", "auditor"]);
    payload["exp"] = json!(payload["exp"].as_i64().unwrap() + 3600);
    let tampered = format!("{}.{}.{}", parts[0], b64.encode(payload.to_string()), parts[2]);
    credentials.push(("tampered token".into(), Some(tampered), None));
    // Signed by a key the server does not know, with valid claims.
    let stranger_master = MasterKey::generate().unwrap();
    let stranger = KeyRing::new(
        &[acgs_auth::signing::new_signing_key(&stranger_master, 0).unwrap()],
        &stranger_master,
        0,
    )
    .unwrap();
    let claims: acgs_auth::AccessClaims = serde_json::from_value(payload.clone()).unwrap();
    credentials.push(("unknown-kid token".into(), Some(stranger.sign(&claims).unwrap()), None));
    // Revoked: a logged-out session's token; a revoked API key; a disabled user's token.
    let revoked = user_token(&s, "logged-out", &[Role::Admin]).await;
    let logout = s
        .send_raw(with_bearer(
            Request::post("/v1/auth/logout").body(Body::empty()).unwrap(),
            Some(&revoked),
        ))
        .await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT, "{}", logout.text);
    credentials.push(("logged-out token".into(), Some(revoked), None));
    let (revoked_key_view, revoked_key) = s
        .state
        .auth
        .create_api_key(
            "test",
            "to revoke",
            [Role::Admin, Role::Agent].into_iter().collect(),
            None,
        )
        .await
        .unwrap();
    s.state.auth.revoke_api_key("test", &revoked_key_view.id).await.unwrap();
    credentials.push(("revoked api key".into(), Some(revoked_key), None));
    let disabled = user_token(&s, "disabled-user", &[Role::Admin]).await;
    s.state
        .auth
        .update_user(
            "test",
            "disabled-user",
            UserChanges {
                disabled: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    credentials.push(("disabled user token".into(), Some(disabled), None));

    let mut unexpected = Vec::new();
    let mut tally: BTreeMap<&str, usize> = BTreeMap::new();
    for endpoint in ENDPOINTS {
        for (label, credential, roles) in &credentials {
            // Logging out ends the session: give each logout its own.
            let fresh;
            let credential = if endpoint.path == "/v1/auth/logout" && label.starts_with("user ") {
                let role = roles.as_ref().unwrap()[0];
                fresh = {
                    let password = format!("user-{role} password 123");
                    let reply = json_post(
                        &s,
                        "/v1/auth/login",
                        None,
                        json!({"username": format!("user-{role}"), "password": password}),
                    )
                    .await;
                    reply.json()["access_token"].as_str().unwrap().to_owned()
                };
                Some(fresh.as_str())
            } else {
                credential.as_deref()
            };
            let reply = s
                .send_raw(with_bearer(probe(endpoint.method, endpoint.path), credential))
                .await;
            let got = outcome(reply.status);
            let want = expected(endpoint.access, roles.as_deref(), label.starts_with("user "));
            *tally.entry(got).or_default() += 1;
            if got != want {
                unexpected.push(format!(
                    "{} {} as {label}: expected {want}, got {} {}",
                    endpoint.method, endpoint.path, reply.status, reply.text
                ));
            }
            if got == "401" {
                assert_eq!(reply.content_type(), "application/problem+json");
                assert!(reply.headers.get(header::WWW_AUTHENTICATE).is_some());
            }
            if got == "403" {
                reply.assert_problem(StatusCode::FORBIDDEN);
            }
        }
    }
    assert!(
        unexpected.is_empty(),
        "{} unexpected results:\n{}",
        unexpected.len(),
        unexpected.join("\n")
    );
    println!("{} calls: {tally:?}", ENDPOINTS.len() * credentials.len());
    assert!(
        tally["passes"] > 100 && tally["401"] > 100 && tally["403"] > 100,
        "{tally:?}"
    );

    // Every refusal of an authenticated caller is in the audit log.
    let denied = s
        .store
        .audit_entries(1, 100_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| {
            e.event
                .as_deref()
                .is_some_and(|ev| ev.contains("\"permission.denied\""))
        })
        .count();
    assert_eq!(denied, tally["403"]);
}

#[tokio::test]
async fn the_router_and_the_openapi_document_have_exactly_the_table_s_endpoints() {
    let s = server(ServerSettings::default()).await;
    for endpoint in ENDPOINTS {
        let reply = s.send(probe(endpoint.method, endpoint.path)).await;
        assert!(
            reply.status != StatusCode::METHOD_NOT_ALLOWED
                && !(reply.status == StatusCode::NOT_FOUND && reply.text.contains("no route")),
            "{} {} is in the table but not routed: {}",
            endpoint.method,
            endpoint.path,
            reply.text
        );
    }
    let doc = s.get("/openapi.json").await.json();
    let mut documented = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.push((method.to_uppercase(), path.clone()));
        }
    }
    documented.sort();
    let mut table: Vec<(String, String)> = ENDPOINTS.iter().map(|e| (e.method.into(), e.path.into())).collect();
    table.sort();
    assert_eq!(documented, table);
    // Unknown routes and methods are not in the table.
    assert_eq!(access_for("GET", "/v1/nothing"), None);
    assert_eq!(access_for("DELETE", "/v1/decisions"), None);
    // The document declares the bearer scheme, and public endpoints do not require it.
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    assert_eq!(doc["paths"]["/health"]["get"]["security"], json!([{}]));
}

#[tokio::test]
async fn log_in_refresh_reuse_and_log_out_over_http() {
    let s = server(ServerSettings::default()).await;
    s.state
        .auth
        .create_user(
            "test",
            "ops",
            Some("operations password".into()),
            [Role::Operator].into_iter().collect(),
        )
        .await
        .unwrap();
    let bad = json_post(
        &s,
        "/v1/auth/login",
        None,
        json!({"username": "ops", "password": "nope nope nope"}),
    )
    .await;
    bad.assert_problem(StatusCode::UNAUTHORIZED);
    assert!(bad.headers.get(header::WWW_AUTHENTICATE).is_some());
    let tokens = json_post(
        &s,
        "/v1/auth/login",
        None,
        json!({"username": "ops", "password": "operations password"}),
    )
    .await
    .json();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 900);
    let access = tokens["access_token"].as_str().unwrap();
    let me = s
        .send_raw(with_bearer(
            Request::get("/v1/auth/me").body(Body::empty()).unwrap(),
            Some(access),
        ))
        .await
        .json();
    assert_eq!(me["kind"], "user");
    assert_eq!(me["id"], "ops");
    assert!(
        me["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("operations:manage"))
    );
    // The token verifies with the published keys.
    let jwks = s
        .send_raw(Request::get("/.well-known/jwks.json").body(Body::empty()).unwrap())
        .await;
    assert_eq!(jwks.status, StatusCode::OK);
    let kid = jsonwebtoken::decode_header(access).unwrap().kid.unwrap();
    assert!(
        jwks.json()["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == kid.as_str())
    );

    let refresh = tokens["refresh_token"].as_str().unwrap();
    let next = json_post(&s, "/v1/auth/refresh", None, json!({"refresh_token": refresh})).await;
    assert_eq!(next.status, StatusCode::OK, "{}", next.text);
    let next = next.json();
    // The old refresh token again: reuse; the session (and the new tokens) are revoked.
    json_post(&s, "/v1/auth/refresh", None, json!({"refresh_token": refresh}))
        .await
        .assert_problem(StatusCode::UNAUTHORIZED);
    let me = s
        .send_raw(with_bearer(
            Request::get("/v1/auth/me").body(Body::empty()).unwrap(),
            next["access_token"].as_str(),
        ))
        .await;
    me.assert_problem(StatusCode::UNAUTHORIZED);
    json_post(
        &s,
        "/v1/auth/refresh",
        None,
        json!({"refresh_token": "acgs_rt_nonsense"}),
    )
    .await
    .assert_problem(StatusCode::UNAUTHORIZED);
    json_post(&s, "/v1/auth/refresh", None, json!({"refresh": "x"}))
        .await
        .assert_problem(StatusCode::BAD_REQUEST);

    // API keys cannot log out; users can, once.
    let key = api_key(&s, "agent", &[Role::Agent]).await;
    s.send_raw(with_bearer(
        Request::post("/v1/auth/logout").body(Body::empty()).unwrap(),
        Some(&key),
    ))
    .await
    .assert_problem(StatusCode::BAD_REQUEST);
    let events: Vec<String> = s
        .store
        .audit_entries(1, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|e| e.event)
        .filter(|e| e.contains("\"security\""))
        .collect();
    assert!(events.iter().any(|e| e.contains("refresh_token.reused")));
    assert!(events.iter().any(|e| e.contains("login.failed")));
    assert!(events.iter().any(|e| e.contains("login.succeeded")));
}

#[tokio::test]
async fn lockout_and_throttling_over_http() {
    let s = server(ServerSettings::default()).await;
    s.state
        .auth
        .create_user(
            "test",
            "eve",
            Some("eve's real password".into()),
            [Role::Auditor].into_iter().collect(),
        )
        .await
        .unwrap();
    for _ in 0..5 {
        json_post(
            &s,
            "/v1/auth/login",
            None,
            json!({"username": "eve", "password": "guess guess guess"}),
        )
        .await
        .assert_problem(StatusCode::UNAUTHORIZED);
    }
    let locked = json_post(
        &s,
        "/v1/auth/login",
        None,
        json!({"username": "eve", "password": "eve's real password"}),
    )
    .await;
    let body = locked.assert_problem(StatusCode::UNAUTHORIZED);
    assert!(body["detail"].as_str().unwrap().contains("locked"), "{body}");
    // An administrator sees the lock and lifts it.
    let users = s.get("/v1/auth/users").await.json();
    let eve = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "eve")
        .unwrap()
        .clone();
    assert!(eve["locked_until_us"].as_i64().is_some());
    let unlock = s
        .send(Request::post("/v1/auth/users/eve/unlock").body(Body::empty()).unwrap())
        .await;
    assert_eq!(unlock.status, StatusCode::NO_CONTENT);
    let ok = json_post(
        &s,
        "/v1/auth/login",
        None,
        json!({"username": "eve", "password": "eve's real password"}),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    // Twenty failures from one address (in-process requests come from `unknown`): it is refused, 429.
    // (The unlock above forgot eve's five.)
    for i in 0..20 {
        json_post(
            &s,
            "/v1/auth/login",
            None,
            json!({"username": format!("x{i}"), "password": "guess guess guess"}),
        )
        .await;
    }
    let throttled = json_post(
        &s,
        "/v1/auth/login",
        None,
        json!({"username": "eve", "password": "eve's real password"}),
    )
    .await;
    throttled.assert_problem(StatusCode::TOO_MANY_REQUESTS);
    assert!(throttled.headers.get(header::RETRY_AFTER).is_some());
}

#[tokio::test]
async fn administrators_manage_users_and_api_keys_over_http() {
    let s = server(ServerSettings::default()).await;
    let admin = user_token(&s, "root", &[Role::Admin]).await;
    let as_admin = |r: Request<Body>| with_bearer(r, Some(&admin));
    // A user with a generated password.
    let created = s
        .send_raw(as_admin(
            Request::post("/v1/auth/users")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(
                    json!({"username": "rita", "roles": ["reviewer"]}).to_string(),
                ))
                .unwrap(),
        ))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let password = created.json()["password"].as_str().unwrap().to_owned();
    assert_eq!(created.json()["user"]["roles"], json!(["reviewer"]));
    let dup = s
        .send_raw(as_admin(
            Request::post("/v1/auth/users")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(json!({"username": "rita", "roles": ["agent"]}).to_string()))
                .unwrap(),
        ))
        .await;
    dup.assert_problem(StatusCode::CONFLICT);
    let bad_role = s
        .send_raw(as_admin(
            Request::post("/v1/auth/users")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(json!({"username": "sam", "roles": ["root"]}).to_string()))
                .unwrap(),
        ))
        .await;
    assert!(
        bad_role.assert_problem(StatusCode::BAD_REQUEST)["detail"]
            .as_str()
            .unwrap()
            .contains("unknown role")
    );
    let login = json_post(
        &s,
        "/v1/auth/login",
        None,
        json!({"username": "rita", "password": password}),
    )
    .await;
    assert_eq!(login.status, StatusCode::OK);
    // Roles changed by PATCH take effect at once.
    let patched = s
        .send_raw(as_admin(
            Request::patch("/v1/auth/users/rita")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(json!({"roles": ["auditor"]}).to_string()))
                .unwrap(),
        ))
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    let rita = login.json()["access_token"].as_str().unwrap().to_owned();
    let audit = s
        .send_raw(with_bearer(
            Request::get("/v1/audit/key").body(Body::empty()).unwrap(),
            Some(&rita),
        ))
        .await;
    assert_eq!(audit.status, StatusCode::OK);

    // An agent key: shown once, works for decisions, and stops working when revoked.
    let created = s
        .send_raw(as_admin(
            Request::post("/v1/auth/api-keys")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(
                    json!({"name": "billing bot", "roles": ["agent"], "expires_in_days": 30,
                           "entity": {"type": "Agent", "id": "a1"}})
                    .to_string(),
                ))
                .unwrap(),
        ))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let key = created.json()["key"].as_str().unwrap().to_owned();
    let id = created.json()["api_key"]["id"].as_str().unwrap().to_owned();
    assert!(created.json()["api_key"]["expires_at_us"].as_i64().is_some());
    let listed = s
        .send_raw(as_admin(Request::get("/v1/auth/api-keys").body(Body::empty()).unwrap()))
        .await;
    assert!(!listed.text.contains(&key), "secrets are never listed");
    assert!(listed.text.contains(&id));
    let decision = json!({
        "principal": {"type": "Agent", "id": "a1", "attributes": {"trust_level": 3, "risk_score": 10, "suspended": false},
                      "parents": [{"type": "Role", "id": "tool-user"}]},
        "action": "invoke_tool",
        "resource": {"type": "Tool", "id": "web-search", "attributes": {"risk_tier": 1, "external": true}}
    });
    let decided = json_post(&s, "/v1/decisions", Some(&key), decision.clone()).await;
    assert_eq!(decided.status, StatusCode::OK, "{}", decided.text);
    let revoke = s
        .send_raw(as_admin(
            Request::delete(format!("/v1/auth/api-keys/{id}"))
                .body(Body::empty())
                .unwrap(),
        ))
        .await;
    assert_eq!(revoke.status, StatusCode::NO_CONTENT);
    json_post(&s, "/v1/decisions", Some(&key), decision)
        .await
        .assert_problem(StatusCode::UNAUTHORIZED);
    // The log records who asked for each decision.
    let logged = s.get("/v1/decisions?limit=1").await.json();
    assert_eq!(logged[0]["body"]["caller"], format!("api_key:{id}"));
}

#[tokio::test]
async fn metrics_can_be_made_public() {
    let private = server(ServerSettings::default()).await;
    private
        .send_raw(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .assert_problem(StatusCode::UNAUTHORIZED);
    let public = server(ServerSettings {
        public_metrics: true,
        ..Default::default()
    })
    .await;
    let reply = public
        .send_raw(Request::get("/metrics").body(Body::empty()).unwrap())
        .await;
    assert_eq!(reply.status, StatusCode::OK);
}
