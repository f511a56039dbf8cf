//! The administration commands against a running server's database: `acgs users …` creates, changes,
//! disables, unlocks and resets users, `acgs auth api-keys …` issues and revokes keys, `acgs auth
//! rotate-signing-key` and `rotate-all` rotate what signs and end every session, and `acgs security audit`
//! reports what needs attention. The server sees each change: the tests talk to it over HTTP.
// Tests and benchmarks fail loudly on unexpected values.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write as _;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{ACGS, Server};
use serde_json::{Value, json};

fn acgs(args: &[&str]) -> Output {
    Command::new(ACGS)
        .args(args)
        .env_remove("ACGS_DATA_DIR")
        .env_remove("ACGS_DATABASE_URL")
        .env_remove("ACGS_AUTH_MASTER_KEY")
        .output()
        .unwrap()
}

fn acgs_stdin(args: &[&str], input: &str) -> Output {
    let mut child = Command::new(ACGS)
        .args(args)
        .env_remove("ACGS_DATA_DIR")
        .env_remove("ACGS_DATABASE_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The value after `prefix` on the line that starts with it.
fn field(o: &Output, prefix: &str) -> String {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` in {}", text(o)))
        .trim()
        .to_owned()
}

struct Api {
    client: reqwest::Client,
    url: String,
}

impl Api {
    async fn login(&self, username: &str, password: &str) -> reqwest::Response {
        self.client
            .post(format!("{}/v1/auth/login", self.url))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .unwrap()
    }

    async fn token(&self, username: &str, password: &str) -> String {
        let r = self.login(username, password).await;
        assert_eq!(r.status(), 200, "login of {username}");
        r.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn get(&self, path: &str, bearer: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.url))
            .bearer_auth(bearer)
            .send()
            .await
            .unwrap()
    }

    /// Status of `GET path` until it is `want` (the server reloads its credentials every second).
    async fn eventually(&self, path: &str, bearer: &str, want: u16) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let status = self.get(path, bearer).await.status().as_u16();
            if status == want {
                return;
            }
            assert!(Instant::now() < deadline, "GET {path} stayed {status}, expected {want}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administration_commands_change_what_the_running_server_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_owned();
    // Reload credentials every second, so changes made here are seen quickly (default: 10 s).
    let mut server = Server::start(&["--data-dir", &data, "--auth-reload-secs", "1"]);
    let api = Api {
        client: reqwest::Client::new(),
        url: server.url.clone(),
    };
    let d = ["--data-dir", data.as_str()];
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend_from_slice(&d);
        acgs(&all)
    };

    // A fresh installation: the administrator still has its bootstrap password and the agent key is unused.
    let o = run(&["security", "audit"]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("administrators still using the bootstrap password:\n  admin"),
        "{}",
        text(&o)
    );

    // A user created on the command line logs in over HTTP with the printed password and has its roles.
    let o = run(&["users", "create", "alice", "--roles", "auditor"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("created user alice with roles auditor"),
        "{}",
        text(&o)
    );
    let alice_password = field(&o, "password (shown once): ");
    let token = api.token("alice", &alice_password).await;
    assert_eq!(api.get("/v1/decisions", &token).await.status(), 200);
    assert_eq!(api.get("/v1/auth/users", &token).await.status(), 403);
    let me: Value = api.get("/v1/auth/me", &token).await.json().await.unwrap();
    assert_eq!(me["id"], "alice", "{me}");

    // Bad input: a message and a non-zero exit, nothing created.
    let o = run(&["users", "create", "bob", "--roles", "wizard"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("wizard"), "{}", text(&o));
    let o = run(&["users", "create", "alice", "--roles", "auditor"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("alice"), "{}", text(&o));
    let mut args = vec!["users", "set-password", "alice", "--password-stdin"];
    args.extend_from_slice(&d);
    let o = acgs_stdin(&args, "short\n");
    assert!(!o.status.success());
    assert!(text(&o).contains("at least"), "{}", text(&o));
    let users: Value = serde_json::from_slice(&run(&["users", "list", "--json"]).stdout).unwrap();
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "alice"]);

    // New roles take effect on the next login; a reset password ends the sessions at once.
    let o = run(&["users", "set-roles", "alice", "--roles", "auditor,reviewer"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = acgs_stdin(&args, "a long enough new password\n");
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(api.get("/v1/auth/me", &token).await.status(), 401);
    assert_eq!(api.login("alice", &alice_password).await.status(), 401);
    let token = api.token("alice", "a long enough new password").await;
    let me: Value = api.get("/v1/auth/me", &token).await.json().await.unwrap();
    assert_eq!(me["roles"], json!(["reviewer", "auditor"]), "{me}");

    // Disabled: no login, sessions end; enabled again: login works.
    assert!(run(&["users", "disable", "alice"]).status.success());
    assert_eq!(api.get("/v1/auth/me", &token).await.status(), 401);
    assert_eq!(api.login("alice", "a long enough new password").await.status(), 401);
    assert!(run(&["users", "enable", "alice"]).status.success());
    api.token("alice", "a long enough new password").await;

    // Five wrong passwords lock the account (even the right one is refused); `users unlock` lifts it.
    for _ in 0..5 {
        assert_eq!(api.login("alice", "wrong password, wrong").await.status(), 401);
    }
    let refused = api.login("alice", "a long enough new password").await;
    assert_eq!(refused.status(), 401);
    let problem: Value = refused.json().await.unwrap();
    assert!(
        problem["detail"].as_str().unwrap().contains("account locked"),
        "{problem}"
    );
    let o = run(&["users", "list"]);
    assert!(text(&o).contains("locked"), "{}", text(&o));
    let o = run(&["security", "audit", "--json"]);
    assert!(!o.status.success());
    let audit: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(audit["locked"][0][0], "alice", "{audit}");
    assert_eq!(audit["clean"], false);
    let o = run(&["users", "unlock", "alice"]);
    assert!(text(&o).contains("alice: unlocked"), "{}", text(&o));
    let token = api.token("alice", "a long enough new password").await;

    // API keys: issued with roles, listed without their secret, revoked (running servers follow).
    let o = run(&["auth", "api-keys", "create", "--name", "ci-bot", "--roles", "auditor"]);
    assert!(o.status.success(), "{}", text(&o));
    let key = String::from_utf8_lossy(&o.stdout)
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_owned();
    assert!(key.starts_with("acgs_"));
    let id = key[.."acgs_".len() + 12].to_owned();
    assert_eq!(api.get("/v1/decisions", &key).await.status(), 200);
    let listed = text(&run(&["auth", "api-keys", "list"]));
    assert!(listed.contains(&id) && listed.contains("ci-bot"), "{listed}");
    assert!(!listed.contains(&key), "the secret is never shown again");
    let o = run(&["auth", "api-keys", "revoke", &id]);
    assert!(o.status.success(), "{}", text(&o));
    api.eventually("/v1/decisions", &key, 401).await;
    let o = run(&["auth", "api-keys", "revoke", "acgs_000000000000"]);
    assert!(!o.status.success());

    // A new signing key: tokens signed by the old one still verify, the JWKS lists both.
    // The old key keeps verifying for the servers' access-token lifetime, which the command is told.
    let o = run(&["auth", "rotate-signing-key", "--access-token-ttl-secs", "0"]);
    assert!(!o.status.success(), "{}", text(&o));
    let o = run(&["auth", "rotate-signing-key", "--access-token-ttl-secs", "3600"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("the previous key verifies for 3600 s more"),
        "{}",
        text(&o)
    );
    let kid = field(&o, "new signing key ");
    let kid = kid.split(';').next().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let jwks: Value = api
            .client
            .get(format!("{}/.well-known/jwks.json", api.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let kids: Vec<&str> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap())
            .collect();
        if kids.contains(&kid.as_str()) {
            assert_eq!(kids.len(), 2, "{jwks}");
            break;
        }
        assert!(Instant::now() < deadline, "the server never published {kid}: {jwks}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(api.get("/v1/auth/me", &token).await.status(), 200);
    // A third session (the one after `enable` is still open too).
    let newer = api.token("alice", "a long enough new password").await;
    assert_eq!(api.get("/v1/auth/me", &newer).await.status(), 200);

    // Incident: rotate everything. Every session ends now; API keys survive unless asked.
    let o = run(&["auth", "rotate-all"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("revoked 3 sessions and 0 API keys"), "{}", text(&o));
    assert_eq!(api.get("/v1/auth/me", &token).await.status(), 401);
    assert_eq!(api.get("/v1/auth/me", &newer).await.status(), 401);
    let agent = server.agent_key.clone().unwrap();
    assert_eq!(api.get("/v1/constitution", &agent).await.status(), 200);
    let o = run(&["auth", "rotate-all", "--revoke-api-keys"]);
    assert!(text(&o).contains("revoked 0 sessions and 2 API keys"), "{}", text(&o));
    api.eventually("/v1/constitution", &agent, 401).await;
    let before_loss = api.token("alice", "a long enough new password").await;

    // The master key is lost: the server refuses to start rather than mint a key that cannot open the stored
    // signing keys; `replace-master-key` creates a new one and ends every session.
    assert!(server.terminate().success());
    let master = dir.path().join("auth-master.key");
    std::fs::rename(&master, dir.path().join("lost.key")).unwrap();
    let o = acgs(&["serve", "--listen", "127.0.0.1:0", "--data-dir", &data]);
    assert!(!o.status.success());
    assert!(text(&o).contains("no authentication master key"), "{}", text(&o));
    assert!(!master.exists(), "nothing was created");
    let o = run(&["auth", "replace-master-key"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("revoked 1 sessions"), "{}", text(&o));
    let o = run(&["auth", "replace-master-key"]);
    assert!(!o.status.success(), "it never overwrites a master key");
    let server = Server::start(&["--data-dir", &data]);
    let api = Api {
        client: reqwest::Client::new(),
        url: server.url.clone(),
    };
    assert_eq!(api.get("/v1/auth/me", &before_loss).await.status(), 401);
    let token = api.token("alice", "a long enough new password").await;
    assert_eq!(api.get("/v1/auth/me", &token).await.status(), 200);

    // Every one of these changes is in the audit log.
    let store = acgs_store::open(&format!("sqlite://{data}/acgs.db"), &Default::default())
        .await
        .unwrap();
    let events: Vec<String> = store
        .audit_entries(1, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "security")
        .map(|e| {
            serde_json::from_str::<Value>(e.event.as_deref().unwrap()).unwrap()["security"]["event"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    for action in [
        "user.created",
        "user.updated",
        "login.failed",
        "login.locked",
        "user.unlocked",
        "api_key.created",
        "api_key.revoked",
        "signing_key.rotated",
        "credentials.rotated_all",
        "master_key.replaced",
    ] {
        assert!(events.iter().any(|a| a == action), "no {action} in {events:?}");
    }
}

#[test]
fn administration_needs_the_master_key() {
    let dir = tempfile::tempdir().unwrap();
    let o = acgs(&["users", "list", "--data-dir", dir.path().to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("no decision log") || text(&o).contains("master key"),
        "{}",
        text(&o)
    );
}
