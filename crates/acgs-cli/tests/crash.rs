//! Kill -9 the server while it is under load: every decision a client received is in the log, with the
//! sequence number it was told, the log has no gaps, and after a restart the audit log still verifies
//! (`acgs audit verify`). On SQLite and on PostgreSQL.
// Tests and benchmarks fail loudly on unexpected values.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::Server;

/// `args`: how to start the server (restarted on the same log); `source`: how `acgs audit verify` finds the log.
async fn load_then_kill(args: &[&str], database_url: &str, source: &[&str]) {
    // The example with every fact from the caller, as its test requests send them.
    let args = &[args, &["--constitution", common::caller_example()]].concat();
    let mut server = Server::start(args);
    // The restart below prints no credentials: keep the first start's agent key.
    let auth = server.gateway_auth();
    let requests = Arc::new(common::example_requests());
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..16 {
        let (client, requests, stop, url, auth) = (
            client.clone(),
            requests.clone(),
            stop.clone(),
            server.url.clone(),
            auth.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut answered: Vec<(String, i64)> = Vec::new();
            let mut i = w;
            while !stop.load(Ordering::Relaxed) {
                let body = requests[i % requests.len()].clone();
                i += 7;
                let Ok(response) = client
                    .post(format!("{url}/v1/decisions"))
                    .header("content-type", "application/json")
                    .header("authorization", &auth)
                    .body(body)
                    .send()
                    .await
                else {
                    continue; // the server is gone: this request was not answered
                };
                if response.status() != 200 {
                    continue;
                }
                let Ok(json) = response.json::<serde_json::Value>().await else {
                    continue;
                };
                answered.push((
                    json["decision_id"].as_str().unwrap().to_owned(),
                    json["audit_seq"].as_i64().unwrap(),
                ));
            }
            answered
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill9();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    let mut answered = HashMap::new();
    for w in workers {
        for (id, seq) in w.await.unwrap() {
            answered.insert(id, seq);
        }
    }
    assert!(
        answered.len() > 50,
        "too little load to mean anything: {}",
        answered.len()
    );

    let store = acgs_store::open(database_url, &Default::default()).await.unwrap();
    for (id, seq) in &answered {
        let record = store
            .get(id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("answered decision {id} missing after kill -9"));
        assert_eq!(
            record.seq, *seq,
            "decision {id} has another sequence number than the client was told"
        );
    }
    let count = store.count().await.unwrap();
    // The log holds the decisions and the security events of the first start (signing key, administrator,
    // agent key, gateway key): numbered 1..=last with no gaps.
    let last = store.last_seq().await.unwrap();
    let entries = store.audit_entries(1, u32::MAX).await.unwrap();
    assert!(
        entries.iter().enumerate().all(|(i, e)| e.seq == i as i64 + 1),
        "the sequence has gaps"
    );
    assert_eq!(entries.len() as i64, last);
    let security = entries.iter().filter(|e| e.kind == "security").count() as i64;
    assert_eq!(security, 4, "first-start security events");
    assert_eq!(count + security, last, "every other entry is a decision");
    assert!(count as usize >= answered.len());
    eprintln!(
        "{} answered decisions, {} in the log after kill -9",
        answered.len(),
        count
    );

    // Restart on the same log: it continues without a gap, and the whole log verifies against every
    // checkpoint signed before and after the crash.
    let mut server = Server::start(args);
    assert!(server.agent_key.is_none(), "credentials are created only once");
    let r = client
        .post(format!("{}/v1/decisions", server.url))
        .header("content-type", "application/json")
        .header("authorization", &auth)
        .body(requests[0].clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["audit_seq"], last + 1);
    assert!(server.terminate().success());
    let mut verify = vec!["audit", "verify"];
    verify.extend_from_slice(source);
    let out = std::process::Command::new(common::ACGS).args(&verify).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains(&format!("audit log verified: {} entries", last + 1)),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_log_keeps_every_answered_decision_after_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    load_then_kill(
        &["--data-dir", data],
        &format!("sqlite://{data}/acgs.db"),
        &["--data-dir", data],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_log_keeps_every_answered_decision_after_kill_9() {
    let url = common::postgres_url();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let key = format!("{data}/audit-log.key");
    load_then_kill(
        &["--database-url", &url, "--data-dir", data],
        &url,
        &["--database-url", &url, "--audit-key", &key],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_decisions_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let mut server = Server::start(&["--data-dir", data, "--constitution", common::caller_example()]);
    let client = reqwest::Client::new();
    let body = common::example_requests()[0].clone();
    for _ in 0..20 {
        let r = client
            .post(format!("{}/v1/decisions", server.url))
            .header("content-type", "application/json")
            .header("authorization", server.gateway_auth())
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let status = server.terminate();
    assert!(status.success(), "exit status {status}");
    let store = acgs_store::open(&format!("sqlite://{data}/acgs.db"), &Default::default())
        .await
        .unwrap();
    assert_eq!(store.count().await.unwrap(), 20);
}
