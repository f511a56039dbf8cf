//! The entity registry over HTTP, on the example constitution as it is (agents, users and roles from the
//! registry): registered facts decide and a request may not assert them, bound keys decide for their principal
//! only, the writer rules limit who changes what, every write is versioned and audited, changes reach the next
//! decision (also on another replica sharing PostgreSQL), and the registry survives a restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use acgs_auth::Role;
use acgs_server::ServerSettings;
use acgs_store::{EntityName, Store, StoreOptions};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::{EXAMPLE, Reply, TestServer, server_with};
use serde_json::{Value, json};

const ENTITIES: &str = include_str!("../../../examples/entities.jsonl");

fn example() -> String {
    std::fs::read_to_string(EXAMPLE).unwrap()
}

async fn on(store: Arc<dyn Store>, dir: tempfile::TempDir) -> TestServer {
    server_with(store, ServerSettings::default(), dir, &example()).await
}

/// A temporary directory holding `s`'s master key: for another server on the same database.
fn sharing_master_key(s: &TestServer) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(s.dir.path().join("auth-master.key"), dir.path().join("auth-master.key")).unwrap();
    dir
}

async fn sqlite_server() -> TestServer {
    sqlite_server_with(&example()).await
}

/// A server on a new SQLite database with the constitution `source` in force.
async fn sqlite_server_with(source: &str) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/acgs.db", dir.path().display());
    let store = acgs_store::open(&url, &StoreOptions::default()).await.unwrap();
    server_with(store, ServerSettings::default(), dir, source).await
}

/// `method` on `uri` with `key` as the bearer (the every-role key when `None`) and a JSON body.
async fn call(s: &TestServer, method: Method, uri: &str, key: Option<&str>, body: Option<Value>) -> Reply {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(key) = key {
        request = request.header(header::AUTHORIZATION, format!("Bearer {key}"));
    }
    let request = match body {
        Some(body) => request
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string())),
        None => request.body(Body::empty()),
    };
    s.send(request.unwrap()).await
}

async fn key(s: &TestServer, roles: &[Role], entity: Option<(&str, &str)>) -> String {
    let entity = entity.map(|(t, id)| EntityName {
        entity_type: t.into(),
        id: id.into(),
    });
    s.state
        .auth
        .create_api_key_for("test", "test key", roles.iter().copied().collect(), None, entity)
        .await
        .unwrap()
        .1
}

/// Register the example's entities as an operator.
async fn register_example(s: &TestServer) {
    let entities: Vec<Value> = ENTITIES.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let operator = key(s, &[Role::Operator], None).await;
    let reply = call(
        s,
        Method::POST,
        "/v1/entities/import",
        Some(&operator),
        Some(json!({ "entities": entities })),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json()["created"], entities.len());
}

/// The tour's transfer of `amount_cents` by `agent`, naming the agent by type and id only.
fn transfer(agent: &str, amount_cents: i64) -> Value {
    json!({
        "principal": {"type": "Agent", "id": agent},
        "action": "transfer_funds",
        "resource": {"type": "Account", "id": "opex-eur",
                     "attributes": {"owner_team": {"__entity": {"type": "Team", "id": "payables"}},
                                    "currency": "EUR", "frozen": false}},
        "context": {"amount_cents": amount_cents, "currency": "EUR"}
    })
}

async fn decide(s: &TestServer, key: &str, request: Value) -> Reply {
    call(s, Method::POST, "/v1/decisions", Some(key), Some(request)).await
}

async fn outcome(s: &TestServer, key: &str, request: Value) -> String {
    let reply = decide(s, key, request).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.json()["decision"].as_str().unwrap().to_owned()
}

/// The security events of the audit log, as `(event, actor, subject)`.
async fn security_events(s: &TestServer) -> Vec<(String, String, String)> {
    let entries = s.store.audit_entries(1, 10_000).await.unwrap();
    entries
        .iter()
        .filter_map(|e| {
            let leaf: Value = serde_json::from_str(e.event.as_deref()?).ok()?;
            let event = leaf.get("security")?;
            Some((
                event["event"].as_str()?.to_owned(),
                event["actor"].as_str().unwrap_or("").to_owned(),
                event["subject"].as_str().unwrap_or("").to_owned(),
            ))
        })
        .collect()
}

