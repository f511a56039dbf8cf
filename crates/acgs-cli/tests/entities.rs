//! The entity registry, bound keys and counters through the binary: `acgs up` registers the example's entities
//! and creates a bound agent key and a gateway key; `acgs entities` changes what decisions see; and two server
//! processes sharing PostgreSQL keep one registry and exact counters.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::{ACGS, EXAMPLE, Server, api_key};
use serde_json::{Value, json};

const ENTITIES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/entities.jsonl");

fn acgs(args: &[&str]) -> std::process::Output {
    Command::new(ACGS).args(args).output().expect("acgs runs")
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn transfer(agent: &str, account: &str, amount_cents: i64) -> Value {
    json!({
        "principal": {"type": "Agent", "id": agent},
        "action": "transfer_funds",
        "resource": {"type": "Account", "id": account,
                     "attributes": {"owner_team": {"__entity": {"type": "Team", "id": "payables"}},
                                    "currency": "EUR", "frozen": false}},
        "context": {"amount_cents": amount_cents, "currency": "EUR"}
    })
}

async fn decide(client: &reqwest::Client, url: &str, key: &str, request: &Value) -> (u16, Value) {
    let response = client
        .post(format!("{url}/v1/decisions"))
        .bearer_auth(key)
        .json(request)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Wait (up to 10 s) until the server knows `key`, created on its host meanwhile.
async fn accepted(client: &reqwest::Client, url: &str, key: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while client
        .get(format!("{url}/v1/entities?limit=1"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .status()
        != 200
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the server never accepted the new key"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_registers_the_example_and_its_keys_decide_for_whom_they_may() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_owned();
    let server = Server::start_command("up", &["--data-dir", &data, "--auth-reload-secs", "1"]);
    let (agent, gateway) = (server.agent_key.clone().unwrap(), server.gateway_key.clone().unwrap());
    let client = reqwest::Client::new();
    // The agent key decides for its agent, with the registry's facts.
    let (status, body) = decide(&client, &server.url, &agent, &transfer("ap-agent", "opex-eur", 5_000)).await;
    assert_eq!((status, body["decision"].as_str()), (200, Some("allow")), "{body}");
    let (status, body) = decide(
        &client,
        &server.url,
        &agent,
        &transfer("senior-ap-agent", "opex-eur", 5_000),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    // The gateway key decides for any registered agent, never with facts the request makes up.
    let (status, _) = decide(
        &client,
        &server.url,
        &gateway,
        &transfer("senior-ap-agent", "opex-eur", 5_000),
    )
    .await;
    assert_eq!(status, 200);
    let mut claimed = transfer("helpdesk-bot", "opex-eur", 5_000);
    claimed["principal"]["parents"] = json!([{"type": "Role", "id": "finance-agent"}]);
    assert_eq!(decide(&client, &server.url, &gateway, &claimed).await.0, 400);

    // An operator changes the registry with `acgs entities`; the next decision sees it.
    let operator = api_key(&["--data-dir", &data], "operator");
    accepted(&client, &server.url, &operator).await;
    let as_operator = ["--url", server.url.as_str(), "--api-key", operator.as_str()];
    let o = acgs(&[&["entities", "list", "--type", "Agent"][..], &as_operator].concat());
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("Agent::\"ap-agent\"") && text(&o).contains("12 entities"),
        "{}",
        text(&o)
    );
    let o = acgs(
        &[
            &["entities", "set", "Agent::\"ap-agent\"", "risk_score=85"][..],
            &as_operator,
        ]
        .concat(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let (_, body) = decide(&client, &server.url, &agent, &transfer("ap-agent", "opex-eur", 5_000)).await;
    assert_eq!(body["decision"], "deny", "{body}");
    let o = acgs(&[&["entities", "show", "Agent::\"ap-agent\""][..], &as_operator].concat());
    assert!(
        text(&o).contains("revision 2") && text(&o).contains("\"risk_score\":85"),
        "{}",
        text(&o)
    );
    // A monitor may set the risk score, not the roles.
    let monitor = api_key(&["--data-dir", &data], "monitor");
    accepted(&client, &server.url, &monitor).await;
    let as_monitor = ["--url", server.url.as_str(), "--api-key", monitor.as_str()];
    let o = acgs(
        &[
            &["entities", "set", "Agent::\"ap-agent\"", "risk_score=10"][..],
            &as_monitor,
        ]
        .concat(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = acgs(
        &[
            &[
                "entities",
                "set",
                "Agent::\"ap-agent\"",
                "--parent",
                "Role::\"treasury-reviewer\"",
            ][..],
            &as_monitor,
        ]
        .concat(),
    );
    assert!(!o.status.success() && text(&o).contains("403"), "{}", text(&o));
    // Export in Cedar's format, delete, import back.
    let export = dir.path().join("entities.json");
    let o = acgs(
        &[
            &[
                "entities",
                "export",
                "--format",
                "cedar",
                "-o",
                export.to_str().unwrap(),
            ][..],
            &as_operator,
        ]
        .concat(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let exported: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&export).unwrap()).unwrap();
    assert_eq!(
        exported.len(),
        std::fs::read_to_string(ENTITIES).unwrap().lines().count()
    );
    let o = acgs(&[&["entities", "delete", "Agent::\"ap-agent\""][..], &as_operator].concat());
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        decide(&client, &server.url, &agent, &transfer("ap-agent", "opex-eur", 5_000))
            .await
            .0,
        400
    );
    let o = acgs(&[&["entities", "import", export.to_str().unwrap()][..], &as_operator].concat());
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("1 created"), "{}", text(&o));
    let (_, body) = decide(&client, &server.url, &agent, &transfer("ap-agent", "opex-eur", 5_000)).await;
    assert_eq!(body["decision"], "allow", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_server_processes_on_postgresql_keep_one_registry_and_exact_counters() {
    let url = common::postgres_url();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_owned();
    let args = [
        "--data-dir",
        data.as_str(),
        "--database-url",
        url.as_str(),
        "--constitution",
        EXAMPLE,
    ];
    let a = Server::start(&args);
    let b = Server::start(&args);
    let key = api_key(&["--data-dir", &data, "--database-url", &url], "operator,gateway");
    let client = reqwest::Client::new();
    accepted(&client, &a.url, &key).await;
    accepted(&client, &b.url, &key).await;
    // Registered through one server, the entities decide on the other.
    let o = acgs(&["entities", "import", ENTITIES, "--url", &a.url, "--api-key", &key]);
    assert!(o.status.success(), "{}", text(&o));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let (status, _) = decide(&client, &b.url, &key, &transfer("ap-agent", "warm-up", 5_000)).await;
        if status == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the second server never saw the registry ({status})"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Rounds of 100 concurrent transfers over both servers, with room left for exactly one.
    let schema = url.rsplit("search_path%3D").next().unwrap().to_owned();
    let base = url.split('?').next().unwrap().to_owned();
    for round in 0..3 {
        let account = format!("race-{round}");
        let now_us = chrono::Utc::now().timestamp_micros();
        let status = Command::new("psql")
            .args([
                base.as_str(),
                "-q",
                "-c",
                &format!(
                    "INSERT INTO {schema}.usage_events (key, at_us, amount) VALUES \
                     ('daily_total_cents|Account::\"{account}\"', {now_us}, {})",
                    250_000_000 - 1_000_000
                ),
            ])
            .status()
            .unwrap();
        assert!(status.success());
        let replies = futures::future::join_all((0..100).map(|i| {
            let (client, key) = (client.clone(), key.clone());
            let url = if i % 2 == 0 { a.url.clone() } else { b.url.clone() };
            let request = transfer("ap-agent", &account, 600_000);
            async move { decide(&client, &url, &key, &request).await }
        }))
        .await;
        assert!(replies.iter().all(|(status, _)| *status == 200), "{replies:?}");
        let allowed = replies.iter().filter(|(_, body)| body["decision"] == "allow").count();
        assert_eq!(allowed, 1, "round {round}");
    }
}
