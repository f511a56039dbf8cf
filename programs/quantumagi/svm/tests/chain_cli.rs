//! `acgs chain` end to end: the real `acgs` binary talks Solana JSON-RPC to a node whose ledger is LiteSVM running
//! the real SBF program. It creates a governance, seats the council, verifies the chain against a running ACGS
//! server and against files, amends the constitution by vote, halts, and anchors the server's audit log.
//!
//! The JSON-RPC front implements the four methods `acgs chain` uses (`getLatestBlockhash`, `getAccountInfo`,
//! `sendTransaction` with its preflight error format, `getSignatureStatuses`) as Solana's RPC documents them.
//! `ACGS_BIN` names the `acgs` binary (scripts/test-sbf.sh sets it).
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use litesvm::LiteSVM;
use serde_json::{Value, json};
use solana_keypair::Keypair;
use solana_signer::Signer;
use solana_transaction::versioned::VersionedTransaction;

mod common;

/// A Solana JSON-RPC endpoint over LiteSVM.
struct Node {
    url: String,
}

impl Node {
    fn start(svm: LiteSVM) -> Self {
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let url = format!("http://{}", server.server_addr().to_ip().unwrap());
        let svm = Arc::new(Mutex::new(svm));
        let statuses: Arc<Mutex<HashMap<String, Value>>> = Arc::default();
        std::thread::spawn(move || {
            for mut request in server.incoming_requests() {
                let mut body = String::new();
                let _ = request.as_reader().read_to_string(&mut body);
                let call: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                let answer = handle(&svm, &statuses, &call);
                let mut reply = json!({"jsonrpc": "2.0", "id": call["id"].clone()});
                match answer {
                    Ok(result) => reply["result"] = result,
                    Err(error) => reply["error"] = error,
                }
                let response = tiny_http::Response::from_string(reply.to_string()).with_header(
                    tiny_http::Header::from_bytes(&b"Content-Type"[..], &b"application/json"[..]).unwrap(),
                );
                let _ = request.respond(response);
            }
        });
        Self { url }
    }
}

fn handle(svm: &Mutex<LiteSVM>, statuses: &Mutex<HashMap<String, Value>>, call: &Value) -> Result<Value, Value> {
    let params = &call["params"];
    let mut svm = svm.lock().unwrap();
    match call["method"].as_str().unwrap_or_default() {
        "getLatestBlockhash" => Ok(json!({
            "context": {"slot": 1},
            "value": {"blockhash": svm.latest_blockhash().to_string(), "lastValidBlockHeight": 1000},
        })),
        "getAccountInfo" => {
            let address: solana_address::Address = params[0]
                .as_str()
                .unwrap_or_default()
                .parse()
                .map_err(|_| json!({"code": -32602, "message": "Invalid param: not a base58 address"}))?;
            let value = svm.get_account(&address).filter(|a| a.lamports > 0).map(|a| {
                json!({
                    "data": [STANDARD.encode(&a.data), "base64"],
                    "executable": a.executable,
                    "lamports": a.lamports,
                    "owner": a.owner.to_string(),
                    "rentEpoch": a.rent_epoch,
                    "space": a.data.len(),
                })
            });
            Ok(json!({"context": {"slot": 1}, "value": value}))
        }
        "sendTransaction" => {
            let bytes = STANDARD
                .decode(params[0].as_str().unwrap_or_default())
                .map_err(|_| json!({"code": -32602, "message": "invalid base64"}))?;
            let tx: VersionedTransaction = bincode::deserialize(&bytes)
                .map_err(|e| json!({"code": -32602, "message": format!("failed to deserialize: {e}")}))?;
            let signature = tx.signatures[0].to_string();
            // A fresh blockhash for the next transaction, as slots pass on a real cluster.
            let result = svm.send_transaction(tx);
            svm.expire_blockhash();
            match result {
                Ok(_) => {
                    statuses.lock().unwrap().insert(signature.clone(), Value::Null);
                    Ok(json!(signature))
                }
                Err(failed) => Err(json!({
                    "code": -32002,
                    "message": format!("Transaction simulation failed: {}", failed.err),
                    "data": {"err": serde_json::to_value(&failed.err).unwrap(), "logs": failed.meta.logs},
                })),
            }
        }
        "getSignatureStatuses" => {
            let known = statuses.lock().unwrap();
            let value: Vec<Value> = params[0]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| match known.get(s.as_str().unwrap_or_default()) {
                    Some(err) => {
                        json!({"slot": 1, "confirmations": null, "err": err, "confirmationStatus": "confirmed"})
                    }
                    None => Value::Null,
                })
                .collect();
            Ok(json!({"context": {"slot": 1}, "value": value}))
        }
        other => Err(json!({"code": -32601, "message": format!("Method not found: {other}")})),
    }
}

