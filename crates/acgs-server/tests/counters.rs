//! The usage counters ACGS keeps, on the example constitution as it is: its daily transfer limit and tool-call
//! rate limit read `context.usage`, which ACGS fills from its own allowed decisions. Concurrent requests can never
//! together pass a limit only one of them fits (SQLite, and two servers sharing PostgreSQL), the counters survive
//! a restart, the window passes with the (injected) clock, and a caller cannot send them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use acgs_auth::Role;
use acgs_server::ServerSettings;
use acgs_store::{Store, StoreOptions};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::{EXAMPLE, TestServer, server_with};
use serde_json::{Value, json};

const ENTITIES: &str = include_str!("../../../examples/entities.jsonl");

/// 2026-12-01T00:00:00Z.
const T0: i64 = 1_796_083_200_000_000;
const DAY_US: i64 = 86_400_000_000;

/// The daily limit of the example (2,500,000.00 per account).
const DAILY_LIMIT_CENTS: i64 = 250_000_000;

struct Counted {
    s: TestServer,
    gateway: String,
    now: Arc<AtomicI64>,
}

/// A server on `store` with the example as it is, its entities registered, and a clock the test moves.
async fn counted(store: Arc<dyn Store>, dir: tempfile::TempDir, now: Arc<AtomicI64>) -> Counted {
    let mut s = server_with(
        store,
        ServerSettings::default(),
        dir,
        &std::fs::read_to_string(EXAMPLE).unwrap(),
    )
    .await;
    let clock_now = now.clone();
    s.state = s.state.with_clock_and_ids(
        Arc::new(move || clock_now.load(Ordering::SeqCst)),
        acgs_server::decision_service::uuid_v7_ids(),
    );
    s.state.entities.load().await.unwrap();
    if s.state.entities.export(None).is_empty() {
        let entities = ENTITIES.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        s.state
            .entities
            .import(acgs_server::entity_service::Writer::Host("test"), entities)
            .await
            .unwrap();
    }
    let gateway = s
        .state
        .auth
        .create_api_key("test", "gateway", [Role::Gateway].into_iter().collect(), None)
        .await
        .unwrap()
        .1;
    Counted { s, gateway, now }
}

/// A server on a new SQLite database; the database's directory (kept apart from the server's key files, so
/// that another server can open it after this one is gone) and its URL.
async fn sqlite() -> (Counted, tempfile::TempDir, String) {
    let data = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/acgs.db", data.path().display());
    let store = acgs_store::open(&url, &StoreOptions::default()).await.unwrap();
    let server = counted(store, tempfile::tempdir().unwrap(), Arc::new(AtomicI64::new(T0))).await;
    (server, data, url)
}

fn transfer(account: &str, amount_cents: i64) -> Value {
    json!({
        "principal": {"type": "Agent", "id": "ap-agent"},
        "action": "transfer_funds",
        "resource": {"type": "Account", "id": account,
                     "attributes": {"owner_team": {"__entity": {"type": "Team", "id": "payables"}},
                                    "currency": "EUR", "frozen": false}},
        "context": {"amount_cents": amount_cents, "currency": "EUR"}
    })
}

fn tool_call() -> Value {
    json!({
        "principal": {"type": "Agent", "id": "research-assistant"},
        "action": "invoke_tool",
        "resource": {"type": "Tool", "id": "web-search", "attributes": {"risk_tier": 1, "external": true}}
    })
}

