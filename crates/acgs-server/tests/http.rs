//! HTTP tests of every endpoint, in-process through the router, on a real SQLite (and PostgreSQL) log.
// Tests and benchmarks fail loudly on unexpected values.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use acgs_engine::{ConstitutionDocument, Outcome};
use acgs_server::ServerSettings;
use acgs_store::StoreOptions;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::{server, server_on};
use serde_json::{Value, json};

/// The example constitution's own test requests, by expected outcome, but those of actions that read counters
/// (ACGS keeps those itself, and their decisions depend on what came before: `tests/counters.rs`).
fn example_requests() -> Vec<(Outcome, Value)> {
    let source = common::example_source();
    let constitution = acgs_engine::Constitution::compile("example", &source).unwrap();
    let doc: ConstitutionDocument = toml::from_str(&source).unwrap();
    doc.tests
        .into_iter()
        .filter(|t| constitution.counters_for(&t.request.action).is_empty())
        .map(|t| (t.expect, serde_json::to_value(&t.request).unwrap()))
        .collect()
}

fn first(outcome: Outcome) -> Value {
    example_requests().into_iter().find(|(o, _)| *o == outcome).unwrap().1
}

#[tokio::test]
async fn decisions_are_answered_logged_and_readable() {
    let s = server(ServerSettings::default()).await;
    let mut request = first(Outcome::Allow);
    request["content"] = json!("Summarise the quarterly report for jane.doe@example.com");
    let reply = s.post("/v1/decisions", request.to_string()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.hash_header(), s.short_hash());
    let body = reply.json();
    let expected = s
        .state
        .active
        .engine()
        .decide(&serde_json::from_value(request.clone()).unwrap())
        .unwrap();
    assert_eq!(body["decision"], expected.outcome.as_str());
    assert_eq!(
        body["constitutional_hash"],
        s.state.active.constitution().hash().to_hex()
    );
    assert_eq!(
        body["constitution_version"],
        s.state.active.constitution().metadata().version
    );
    assert!(
        body["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["policy_id"].is_string() && r["principle_id"].is_string())
    );
    assert!(body["audit_seq"].as_i64().unwrap() >= 1);
    assert!(body["evaluated_in_us"].is_u64());
    assert!(
        body["detections"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["kind"] == "email")
    );
    assert!(body.get("shadow_decision").is_none());

    // The decision is in the log, with the content redacted to its digest.
    let id = body["decision_id"].as_str().unwrap();
    let logged = s.get(&format!("/v1/decisions/{id}")).await;
    assert_eq!(logged.status, StatusCode::OK);
    let logged = logged.json();
    assert_eq!(logged["seq"], body["audit_seq"]);
    assert_eq!(logged["outcome"], expected.outcome.as_str());
    assert!(
        !logged.to_string().contains("jane.doe@example.com"),
        "raw content must not be logged"
    );
    assert_eq!(
        logged["body"]["request"]["content"]["sha256"].as_str().unwrap().len(),
        64
    );
    assert_eq!(s.state.log.store().count().await.unwrap(), 1);
}

#[tokio::test]
async fn http_decisions_match_the_constitution_tests() {
    let s = server(ServerSettings::default()).await;
    for (expected, request) in example_requests() {
        let reply = s.post("/v1/decisions", request.to_string()).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        assert_eq!(reply.json()["decision"], expected.as_str(), "request {request}");
    }
    let n = example_requests().len() as i64;
    assert_eq!(s.state.log.store().count().await.unwrap(), n);
    // Filters on the list endpoint.
    let denies = s.get("/v1/decisions?outcome=deny&limit=1000").await.json();
    let expected_denies = example_requests().iter().filter(|(o, _)| *o == Outcome::Deny).count();
    assert_eq!(denies.as_array().unwrap().len(), expected_denies);
    let page = s.get("/v1/decisions?limit=5").await.json();
    assert_eq!(page.as_array().unwrap().len(), 5);
    assert_eq!(page[0]["seq"], s.state.log.store().last_seq().await.unwrap());
    assert_eq!(page[0]["body"]["caller"], "api_key:".to_owned() + &s.key[..17]);
}

#[tokio::test]
async fn shadow_mode_answers_allow_and_logs_the_real_outcome() {
    let s = server(ServerSettings {
        shadow: true,
        ..Default::default()
    })
    .await;
    let reply = s.post("/v1/decisions", first(Outcome::Deny).to_string()).await;
    let body = reply.json();
    assert_eq!(body["decision"], "allow");
    assert_eq!(body["shadow_decision"], "deny");
    let logged = s
        .get(&format!("/v1/decisions/{}", body["decision_id"].as_str().unwrap()))
        .await
        .json();
    assert_eq!(logged["outcome"], "deny");
    assert_eq!(logged["effective_outcome"], "allow");
    assert_eq!(logged["shadow"], true);
    let ready = s.get("/ready").await.json();
    assert_eq!(ready["shadow"], true);
    // The runbook's "check the formal verification service": the pinned solver is there.
    assert_eq!(ready["solver"], format!("cvc5 {}", acgs_verify::PINNED_CVC5_VERSION));
    assert!(ready.get("solver_error").is_none());
}

#[tokio::test]
async fn mismatched_constitutional_hash_is_409_and_counted() {
    let s = server(ServerSettings::default()).await;
    let full = s.state.active.constitution().hash().to_hex();
    let request = first(Outcome::Allow).to_string();
    for good in [full.clone(), s.short_hash()] {
        let reply = s
            .send(
                Request::post("/v1/decisions")
                    .header(header::CONTENT_TYPE, "application/json")
                    .header("X-Constitutional-Hash", good)
                    .body(Body::from(request.clone()))
                    .unwrap(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    let reply = s
        .send(
            Request::post("/v1/decisions")
                .header(header::CONTENT_TYPE, "application/json")
                .header("X-Constitutional-Hash", "cdd01ef066bc6cf2")
                .body(Body::from(request))
                .unwrap(),
        )
        .await;
    let body = reply.assert_problem(StatusCode::CONFLICT);
    assert_eq!(body["expected_hash"], "cdd01ef066bc6cf2");
    assert_eq!(body["active_hash"], full);
    assert_eq!(body["active_hash_short"], s.short_hash());
    assert_eq!(reply.hash_header(), s.short_hash());
    // Nothing was decided or logged for the mismatched request.
    assert_eq!(s.state.log.store().count().await.unwrap(), 2);
    // Also on read endpoints.
    let reply = s
        .send(
            Request::get("/v1/constitution")
                .header("X-Constitutional-Hash", "00")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    reply.assert_problem(StatusCode::CONFLICT);
    let metrics = s.get("/metrics").await.text;
    assert!(
        metrics.contains("acgs_constitutional_hash_mismatches_total"),
        "{metrics}"
    );
}

#[tokio::test]
async fn bad_bodies_get_problem_documents() {
    let s = server(ServerSettings {
        max_body_bytes: 4096,
        ..Default::default()
    })
    .await;
    // Malformed JSON.
    let body = s
        .post("/v1/decisions", "{\"principal\": ")
        .await
        .assert_problem(StatusCode::BAD_REQUEST);
    assert!(body["detail"].as_str().unwrap().contains("malformed JSON"), "{body}");
    // Unknown field.
    let mut request = first(Outcome::Allow);
    request["principle"] = json!("typo");
    let body = s
        .post("/v1/decisions", request.to_string())
        .await
        .assert_problem(StatusCode::BAD_REQUEST);
    assert!(body["detail"].as_str().unwrap().contains("principle"), "{body}");
    // Missing field.
    s.post("/v1/decisions", r#"{"action": "read_data"}"#)
        .await
        .assert_problem(StatusCode::BAD_REQUEST);
    // Wrong types for the schema.
    let mut request = first(Outcome::Allow);
    request["principal"]["attributes"]["trust_level"] = json!("very");
    s.post("/v1/decisions", request.to_string())
        .await
        .assert_problem(StatusCode::BAD_REQUEST);
    // Unknown action.
    let mut request = first(Outcome::Allow);
    request["action"] = json!("launch_missiles");
    let body = s
        .post("/v1/decisions", request.to_string())
        .await
        .assert_problem(StatusCode::BAD_REQUEST);
    assert!(body["detail"].as_str().unwrap().contains("launch_missiles"));
    // Oversized body.
    let mut request = first(Outcome::Allow);
    request["content"] = json!("x".repeat(10_000));
    s.post("/v1/decisions", request.to_string())
        .await
        .assert_problem(StatusCode::PAYLOAD_TOO_LARGE);
    // Not JSON.
    let reply = s
        .send(
            Request::post("/v1/decisions")
                .header(header::CONTENT_TYPE, "text/plain")
                .body(Body::from("hi"))
                .unwrap(),
        )
        .await;
    reply.assert_problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // None of these were logged.
    assert_eq!(s.state.log.store().count().await.unwrap(), 0);
}

#[tokio::test]
async fn unknown_routes_methods_and_ids_are_problems_with_the_hash_header() {
    let s = server(ServerSettings::default()).await;
    let reply = s.get("/v1/nothing").await;
    reply.assert_problem(StatusCode::NOT_FOUND);
    assert_eq!(reply.hash_header(), s.short_hash());
    let reply = s
        .send(Request::delete("/v1/decisions").body(Body::empty()).unwrap())
        .await;
    reply.assert_problem(StatusCode::METHOD_NOT_ALLOWED);
    s.get("/v1/decisions/0000").await.assert_problem(StatusCode::NOT_FOUND);
    s.get("/v1/decisions?outcome=maybe")
        .await
        .assert_problem(StatusCode::BAD_REQUEST);
    s.get("/v1/decisions?limit=-1")
        .await
        .assert_problem(StatusCode::BAD_REQUEST);
    s.get("/v1/decisions?colour=red")
        .await
        .assert_problem(StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn batch_decides_each_request_and_reports_bad_ones() {
    let s = server(ServerSettings::default()).await;
    let mut bad = first(Outcome::Allow);
    bad["action"] = json!("nope");
    let batch = json!({"requests": [first(Outcome::Allow), bad, first(Outcome::Deny), first(Outcome::Escalate)]});
    let reply = s.post("/v1/decisions/batch", batch.to_string()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let results = reply.json()["results"].as_array().unwrap().clone();
    assert_eq!(results.len(), 4);
    assert_eq!(results[0]["decision"], "allow");
    assert_eq!(results[1]["error"]["status"], 400);
    assert_eq!(results[2]["decision"], "deny");
    assert_eq!(results[3]["decision"], "escalate");
    let seqs: std::collections::HashSet<i64> = [0, 2, 3]
        .iter()
        .map(|&i| results[i]["audit_seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs.len(), 3);
    assert_eq!(s.state.log.store().count().await.unwrap(), 3);

    s.post("/v1/decisions/batch", r#"{"requests": []}"#)
        .await
        .assert_problem(StatusCode::BAD_REQUEST);
    let too_many = json!({"requests": vec![first(Outcome::Allow); acgs_server::MAX_BATCH_REQUESTS + 1]});
    let s_big = server(ServerSettings {
        max_body_bytes: 64 << 20,
        ..Default::default()
    })
    .await;
    let body = s_big
        .post("/v1/decisions/batch", too_many.to_string())
        .await
        .assert_problem(StatusCode::BAD_REQUEST);
    assert!(body["detail"].as_str().unwrap().contains("at most 1000"));
}

#[tokio::test]
async fn constitution_endpoints_publish_the_active_document() {
    let s = server(ServerSettings::default()).await;
    let c = s.state.active.constitution().clone();
    let body = s.get("/v1/constitution").await.json();
    assert_eq!(body["hash"], c.hash().to_hex());
    assert_eq!(body["hash_short"], c.hash().short());
    assert_eq!(body["principles"].as_array().unwrap().len(), c.principles().count());
    assert_eq!(body["policies"].as_array().unwrap().len(), c.policies().count());
    assert!(body["schema"].as_str().unwrap().contains("entity Agent"));
    let principles = s.get("/v1/constitution/principles").await.json();
    let first = &principles[0];
    assert!(first["id"].is_string() && first["text"].is_string() && first["severity"].is_string());
    assert!(!first["policies"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn health_ready_metrics_and_openapi() {
    let s = server(ServerSettings::default()).await;
    let health = s.get("/health").await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.json()["status"], "ok");
    let ready = s.get("/ready").await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.json()["storage"], "sqlite");
    assert_eq!(ready.json()["constitutional_hash"], s.short_hash());

    // A deny by default cites no principle: an allow does (so the test does not rely on other tests' metrics).
    s.post("/v1/decisions", first(Outcome::Deny).to_string()).await;
    s.post("/v1/decisions", first(Outcome::Allow).to_string()).await;
    let metrics = s.get("/metrics").await;
    assert_eq!(metrics.status, StatusCode::OK);
    for name in [
        "acgs_http_request_duration_seconds_bucket",
        "acgs_decisions_total",
        "acgs_decisions_by_principle_total",
        "acgs_audit_write_seconds_bucket",
        "acgs_decision_evaluation_seconds_bucket",
    ] {
        assert!(metrics.text.contains(name), "missing {name} in\n{}", metrics.text);
    }

    let openapi = s.get("/openapi.json").await.json();
    assert!(openapi["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/v1/decisions",
        "/v1/decisions/batch",
        "/v1/constitution",
        "/health",
        "/ready",
        "/metrics",
    ] {
        assert!(openapi["paths"].get(path).is_some(), "openapi lacks {path}");
    }
    assert!(openapi["components"]["schemas"].get("DecisionRequest").is_some());
}

#[tokio::test]
async fn a_decision_that_cannot_be_logged_is_not_answered() {
    // PostgreSQL in its own schema; dropping the table makes every append fail.
    let (schema, url) = common::postgres_schema();
    let store = acgs_store::open(&url, &StoreOptions::default()).await.unwrap();
    let s = server_on(store, ServerSettings::default(), tempfile::tempdir().unwrap()).await;
    assert_eq!(
        s.post("/v1/decisions", first(Outcome::Allow).to_string()).await.status,
        StatusCode::OK
    );
    common::psql(&format!("DROP TABLE {schema}.decisions"));
    let reply = s.post("/v1/decisions", first(Outcome::Allow).to_string()).await;
    let body = reply.assert_problem(StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.get("decision").is_none());
    assert!(reply.headers.get(header::RETRY_AFTER).is_some());
}

fn chrono_like_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() % 1_000_000_000)
        .unwrap_or(0)
}

#[tokio::test]
async fn serves_on_a_real_socket_and_shuts_down_gracefully() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = server(ServerSettings::default()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let store = s.state.log.store().clone();
    let task = tokio::spawn(acgs_server::serve(listener, s.state.clone(), async move {
        let _ = stopped.await;
    }));
    let body = first(Outcome::Allow).to_string();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST /v1/decisions HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        s.key,
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.to_ascii_lowercase().contains("x-constitutional-hash:"));
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    assert_eq!(store.count().await.unwrap(), 1);
}

#[tokio::test]
async fn ready_fails_when_storage_is_gone() {
    // A database of its own, dropped (with its connections) under the running server.
    let base =
        std::env::var("ACGS_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let name = format!("acgs_ready_{}_{}", std::process::id(), chrono_like_nanos());
    let psql = |sql: String| {
        assert!(
            std::process::Command::new("psql")
                .args([base.as_str(), "-q", "-c", &sql])
                .status()
                .unwrap()
                .success(),
            "{sql}"
        );
    };
    psql(format!("CREATE DATABASE {name}"));
    let url = match base.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{name}"),
        None => panic!("unexpected url {base}"),
    };
    let store = acgs_store::open(&url, &StoreOptions::default()).await.unwrap();
    let s = server_on(store, ServerSettings::default(), tempfile::tempdir().unwrap()).await;
    assert_eq!(s.get("/ready").await.status, StatusCode::OK);
    psql(format!("DROP DATABASE {name} WITH (FORCE)"));
    let reply = s.get("/ready").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{}", reply.text);
    let body = reply.json();
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["storage_ok"], false);
    assert!(body["storage_error"].is_string());
    // Liveness is unaffected, and decisions are refused rather than answered unlogged.
    assert_eq!(s.get("/health").await.status, StatusCode::OK);
    s.post("/v1/decisions", first(Outcome::Allow).to_string())
        .await
        .assert_problem(StatusCode::SERVICE_UNAVAILABLE);
}

/// A decision index rewritten behind the server's back (`escalate` to `allow`) is answered with a 500 problem
/// naming the entry, never with the forged outcome.
#[tokio::test]
async fn a_forged_decision_index_is_a_problem_not_the_forged_outcome() {
    let (schema, url) = common::postgres_schema();
    let store = acgs_store::open(&url, &StoreOptions::default()).await.unwrap();
    let s = server_on(store, ServerSettings::default(), tempfile::tempdir().unwrap()).await;
    let reply = s.post("/v1/decisions", first(Outcome::Escalate).to_string()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let decided = reply.json();
    assert_eq!(decided["decision"], "escalate");
    let (id, seq) = (
        decided["decision_id"].as_str().unwrap(),
        decided["audit_seq"].as_i64().unwrap(),
    );
    common::psql(&format!(
        "UPDATE {schema}.decisions SET outcome = 'allow', effective_outcome = 'allow' WHERE seq = {seq}"
    ));
    for uri in [format!("/v1/decisions/{id}"), "/v1/decisions".to_owned()] {
        let reply = s.get(&uri).await;
        let problem = reply.assert_problem(StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(problem["type"], "urn:acgs:problem:integrity-failure", "{uri}");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .starts_with(&format!("decision index does not match its audit event at seq {seq}")),
            "{uri}: {problem}"
        );
        assert!(!reply.text.contains("\"outcome\""), "{uri}: {}", reply.text);
    }
}

#[tokio::test]
async fn audit_endpoints_serve_checkpoints_entries_proofs_and_receipts() {
    let s = server(ServerSettings::default()).await;
    // The log already holds the security events of the test server's set-up (signing key, API key).
    let base = s.state.log.store().last_seq().await.unwrap();
    assert_eq!(s.store.audit_entries(1, 10).await.unwrap()[0].kind, "security");
    let mut ids = Vec::new();
    for (_, request) in example_requests().into_iter().take(6) {
        let reply = s.post("/v1/decisions", request.to_string()).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        ids.push(reply.json()["decision_id"].as_str().unwrap().to_owned());
    }
    let key = s.get("/v1/audit/key").await.json();
    assert_eq!(key["algorithm"], "ed25519");
    let verifier = acgs_audit::VerifierKey::parse(key["verifier_key"].as_str().unwrap()).unwrap();
    assert_eq!(verifier.name, key["origin"]);

    // A receipt verifies with nothing but the public key, and names the decision.
    let reply = s.get(&format!("/v1/decisions/{}/receipt", ids[2])).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let receipt: acgs_audit::Receipt = serde_json::from_str(&reply.text).unwrap();
    assert_eq!(receipt.seq, (base + 3) as u64);
    let verified = receipt.verify(&verifier).unwrap();
    assert_eq!(verified.event["decision"]["decision_id"], ids[2].as_str());
    assert_eq!(
        verified.event["constitutional_hash"],
        s.state.active.constitution().hash().to_hex()
    );
    assert!(verified.checkpoint.size >= (base + 3) as u64);
    let mut forged = receipt.clone();
    forged.event = forged
        .event
        .replacen(&format!("\"seq\":{}", base + 3), &format!("\"seq\":{}", base + 4), 1);
    assert!(forged.verify(&verifier).is_err());

    // The latest checkpoint, entries, and proofs that check against it.
    let checkpoint = s.get("/v1/audit/checkpoint").await.json();
    let signed = verifier
        .verify_checkpoint(checkpoint["note"].as_str().unwrap())
        .unwrap();
    assert_eq!(signed.size, checkpoint["tree_size"].as_u64().unwrap());
    let entry = s.get(&format!("/v1/audit/entries/{}", base + 2)).await.json();
    assert_eq!(entry["kind"], "decision");
    let event = entry["event"].as_str().unwrap();
    use base64::Engine as _;
    let b64 = |v: &Value| -> [u8; 32] {
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap()
    };
    assert_eq!(b64(&entry["leaf_hash"]), acgs_audit::leaf_hash(event.as_bytes()));
    let inclusion = s
        .get(&format!(
            "/v1/audit/proof/inclusion?seq={}&size={}",
            base + 2,
            signed.size
        ))
        .await
        .json();
    let proof: Vec<[u8; 32]> = inclusion["proof"].as_array().unwrap().iter().map(b64).collect();
    acgs_audit::verify_inclusion(
        &b64(&entry["leaf_hash"]),
        (base + 1) as u64,
        signed.size,
        &proof,
        &signed.root,
    )
    .unwrap();
    assert_eq!(inclusion["checkpoint"], checkpoint["note"]);
    // Consistency between an older signed head and the latest one.
    s.post("/v1/decisions", first(Outcome::Deny).to_string()).await;
    let newer = s.get(&format!("/v1/decisions/{}/receipt", ids[0])).await;
    assert_eq!(newer.status, StatusCode::OK);
    let newer = s
        .get(&format!("/v1/audit/proof/inclusion?seq={}", base + 7))
        .await
        .json();
    let newer_head = verifier
        .verify_checkpoint(newer["checkpoint"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        newer_head.size,
        (base + 7) as u64,
        "a checkpoint covering the entry is signed on demand"
    );
    let consistency = s
        .get(&format!(
            "/v1/audit/proof/consistency?from={}&to={}",
            signed.size,
            base + 7
        ))
        .await
        .json();
    let proof: Vec<[u8; 32]> = consistency["proof"].as_array().unwrap().iter().map(b64).collect();
    acgs_audit::verify_consistency(signed.size, (base + 7) as u64, &signed.root, &newer_head.root, &proof).unwrap();

    // Bad parameters are 400, unknown entries 404, all as problem documents.
    s.get("/v1/audit/entries/0")
        .await
        .assert_problem(StatusCode::BAD_REQUEST);
    s.get("/v1/audit/entries/abc")
        .await
        .assert_problem(StatusCode::BAD_REQUEST);
    s.get("/v1/audit/entries/99")
        .await
        .assert_problem(StatusCode::NOT_FOUND);
    s.get("/v1/audit/proof/inclusion?seq=99")
        .await
        .assert_problem(StatusCode::NOT_FOUND);
    s.get("/v1/audit/proof/inclusion?seq=5&size=3")
        .await
        .assert_problem(StatusCode::BAD_REQUEST);
    s.get("/v1/audit/proof/inclusion?seq=x")
        .await
        .assert_problem(StatusCode::BAD_REQUEST);
    let beyond = s
        .get("/v1/audit/proof/inclusion?seq=1&size=100000")
        .await
        .assert_problem(StatusCode::BAD_REQUEST);
    assert!(
        beyond["detail"].as_str().unwrap().contains("beyond the log"),
        "{beyond}"
    );
    s.get("/v1/audit/proof/consistency?from=5&to=3")
        .await
        .assert_problem(StatusCode::BAD_REQUEST);
    s.get("/v1/audit/proof/consistency?from=1&to=500")
        .await
        .assert_problem(StatusCode::BAD_REQUEST);
    s.get("/v1/decisions/nope/receipt")
        .await
        .assert_problem(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn ready_reflects_whether_decisions_can_be_recorded() {
    // PostgreSQL in its own schema; a trigger makes every insert into the audit log fail (as a full disk or a
    // read-only database would), and dropping it lets writes succeed again.
    let (schema, url) = common::postgres_schema();
    let store = acgs_store::open(&url, &StoreOptions::default()).await.unwrap();
    let s = server_on(store, ServerSettings::default(), tempfile::tempdir().unwrap()).await;
    assert_eq!(s.get("/ready").await.status, StatusCode::OK);
    common::psql(&format!(
        "CREATE FUNCTION {schema}.refuse() RETURNS trigger LANGUAGE plpgsql AS \
         $$BEGIN RAISE EXCEPTION 'writes refused for this test'; END$$; \
         CREATE TRIGGER refuse BEFORE INSERT ON {schema}.audit_log FOR EACH ROW EXECUTE FUNCTION {schema}.refuse()"
    ));
    // The database still answers reads, but a decision cannot be recorded: not ready.
    s.post("/v1/decisions", first(Outcome::Allow).to_string())
        .await
        .assert_problem(StatusCode::SERVICE_UNAVAILABLE);
    let reply = s.get("/ready").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{}", reply.text);
    let body = reply.json();
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["storage_ok"], true);
    assert_eq!(body["writable"], false);
    assert!(
        body["write_error"].as_str().unwrap().contains("writes refused"),
        "{body}"
    );
    // Writes work again: the next probe (at most one a second) finds it, without any decision being sent.
    common::psql(&format!("DROP TRIGGER refuse ON {schema}.audit_log"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let reply = s.get("/ready").await;
        if reply.status == StatusCode::OK {
            assert_eq!(reply.json()["writable"], true);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still not ready: {}", reply.text);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(
        s.post("/v1/decisions", first(Outcome::Allow).to_string()).await.status,
        StatusCode::OK
    );
}

/// A tmpfs of `size` mounted on a fresh directory, unmounted when dropped (the tests run as root in CI).
struct SmallFilesystem {
    dir: tempfile::TempDir,
}

impl SmallFilesystem {
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        mounted.then_some(Self { dir })
    }

    /// Fill the filesystem with a file until the kernel says it is full.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let path = self.dir.path().join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let chunk = vec![0xa5u8; 64 * 1024];
        while file.write_all(&chunk).is_ok() {}
        let small = vec![0xa5u8; 512];
        while file.write_all(&small).is_ok() {}
        path
    }
}

impl Drop for SmallFilesystem {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[tokio::test]
async fn a_full_disk_makes_the_server_not_ready_until_space_is_freed() {
    let is_root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let Some(disk) = SmallFilesystem::mount("24m") else {
        assert!(!is_root, "root could not mount a tmpfs for the full-disk test");
        eprintln!("skipped: mounting a small filesystem needs root");
        return;
    };
    let url = format!("sqlite://{}/acgs.db", disk.dir.path().display());
    let store = acgs_store::open(&url, &StoreOptions::default()).await.unwrap();
    let s = server_on(store, ServerSettings::default(), tempfile::tempdir().unwrap()).await;
    let request = first(Outcome::Allow).to_string();
    assert_eq!(s.post("/v1/decisions", request.clone()).await.status, StatusCode::OK);
    assert_eq!(s.get("/ready").await.status, StatusCode::OK);

    let filler = disk.fill();
    let mut refused = None;
    for _ in 0..5000 {
        let reply = s.post("/v1/decisions", request.clone()).await;
        if reply.status != StatusCode::OK {
            refused = Some(reply);
            break;
        }
    }
    let refused = refused.expect("a decision is refused once the disk is full");
    refused.assert_problem(StatusCode::SERVICE_UNAVAILABLE);
    let reply = s.get("/ready").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{}", reply.text);
    assert_eq!(reply.json()["writable"], false);

    std::fs::remove_file(filler).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let reply = s.get("/ready").await;
        if reply.status == StatusCode::OK {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still not ready: {}", reply.text);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(s.post("/v1/decisions", request).await.status, StatusCode::OK);
    s.state.log.shutdown().await;
}

#[tokio::test]
async fn repeated_keys_are_refused_at_any_depth() {
    let s = server(ServerSettings::default()).await;
    let request = example_requests()
        .into_iter()
        .map(|(outcome, request)| (outcome, request.to_string()))
        .find(|(outcome, request)| {
            *outcome == Outcome::Allow && request.contains(r#""attributes":{"#) && request.contains(r#""context":{"#)
        })
        .unwrap()
        .1;
    let cases = [
        // Inside the principal's attributes, where serde would keep the last value.
        request.replacen(r#""attributes":{"#, r#""attributes":{"trust_level":0,"#, 1),
        // Two spellings of one key.
        request.replacen(r#""attributes":{"#, r#""attributes":{"x":1,"\u0078":2,"#, 1),
        request.replacen(r#""context":{"#, r#""context":{"k":1,"k":2,"#, 1),
        // At the top level.
        request.replacen('{', r#"{"action":"read_data","#, 1),
    ];
    for body in &cases {
        let reply = s.post("/v1/decisions", body.clone()).await;
        let problem = reply.assert_problem(StatusCode::BAD_REQUEST);
        assert!(problem["detail"].as_str().unwrap().contains("duplicate"), "{problem}");
    }
    // The same in a batch, which is refused whole.
    let batch = format!(r#"{{"requests":[{request},{}]}}"#, cases[0]);
    let reply = s.post("/v1/decisions/batch", batch).await;
    let problem = reply.assert_problem(StatusCode::BAD_REQUEST);
    assert!(
        problem["detail"].as_str().unwrap().contains("duplicate key"),
        "{problem}"
    );
    // In an entity's record (the example's resource names its owner).
    let mut with_entity = first(Outcome::Allow);
    with_entity["entities"] = json!([{"type": "Team", "id": "payables", "attributes": {}}]);
    let text = with_entity
        .to_string()
        .replacen(r#""id":"payables","#, r#""id":"payables","id":"other","#, 1);
    assert!(text.contains(r#""id":"other""#), "{text}");
    s.post("/v1/decisions", text)
        .await
        .assert_problem(StatusCode::BAD_REQUEST);
    // Nothing was decided or logged.
    assert_eq!(s.state.log.store().count().await.unwrap(), 0);
}

#[tokio::test]
async fn the_hash_pin_is_checked_after_routing_and_authentication_and_only_once() {
    let s = server(ServerSettings::default()).await;
    let request = first(Outcome::Allow).to_string();
    let decide = |pins: &[&str], authorization: Option<&str>| {
        let mut builder = Request::post("/v1/decisions").header(header::CONTENT_TYPE, "application/json");
        for pin in pins {
            builder = builder.header("X-Constitutional-Hash", *pin);
        }
        if let Some(a) = authorization {
            builder = builder.header(header::AUTHORIZATION, a);
        }
        builder.body(Body::from(request.clone())).unwrap()
    };
    let short = s.short_hash();
    // No credentials: 401 whatever the pin says.
    s.send_raw(decide(&["cdd01ef066bc6cf2"], None))
        .await
        .assert_problem(StatusCode::UNAUTHORIZED);
    s.send_raw(decide(&["cdd01ef066bc6cf2"], Some("Bearer acgs_nobody_x")))
        .await
        .assert_problem(StatusCode::UNAUTHORIZED);
    // No such route: 404 whatever the pin says.
    s.send(
        Request::get("/v1/nothing")
            .header("X-Constitutional-Hash", "cdd01ef066bc6cf2")
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .assert_problem(StatusCode::NOT_FOUND);
    // More than one pin: 400, even when one (or both) is right.
    for pins in [[short.as_str(), "cdd01ef066bc6cf2"], [short.as_str(), short.as_str()]] {
        let reply = s.send(decide(&pins, None)).await;
        let problem = reply.assert_problem(StatusCode::BAD_REQUEST);
        assert!(
            problem["detail"].as_str().unwrap().contains("at most once"),
            "{problem}"
        );
    }
    // One right pin decides; one wrong pin is 409.
    assert_eq!(s.send(decide(&[short.as_str()], None)).await.status, StatusCode::OK);
    s.send(decide(&["cdd01ef066bc6cf2"], None))
        .await
        .assert_problem(StatusCode::CONFLICT);
    assert_eq!(s.state.log.store().count().await.unwrap(), 1);
}

#[tokio::test]
async fn heavy_requests_are_decided_off_the_async_workers_with_the_same_result() {
    let s = server(ServerSettings::default()).await;
    let light = first(Outcome::Allow);
    let mut heavy = light.clone();
    heavy["content"] = json!("Please summarise the quarterly figures for the team. ".repeat(400));
    let before = offloaded(&s).await;
    let light_reply = s.post("/v1/decisions", light.to_string()).await;
    assert_eq!(offloaded(&s).await, before, "a light request is decided in place");
    let heavy_reply = s.post("/v1/decisions", heavy.to_string()).await;
    assert_eq!(heavy_reply.status, StatusCode::OK, "{}", heavy_reply.text);
    assert_eq!(offloaded(&s).await, before + 1);
    assert_eq!(heavy_reply.json()["decision"], light_reply.json()["decision"]);
    assert_eq!(heavy_reply.json()["reasons"], light_reply.json()["reasons"]);
    // Logged like any other decision.
    let id = heavy_reply.json()["decision_id"].as_str().unwrap().to_owned();
    assert_eq!(s.get(&format!("/v1/decisions/{id}")).await.status, StatusCode::OK);
}

/// `acgs_decisions_offloaded_total` as `/metrics` shows it (0 before the first).
async fn offloaded(s: &common::TestServer) -> u64 {
    let metrics = s.get("/metrics").await.text;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("acgs_decisions_offloaded_total "))
        .map_or(0, |v| v.trim().parse().unwrap())
}

#[tokio::test]
async fn decisions_are_timed_and_named_by_the_injected_clock_and_ids() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    let mut s = server(ServerSettings::default()).await;
    let next = Arc::new(AtomicU64::new(1));
    s.state = s.state.clone().with_clock_and_ids(
        Arc::new(|| 1_800_000_000_123_456),
        Arc::new(move || format!("dec-test-{}", next.fetch_add(1, Ordering::SeqCst))),
    );
    for n in 1..=2 {
        let decided = s.post("/v1/decisions", first(Outcome::Allow).to_string()).await.json();
        assert_eq!(decided["decision_id"], format!("dec-test-{n}"));
    }
    let logged = s.get("/v1/decisions/dec-test-2").await.json();
    assert_eq!(logged["recorded_at"], "2027-01-15T08:00:00.123456Z");
    assert_eq!(logged["decision_id"], "dec-test-2");
}

#[tokio::test]
async fn a_newly_activated_constitution_decides_the_next_request() {
    let s = server(ServerSettings::default()).await;
    let before = s.short_hash();
    let text = common::example_source().replacen("version = \"1.0.0\"", "version = \"1.0.1\"", 1);
    let next = acgs_engine::Constitution::from_toml("example 1.0.1", &text).unwrap();
    s.state.active.activate(
        std::sync::Arc::new(acgs_engine::Engine::new(std::sync::Arc::new(next))),
        2,
    );
    let reply = s.post("/v1/decisions", first(Outcome::Allow).to_string()).await;
    assert_eq!(reply.json()["constitution_version"], "1.0.1");
    assert_ne!(reply.hash_header(), before);
    assert_eq!(reply.hash_header(), s.short_hash());
    // The old pin is now refused.
    let pinned = s
        .send(
            Request::post("/v1/decisions")
                .header(header::CONTENT_TYPE, "application/json")
                .header("X-Constitutional-Hash", before)
                .body(Body::from(first(Outcome::Allow).to_string()))
                .unwrap(),
        )
        .await;
    pinned.assert_problem(StatusCode::CONFLICT);
}
