//! Helpers for tests that run the real `acgs` binary.
// Tests and benchmarks fail loudly on unexpected values.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ACGS: &str = env!("CARGO_BIN_EXE_acgs");
pub const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/constitution.toml");

/// A running `acgs` server process.
pub struct Server {
    pub child: Child,
    pub url: String,
    /// The agent API key a first start printed (`None` when the data was not new).
    pub agent_key: Option<String>,
    /// The administrator password a first start printed.
    pub admin_password: Option<String>,
    /// The first start's gateway key (decides for any principal).
    pub gateway_key: Option<String>,
}

impl Server {
    /// Start `acgs serve` with `args` on a free loopback port and wait until it answers /ready.
    pub fn start(args: &[&str]) -> Server {
        Self::start_command("serve", args)
    }

    /// Start `acgs <command>` (`serve` or `up`) with `args` on a free loopback port.
    pub fn start_command(command: &str, args: &[&str]) -> Server {
        let mut child = Command::new(ACGS)
            .arg(command)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("acgs starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(rest) = line.strip_prefix("ACGS is running at ") {
                        break rest.trim().to_owned();
                    }
                }
                _ => {
                    let status = child.wait().expect("wait");
                    panic!("server exited before announcing its address: {status}");
                }
            }
        };
        // The first-start credentials, if any, follow the address.
        let (mut agent_key, mut gateway_key, mut admin_password) = (None, None, None);
        for line in lines.by_ref() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.trim().strip_prefix("administrator:  admin / ") {
                admin_password = Some(rest.trim().to_owned());
            }
            if let Some(rest) = line.trim().strip_prefix("gateway API key:  ") {
                gateway_key = Some(rest.trim().to_owned());
            }
            if let Some(rest) = line.trim().strip_prefix("agent API key:  ") {
                agent_key = Some(rest.trim().to_owned());
                break;
            }
            if line.trim().starts_with("sign in:") {
                break;
            }
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines.by_ref() {});
        let server = Server {
            child,
            url,
            agent_key,
            gateway_key,
            admin_password,
        };
        server.wait_ready();
        server
    }

    /// `Bearer <agent key>` for the `Authorization` header (the key a first start printed).
    /// `Bearer <gateway key>`: the first start's key that decides for any principal.
    pub fn gateway_auth(&self) -> String {
        format!(
            "Bearer {}",
            self.gateway_key
                .as_deref()
                .expect("the server printed a gateway API key")
        )
    }

    pub fn agent_auth(&self) -> String {
        format!(
            "Bearer {}",
            self.agent_key.as_deref().expect("the server printed an agent API key")
        )
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = reqwest::blocking_client();
        while Instant::now() < deadline {
            if client
                .get(format!("{}/ready", self.url))
                .map(|s| s == 200)
                .unwrap_or(false)
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server at {} never became ready", self.url);
    }

    /// SIGKILL.
    pub fn kill9(&mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reaped");
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .expect("kill")
                .success()
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "server did not stop after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Create an API key with `roles` through `acgs auth api-keys create` on the credentials `source` (e.g.
/// `--data-dir D`) and return the whole key.
pub fn api_key(source: &[&str], roles: &str) -> String {
    let o = Command::new(ACGS)
        .args(["auth", "api-keys", "create", "--name", "test", "--roles", roles])
        .args(source)
        .output()
        .expect("acgs runs");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{out}{}", String::from_utf8_lossy(&o.stderr));
    out.lines().last().expect("the key").trim().to_owned()
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Minimal blocking GET over a raw socket, so tests need no blocking HTTP client.
pub mod reqwest {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    pub struct Client;
    pub fn blocking_client() -> Client {
        Client
    }
    impl Client {
        /// Status code of `GET url`.
        pub fn get(&self, url: String) -> Result<u16, std::io::Error> {
            self.get_with(url, None)
        }

        /// Status code of `GET url` with an optional `Authorization` header value.
        pub fn get_with(&self, url: String, authorization: Option<&str>) -> Result<u16, std::io::Error> {
            let rest = url.strip_prefix("http://").unwrap_or(&url);
            let (host, path) = rest
                .split_once('/')
                .map(|(h, p)| (h, format!("/{p}")))
                .unwrap_or((rest, "/".into()));
            let mut stream = TcpStream::connect(host)?;
            write!(
                stream,
                "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{}\r\n",
                authorization
                    .map(|a| format!("Authorization: {a}\r\n"))
                    .unwrap_or_default()
            )?;
            let mut response = String::new();
            stream.read_to_string(&mut response)?;
            response
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| std::io::Error::other("bad response"))
        }
    }
}

/// A fresh schema on the test PostgreSQL server, as a database URL.
pub fn postgres_url() -> String {
    let base =
        std::env::var("ACGS_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let schema = format!("acgs_cli_test_{}_{}", std::process::id(), nanos % 1_000_000_000);
    assert!(
        Command::new("psql")
            .args([base.as_str(), "-q", "-c", &format!("CREATE SCHEMA {schema}")])
            .status()
            .expect("psql")
            .success(),
        "cannot create a schema on {base}"
    );
    format!("{base}?options=-c%20search_path%3D{schema}")
}

/// A file holding the example constitution without its `[entities.…]` tables: every entity's facts from the
/// caller, as the example's test requests send them (the registry itself is tested in `tests/entities.rs`).
pub fn caller_example() -> &'static str {
    static PATH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let text = std::fs::read_to_string(EXAMPLE).expect("example");
        let mut out = String::with_capacity(text.len());
        let mut skipping = false;
        for line in text.lines() {
            let t = line.trim_start();
            if t.starts_with("[entities.") || t.starts_with("[[entities.") {
                skipping = true;
            } else if t.starts_with('[') || t.starts_with("# ===") {
                skipping = false;
            }
            if !skipping {
                out.push_str(line);
                out.push('\n');
            }
        }
        let path = std::env::temp_dir().join(format!("acgs-caller-example-{}.toml", std::process::id()));
        std::fs::write(&path, out).expect("write the caller example");
        path.to_str().expect("a UTF-8 temp path").to_owned()
    })
}

/// The example constitution's test requests as JSON strings, for a server running [`caller_example`]: the
/// counters' values a test states (`context.usage`) left out, since ACGS keeps those itself.
pub fn example_requests() -> Vec<String> {
    let doc: acgs_engine::ConstitutionDocument =
        toml::from_str(&std::fs::read_to_string(EXAMPLE).expect("example")).expect("toml");
    doc.tests
        .into_iter()
        .map(|t| {
            let mut request = t.request;
            request.context.remove("usage");
            serde_json::to_string(&request).expect("json")
        })
        .collect()
}