impl Counted {
    async fn decide(&self, request: &Value) -> Value {
        let reply = self
            .s
            .send(
                Request::post("/v1/decisions")
                    .header(header::CONTENT_TYPE, "application/json")
                    .header(header::AUTHORIZATION, format!("Bearer {}", self.gateway))
                    .body(Body::from(request.to_string()))
                    .unwrap(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        reply.json()
    }

    async fn outcome(&self, request: &Value) -> String {
        self.decide(request).await["decision"].as_str().unwrap().to_owned()
    }

    /// Record `amount` sent from `account` at the clock's now, as an allowed transfer would.
    async fn spent(&self, account: &str, amount: i64) {
        let key = format!("daily_total_cents|Account::\"{account}\"");
        let now = self.now.load(Ordering::SeqCst);
        let mut session = self.s.store.usage_session(std::slice::from_ref(&key)).await.unwrap();
        session.record(&key, now, amount, now - DAY_US).await.unwrap();
        session.finish().await.unwrap();
    }
}

/// Send `n` transfers of `amount` from `account` at once, spread over `servers`; how many were allowed, and
/// every denial's deciding policies.
async fn race(servers: &[&Counted], account: &str, n: usize, amount: i64) -> (usize, Vec<Value>) {
    let replies = futures::future::join_all((0..n).map(|i| {
        let server = servers[i % servers.len()];
        let request = transfer(account, amount);
        async move { server.decide(&request).await }
    }))
    .await;
    let allowed = replies.iter().filter(|r| r["decision"] == "allow").count();
    let denials = replies
        .iter()
        .filter(|r| r["decision"] != "allow")
        .map(|r| r["reasons"].clone())
        .collect();
    (allowed, denials)
}

/// Rounds of 100 concurrent transfers that each fit the day's remaining room but no two of which do: exactly one
/// is allowed in each, the others are denied by the daily limit.
async fn concurrent_transfers_never_exceed_the_limit_together(servers: &[&Counted]) {
    for round in 0..5 {
        let account = format!("opex-eur-{round}");
        // 10,000.00 of room left; each transfer is 6,000.00.
        servers[0].spent(&account, DAILY_LIMIT_CENTS - 1_000_000).await;
        let (allowed, denials) = race(servers, &account, 100, 600_000).await;
        assert_eq!(allowed, 1, "round {round}: {denials:?}");
        for reasons in &denials {
            assert!(
                reasons
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|r| r["policy_id"] == "daily-transfer-limit"),
                "{reasons}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_transfers_never_exceed_the_daily_limit_on_sqlite() {
    let (c, _data, _) = sqlite().await;
    concurrent_transfers_never_exceed_the_limit_together(&[&c]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_transfers_never_exceed_the_daily_limit_across_two_servers_on_postgresql() {
    let (_schema, url) = common::postgres_schema();
    let now = Arc::new(AtomicI64::new(T0));
    let open = || async { acgs_store::open(&url, &StoreOptions::default()).await.unwrap() };
    let a = counted(open().await, tempfile::tempdir().unwrap(), now.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        a.s.dir.path().join("auth-master.key"),
        dir.path().join("auth-master.key"),
    )
    .unwrap();
    let mut b = counted(open().await, dir, now.clone()).await;
    // One gateway key for both servers (they share the credentials).
    b.gateway = a.gateway.clone();
    b.s.state.auth.reload().await.unwrap();
    concurrent_transfers_never_exceed_the_limit_together(&[&a, &b]).await;
}

#[tokio::test]
async fn allowed_transfers_add_up_and_the_window_passes() {
    let (c, _data, _) = sqlite().await;
    // 9,000.00 at a time: allowed until the day's total would pass 2,500,000.00.
    c.spent("opex-eur", DAILY_LIMIT_CENTS - 2_000_000).await;
    let first = c.decide(&transfer("opex-eur", 900_000)).await;
    assert_eq!(first["decision"], "allow");
    // The log records the counters' values the decision read.
    let logged =
        c.s.get(&format!("/v1/decisions/{}", first["decision_id"].as_str().unwrap()))
            .await
            .json();
    assert_eq!(
        logged["body"]["usage"],
        json!({"daily_total_cents": DAILY_LIMIT_CENTS - 2_000_000})
    );
    assert_eq!(c.outcome(&transfer("opex-eur", 900_000)).await, "allow");
    let over = c.decide(&transfer("opex-eur", 900_000)).await;
    assert_eq!(over["decision"], "deny", "{over}");
    // Denied and escalated decisions add nothing: another account is unaffected, and so is this one's total.
    assert_eq!(c.outcome(&transfer("opex-usd", 900_000)).await, "allow");
    assert_eq!(c.outcome(&transfer("opex-eur", 200_000)).await, "allow");
    // A day after the spending, the window has passed it.
    c.now.fetch_add(DAY_US + 1, Ordering::SeqCst);
    assert_eq!(c.outcome(&transfer("opex-eur", 900_000)).await, "allow");
}

#[tokio::test]
async fn the_tool_call_rate_limit_counts_allowed_calls_per_minute() {
    let (c, _data, _) = sqlite().await;
    for i in 0..60 {
        assert_eq!(c.outcome(&tool_call()).await, "allow", "call {i}");
        c.now.fetch_add(100_000, Ordering::SeqCst);
    }
    let limited = c.decide(&tool_call()).await;
    assert_eq!(limited["decision"], "deny");
    assert_eq!(limited["reasons"][0]["policy_id"], "tool-call-rate-limit");
    // A minute after the first call, it no longer counts.
    c.now.store(T0 + 60_000_001, Ordering::SeqCst);
    assert_eq!(c.outcome(&tool_call()).await, "allow");
}

#[tokio::test]
async fn counters_survive_a_restart() {
    let (c, _data, url) = sqlite().await;
    c.spent("opex-eur", DAILY_LIMIT_CENTS - 1_000_000).await;
    assert_eq!(c.outcome(&transfer("opex-eur", 600_000)).await, "allow");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        c.s.dir.path().join("auth-master.key"),
        dir.path().join("auth-master.key"),
    )
    .unwrap();
    c.s.state.log.shutdown().await;
    let now = c.now.clone();
    drop(c);
    let store = acgs_store::open(&url, &StoreOptions::default()).await.unwrap();
    let again = counted(store, dir, now).await;
    assert_eq!(again.outcome(&transfer("opex-eur", 600_000)).await, "deny");
    assert_eq!(again.outcome(&transfer("opex-eur", 300_000)).await, "allow");
}

#[tokio::test]
async fn a_caller_may_not_send_the_usage() {
    let (c, _data, _) = sqlite().await;
    let mut lying = transfer("opex-eur", 5_000);
    lying["context"]["usage"] = json!({"daily_total_cents": 0});
    let reply =
        c.s.send(
            Request::post("/v1/decisions")
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::AUTHORIZATION, format!("Bearer {}", c.gateway))
                .body(Body::from(lying.to_string()))
                .unwrap(),
        )
        .await;
    let problem = reply.assert_problem(StatusCode::BAD_REQUEST);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("context.usage is reserved"),
        "{problem}"
    );
}