fn acgs_bin() -> PathBuf {
    let path = std::env::var_os("ACGS_BIN")
        .map(PathBuf::from)
        .expect("ACGS_BIN names the acgs binary (scripts/test-sbf.sh sets it)");
    assert!(path.exists(), "ACGS_BIN {} does not exist", path.display());
    path
}

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../examples/constitution.toml")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A keypair file in Solana's format.
fn keyfile(dir: &Path, name: &str, k: &Keypair) -> PathBuf {
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, serde_json::to_string(&k.to_bytes().to_vec()).unwrap()).unwrap();
    path
}

struct Chain {
    node: Node,
    program: String,
    creator: String,
}

impl Chain {
    fn acgs(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(acgs_bin());
        cmd.arg("chain").arg(args[0]);
        cmd.args([
            "--rpc-url",
            &self.node.url,
            "--program-id",
            &self.program,
            "--creator",
            &self.creator,
        ]);
        cmd.args(&args[1..]);
        cmd.env_remove("ACGS_API_KEY").output().unwrap()
    }

    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let o = self.acgs(args);
        assert!(o.status.success(), "acgs chain {args:?} failed:\n{}", text(&o));
        text(&o)
    }

    #[track_caller]
    fn fails(&self, args: &[&str], needle: &str) {
        let o = self.acgs(args);
        assert!(!o.status.success(), "acgs chain {args:?} succeeded:\n{}", text(&o));
        assert!(
            text(&o).contains(needle),
            "acgs chain {args:?}: no `{needle}` in:\n{}",
            text(&o)
        );
    }

    fn status(&self) -> Value {
        serde_json::from_str(&self.ok(&["status", "--json"])).unwrap()
    }
}