/// The governance events of the audit log about entities, as their leaves' `governance` objects.
async fn entity_events(s: &TestServer) -> Vec<Value> {
    let entries = s.store.audit_entries(1, 10_000).await.unwrap();
    entries
        .iter()
        .filter_map(|e| {
            let leaf: Value = serde_json::from_str(e.event.as_deref()?).ok()?;
            let event = leaf.get("governance")?.clone();
            event["action"].as_str()?.starts_with("entity.").then_some(event)
        })
        .collect()
}

#[tokio::test]
async fn registered_facts_decide_and_a_request_asserting_them_is_refused() {
    let s = sqlite_server().await;
    register_example(&s).await;
    let gateway = key(&s, &[Role::Gateway], None).await;
    assert_eq!(outcome(&s, &gateway, transfer("ap-agent", 5_000)).await, "allow");
    assert_eq!(outcome(&s, &gateway, transfer("ap-agent", 2_500_000)).await, "escalate");
    // The helpdesk bot is registered, but not as a finance agent: claiming the role is refused, not believed.
    assert_eq!(outcome(&s, &gateway, transfer("helpdesk-bot", 5_000)).await, "deny");
    let mut claimed = transfer("helpdesk-bot", 5_000);
    claimed["principal"]["parents"] =
        json!([{"type": "Role", "id": "finance-agent"}, {"type": "Team", "id": "payables"}]);
    let reply = decide(&s, &gateway, claimed).await;
    let problem = reply.assert_problem(StatusCode::BAD_REQUEST);
    assert!(problem["detail"].as_str().unwrap().contains("registry"), "{problem}");
    let mut lying = transfer("ap-agent", 5_000);
    lying["principal"]["attributes"] = json!({"trust_level": 5, "risk_score": 0, "suspended": false});
    decide(&s, &gateway, lying)
        .await
        .assert_problem(StatusCode::BAD_REQUEST);
    // An approver the request makes up is not registered: the approval cannot count.
    let mut approved = transfer("ap-agent", 2_500_000);
    approved["context"]["approval"] =
        json!({"id": "APR-1", "approver": {"__entity": {"type": "User", "id": "mallory"}}});
    approved["entities"] = json!([{"type": "User", "id": "mallory", "attributes": {"suspended": false}}]);
    decide(&s, &gateway, approved)
        .await
        .assert_problem(StatusCode::BAD_REQUEST);
    decide(&s, &gateway, transfer("nobody", 5_000))
        .await
        .assert_problem(StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_bound_key_decides_for_its_principal_only_and_naming_another_is_a_security_event() {
    let s = sqlite_server().await;
    register_example(&s).await;
    let agent = key(&s, &[Role::Agent], Some(("Agent", "ap-agent"))).await;
    assert_eq!(outcome(&s, &agent, transfer("ap-agent", 5_000)).await, "allow");
    let before = s.store.count().await.unwrap();
    let other = decide(&s, &agent, transfer("senior-ap-agent", 5_000)).await;
    let problem = other.assert_problem(StatusCode::FORBIDDEN);
    assert!(
        problem["detail"].as_str().unwrap().contains("senior-ap-agent"),
        "{problem}"
    );
    assert_eq!(s.store.count().await.unwrap(), before, "nothing was decided");
    let events = security_events(&s).await;
    assert!(
        events
            .iter()
            .any(|(event, actor, subject)| event == "principal.mismatch"
                && actor.starts_with("api_key:")
                && subject.contains("senior-ap-agent")),
        "{events:?}"
    );
    // A batch naming another principal is refused whole.
    let batch = json!({"requests": [transfer("ap-agent", 1), transfer("helpdesk-bot", 1)]});
    call(&s, Method::POST, "/v1/decisions/batch", Some(&agent), Some(batch))
        .await
        .assert_problem(StatusCode::FORBIDDEN);
    // An agent key bound to nobody decides for nobody.
    let unbound = key(&s, &[Role::Agent], None).await;
    decide(&s, &unbound, transfer("ap-agent", 5_000))
        .await
        .assert_problem(StatusCode::FORBIDDEN);
    // A gateway decides for any registered agent, with the registry's facts.
    let gateway = key(&s, &[Role::Gateway], None).await;
    assert_eq!(outcome(&s, &gateway, transfer("senior-ap-agent", 5_000)).await, "allow");
}

#[tokio::test]
async fn writer_rules_limit_who_changes_what_and_refusals_are_recorded() {
    let s = sqlite_server().await;
    register_example(&s).await;
    let monitor = key(&s, &[Role::Monitor], None).await;
    let agent = key(&s, &[Role::Agent], Some(("Agent", "ap-agent"))).await;
    let uri = "/v1/entities/Agent/ap-agent";
    // The monitor sets the risk score, and nothing else.
    let set = call(
        &s,
        Method::PATCH,
        uri,
        Some(&monitor),
        Some(json!({"attributes": {"risk_score": 55}})),
    )
    .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text);
    assert_eq!(set.json()["attributes"]["risk_score"], 55);
    for change in [
        json!({"attributes": {"trust_level": 5}}),
        json!({"parents": [{"type": "Role", "id": "treasury-reviewer"}]}),
    ] {
        let refused = call(&s, Method::PATCH, uri, Some(&monitor), Some(change)).await;
        refused.assert_problem(StatusCode::FORBIDDEN);
    }
    call(&s, Method::DELETE, uri, Some(&monitor), None)
        .await
        .assert_problem(StatusCode::FORBIDDEN);
    let roles = call(
        &s,
        Method::PUT,
        "/v1/entities/Role/auditor-bot",
        Some(&monitor),
        Some(json!({})),
    )
    .await;
    roles.assert_problem(StatusCode::FORBIDDEN);
    let events = security_events(&s).await;
    assert_eq!(
        events
            .iter()
            .filter(|(event, ..)| event == "entity.write_denied")
            .count(),
        4,
        "{events:?}"
    );
    // An agent may not touch the registry at all (no `entities:write`), least of all its own facts.
    call(
        &s,
        Method::PATCH,
        uri,
        Some(&agent),
        Some(json!({"attributes": {"risk_score": 0}})),
    )
    .await
    .assert_problem(StatusCode::FORBIDDEN);
    // The operator grants a role.
    let operator = key(&s, &[Role::Operator], None).await;
    let granted = call(
        &s,
        Method::PATCH,
        uri,
        Some(&operator),
        Some(
            json!({"parents": [{"type": "Role", "id": "finance-agent"}, {"type": "Role", "id": "treasury-reviewer"},
                                 {"type": "Team", "id": "payables"}]}),
        ),
    )
    .await;
    assert_eq!(granted.status, StatusCode::OK, "{}", granted.text);
}

#[tokio::test]
async fn an_entity_change_is_visible_to_the_next_decision() {
    let s = sqlite_server().await;
    register_example(&s).await;
    let gateway = key(&s, &[Role::Gateway], None).await;
    let uri = "/v1/entities/Agent/ap-agent";
    assert_eq!(outcome(&s, &gateway, transfer("ap-agent", 5_000)).await, "allow");
    let risky = call(
        &s,
        Method::PATCH,
        uri,
        None,
        Some(json!({"attributes": {"risk_score": 85}})),
    )
    .await;
    assert_eq!(risky.status, StatusCode::OK, "{}", risky.text);
    assert_eq!(outcome(&s, &gateway, transfer("ap-agent", 5_000)).await, "deny");
    call(
        &s,
        Method::PATCH,
        uri,
        None,
        Some(json!({"attributes": {"risk_score": 10, "suspended": true}})),
    )
    .await;
    assert_eq!(outcome(&s, &gateway, transfer("ap-agent", 5_000)).await, "deny");
    call(
        &s,
        Method::PATCH,
        uri,
        None,
        Some(json!({"attributes": {"suspended": false}})),
    )
    .await;
    assert_eq!(outcome(&s, &gateway, transfer("ap-agent", 5_000)).await, "allow");
    // Its owner suspended: the agent is halted too (the owner is a registered User the agent's facts name).
    call(
        &s,
        Method::PATCH,
        "/v1/entities/User/maria",
        None,
        Some(json!({"attributes": {"suspended": true}})),
    )
    .await;
    assert_eq!(outcome(&s, &gateway, transfer("ap-agent", 5_000)).await, "deny");
    call(&s, Method::DELETE, uri, None, None).await;
    decide(&s, &gateway, transfer("ap-agent", 5_000))
        .await
        .assert_problem(StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn writes_are_versioned_checked_and_audited() {
    let s = sqlite_server().await;
    let uri = "/v1/entities/Agent/new-bot";
    let facts = json!({"attributes": {"trust_level": 2, "risk_score": 10, "suspended": false},
                       "parents": [{"type": "Role", "id": "assistant"}]});
    let created = call(&s, Method::PUT, uri, None, Some(facts.clone())).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.headers[header::ETAG], "\"1\"");
    assert!(created.json()["updated_by"].as_str().unwrap().starts_with("api_key:"));
    // The same facts again change nothing.
    let same = call(&s, Method::PUT, uri, None, Some(facts.clone())).await;
    assert_eq!(
        (same.status, same.json()["revision"].clone()),
        (StatusCode::OK, json!(1))
    );
    let mut changed = facts.clone();
    changed["attributes"]["trust_level"] = json!(3);
    let stale = Request::put(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::IF_MATCH, "\"7\"")
        .body(Body::from(changed.to_string()))
        .unwrap();
    s.send(stale).await.assert_problem(StatusCode::PRECONDITION_FAILED);
    let current = Request::put(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::IF_MATCH, "\"1\"")
        .body(Body::from(changed.to_string()))
        .unwrap();
    let replaced = s.send(current).await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.text);
    assert_eq!(replaced.headers[header::ETAG], "\"2\"");
    // Facts that do not conform to the schema are refused and change nothing.
    for bad in [
        json!({"attributes": {"trust_level": "high", "risk_score": 10, "suspended": false}}),
        json!({"attributes": {"risk_score": 10, "suspended": false}}),
        json!({"attributes": {"trust_level": 1, "risk_score": 10, "suspended": false},
               "parents": [{"type": "Tool", "id": "t"}]}),
    ] {
        call(&s, Method::PUT, uri, None, Some(bad))
            .await
            .assert_problem(StatusCode::BAD_REQUEST);
    }
    call(&s, Method::PUT, "/v1/entities/Robot/r2", None, Some(json!({})))
        .await
        .assert_problem(StatusCode::BAD_REQUEST);
    let deleted = call(&s, Method::DELETE, uri, None, None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    call(&s, Method::GET, uri, None, None)
        .await
        .assert_problem(StatusCode::NOT_FOUND);
    call(&s, Method::DELETE, uri, None, None)
        .await
        .assert_problem(StatusCode::NOT_FOUND);
    // Registered again, it continues its revisions.
    let again = call(&s, Method::PUT, uri, None, Some(facts)).await;
    assert_eq!(
        (again.status, again.json()["revision"].clone()),
        (StatusCode::CREATED, json!(4))
    );
    let events = entity_events(&s).await;
    let actions: Vec<&str> = events.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        ["entity.created", "entity.updated", "entity.deleted", "entity.created"]
    );
    assert_eq!(events[1]["subject"], "entity/Agent::\"new-bot\"");
    assert_eq!(events[1]["detail"]["changed_attributes"], json!(["trust_level"]));
    assert_eq!(
        events[1]["detail"]["before_sha256"],
        events[0]["detail"]["after_sha256"]
    );
    assert!(events[2]["detail"]["after_sha256"].is_null());
}

#[tokio::test]
async fn import_export_and_listing() {
    let s = sqlite_server().await;
    register_example(&s).await;
    let lines = ENTITIES.lines().count();
    let jsonl = call(&s, Method::GET, "/v1/entities/export?format=jsonl", None, None).await;
    assert_eq!(jsonl.content_type(), "application/x-ndjson");
    assert_eq!(jsonl.text.lines().count(), lines);
    let cedar = call(
        &s,
        Method::GET,
        "/v1/entities/export?format=cedar&type=Agent",
        None,
        None,
    )
    .await;
    let cedar_entities = cedar.json();
    let agents = ENTITIES.lines().filter(|l| l.contains("\"Agent\"")).count();
    assert_eq!(cedar_entities.as_array().unwrap().len(), agents);
    assert!(cedar_entities[0]["uid"]["type"] == "Agent" && cedar_entities[0]["attrs"].is_object());
    // Re-importing the Cedar export changes nothing; importing it into another registry registers it.
    let again = call(
        &s,
        Method::POST,
        "/v1/entities/import",
        None,
        Some(json!({"entities": cedar_entities.clone()})),
    )
    .await;
    assert_eq!(again.json(), json!({"created": 0, "updated": 0, "unchanged": agents}));
    // An import with one bad entity registers none of them.
    let before = call(&s, Method::GET, "/v1/entities?limit=1000", None, None)
        .await
        .json();
    let bad = json!({"entities": [
        {"type": "Agent", "id": "fine-bot", "attributes": {"trust_level": 1, "risk_score": 1, "suspended": false}},
        {"type": "Agent", "id": "broken-bot", "attributes": {"trust_level": 1}},
    ]});
    let refused = call(&s, Method::POST, "/v1/entities/import", None, Some(bad)).await;
    let problem = refused.assert_problem(StatusCode::BAD_REQUEST);
    assert!(
        problem["detail"].as_str().unwrap().starts_with("entities[1]"),
        "{problem}"
    );
    assert_eq!(
        call(&s, Method::GET, "/v1/entities?limit=1000", None, None)
            .await
            .json(),
        before
    );
    // Listing: by type, by parent, and page by page.
    let roles = call(&s, Method::GET, "/v1/entities?type=Role", None, None).await.json();
    assert!(
        roles["entities"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["type"] == "Role")
    );
    let finance = call(
        &s,
        Method::GET,
        "/v1/entities?parent_type=Role&parent_id=finance-agent",
        None,
        None,
    )
    .await
    .json();
    let ids: Vec<&str> = finance["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["ap-agent", "senior-finance-agent"]);
    let mut seen = 0;
    let mut after = String::new();
    loop {
        let uri = format!("/v1/entities?limit=7{after}");
        let page = call(&s, Method::GET, &uri, None, None).await.json();
        seen += page["entities"].as_array().unwrap().len();
        match page["next"].as_str() {
            Some(next) => after = format!("&after={}", urlencode(next)),
            None => break,
        }
    }
    assert_eq!(seen, lines);
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn the_registry_survives_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/acgs.db", data.path().display());
    let store = acgs_store::open(&url, &StoreOptions::default()).await.unwrap();
    let first = on(store.clone(), tempfile::tempdir().unwrap()).await;
    register_example(&first).await;
    call(
        &first,
        Method::PATCH,
        "/v1/entities/Agent/ap-agent",
        None,
        Some(json!({"attributes": {"risk_score": 85}})),
    )
    .await;
    let dir = sharing_master_key(&first);
    first.state.log.shutdown().await;
    drop(first);
    drop(store);
    let store = acgs_store::open(&url, &StoreOptions::default()).await.unwrap();
    let second = on(store, dir).await;
    assert_eq!(second.state.entities.load().await.unwrap(), ENTITIES.lines().count());
    let gateway = key(&second, &[Role::Gateway], None).await;
    assert_eq!(outcome(&second, &gateway, transfer("ap-agent", 5_000)).await, "deny");
    let shown = call(&second, Method::GET, "/v1/entities/Agent/ap-agent", None, None)
        .await
        .json();
    assert_eq!(
        (shown["revision"].clone(), shown["attributes"]["risk_score"].clone()),
        (json!(2), json!(85))
    );
}

#[tokio::test]
async fn an_amendment_that_would_strand_registered_entities_fails_the_gate() {
    use acgs_governance::ProofCheck;
    let s = sqlite_server().await;
    register_example(&s).await;
    // A new required attribute that no registered agent has.
    let text = example().replacen(
        "  suspended: Bool,\n  owner?: User,",
        "  suspended: Bool,\n  cost_centre: String,\n  owner?: User,",
        1,
    );
    assert_ne!(text, example());
    let candidate = acgs_engine::Constitution::compile("amended", &text).unwrap();
    let check = acgs_server::entity_service::RegistryConformance::new(s.state.active.clone());
    let outcome = check.check(&candidate, &s.state.active.constitution());
    assert!(!outcome.passed, "{}", outcome.detail);
    assert!(outcome.detail.contains("cost_centre"), "{}", outcome.detail);
    let report = outcome.report.unwrap();
    assert_eq!(report["nonconforming"].as_array().unwrap().len(), 12, "{report}");
    // The example as it is passes.
    assert!(
        check
            .check(&s.state.active.constitution(), &s.state.active.constitution())
            .passed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_replica_sharing_postgresql_sees_entity_changes() {
    let (_schema, url) = common::postgres_schema();
    let open = || async { acgs_store::open(&url, &StoreOptions::default()).await.unwrap() };
    let a = on(open().await, tempfile::tempdir().unwrap()).await;
    let b = on(open().await, sharing_master_key(&a)).await;
    assert!(b.state.entities.follow_other_replicas().await.unwrap());
    register_example(&a).await;
    let gateway = key(&a, &[Role::Gateway], None).await;
    wait_for(&b, &gateway, "allow").await;
    call(
        &a,
        Method::PATCH,
        "/v1/entities/Agent/ap-agent",
        None,
        Some(json!({"attributes": {"risk_score": 85}})),
    )
    .await;
    wait_for(&b, &gateway, "deny").await;
}

/// Wait (up to 10 s) until `s` decides the tour's small transfer as `expected`.
async fn wait_for(s: &TestServer, key: &str, expected: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let reply = decide(s, key, transfer("ap-agent", 5_000)).await;
        if reply.status == StatusCode::OK && reply.json()["decision"] == expected {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "still {}", reply.text);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The example with role grants (and registering and deleting agents) held for a second operator's approval.
fn example_with_four_eyes() -> String {
    let text = example().replacen(
        "[[entities.Agent.writers]]\nrole = \"operator\"                 # register agents, grant roles, suspend\n",
        "[[entities.Agent.writers]]\nrole = \"operator\"\nattributes = [\"trust_level\", \"risk_score\", \"suspended\", \"owner\", \"home_region\"]\n\n\
         [[entities.Agent.writers]]\nrole = \"operator\"\nneeds_approval = true\n",
        1,
    );
    assert!(text.contains("needs_approval = true"));
    text
}

#[tokio::test]
async fn a_role_grant_needs_a_second_operator_and_is_applied_once_approved() {
    let s = sqlite_server_with(&example_with_four_eyes()).await;
    let entities: Vec<_> = ENTITIES.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    s.state
        .entities
        .import(acgs_server::entity_service::Writer::Host("test"), entities)
        .await
        .unwrap();
    let (alice, bob) = (
        key(&s, &[Role::Operator], None).await,
        key(&s, &[Role::Operator], None).await,
    );
    let gateway = key(&s, &[Role::Gateway], None).await;
    let uri = "/v1/entities/Agent/ap-agent";
    // An attribute change is applied at once.
    let risk = call(
        &s,
        Method::PATCH,
        uri,
        Some(&alice),
        Some(json!({"attributes": {"trust_level": 5}})),
    )
    .await;
    assert_eq!(risk.status, StatusCode::OK, "{}", risk.text);
    // A role grant is held: nothing changes until someone else approves it.
    let grant = json!({"parents": [{"type": "Role", "id": "finance-agent"}, {"type": "Role", "id": "treasury-reviewer"},
                                   {"type": "Team", "id": "payables"}]});
    let held = call(&s, Method::PATCH, uri, Some(&alice), Some(grant.clone())).await;
    assert_eq!(held.status, StatusCode::ACCEPTED, "{}", held.text);
    let change = held.json();
    assert_eq!(
        (change["state"].as_str(), change["base_revision"].as_i64()),
        (Some("pending"), Some(2))
    );
    let id = change["id"].as_str().unwrap().to_owned();
    let shown = call(&s, Method::GET, uri, None, None).await.json();
    assert_eq!(shown["parents"].as_array().unwrap().len(), 2, "{shown}");
    let pending = call(&s, Method::GET, "/v1/entities/changes?state=pending", None, None)
        .await
        .json();
    assert_eq!(pending.as_array().unwrap().len(), 1);
    // The proposer cannot approve it; another operator can, and then it is in force.
    let approve = format!("/v1/entities/changes/{id}/approve");
    call(&s, Method::POST, &approve, Some(&alice), None)
        .await
        .assert_problem(StatusCode::FORBIDDEN);
    let approved = call(&s, Method::POST, &approve, Some(&bob), None).await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.text);
    assert_eq!(approved.json()["state"], "approved");
    let shown = call(&s, Method::GET, uri, None, None).await.json();
    assert_eq!(
        (shown["parents"].as_array().unwrap().len(), shown["revision"].as_i64()),
        (3, Some(3))
    );
    call(&s, Method::POST, &approve, Some(&bob), None)
        .await
        .assert_problem(StatusCode::CONFLICT);
    let actions: Vec<String> = entity_events(&s)
        .await
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        actions[actions.len() - 4..],
        [
            "entity.updated",
            "entity.change_proposed",
            "entity.change_approved",
            "entity.updated"
        ]
    );
    // A change proposed against a revision that has moved on is not approved; one rejected is never applied.
    let revoke = json!({"parents": [{"type": "Role", "id": "finance-agent"}, {"type": "Team", "id": "payables"}]});
    let stale = call(&s, Method::PATCH, uri, Some(&alice), Some(revoke.clone()))
        .await
        .json();
    call(
        &s,
        Method::PATCH,
        uri,
        Some(&bob),
        Some(json!({"attributes": {"risk_score": 20}})),
    )
    .await;
    let stale_id = stale["id"].as_str().unwrap();
    call(
        &s,
        Method::POST,
        &format!("/v1/entities/changes/{stale_id}/approve"),
        Some(&bob),
        None,
    )
    .await
    .assert_problem(StatusCode::CONFLICT);
    let rejected = call(
        &s,
        Method::POST,
        &format!("/v1/entities/changes/{stale_id}/reject"),
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(rejected.json()["state"], "rejected");
    // The approved grant decides: ap-agent is now a treasury reviewer too.
    let review = json!({
        "principal": {"type": "Agent", "id": "ap-agent"},
        "action": "approve_transfer",
        "resource": {"type": "TransferRequest", "id": "TR-1",
                     "attributes": {"requested_by": {"__entity": {"type": "Agent", "id": "senior-ap-agent"}},
                                    "amount_cents": 250000, "currency": "EUR"}}
    });
    let reply = decide(&s, &gateway, review).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json()["decision"], "allow", "{}", reply.text);
    // A held change in an import is refused: an import holds none.
    let refused = call(
        &s,
        Method::POST,
        "/v1/entities/import",
        Some(&alice),
        Some(json!({"entities": [{"type": "Agent", "id": "new-bot", "attributes": {"trust_level": 1, "risk_score": 1, "suspended": false}}]})),
    )
    .await;
    refused.assert_problem(StatusCode::FORBIDDEN);
}
