//! `acgs audit` against a real server's log: receipts verify offline in a directory with no database, the
//! log and its export verify, tampering is reported with the sequence number, pruning keeps the log
//! verifiable, and the key file must be private.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Output};

use common::{ACGS, Server};

fn acgs_in(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(ACGS)
        .args(args)
        .current_dir(dir)
        .env_remove("ACGS_DATA_DIR")
        .env_remove("ACGS_DATABASE_URL")
        .env_remove("ACGS_AUDIT_KEY")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Start a server on `data`, make `n` decisions, return (decision ids, verifier key, receipt of the middle one),
/// stopped cleanly. The log starts with the four security events of the first start and the auditor key
/// created here (signing key, administrator, agent key, gateway key, auditor key), so decision `i` is entry
/// `i + 6`.
async fn decisions(data: &str, n: usize) -> (Vec<String>, String, Option<String>) {
    let mut server = Server::start(&["--data-dir", data, "--constitution", common::caller_example()]);
    let agent = server.gateway_auth();
    let auditor = format!("Bearer {}", common::api_key(&["--data-dir", data], "auditor"));
    let client = reqwest::Client::new();
    let requests = common::example_requests();
    let mut ids = Vec::new();
    for i in 0..n {
        let r = client
            .post(format!("{}/v1/decisions", server.url))
            .header("content-type", "application/json")
            .header("authorization", &agent)
            .body(requests[i % requests.len()].clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        ids.push(
            r.json::<serde_json::Value>().await.unwrap()["decision_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let key: serde_json::Value = client
        .get(format!("{}/v1/audit/key", server.url))
        .header("authorization", &auditor)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let receipt = client
        .get(format!("{}/v1/decisions/{}/receipt", server.url, ids[n / 2]))
        .header("authorization", &auditor)
        .send()
        .await
        .unwrap();
    assert_eq!(receipt.status(), 200);
    let receipt = receipt.text().await.unwrap();
    assert!(server.terminate().success());
    (ids, key["verifier_key"].as_str().unwrap().to_owned(), Some(receipt))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_verifies_offline_with_no_database() {
    let server_dir = tempfile::tempdir().unwrap();
    let (ids, key, receipt) = decisions(server_dir.path().to_str().unwrap(), 9).await;
    let receipt = receipt.unwrap();
    // Elsewhere: only the receipt file and the public key.
    let offline = tempfile::tempdir().unwrap();
    std::fs::write(offline.path().join("receipt.json"), &receipt).unwrap();
    let o = acgs_in(
        offline.path(),
        &["audit", "verify-receipt", "receipt.json", "--key", &key],
    );
    assert!(o.status.success(), "{}", stdout(&o));
    assert!(stdout(&o).contains("receipt verified: entry 10"), "{}", stdout(&o));
    assert!(stdout(&o).contains(&ids[4]), "{}", stdout(&o));
    assert_eq!(
        std::fs::read_dir(offline.path()).unwrap().count(),
        1,
        "nothing else was created"
    );
    // The key may also come from a file.
    std::fs::write(offline.path().join("log.vkey"), format!("{key}\n")).unwrap();
    let o = acgs_in(
        offline.path(),
        &["audit", "verify-receipt", "receipt.json", "--key", "log.vkey"],
    );
    assert!(o.status.success(), "{}", stdout(&o));
    // A changed outcome, another log's key, or garbage fail with a message and a non-zero exit.
    let mut value: serde_json::Value = serde_json::from_str(&receipt).unwrap();
    let event = value["event"].as_str().unwrap().to_owned();
    let outcome = if event.contains("\"outcome\":\"deny\"") {
        ("\"outcome\":\"deny\"", "\"outcome\":\"allow\"")
    } else {
        ("\"outcome\":\"allow\"", "\"outcome\":\"deny\"")
    };
    value["event"] = event.replacen(outcome.0, outcome.1, 1).into();
    std::fs::write(offline.path().join("forged.json"), value.to_string()).unwrap();
    let o = acgs_in(
        offline.path(),
        &["audit", "verify-receipt", "forged.json", "--key", &key],
    );
    assert!(!o.status.success());
    assert!(stdout(&o).contains("receipt verification FAILED"), "{}", stdout(&o));
    let other = acgs_audit::LogKey::generate(None).unwrap().verifier_key();
    let o = acgs_in(
        offline.path(),
        &["audit", "verify-receipt", "receipt.json", "--key", &other],
    );
    assert!(!o.status.success(), "{}", stdout(&o));
    let o = acgs_in(offline.path(), &["audit", "verify-receipt", "log.vkey", "--key", &key]);
    assert!(!o.status.success());
    assert!(stdout(&o).contains("not a receipt"), "{}", stdout(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_export_prune_and_tampering_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let (_, key, _) = decisions(data, 30).await;
    let cwd = dir.path();

    let o = acgs_in(cwd, &["audit", "verify", "--data-dir", data]);
    assert!(o.status.success(), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("audit log verified: 35 entries (0 pruned)"),
        "{}",
        stdout(&o)
    );
    let o = acgs_in(cwd, &["audit", "key", "--data-dir", data]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), key);

    // Export, verify the export, then tamper with it.
    let o = acgs_in(cwd, &["audit", "export", "--data-dir", data, "--out", "export"]);
    assert!(o.status.success(), "{}", stdout(&o));
    let o = acgs_in(cwd, &["audit", "verify", "--dir", "export", "--key", &key]);
    assert!(o.status.success(), "{}", stdout(&o));
    let entries = std::fs::read_to_string(cwd.join("export/entries.jsonl")).unwrap();
    let tampered: Vec<String> = entries
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 10 {
                l.replacen("\\\"shadow\\\":false", "\\\"shadow\\\":true", 1)
            } else {
                l.to_owned()
            }
        })
        .collect();
    assert_ne!(tampered.join("\n") + "\n", entries, "the tamper changed something");
    std::fs::write(cwd.join("export/entries.jsonl"), tampered.join("\n") + "\n").unwrap();
    let o = acgs_in(cwd, &["audit", "verify", "--dir", "export", "--key", &key]);
    assert!(!o.status.success());
    assert!(stdout(&o).contains("FAILED at sequence number 11"), "{}", stdout(&o));

    // Tamper with the database itself.
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{data}/acgs.db"))
        .await
        .unwrap();
    let original: String = sqlx::query_scalar("SELECT event FROM audit_log WHERE seq = 12")
        .fetch_one(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_log SET event = replace(event, '\"shadow\":false', '\"shadow\":true') WHERE seq = 12")
        .execute(&pool)
        .await
        .unwrap();
    let o = acgs_in(cwd, &["audit", "verify", "--data-dir", data]);
    assert!(!o.status.success());
    assert!(
        stdout(&o).contains("FAILED at sequence number 12: entry 12 was modified"),
        "{}",
        stdout(&o)
    );
    sqlx::query("UPDATE audit_log SET event = ? WHERE seq = 12")
        .bind(&original)
        .execute(&pool)
        .await
        .unwrap();

    // Prune everything older than a second: bodies go, the log still verifies against its checkpoints.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let o = acgs_in(cwd, &["audit", "prune", "--data-dir", data, "--older-than", "1s"]);
    assert!(o.status.success(), "{}", stdout(&o));
    assert!(stdout(&o).contains("pruned 35 event bodies"), "{}", stdout(&o));
    let o = acgs_in(cwd, &["audit", "verify", "--data-dir", data]);
    assert!(o.status.success(), "{}", stdout(&o));
    assert!(stdout(&o).contains("36 entries (35 pruned)"), "{}", stdout(&o));
    let o = acgs_in(cwd, &["audit", "prune", "--data-dir", data, "--older-than", "soon"]);
    assert!(!o.status.success());
    assert!(stdout(&o).contains("not an age"), "{}", stdout(&o));

    // A server given another key than the one that signed the log refuses to start.
    let key_file = std::path::Path::new(data).join("audit-log.key");
    std::fs::rename(&key_file, cwd.join("original.key")).unwrap();
    acgs_audit::LogKey::load_or_create(&key_file, None).unwrap();
    let o = acgs_in(cwd, &["serve", "--listen", "127.0.0.1:0", "--data-dir", data]);
    assert!(!o.status.success());
    assert!(
        stdout(&o).contains("did not sign this log's latest checkpoint"),
        "{}",
        stdout(&o)
    );
}

/// The decision index is only a query index: rewriting a decision's outcome there (`escalate` to `allow`) fails
/// `acgs audit verify`, naming the entry, decision and column, and `acgs decisions show` and `list` refuse to
/// print the forged outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_decision_index_fails_verify_and_is_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    // The example's fourth request escalates; decision 3 is entry 9.
    let (ids, _, _) = decisions(data, 6).await;
    let escalated = &ids[3];
    let cwd = dir.path();
    let o = acgs_in(cwd, &["decisions", "show", "--data-dir", data, escalated]);
    assert!(o.status.success(), "{}", stdout(&o));
    assert!(stdout(&o).contains("\"outcome\": \"escalate\""), "{}", stdout(&o));

    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{data}/acgs.db"))
        .await
        .unwrap();
    sqlx::query("UPDATE decisions SET outcome = 'allow', effective_outcome = 'allow' WHERE decision_id = ?")
        .bind(escalated)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    let o = acgs_in(cwd, &["audit", "verify", "--data-dir", data]);
    assert!(!o.status.success(), "{}", stdout(&o));
    assert!(
        stdout(&o).contains(&format!(
            "FAILED at sequence number 9: decision index does not match its audit event at seq 9 (decision \
             `{escalated}`): column `outcome` holds `allow`, the event `escalate`"
        )),
        "{}",
        stdout(&o)
    );
    for args in [
        &["decisions", "show", "--data-dir", data, escalated][..],
        &["decisions", "list", "--data-dir", data, "--json"][..],
        &["decisions", "list", "--data-dir", data, "--outcome", "allow"][..],
    ] {
        let o = acgs_in(cwd, args);
        assert!(!o.status.success(), "{args:?}: {}", stdout(&o));
        assert!(
            stdout(&o).contains("decision index does not match its audit event at seq 9"),
            "{args:?}: {}",
            stdout(&o)
        );
        assert!(o.stdout.is_empty(), "{args:?} printed decisions: {}", stdout(&o));
    }
}

#[test]
fn the_server_refuses_a_key_file_others_can_read() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("audit-log.key");
    let (_, created) = acgs_audit::LogKey::load_or_create(&key, None).unwrap();
    assert!(created);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = acgs_in(
        dir.path(),
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            dir.path().to_str().unwrap(),
        ],
    );
    assert!(!o.status.success());
    assert!(stdout(&o).contains("readable by other users"), "{}", stdout(&o));
}
