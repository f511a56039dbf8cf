//! Governance from the command line, against a real server: the people the example constitution's `[governance]`
//! names log in (`acgs login`, one session file each) and draft, list, show, diff, open, vote on, veto and try to
//! execute an amendment (`acgs amendments …`), halt and resume the system (`acgs emergency …`), hand the emergency
//! authority to a new set (`acgs emergency transfer`, `transfer-approve`, `accept`), and rule on an agent's appeal
//! of a decision (`acgs appeals …`; the agent files it with its API key). The session file is private (0600), a
//! command without one says how to log in, a wrong password fails, a file others can read is refused, and an
//! access token the server no longer accepts is refreshed (the new pair is saved).
// Tests and benchmarks fail loudly on unexpected values.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::ffi::OsStr;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{ACGS, Server, api_key, example_requests};
use serde_json::Value;

/// Every user the example constitution's `[governance]` names, with the role each gets here.
const PEOPLE: &[(&str, &str)] = &[
    ("chief-risk-officer", "council"),
    ("head-of-engineering", "council"),
    ("general-counsel", "council"),
    ("data-protection-officer", "council"),
    ("internal-audit", "auditor"),
    ("ethics-board-chair", "reviewer"),
    ("sre-on-call", "operator"),
    ("security-on-call", "operator"),
];

fn password_of(user: &str) -> String {
    format!("{user} has a long password")
}

/// A server on a fresh data directory, and a directory for the users' session files.
struct Setup {
    _dir: tempfile::TempDir,
    root: PathBuf,
    data: String,
    server: Server,
}

impl Setup {
    fn start() -> Self {
        Self::start_with(|_| Vec::new())
    }

    /// A server started with the flags `extra` gives for the setup's root directory.
    fn start_with(extra: impl FnOnce(&Path) -> Vec<String>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_owned();
        let data = root.join("data").to_str().unwrap().to_owned();
        let extra = extra(&root);
        let mut args = vec!["--data-dir", &data, "--auth-reload-secs", "1"];
        args.extend(extra.iter().map(String::as_str));
        // The example with every fact from the caller, as its test requests send them (unless the test gives one).
        if !args.contains(&"--constitution") {
            args.extend(["--constitution", common::caller_example()]);
        }
        let server = Server::start(&args);
        Self {
            _dir: dir,
            root,
            data,
            server,
        }
    }

    fn session_file(&self, user: &str) -> PathBuf {
        self.root.join("sessions").join(format!("{user}.json"))
    }

    /// `acgs args…` with `env` set (and nothing inherited that would choose another session or password).
    fn run(&self, args: &[&str], env: &[(&str, &OsStr)], stdin: Option<&str>) -> Output {
        let mut command = Command::new(ACGS);
        command
            .args(args)
            .env_remove("ACGS_DATA_DIR")
            .env_remove("ACGS_DATABASE_URL")
            .env_remove("ACGS_AUTH_MASTER_KEY")
            .env_remove("ACGS_PASSWORD")
            .env_remove("ACGS_SESSION_FILE")
            .env_remove("XDG_CONFIG_HOME")
            .env("HOME", self.root.join("home"))
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().unwrap();
        if let Some(input) = stdin {
            child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        }
        child.wait_with_output().unwrap()
    }

    /// `acgs args…` as `user` (its own session file).
    fn as_user(&self, user: &str, args: &[&str]) -> Output {
        let file = self.session_file(user);
        self.run(args, &[("ACGS_SESSION_FILE", file.as_os_str())], None)
    }

    /// Create `user` with `roles` on the server's database.
    fn create_user(&self, user: &str, roles: &str) {
        let o = self.run(
            &[
                "users",
                "create",
                user,
                "--roles",
                roles,
                "--password-stdin",
                "--data-dir",
                &self.data,
            ],
            &[],
            Some(&format!("{}\n", password_of(user))),
        );
        assert!(o.status.success(), "{}", text(&o));
    }