/// A running `acgs up` with the embedded example constitution: (child, url, agent key).
fn acgs_server(data: &Path) -> (std::process::Child, String, String) {
    let mut child = Command::new(acgs_bin())
        .args([
            "up",
            "--listen",
            "127.0.0.1:0",
            "--checkpoint-entries",
            "1",
            "--data-dir",
        ])
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut url = String::new();
    let mut key = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("ACGS is running at ") {
            url = rest.trim().to_owned();
        }
        if let Some(rest) = line.trim().strip_prefix("agent API key:  ") {
            key = rest.trim().to_owned();
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    assert!(!url.is_empty() && !key.is_empty(), "the server did not start");
    (child, url, key)
}

/// POST one decision as the agent the first start's key is bound to (`ap-agent`, whose facts the registry holds),
/// over a raw socket.
fn decide(url: &str, key: &str) {
    let host = url.trim_start_matches("http://");
    let body = r#"{"principal":{"type":"Agent","id":"ap-agent"},"action":"respond","resource":{"type":"Conversation","id":"c","attributes":{"customer_facing":true}},"content":"hello"}"#;
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    write!(
        stream,
        "POST /v1/decisions HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

#[test]
fn acgs_chain_governs_the_constitution_over_json_rpc() {
    let dir = tempfile::tempdir().unwrap();
    let mut svm = LiteSVM::new();
    let program = Keypair::new();
    svm.add_program_from_file(program.pubkey(), common::program_path())
        .unwrap();
    let creator = Keypair::new();
    let council: Vec<Keypair> = (0..3).map(|_| Keypair::new()).collect();
    let emergency: Vec<Keypair> = (0..3).map(|_| Keypair::new()).collect();
    let anchor = Keypair::new();
    for k in std::iter::once(&creator)
        .chain(&council)
        .chain(&emergency)
        .chain([&anchor])
    {
        svm.airdrop(&k.pubkey(), 10_000_000_000).unwrap();
    }
    let chain = Chain {
        node: Node::start(svm),
        program: program.pubkey().to_string(),
        creator: creator.pubkey().to_string(),
    };
    let creator_file = keyfile(dir.path(), "creator", &creator);
    let creator_file = creator_file.to_str().unwrap();
    let council_files: Vec<String> = council
        .iter()
        .enumerate()
        .map(|(i, k)| {
            keyfile(dir.path(), &format!("council{i}"), k)
                .to_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let emergency_files: Vec<String> = emergency
        .iter()
        .enumerate()
        .map(|(i, k)| {
            keyfile(dir.path(), &format!("emergency{i}"), k)
                .to_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let anchor_file = keyfile(dir.path(), "anchor", &anchor);
    let emergency_keys = emergency
        .iter()
        .map(|k| k.pubkey().to_string())
        .collect::<Vec<_>>()
        .join(",");
    let example = example();
    let example = example.to_str().unwrap();

    // Create the governance with the example constitution; seat the council.
    let out = chain.ok(&[
        "init",
        "--keypair",
        creator_file,
        "--constitution",
        example,
        "--emergency",
        &emergency_keys,
        "--emergency-threshold",
        "2",
        "--anchor-authority",
        &anchor.pubkey().to_string(),
        "--voting-period",
        "60",
        "--timelock",
        "0",
    ]);
    assert!(out.contains("confirmed: "), "{out}");
    for (i, k) in council.iter().enumerate() {
        let weight = ["50", "30", "20"][i];
        chain.ok(&[
            "add-member",
            "--keypair",
            creator_file,
            "--member",
            &k.pubkey().to_string(),
            "--weight",
            weight,
        ]);
    }
    // Someone else cannot seat members.
    chain.fails(
        &[
            "add-member",
            "--keypair",
            &council_files[0],
            "--member",
            &council[0].pubkey().to_string(),
            "--weight",
            "5",
        ],
        "Unauthorized (6006)",
    );
    chain.ok(&["finish-setup", "--keypair", creator_file]);
    let status = chain.status();
    assert_eq!(status["members"], 3);
    assert_eq!(status["total_weight"], 100);
    assert_eq!(status["halted"], false);
    let hash = Command::new(acgs_bin())
        .args(["constitution", "hash", example])
        .output()
        .unwrap();
    let full_hash = String::from_utf8_lossy(&hash.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(status["constitution_hash"], full_hash.as_str());

    // The server enforces what the chain holds; a changed file does not match.
    let server_dir = dir.path().join("server");
    let (mut server, url, agent_key) = acgs_server(&server_dir);
    let out = chain.ok(&["verify", "--server", &url, "--api-key", &agent_key]);
    assert!(out.contains("match: "), "{out}");
    let amended = dir.path().join("amended.toml");
    let text_v1 = std::fs::read_to_string(example).unwrap();
    std::fs::write(
        &amended,
        text_v1.replacen("context.amount_cents >= 1000000", "context.amount_cents >= 500000", 1),
    )
    .unwrap();
    let amended = amended.to_str().unwrap();
    let o = chain.acgs(&["verify", "--constitution", amended]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("MISMATCH"), "{}", text(&o));

    // Amend by vote: propose, 80 of 100 vote yes, finalize, execute (timelock 0).
    let out = chain.ok(&[
        "propose",
        "--keypair",
        &council_files[2],
        "constitution",
        "--file",
        amended,
        "--version",
        "2",
    ]);
    assert!(out.contains("proposal 1"), "{out}");
    chain.ok(&[
        "vote",
        "--keypair",
        &council_files[0],
        "--proposal",
        "1",
        "--choice",
        "yes",
    ]);
    chain.fails(
        &[
            "vote",
            "--keypair",
            &council_files[0],
            "--proposal",
            "1",
            "--choice",
            "yes",
        ],
        "AlreadyVoted (6026)",
    );
    chain.fails(
        &[
            "vote",
            "--keypair",
            anchor_file.to_str().unwrap(),
            "--proposal",
            "1",
            "--choice",
            "yes",
        ],
        "WrongOwner (6002)",
    );
    chain.ok(&[
        "vote",
        "--keypair",
        &council_files[1],
        "--proposal",
        "1",
        "--choice",
        "yes",
    ]);
    let out = chain.ok(&["finalize", "--keypair", &council_files[2], "--proposal", "1"]);
    assert!(out.contains("Succeeded"), "{out}");
    chain.ok(&["execute", "--keypair", &council_files[2], "--proposal", "1"]);
    let proposal: Value = serde_json::from_str(&chain.ok(&["proposal", "1", "--json"])).unwrap();
    assert_eq!(proposal["state"], "Executed");
    assert_eq!(proposal["yes"], 80);
    assert_eq!(chain.status()["constitution_version"], 2);
    let out = chain.ok(&["verify", "--constitution", amended]);
    assert!(out.contains("match"), "{out}");
    // Now the server (still on v1) no longer matches the chain.
    let o = chain.acgs(&["verify", "--server", &url, "--api-key", &agent_key]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));

    // Anchor the server's audit log: one decision, a signed checkpoint, then the anchor.
    decide(&url, &agent_key);
    let pid = server.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    assert!(server.wait().unwrap().success());
    let server_data = server_dir.to_str().unwrap();
    let out = chain.ok(&[
        "anchor",
        "--keypair",
        anchor_file.to_str().unwrap(),
        "--data-dir",
        server_data,
    ]);
    assert!(out.contains("anchored: tree size"), "{out}");
    let anchored = chain.status()["anchor"]["tree_size"].as_u64().unwrap();
    assert!(anchored >= 4, "the bootstrap events and the decision: {anchored}");
    // Only the anchor authority anchors.
    chain.fails(
        &["anchor", "--keypair", &council_files[0], "--data-dir", server_data],
        "Unauthorized (6006)",
    );

    // Halt: M - 1 approvals change nothing, M halt; proposals are refused while halted.
    let out = chain.ok(&["halt", "--keypair", &emergency_files[0], "--reason", "incident 42"]);
    assert!(out.contains("approved: 1 of 2 needed"), "{out}");
    let out = chain.ok(&["halt", "--keypair", &emergency_files[1], "--reason", "incident 42"]);
    assert!(out.contains("halted: true"), "{out}");
    assert_eq!(chain.status()["halted"], true);
    chain.fails(
        &[
            "propose",
            "--keypair",
            &council_files[0],
            "policy",
            "--hash",
            &"ab".repeat(32),
        ],
        "Halted (6008)",
    );
    chain.ok(&["resume", "--keypair", &emergency_files[0]]);
    chain.ok(&["resume", "--keypair", &emergency_files[2]]);
    assert_eq!(chain.status()["halted"], false);

    // Bad input: a clear message and a non-zero exit.
    chain.fails(
        &[
            "vote",
            "--keypair",
            &council_files[0],
            "--proposal",
            "1",
            "--choice",
            "maybe",
        ],
        "yes, no or abstain",
    );
    chain.fails(
        &[
            "vote",
            "--keypair",
            "/nonexistent.json",
            "--proposal",
            "1",
            "--choice",
            "yes",
        ],
        "nonexistent",
    );
    let o = Command::new(acgs_bin())
        .args([
            "chain",
            "status",
            "--rpc-url",
            "http://127.0.0.1:9",
            "--program-id",
            &chain.program,
            "--creator",
            &chain.creator,
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(text(&o).contains("cannot reach"), "{}", text(&o));
}
