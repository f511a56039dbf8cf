//! The constitution in force is stored: the first start records the one it was given as version 1, a restart
//! runs it with or without the file, a different file is refused naming both hashes, and `acgs constitution
//! activate` puts a new version in force for the next start. On SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Output, Stdio};

use common::{ACGS, EXAMPLE, Server};

fn acgs(args: &[&str]) -> Output {
    Command::new(ACGS)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("acgs runs")
}

/// The example constitution with another version label: a different constitution (another hash).
fn amended(dir: &std::path::Path) -> String {
    let text = std::fs::read_to_string(EXAMPLE)
        .unwrap()
        .replacen("version = \"1.0.0\"", "version = \"1.1.0\"", 1);
    let path = dir.join("amended.toml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

fn hash_of(file: &str) -> String {
    let out = acgs(&["constitution", "hash", file]);
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

/// `args` select the database (`--data-dir D` or `--database-url U --data-dir D`).
fn stored_versions_decide_what_runs(args: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let amended = amended(dir.path());
    let (example_hash, amended_hash) = (hash_of(EXAMPLE), hash_of(&amended));
    assert_ne!(example_hash, amended_hash);

    // First start: the file given becomes version 1.
    let mut first: Vec<&str> = args.to_vec();
    first.extend(["--constitution", EXAMPLE]);
    let mut server = Server::start(&first);
    let reply = hash_header(&server.url);
    assert_eq!(reply, example_hash[..16]);
    server.terminate();
    let versions = acgs(&[&["constitution", "versions", "--json"], args].concat());
    assert!(
        versions.status.success(),
        "{}",
        String::from_utf8_lossy(&versions.stderr)
    );
    let listed: serde_json::Value = serde_json::from_slice(&versions.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["number"], 1);
    assert_eq!(listed[0]["hash"], example_hash);
    assert_eq!(listed[0]["reason"], "first start");

    // A restart without the file runs version 1; with the same file too.
    for restart in [args.to_vec(), first.clone()] {
        let mut server = Server::start(&restart);
        assert_eq!(hash_header(&server.url), example_hash[..16]);
        server.terminate();
    }

    // A different file is refused, naming both hashes and the way to change the constitution.
    let refused = acgs(
        &[
            &["serve", "--listen", "127.0.0.1:0"],
            args,
            &["--constitution", &amended],
        ]
        .concat(),
    );
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains(&amended_hash) && message.contains(&example_hash),
        "{message}"
    );
    assert!(message.contains("acgs constitution activate"), "{message}");

    // Activating it makes it version 2, which the next start runs (with or without the file).
    let activated = acgs(
        &[
            &["constitution", "activate", &amended, "--reason", "raise the limits"],
            args,
        ]
        .concat(),
    );
    assert!(
        activated.status.success(),
        "{}",
        String::from_utf8_lossy(&activated.stderr)
    );
    let again = acgs(&[&["constitution", "activate", &amended, "--reason", "twice"], args].concat());
    assert!(
        !again.status.success(),
        "activating the version in force again is refused"
    );
    let mut server = Server::start(args);
    assert_eq!(hash_header(&server.url), amended_hash[..16]);
    server.terminate();
    let versions = acgs(&[&["constitution", "versions", "--json"], args].concat());
    let listed: serde_json::Value = serde_json::from_slice(&versions.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert_eq!(listed[1]["reason"], "raise the limits");
    assert!(listed[1]["activated_by"].as_str().unwrap().starts_with("cli:"));

    // The activation is in the audit log, which verifies.
    let out = dir.path().join("export");
    let exported = acgs(&[&["audit", "export", "--out", out.to_str().unwrap()], args].concat());
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    let entries = std::fs::read_to_string(out.join("entries.jsonl")).unwrap();
    let activation = entries
        .lines()
        .find(|l| l.contains("constitution.activated"))
        .expect("a constitution.activated event");
    assert!(
        activation.contains("raise the limits") && activation.contains(&amended_hash),
        "{activation}"
    );
    let verified = acgs(&[&["audit", "verify"], args].concat());
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
}

/// The `X-Constitutional-Hash` the server at `url` stamps on its responses.
fn hash_header(url: &str) -> String {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .write_all(format!("GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("x-constitutional-hash:")
                .map(|v| v.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no hash header in {response}"))
}

#[test]
fn sqlite_stored_versions_decide_what_runs() {
    let dir = tempfile::tempdir().unwrap();
    stored_versions_decide_what_runs(&["--data-dir", dir.path().to_str().unwrap()]);
}

#[test]
fn postgres_stored_versions_decide_what_runs() {
    let url = common::postgres_url();
    let dir = tempfile::tempdir().unwrap();
    stored_versions_decide_what_runs(&["--database-url", &url, "--data-dir", dir.path().to_str().unwrap()]);
}