    /// `acgs login` as `user` with its password on standard input.
    fn login(&self, user: &str, password: &str) -> Output {
        let file = self.session_file(user);
        self.run(
            &["login", &self.server.url, "--user", user, "--password-stdin"],
            &[("ACGS_SESSION_FILE", file.as_os_str())],
            Some(&format!("{password}\n")),
        )
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Succeeded; its standard output.
fn ok(o: Output) -> String {
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8(o.stdout).unwrap()
}

/// Failed; its standard error.
fn failed(o: Output) -> String {
    assert!(!o.status.success(), "expected a failure: {}", text(&o));
    String::from_utf8(o.stderr).unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn hash_of(file: &str) -> String {
    let o = Command::new(ACGS)
        .args(["constitution", "hash", file])
        .output()
        .unwrap();
    String::from_utf8(o.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

/// The example constitution with the version label `label`, written into `dir`.
fn example_as(dir: &Path, label: &str) -> String {
    let text = std::fs::read_to_string(common::caller_example()).unwrap().replacen(
        "version = \"1.0.0\"",
        &format!("version = \"{label}\""),
        1,
    );
    let path = dir.join(format!("constitution-{label}.toml"));
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn the_council_amends_and_the_emergency_set_halts_from_the_command_line() {
    let s = Setup::start();
    for (user, role) in PEOPLE {
        s.create_user(user, role);
        let out = ok(s.login(user, &password_of(user)));
        assert!(
            out.contains(&format!("logged in to {} as {user} (roles: {role})", s.server.url)),
            "{out}"
        );
        assert_eq!(mode(&s.session_file(user)), 0o600);
    }
    let cro = "chief-risk-officer";
    let amended = example_as(&s.root, "1.1.0");
    let (base_hash, proposed_hash) = (hash_of(common::caller_example()), hash_of(&amended));
    assert_ne!(base_hash, proposed_hash);

    // Draft: the JSON is the server's amendment.
    let out = ok(s.as_user(
        cro,
        &[
            "amendments",
            "draft",
            &amended,
            "--title",
            "Release 1.1.0",
            "--rationale",
            "Quarterly review",
            "--json",
        ],
    ));
    let drafted: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(drafted["state"], "draft", "{drafted}");
    assert_eq!(drafted["proposed_hash"], proposed_hash.as_str());
    let id = drafted["id"].as_str().unwrap().to_owned();

    // A second draft, in text, withdrawn by its proposer.
    let other = example_as(&s.root, "1.2.0");
    let out = ok(s.as_user(
        cro,
        &[
            "amendments",
            "draft",
            &other,
            "--title",
            "Release 1.2.0",
            "--rationale",
            "Later",
        ],
    ));
    assert!(out.starts_with("drafted amendment "), "{out}");
    assert!(
        out.contains("is now draft: open the vote with `acgs amendments open"),
        "{out}"
    );
    let other_id = out.split_whitespace().nth(2).unwrap().to_owned();
    let out = ok(s.as_user(cro, &["amendments", "cancel", &other_id, "--reason", "too early"]));
    assert_eq!(out.trim(), format!("amendment {other_id} is now cancelled"));

    // A rollback to the version in force is refused by the server: its problem's detail and status.
    let err = failed(s.as_user(
        cro,
        &[
            "amendments",
            "draft",
            "--restore-version",
            "1",
            "--title",
            "Back",
            "--rationale",
            "Undo",
        ],
    ));
    assert!(err.starts_with("error: ") && err.contains("(HTTP 400)"), "{err}");

    // List: a table with id, state, title, proposer and tally; filtered by state; as JSON.
    let out = ok(s.as_user("head-of-engineering", &["amendments", "list"]));
    let header = out.lines().next().unwrap();
    for column in ["ID", "STATE", "TITLE", "PROPOSER", "TALLY"] {
        assert!(header.contains(column), "{out}");
    }
    let row = out
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_else(|| panic!("{out}"));
    for cell in ["draft", "Release 1.1.0", cro] {
        assert!(row.contains(cell), "{row}");
    }
    let out = ok(s.as_user(cro, &["amendments", "list", "--state", "cancelled", "--json"]));
    let listed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["id"], other_id.as_str());
    let err = failed(s.as_user(cro, &["amendments", "list", "--state", "pending"]));
    assert!(err.contains("`pending` is not an amendment state"), "{err}");

    // Show and diff: the versions and hashes a voter reads.
    let out = ok(s.as_user("general-counsel", &["amendments", "show", &id]));
    assert!(
        out.contains(&format!("base:             version 1, hash {base_hash}")),
        "{out}"
    );
    assert!(
        out.contains(&format!("proposed:         hash {proposed_hash}, version label 1.1.0")),
        "{out}"
    );
    assert!(
        out.contains("ballot: not opened") && out.contains("Quarterly review"),
        "{out}"
    );
    assert!(out.contains(&format!("-> draft  by user:{cro}")), "{out}");
    let out = ok(s.as_user("general-counsel", &["amendments", "diff", &id]));
    for needle in [
        base_hash.as_str(),
        proposed_hash.as_str(),
        "metadata:",
        "~ metadata",
        "version: \"1.0.0\" -> \"1.1.0\"",
    ] {
        assert!(out.contains(needle), "no `{needle}` in:\n{out}");
    }
    let diff: Value = serde_json::from_str(&ok(s.as_user(cro, &["amendments", "diff", &id, "--json"]))).unwrap();
    assert_eq!(diff["from_hash"], base_hash.as_str());
    assert_eq!(diff["to_hash"], proposed_hash.as_str());

    // Open, then 2 + 1 of the council's 5 for: the vote closes early and the amendment is queued.
    let out = ok(s.as_user(cro, &["amendments", "open", &id]));
    assert!(
        out.starts_with(&format!(
            "amendment {id} is now voting: for 0, against 0, abstain 0 of 5; votes close at "
        )),
        "{out}"
    );
    let out = ok(s.as_user(cro, &["amendments", "vote", &id, "for", "--reason", "reviewed"]));
    assert!(
        out.starts_with(&format!(
            "{cro} voted for with weight 2; amendment {id} is now voting: for 2"
        )),
        "{out}"
    );
    let out = ok(s.as_user("head-of-engineering", &["amendments", "vote", &id, "for"]));
    assert!(
        out.starts_with(&format!(
            "head-of-engineering voted for with weight 1; amendment {id} is now queued: executable from "
        )),
        "{out}"
    );
    let out = ok(s.as_user(cro, &["amendments", "show", &id]));
    for needle in [
        "state:            queued",
        "executable from:",
        "tally:            for 3, against 0, abstain 0 of 5",
        "timelock:         1d after passing, then executable for 7d",
        "not voted:        data-protection-officer (1), general-counsel (1)",
        "voting -> succeeded  by clock",
        "succeeded -> queued  by clock",
        "open at ",
    ] {
        assert!(out.contains(needle), "no `{needle}` in:\n{out}");
    }
    assert!(
        out.lines()
            .any(|l| l.trim_start().starts_with(cro) && l.contains("for") && l.contains("weight 2")),
        "{out}"
    );

    // Executing before the timelock has passed: refused, naming the timelock.
    let err = failed(s.as_user("head-of-engineering", &["amendments", "execute", &id]));
    assert!(err.contains("timelock") && err.contains("(HTTP 409)"), "{err}");

    // The guardians veto it, 2 of 3.
    let out = ok(s.as_user("general-counsel", &["amendments", "veto", &id, "--reason", "not ready"]));
    assert!(out.starts_with("veto approvals so far: 1 (general-counsel); "), "{out}");
    let out = ok(s.as_user("internal-audit", &["amendments", "veto", &id, "--reason", "agreed"]));
    assert_eq!(
        out.trim(),
        format!("amendment {id} is now vetoed: vetoed by general-counsel, internal-audit")
    );

    // The emergency set halts: one approval is not enough, two are.
    let out = ok(s.as_user("sre-on-call", &["emergency", "status"]));
    assert!(out.starts_with("the system is running\n"), "{out}");
    let err = failed(s.as_user("head-of-engineering", &["emergency", "halt", "--reason", "panic"]));
    assert!(err.contains("(HTTP 403)"), "{err}");
    let out = ok(s.as_user("sre-on-call", &["emergency", "halt", "--reason", "data leak"]));
    assert!(
        out.starts_with("sre-on-call approved the halt; the system is still running: halt: 1 of 2 approvals (sre-on-call); lapses at "),
        "{out}"
    );
    let out = ok(s.as_user("security-on-call", &["emergency", "halt", "--reason", "confirmed"]));
    assert!(
        out.starts_with("the system is now halted: since ")
            && out.contains("by security-on-call, sre-on-call (reason: data leak)"),
        "{out}"
    );
    let out = ok(s.as_user(cro, &["emergency", "status"]));
    for needle in [
        "the system is HALTED",
        "reason:     data leak",
        "decided by: security-on-call, sre-on-call",
        "motion:     none",
        "members:    chief-risk-officer, security-on-call, sre-on-call (any 2 of 3; approvals count for 1d)",
    ] {
        assert!(out.contains(needle), "no `{needle}` in:\n{out}");
    }
    let status: Value = serde_json::from_str(&ok(s.as_user(cro, &["emergency", "status", "--json"]))).unwrap();
    assert_eq!(status["state"]["halted"], true, "{status}");

    // Two members resume it.
    let out = ok(s.as_user(cro, &["emergency", "resume", "--reason", "contained"]));
    assert!(
        out.contains("the system is still halted: resume: 1 of 2 approvals (chief-risk-officer)"),
        "{out}"
    );
    let out = ok(s.as_user("security-on-call", &["emergency", "resume", "--reason", "fixed"]));
    assert!(
        out.starts_with("the system is now running: since ") && out.contains("by chief-risk-officer, security-on-call"),
        "{out}"
    );
    let out = ok(s.as_user("sre-on-call", &["emergency", "status"]));
    assert!(out.starts_with("the system is running\n"), "{out}");
}

#[test]
fn sessions_are_private_required_refreshed_and_ended() {
    let s = Setup::start();
    let user = "chief-risk-officer";
    s.create_user(user, "council");
    let file = s.session_file(user);

    // Without a session: a message saying how to log in.
    let err = failed(s.as_user(user, &["amendments", "list"]));
    assert!(err.contains("not logged in") && err.contains("acgs login URL"), "{err}");

    // A wrong password: refused, no session written.
    let err = failed(s.login(user, "not the password at all"));
    assert!(err.contains("cannot log in") && err.contains("(HTTP 401)"), "{err}");
    assert!(!file.exists());

    // The password from ACGS_PASSWORD; the session file (and the directory made for it) are private.
    let o = s.run(
        &["login", &s.server.url, "--user", user],
        &[
            ("ACGS_SESSION_FILE", file.as_os_str()),
            ("ACGS_PASSWORD", OsStr::new(&password_of(user))),
        ],
        None,
    );
    ok(o);
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(file.parent().unwrap()), 0o700);
    ok(s.as_user(user, &["emergency", "status"]));

    // An access token the server does not accept is refreshed once, and the new pair is saved.
    let before: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let mut damaged = before.clone();
    damaged["access_token"] = "not-a-token".into();
    std::fs::write(&file, damaged.to_string()).unwrap();
    let out = ok(s.as_user(user, &["amendments", "list"]));
    assert_eq!(out.trim(), "no amendments");
    let after: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_ne!(after["refresh_token"], before["refresh_token"]);
    assert_ne!(after["access_token"], "not-a-token");
    assert_eq!(after["username"], user);
    assert_eq!(mode(&file), 0o600);
    ok(s.as_user(user, &["amendments", "list"]));

    // A session file others can read is refused, saying how to fix it.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = failed(s.as_user(user, &["amendments", "list"]));
    assert!(
        err.contains("accessible by others (mode 0644)") && err.contains("chmod 600"),
        "{err}"
    );
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();

    // Logout ends the session on the server (its refresh token no longer works) and deletes the file.
    let out = ok(s.as_user(user, &["logout"]));
    assert!(
        out.starts_with(&format!("logged out of {} ({user})", s.server.url)),
        "{out}"
    );
    assert!(!file.exists());
    let mut stale = after.clone();
    stale["access_token"] = "not-a-token".into();
    std::fs::write(&file, stale.to_string()).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let err = failed(s.as_user(user, &["amendments", "list"]));
    assert!(err.contains("has ended") && err.contains("acgs login"), "{err}");
    std::fs::remove_file(&file).unwrap();
    let err = failed(s.as_user(user, &["amendments", "list"]));
    assert!(err.contains("not logged in"), "{err}");

    // Without ACGS_SESSION_FILE the session goes under XDG_CONFIG_HOME (directory 0700, file 0600).
    let xdg = s.root.join("xdg");
    ok(s.run(
        &["login", &s.server.url, "--user", user, "--password-stdin"],
        &[("XDG_CONFIG_HOME", xdg.as_os_str())],
        Some(&password_of(user)),
    ));
    let session = xdg.join("acgs").join("session.json");
    assert_eq!(mode(&session), 0o600);
    assert_eq!(mode(&xdg.join("acgs")), 0o700);
    ok(s.run(&["emergency", "status"], &[("XDG_CONFIG_HOME", xdg.as_os_str())], None));
    ok(s.run(&["logout"], &[("XDG_CONFIG_HOME", xdg.as_os_str())], None));
    assert!(!session.exists());
}

#[test]
fn an_agent_appeals_a_decision_and_a_reviewer_overturns_it_from_the_command_line() {
    let s = Setup::start();
    for (user, role) in [("internal-audit", "reviewer"), ("sre-on-call", "operator")] {
        s.create_user(user, role);
        ok(s.login(user, &password_of(user)));
    }
    let source = ["--data-dir", s.data.as_str()];
    let (agent, other_agent) = (api_key(&source, "gateway"), api_key(&source, "gateway"));
    let url = s.server.url.as_str();

    // The agent asks for a decision the example constitution denies (no tool-user role: default deny).
    let request = &example_requests()[1];
    let out = ok(s.run(&["decide", "--url", url, "--api-key", &agent, "-r", request], &[], None));
    let decided: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(decided["decision"], "deny", "{decided}");
    let decision_id = decided["decision_id"].as_str().unwrap();

    // Standing: another agent's key is refused; --url needs a key; without --url the session is needed.
    let statement = "the helpdesk bot needs web search to answer customers";
    let err = failed(s.run(
        &[
            "appeals",
            "file",
            decision_id,
            "--statement",
            statement,
            "--url",
            url,
            "--api-key",
            &other_agent,
        ],
        &[],
        None,
    ));
    assert!(
        err.contains("only the caller that asked for decision") && err.contains("(HTTP 403)"),
        "{err}"
    );
    let err = failed(s.run(
        &["appeals", "file", decision_id, "--statement", statement, "--url", url],
        &[],
        None,
    ));
    assert!(err.contains("give --api-key KEY or set ACGS_API_KEY"), "{err}");
    let err = failed(s.run(
        &["appeals", "file", decision_id, "--statement", statement],
        &[("ACGS_API_KEY", OsStr::new(&agent))],
        None,
    ));
    assert!(err.contains("not logged in"), "{err}");

    // The agent that asked files it with its key (from ACGS_API_KEY).
    let out = ok(s.run(
        &["appeals", "file", decision_id, "--statement", statement, "--url", url],
        &[("ACGS_API_KEY", OsStr::new(&agent))],
        None,
    ));
    assert!(
        out.starts_with("filed appeal ")
            && out.contains(&format!(
                "of decision {decision_id} (seq {}, deny: Agent::helpdesk-bot invoke_tool Tool::web-search) as \
                 api_key:",
                decided["audit_seq"]
            )),
        "{out}"
    );
    let id = out.split_whitespace().nth(2).unwrap().to_owned();
    assert!(
        out.contains(&format!("appeal {id} is now filed: a reviewer rules by ")),
        "{out}"
    );

    // List (a table; by state; as JSON) and show.
    let out = ok(s.as_user("internal-audit", &["appeals", "list"]));
    let header = out.lines().next().unwrap();
    for column in ["ID", "STATE", "OUTCOME", "REQUEST", "APPELLANT", "DEADLINE"] {
        assert!(header.contains(column), "{out}");
    }
    let row = out
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_else(|| panic!("{out}"));
    for cell in ["filed", "deny", "Agent::helpdesk-bot", "api_key:", "in 4d 23h"] {
        assert!(row.contains(cell), "{row}");
    }
    let listed: Value = serde_json::from_str(&ok(s.as_user(
        "internal-audit",
        &["appeals", "list", "--state", "overturned", "--json"],
    )))
    .unwrap();
    assert_eq!(listed, Value::Array(Vec::new()));
    let err = failed(s.as_user("internal-audit", &["appeals", "list", "--state", "pending"]));
    assert!(err.contains("`pending` is not an appeal state"), "{err}");
    let out = ok(s.as_user("internal-audit", &["appeals", "show", &id]));
    for needle in [
        "state:            filed".to_owned(),
        "appellant:        api_key:".to_owned(),
        format!("id:               {decision_id}"),
        format!("seq:              {}", decided["audit_seq"]),
        "outcome:          deny".to_owned(),
        "request:          Agent::helpdesk-bot invoke_tool Tool::web-search".to_owned(),
        format!("  {statement}"),
        "ruling: none yet".to_owned(),
        "-> filed  by api_key:".to_owned(),
    ] {
        assert!(out.contains(&needle), "no `{needle}` in:\n{out}");
    }

    // Only a reviewer rules; internal-audit overturns it and drafts the amendment the ruling implies.
    let err = failed(s.as_user(
        "sre-on-call",
        &["appeals", "rule", &id, "overturn", "--reason", "x", "--expect", "allow"],
    ));
    assert!(err.contains("(HTTP 403)"), "{err}");
    let out = ok(s.as_user(
        "internal-audit",
        &[
            "appeals",
            "rule",
            &id,
            "overturn",
            "--reason",
            "web search is a low-risk tool",
            "--expect",
            "allow",
            "--draft-amendment",
        ],
    ));
    assert!(
        out.starts_with(&format!(
            "internal-audit ruled overturn; appeal {id} is now overturned: the decision (deny) was wrong; the \
             constitution should allow"
        )),
        "{out}"
    );
    let amendment = out
        .split("drafted amendment ")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .unwrap_or_else(|| panic!("{out}"))
        .to_owned();
    assert!(
        out.contains(&format!("read it with `acgs amendments show {amendment}`")),
        "{out}"
    );
    let out = ok(s.as_user("sre-on-call", &["appeals", "show", &id]));
    for needle in [
        "state:            overturned".to_owned(),
        "reviewer:         internal-audit".to_owned(),
        "reason:           web search is a low-risk tool".to_owned(),
        "expected outcome: allow".to_owned(),
        format!("amendment:        {amendment} (read it with `acgs amendments show {amendment}`)"),
        "filed -> overturned  by user:internal-audit".to_owned(),
    ] {
        assert!(out.contains(&needle), "no `{needle}` in:\n{out}");
    }
    let shown: Value =
        serde_json::from_str(&ok(s.as_user("sre-on-call", &["appeals", "show", &id, "--json"]))).unwrap();
    assert_eq!(shown["ruling"]["amendment"], amendment.as_str(), "{shown}");
    let out = ok(s.as_user("internal-audit", &["amendments", "show", &amendment]));
    for needle in [
        format!("amendment {amendment}"),
        format!("title:            Appeal {id}: appeal {id} of decision {decision_id}"),
        "state:            draft".to_owned(),
        "proposer:         internal-audit".to_owned(),
    ] {
        assert!(out.contains(&needle), "no `{needle}` in:\n{out}");
    }

    // A second ruling is refused.
    let err = failed(s.as_user(
        "internal-audit",
        &["appeals", "rule", &id, "uphold", "--reason", "again"],
    ));
    assert!(err.contains("(HTTP 409)"), "{err}");
}

#[test]
fn the_emergency_set_hands_its_authority_to_a_new_set_from_the_command_line() {
    let s = Setup::start();
    for user in ["sre-on-call", "security-on-call", "chief-risk-officer", "new-oncall"] {
        s.create_user(user, "operator");
        ok(s.login(user, &password_of(user)));
    }
    let err = failed(s.as_user("sre-on-call", &["emergency", "transfer", "--reason", "nothing"]));
    assert!(err.contains("required arguments were not provided"), "{err}");

    // sre-on-call proposes a new emergency set: the first of the current set's 2 approvals.
    let new_set = "sre-on-call,security-on-call,new-oncall";
    let reason = "the chief risk officer leaves the on-call rota";
    let out = ok(s.as_user(
        "sre-on-call",
        &[
            "emergency",
            "transfer",
            "--emergency-threshold",
            "2",
            "--emergency",
            new_set,
            "--reason",
            reason,
        ],
    ));
    assert!(
        out.starts_with("proposed authority transfer ")
            && out.contains(
                ": emergency set sre-on-call, security-on-call, new-oncall (any 2 of 3); against constitution \
                 version 1\n"
            ),
        "{out}"
    );
    let id = out.split_whitespace().nth(3).unwrap().trim_end_matches(':').to_owned();
    assert!(
        out.contains(&format!(
            "transfer {id} is now proposed: approvals of the emergency set 1 of 2 (sre-on-call); lapses at "
        )),
        "{out}"
    );

    // Not yet approved by 2 of the current set: nobody accepts; only current members approve.
    let err = failed(s.as_user("new-oncall", &["emergency", "accept", &id]));
    assert!(err.contains("(HTTP 409)"), "{err}");
    let err = failed(s.as_user(
        "new-oncall",
        &["emergency", "transfer-approve", &id, "--reason", "me too"],
    ));
    assert!(err.contains("(HTTP 403)"), "{err}");
    let out = ok(s.as_user(
        "security-on-call",
        &["emergency", "transfer-approve", &id, "--reason", "agreed"],
    ));
    assert!(
        out.starts_with(&format!(
            "security-on-call approved; transfer {id} is now accepting: waiting for the new authorities to accept \
             (emergency: 0 of 2 (none yet); needs 2 more of sre-on-call, security-on-call, new-oncall); lapses at "
        )),
        "{out}"
    );

    // Show and list.
    let out = ok(s.as_user("chief-risk-officer", &["emergency", "transfer-show", &id]));
    for needle in [
        format!("authority transfer {id}"),
        "state:            accepting".to_owned(),
        format!("reason:           {reason}"),
        "base:             version 1, hash ".to_owned(),
        "new emergency:    sre-on-call, security-on-call, new-oncall (any 2 of 3)".to_owned(),
        "approvals:        2 (security-on-call, sre-on-call): carried".to_owned(),
        "lapses at:        ".to_owned(),
        "security-on-call at ".to_owned(),
        ": agreed".to_owned(),
        "emergency: 0 of 2 (none yet); needs 2 more of".to_owned(),
    ] {
        assert!(out.contains(&needle), "no `{needle}` in:\n{out}");
    }
    let out = ok(s.as_user("sre-on-call", &["emergency", "transfers"]));
    let row = out
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_else(|| panic!("{out}"));
    for cell in [
        "accepting",
        "emergency",
        "emergency 0/2",
        "lapses in 23h",
        "the chief risk",
    ] {
        assert!(row.contains(cell), "no `{cell}` in: {row}");
    }

    // The new set accepts, 2 of 3: the transfer is in force as constitution version 2.
    let out = ok(s.as_user("new-oncall", &["emergency", "accept", &id]));
    assert!(
        out.contains("emergency: 1 of 2 (new-oncall); needs 1 more of sre-on-call, security-on-call"),
        "{out}"
    );
    let out = ok(s.as_user("security-on-call", &["emergency", "accept", &id]));
    assert_eq!(
        out.trim(),
        format!("security-on-call accepted; transfer {id} is now completed: in force as constitution version 2")
    );
    let shown: Value = serde_json::from_str(&ok(
        s.as_user("sre-on-call", &["emergency", "transfer-show", &id, "--json"])
    ))
    .unwrap();
    assert_eq!(
        (&shown["state"], &shown["completed_as_version"]),
        (&Value::from("completed"), &Value::from(2)),
        "{shown}"
    );
    let listed: Value =
        serde_json::from_str(&ok(s.as_user("sre-on-call", &["emergency", "transfers", "--json"]))).unwrap();
    assert_eq!(listed[0]["id"], id.as_str());
    let out = ok(s.as_user("new-oncall", &["emergency", "status"]));
    assert!(
        out.contains("members:    new-oncall, security-on-call, sre-on-call (any 2 of 3; approvals count for 1d)"),
        "{out}"
    );
    let err = failed(s.as_user("chief-risk-officer", &["emergency", "halt", "--reason", "x"]));
    assert!(err.contains("(HTTP 403)"), "{err}");

    // The version history (read from the database) says how version 2 came about.
    let out = ok(s.run(&["constitution", "versions", "--data-dir", &s.data], &[], None));
    assert!(
        out.contains(&format!(
            "by user:security-on-call: authority transfer {id}: {reason}; proposed by"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("in force: version 2 (authority transfer {id})")),
        "{out}"
    );
}

/// The example constitution with `timelock = "3s"` and the version label `label`, written into `dir` (the walkthrough
/// below cannot wait 24 hours).
fn example_with_short_timelock(dir: &Path, label: &str) -> String {
    let text = std::fs::read_to_string(common::caller_example())
        .unwrap()
        .replacen("version = \"1.0.0\"", &format!("version = \"{label}\""), 1)
        .replacen("timelock = \"24h\"", "timelock = \"3s\"", 1);
    assert!(text.contains("timelock = \"3s\""));
    let path = dir.join(format!("constitution-{label}.toml"));
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// The worked example of docs/governance.md, command by command (with the timelock shortened to 3 s).
#[test]
fn the_worked_example_of_the_governance_guide_runs_command_by_command() {
    let s = Setup::start_with(|root| vec!["--constitution".into(), example_with_short_timelock(root, "1.0.0")]);
    let amended = example_with_short_timelock(&s.root, "1.1.0");
    let url = s.server.url.clone();
    // The administrator creates the people the constitution names; each logs in.
    for (user, role) in [
        ("chief-risk-officer", "council"),
        ("head-of-engineering", "council"),
        ("sre-on-call", "operator"),
        ("security-on-call", "operator"),
        ("internal-audit", "reviewer"),
    ] {
        s.create_user(user, role);
        ok(s.login(user, &password_of(user)));
    }
    let agent = api_key(&["--data-dir", s.data.as_str()], "gateway");
    let decide = |request: &str| -> Value {
        serde_json::from_str(&ok(s.run(
            &["decide", "--url", &url, "--api-key", &agent, "-r", request],
            &[],
            None,
        )))
        .unwrap()
    };
    let allowed = example_requests()[0].clone();
    assert_eq!(decide(&allowed)["constitution_version"], "1.0.0");

    // An amendment: draft, diff, open, two votes (3 of 5 for: closed early), refused in its timelock, executed.
    let cro = "chief-risk-officer";
    let out = ok(s.as_user(
        cro,
        &[
            "amendments",
            "draft",
            &amended,
            "--title",
            "Release 1.1.0",
            "--rationale",
            "Quarterly review",
        ],
    ));
    let id = out.split_whitespace().nth(2).unwrap().to_owned();
    let diff = ok(s.as_user(cro, &["amendments", "diff", &id]));
    assert!(diff.contains("1.1.0"), "{diff}");
    ok(s.as_user(cro, &["amendments", "open", &id]));
    ok(s.as_user(cro, &["amendments", "vote", &id, "for", "--reason", "safer"]));
    let out = ok(s.as_user("head-of-engineering", &["amendments", "vote", &id, "for"]));
    assert!(out.contains("queued"), "{out}");
    let shown = ok(s.as_user(cro, &["amendments", "show", &id]));
    assert!(shown.contains("queued"), "{shown}");
    let err = failed(s.as_user(cro, &["amendments", "execute", &id]));
    assert!(err.contains("timelock"), "{err}");
    std::thread::sleep(std::time::Duration::from_secs(4));
    let out = ok(s.as_user("sre-on-call", &["amendments", "execute", &id]));
    assert!(out.contains("executed"), "{out}");
    // The decisions change: the next one runs under version 1.1.0.
    assert_eq!(decide(&allowed)["constitution_version"], "1.1.0");

    // A halt: two of the emergency set; decisions are denied until two resume.
    let out = ok(s.as_user(
        "sre-on-call",
        &["emergency", "halt", "--reason", "agents exfiltrating data"],
    ));
    assert!(out.contains("still running"), "{out}");
    ok(s.as_user("security-on-call", &["emergency", "halt", "--reason", "confirmed"]));
    let status = ok(s.as_user("sre-on-call", &["emergency", "status"]));
    assert!(status.contains("HALTED"), "{status}");
    let denied = decide(&allowed);
    assert_eq!(
        (denied["decision"].as_str(), denied["system_reason"].as_str()),
        (Some("deny"), Some("emergency_halt"))
    );
    ok(s.as_user("sre-on-call", &["emergency", "resume", "--reason", "contained"]));
    ok(s.as_user(cro, &["emergency", "resume", "--reason", "contained"]));
    assert_eq!(decide(&allowed)["decision"], "allow");

    // An appeal that leads to an amendment: the agent appeals a denial; the reviewer overturns it and drafts the
    // amendment adding the request as a test case.
    let denial = decide(&example_requests()[1]);
    assert_eq!(denial["decision"], "deny", "{denial}");
    let decision_id = denial["decision_id"].as_str().unwrap();
    let out = ok(s.run(
        &[
            "appeals",
            "file",
            decision_id,
            "--statement",
            "web search is needed",
            "--url",
            &url,
            "--api-key",
            &agent,
        ],
        &[],
        None,
    ));
    let appeal = out.split_whitespace().nth(2).unwrap().to_owned();
    let out = ok(s.as_user(
        "internal-audit",
        &[
            "appeals",
            "rule",
            &appeal,
            "overturn",
            "--reason",
            "a legitimate need",
            "--expect",
            "allow",
            "--draft-amendment",
        ],
    ));
    assert!(out.contains("drafted amendment"), "{out}");
    let drafted = out
        .split("drafted amendment ")
        .nth(1)
        .unwrap()
        .split(|c: char| c == ':' || c.is_whitespace())
        .next()
        .unwrap()
        .to_owned();
    let shown = ok(s.as_user("internal-audit", &["amendments", "show", &drafted]));
    assert!(shown.contains("draft"), "{shown}");
}

/// Two `acgs serve` processes on one PostgreSQL database: a queued amendment executed through each at once (two
/// different amendments) puts exactly one in force; the other is stale, and both servers run the one in force.
#[test]
fn two_server_processes_on_one_postgres_database_never_both_execute() {
    let url = common::postgres_url();
    let s = Setup::start_with(|root| {
        vec![
            "--database-url".into(),
            url.clone(),
            "--constitution".into(),
            example_with_short_timelock(root, "1.0.0"),
        ]
    });
    let other = Server::start(&["--data-dir", &s.data, "--database-url", &url, "--auth-reload-secs", "1"]);
    let db = ["--database-url", url.as_str(), "--data-dir", s.data.as_str()];
    for (user, role) in [("chief-risk-officer", "council"), ("head-of-engineering", "council")] {
        let o = s.run(
            &[&["users", "create", user, "--roles", role, "--password-stdin"][..], &db].concat(),
            &[],
            Some(&format!("{}\n", password_of(user))),
        );
        assert!(o.status.success(), "{}", text(&o));
        ok(s.login(user, &password_of(user)));
    }
    let cro = "chief-risk-officer";
    let on_other = s.root.join("sessions").join("cro-on-the-other-server.json");
    ok(s.run(
        &["login", &other.url, "--user", cro, "--password-stdin"],
        &[("ACGS_SESSION_FILE", on_other.as_os_str())],
        Some(&format!("{}\n", password_of(cro))),
    ));
    let mut ids = Vec::new();
    for label in ["1.1.0", "1.2.0"] {
        let file = example_with_short_timelock(&s.root, label);
        let out = ok(s.as_user(
            cro,
            &["amendments", "draft", &file, "--title", label, "--rationale", "race"],
        ));
        let id = out.split_whitespace().nth(2).unwrap().to_owned();
        ok(s.as_user(cro, &["amendments", "open", &id]));
        ok(s.as_user(cro, &["amendments", "vote", &id, "for"]));
        let out = ok(s.as_user("head-of-engineering", &["amendments", "vote", &id, "for"]));
        assert!(out.contains("queued"), "{out}");
        ids.push(id);
    }
    std::thread::sleep(std::time::Duration::from_secs(4));
    let (here, there) = std::thread::scope(|scope| {
        let here = scope.spawn(|| s.as_user(cro, &["amendments", "execute", &ids[0]]));
        let there = scope.spawn(|| {
            s.run(
                &["amendments", "execute", &ids[1]],
                &[("ACGS_SESSION_FILE", on_other.as_os_str())],
                None,
            )
        });
        (here.join().unwrap(), there.join().unwrap())
    });
    let succeeded = [&here, &there].iter().filter(|o| o.status.success()).count();
    assert_eq!(succeeded, 1, "exactly one executes:\n{}\n{}", text(&here), text(&there));
    let loser = if here.status.success() { &there } else { &here };
    let refusal = text(loser);
    assert!(refusal.contains("(HTTP 409)"), "{refusal}");
    let mut states: Vec<String> = ids
        .iter()
        .map(|id| {
            let shown: Value =
                serde_json::from_str(&ok(s.as_user(cro, &["amendments", "show", id, "--json"]))).unwrap();
            shown["state"].as_str().unwrap().to_owned()
        })
        .collect();
    states.sort();
    assert_eq!(states, ["executed", "stale"]);
    // Both servers run the version in force (the other one within its one-second refresh).
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let agent = api_key(&db, "gateway");
    let request = example_requests()[0].clone();
    let hashes: Vec<Value> = [&s.server.url, &other.url]
        .iter()
        .map(|server| {
            let out = ok(s.run(
                &["decide", "--url", server, "--api-key", &agent, "-r", &request],
                &[],
                None,
            ));
            serde_json::from_str::<Value>(&out).unwrap()["constitutional_hash"].clone()
        })
        .collect();
    assert_eq!(hashes[0], hashes[1]);
}
