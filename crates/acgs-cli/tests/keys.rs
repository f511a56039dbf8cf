//! `acgs keys` as an operator runs it: a private key directory, Solana keypairs by role that the Solana tools can
//! read, a list and an audit that fails on every kind of problem (and passes when there is none), encrypted
//! backups that restore to the same bytes and refuse wrong passphrases, altered archives and different existing
//! keys without writing anything, the retirement of a rotated key (kept under `retired/`, backed up, audited for
//! integrity but not for rotation), and the check of single keypair files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use chrono::{DateTime, Months, Utc};
use common::ACGS;
use serde_json::Value;

const PASSPHRASE: &str = "correct horse battery staple";

fn command(args: &[&str]) -> Command {
    let mut c = Command::new(ACGS);
    c.args(args)
        .env_remove("ACGS_KEYS_DIR")
        .env_remove("ACGS_KEYS_PASSPHRASE");
    c
}

fn acgs(args: &[&str]) -> Output {
    command(args).output().unwrap()
}

fn acgs_env(args: &[&str], key: &str, value: &str) -> Output {
    command(args).env(key, value).output().unwrap()
}

fn acgs_stdin(args: &[&str], input: &str) -> Output {
    let mut child = command(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!all.contains("panicked"), "{all}");
    all
}

/// Run and require success; returns stdout and stderr.
fn ok(o: Output) -> String {
    let t = text(&o);
    assert!(o.status.success(), "expected success: {t}");
    t
}

/// Run and require failure (exit code 1, no panic); returns stdout and stderr.
fn fails(o: Output) -> String {
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "expected exit code 1: {t}");
    t
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The file and public key of each `created PATH (ROLE): PUBKEY` line.
fn created(out: &str) -> Vec<(PathBuf, String)> {
    out.lines()
        .filter_map(|l| l.strip_prefix("created "))
        .map(|rest| {
            let (path, pubkey) = rest.split_once(" (").unwrap();
            let pubkey = pubkey.rsplit_once(": ").unwrap().1;
            (PathBuf::from(path), pubkey.to_owned())
        })
        .collect()
}

/// Check a keypair file the way the Solana tools read it, independently of `acgs`: a JSON array of 64 numbers,
/// the Ed25519 public key of the first 32 as the last 32; returns that public key in base58.
fn solana_address(path: &Path) -> String {
    let bytes: Vec<u8> = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(bytes.len(), 64, "{}", path.display());
    let seed: [u8; 32] = bytes[..32].try_into().unwrap();
    let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key().to_bytes();
    assert_eq!(&bytes[32..], public.as_slice(), "{}: public half", path.display());
    bs58::encode(public).into_string()
}

fn manifest(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap()
}

fn write_manifest(dir: &Path, m: &Value) {
    std::fs::write(dir.join("manifest.json"), serde_json::to_string_pretty(m).unwrap()).unwrap();
}

/// A key directory with one key of each role (two council keys); returns the directory and the key files by role.
fn directory_with_keys(root: &Path) -> (PathBuf, Vec<(String, PathBuf)>) {
    let dir = root.join("keys");
    ok(acgs(&["keys", "init", "--dir", s(&dir)]));
    let mut files = Vec::new();
    for (role, count) in [
        ("program", "1"),
        ("governance", "1"),
        ("emergency", "1"),
        ("council", "2"),
        ("anchor", "1"),
        ("multisig", "1"),
    ] {
        let out = ok(acgs(&[
            "keys",
            "generate",
            "--dir",
            s(&dir),
            "--role",
            role,
            "--count",
            count,
        ]));
        for (path, _) in created(&out) {
            files.push((role.to_owned(), path));
        }
    }
    (dir, files)
}

fn file_of(files: &[(String, PathBuf)], role: &str) -> PathBuf {
    files.iter().find(|(r, _)| r == role).unwrap().1.clone()
}

fn set_created_at(dir: &Path, file: &Path, at: DateTime<Utc>) {
    let mut m = manifest(dir);
    let name = file.file_name().unwrap().to_str().unwrap();
    for k in m["keys"].as_array_mut().unwrap() {
        if k["file"] == name {
            k["created_at"] = Value::from(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        }
    }
    write_manifest(dir, &m);
}

/// Every file in a directory and its subdirectories (named `sub/file`) with its bytes.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut all = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().into_string().unwrap();
        if e.file_type().unwrap().is_dir() {
            for (inner, bytes) in snapshot(&e.path()) {
                all.push((format!("{name}/{inner}"), bytes));
            }
        } else {
            all.push((name, std::fs::read(e.path()).unwrap()));
        }
    }
    all.sort();
    all
}

#[test]
fn init_makes_a_private_directory_once_and_refuses_a_shared_one() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("deploy").join("keys");
    let out = ok(acgs_env(&["keys", "init"], "ACGS_KEYS_DIR", s(&dir)));
    assert!(out.contains("created the key directory"), "{out}");
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("manifest.json")), 0o600);
    assert_eq!(manifest(&dir)["keys"], Value::Array(vec![]));
    assert_eq!(manifest(&dir)["format"], "acgs-keys-manifest/v1");

    // Idempotent: a second init changes nothing.
    let before = snapshot(&dir);
    assert!(ok(acgs(&["keys", "init", "--dir", s(&dir)])).contains("already"));
    assert_eq!(snapshot(&dir), before);

    // A directory others can read is refused, and left as it is, unless the fix is asked for.
    chmod(&dir, 0o755);
    let out = fails(acgs(&["keys", "init", "--dir", s(&dir)]));
    assert!(out.contains("mode 755") && out.contains("--fix-permissions"), "{out}");
    assert_eq!(mode(&dir), 0o755);
    let out = fails(acgs(&["keys", "generate", "--dir", s(&dir), "--role", "program"]));
    assert!(out.contains("mode 755"), "{out}");
    assert_eq!(snapshot(&dir), before, "nothing generated into a shared directory");
    ok(acgs(&["keys", "init", "--dir", s(&dir), "--fix-permissions"]));
    assert_eq!(mode(&dir), 0o700);

    // Generating needs an initialised directory.
    let other = root.path().join("never-initialised");
    let out = fails(acgs(&["keys", "generate", "--dir", s(&other), "--role", "program"]));
    assert!(out.contains("acgs keys init"), "{out}");
    assert!(!other.exists());
}

#[test]
fn generates_every_role_as_solana_keypairs_and_lists_them() {
    let root = tempfile::tempdir().unwrap();
    let (dir, files) = directory_with_keys(root.path());
    assert_eq!(files.len(), 7);
    let mut addresses = HashSet::new();
    for (role, path) in &files {
        assert_eq!(path.parent().unwrap(), dir);
        assert_eq!(mode(path), 0o600, "{}", path.display());
        let address = solana_address(path);
        assert!(addresses.insert(address.clone()), "a repeated key");
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with(&format!("{role}-")), "{name}");
        // `verify` reads it back and prints the same address.
        assert_eq!(ok(acgs(&["keys", "verify", s(path)])).trim(), address);
    }
    // What `generate` printed is the address of the file it names.
    let out = ok(acgs(&[
        "keys",
        "generate",
        "--dir",
        s(&dir),
        "--role",
        "program",
        "--count",
        "3",
    ]));
    let made = created(&out);
    assert_eq!(made.len(), 3);
    for (path, printed) in &made {
        assert_eq!(&solana_address(path), printed);
        assert!(addresses.insert(printed.clone()));
    }

    // The manifest lists every key with its role, public key and creation time.
    let m = manifest(&dir);
    let keys = m["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 10);
    for (role, path) in files.iter().chain(
        made.iter()
            .map(|(p, _)| ("program".to_owned(), p.clone()))
            .collect::<Vec<_>>()
            .iter(),
    ) {
        let name = path.file_name().unwrap().to_str().unwrap();
        let entry = keys.iter().find(|k| k["file"] == name).unwrap();
        assert_eq!(entry["role"], role.as_str());
        assert_eq!(entry["public_key"], solana_address(path).as_str());
        let created = DateTime::parse_from_rfc3339(entry["created_at"].as_str().unwrap()).unwrap();
        assert!((Utc::now() - created.with_timezone(&Utc)).num_seconds().abs() < 120);
    }

    // list: every key with its rotation date from the schedule.
    let listed: Value = serde_json::from_str(&ok(acgs(&["keys", "list", "--dir", s(&dir), "--json"]))).unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 10);
    for row in listed {
        let created = DateTime::parse_from_rfc3339(row["created_at"].as_str().unwrap())
            .unwrap()
            .with_timezone(&Utc);
        let months = match row["role"].as_str().unwrap() {
            "program" | "anchor" => 6,
            "emergency" => 3,
            "governance" | "council" | "multisig" => 12,
            other => panic!("role {other}"),
        };
        let due = created.checked_add_months(Months::new(months)).unwrap();
        assert_eq!(row["rotation_due"], due.format("%Y-%m-%d").to_string(), "{row}");
        assert_eq!(row["age_days"], 0);
        assert_eq!(row["rotation_overdue"], false);
    }
    let table = ok(acgs(&["keys", "list", "--dir", s(&dir)]));
    assert_eq!(table.lines().count(), 11, "{table}");
    for address in &addresses {
        assert!(table.contains(address.as_str()));
    }

    // A fresh directory with keys of every role audits clean.
    let out = ok(acgs(&["keys", "audit", "--dir", s(&dir)]));
    assert!(out.contains("keys audit: clean"), "{out}");
    let report: Value = serde_json::from_str(&ok(acgs(&["keys", "audit", "--dir", s(&dir), "--json"]))).unwrap();
    assert_eq!(report["clean"], true);
    assert_eq!(report["keys"], 10);
}

#[test]
fn generate_never_overwrites_and_keeps_names_inside_the_directory() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("keys");
    ok(acgs(&["keys", "init", "--dir", s(&dir)]));

    let out = ok(acgs(&[
        "keys",
        "generate",
        "--dir",
        s(&dir),
        "--role",
        "program",
        "--name",
        "upgrade-authority",
    ]));
    let key = dir.join("upgrade-authority.json");
    assert_eq!(created(&out)[0].0, key);
    let before = std::fs::read(&key).unwrap();
    let out = fails(acgs(&[
        "keys",
        "generate",
        "--dir",
        s(&dir),
        "--role",
        "program",
        "--name",
        "upgrade-authority",
    ]));
    assert!(out.contains("already exists"), "{out}");
    assert_eq!(std::fs::read(&key).unwrap(), before);

    // A file that is there but not in the manifest is not replaced either.
    std::fs::write(dir.join("stray.json"), "not mine").unwrap();
    fails(acgs(&[
        "keys",
        "generate",
        "--dir",
        s(&dir),
        "--role",
        "council",
        "--name",
        "stray",
    ]));
    assert_eq!(std::fs::read_to_string(dir.join("stray.json")).unwrap(), "not mine");
    std::fs::remove_file(dir.join("stray.json")).unwrap();

    // With --count, NAME-1 … NAME-N; if one of them exists, none is made.
    std::fs::write(dir.join("signer-2.json"), "taken").unwrap();
    fails(acgs(&[
        "keys",
        "generate",
        "--dir",
        s(&dir),
        "--role",
        "multisig",
        "--name",
        "signer",
        "--count",
        "3",
    ]));
    assert!(!dir.join("signer-1.json").exists());
    std::fs::remove_file(dir.join("signer-2.json")).unwrap();
    let out = ok(acgs(&[
        "keys",
        "generate",
        "--dir",
        s(&dir),
        "--role",
        "multisig",
        "--name",
        "signer.json",
        "--count",
        "3",
    ]));
    let names: Vec<_> = created(&out).into_iter().map(|(p, _)| p).collect();
    assert_eq!(
        names,
        (1..=3)
            .map(|i| dir.join(format!("signer-{i}.json")))
            .collect::<Vec<_>>()
    );

    // Names that would leave the directory, hide, or replace the manifest.
    for bad in ["../escaped", "sub/key", ".hidden", "manifest"] {
        let out = fails(acgs(&[
            "keys",
            "generate",
            "--dir",
            s(&dir),
            "--role",
            "program",
            "--name",
            bad,
        ]));
        assert!(
            out.contains("already exists") || out.contains("invalid key name"),
            "{bad}: {out}"
        );
    }
    assert!(!root.path().join("escaped.json").exists());
    for bad_count in ["0", "101", "x"] {
        assert!(
            !acgs(&[
                "keys",
                "generate",
                "--dir",
                s(&dir),
                "--role",
                "program",
                "--count",
                bad_count
            ])
            .status
            .success()
        );
    }
    assert!(
        !acgs(&["keys", "generate", "--dir", s(&dir), "--role", "janitor"])
            .status
            .success()
    );
    assert_eq!(manifest(&dir)["keys"].as_array().unwrap().len(), 4);
    ok(acgs(&["keys", "audit", "--dir", s(&dir)]));
}

/// Audit a fresh directory after `damage`; require failure naming `expect` (every string) and the check.
fn audit_finds(damage: impl FnOnce(&Path, &[(String, PathBuf)]) -> Vec<String>, check: &str) {
    let root = tempfile::tempdir().unwrap();
    let (dir, files) = directory_with_keys(root.path());
    ok(acgs(&["keys", "audit", "--dir", s(&dir)]));
    let expect = damage(&dir, &files);
    let out = fails(acgs(&["keys", "audit", "--dir", s(&dir)]));
    for e in &expect {
        assert!(out.contains(e.as_str()), "`{e}` not in: {out}");
    }
    assert!(out.contains("problem"), "{out}");
    let report: Value = serde_json::from_str(
        &String::from_utf8(
            command(&["keys", "audit", "--dir", s(&dir), "--json"])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(report["clean"], false);
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["check"] == check && f["severity"] == "problem"),
        "no `{check}` in {report}"
    );
}

#[test]
fn audit_fails_on_a_key_file_others_can_read() {
    audit_finds(
        |_, files| {
            let key = file_of(files, "governance");
            chmod(&key, 0o644);
            vec![format!("`{}` has mode 644", key.display()), "chmod 600".into()]
        },
        "file_permissions",
    );
}

#[test]
fn audit_fails_on_a_shared_directory() {
    audit_finds(
        |dir, _| {
            chmod(dir, 0o750);
            vec!["has mode 750".into(), "chmod 700".into()]
        },
        "directory_permissions",
    );
}

#[test]
fn audit_fails_on_an_altered_public_half() {
    audit_finds(
        |_, files| {
            let key = file_of(files, "program");
            let mut bytes: Vec<u8> = serde_json::from_str(&std::fs::read_to_string(&key).unwrap()).unwrap();
            bytes[40] ^= 0x20;
            std::fs::write(&key, serde_json::to_string(&bytes).unwrap()).unwrap();
            vec![
                key.display().to_string(),
                "public half does not match the secret".into(),
            ]
        },
        "tampered",
    );
}

#[test]
fn audit_fails_on_a_file_holding_another_key() {
    audit_finds(
        |_, files| {
            let (council_1, council_2) = (&files[3].1, &files[4].1);
            std::fs::copy(council_2, council_1).unwrap();
            vec![format!(
                "`{}` holds the key {}",
                council_1.display(),
                solana_address(council_2)
            )]
        },
        "wrong_key",
    );
}

#[test]
fn audit_fails_on_a_damaged_file() {
    audit_finds(
        |_, files| {
            let key = file_of(files, "anchor");
            std::fs::write(&key, "[1,2,3]").unwrap();
            vec![key.display().to_string(), "holds 3 numbers".into()]
        },
        "invalid_keypair",
    );
}

#[test]
fn audit_fails_on_a_missing_file() {
    audit_finds(
        |_, files| {
            let key = file_of(files, "emergency");
            std::fs::remove_file(&key).unwrap();
            vec![format!("`{}`", key.display()), "missing".into()]
        },
        "missing_file",
    );
}

#[test]
fn audit_fails_on_a_file_not_in_the_manifest() {
    audit_finds(
        |dir, files| {
            std::fs::copy(file_of(files, "program"), dir.join("old-program.json")).unwrap();
            vec!["old-program.json".into(), "not in the manifest".into()]
        },
        "unlisted",
    );
}

#[test]
fn audit_fails_on_a_key_past_its_rotation_date() {
    audit_finds(
        |dir, files| {
            let key = file_of(files, "emergency");
            set_created_at(dir, &key, Utc::now() - chrono::Duration::days(100));
            vec![
                key.file_name().unwrap().to_str().unwrap().to_owned(),
                "is 100 days old".into(),
                "every 3 months".into(),
            ]
        },
        "rotation_overdue",
    );
}

#[test]
fn audit_fails_on_an_unreadable_manifest() {
    audit_finds(
        |dir, _| {
            std::fs::write(dir.join("manifest.json"), "{").unwrap();
            vec!["manifest".into()]
        },
        "manifest",
    );
}

#[test]
fn audit_schedule_per_role_and_notices_that_do_not_fail() {
    let root = tempfile::tempdir().unwrap();
    let (dir, files) = directory_with_keys(root.path());
    let now = Utc::now();
    // Just inside each role's period: clean. A program key 5 months old, a governance key 11 months old.
    set_created_at(&dir, &file_of(&files, "program"), now - Months::new(5));
    set_created_at(&dir, &file_of(&files, "governance"), now - Months::new(11));
    set_created_at(&dir, &file_of(&files, "emergency"), now - Months::new(2));
    ok(acgs(&["keys", "audit", "--dir", s(&dir)]));
    // Due within 30 days: a notice, still exit 0.
    set_created_at(
        &dir,
        &file_of(&files, "program"),
        now - Months::new(6) + chrono::Duration::days(10),
    );
    let out = ok(acgs(&["keys", "audit", "--dir", s(&dir)]));
    assert!(out.contains("notice:") && out.contains("rotation due on"), "{out}");
    // Just past each role's period: a problem for each.
    for (role, months) in [("program", 6), ("governance", 12), ("anchor", 6), ("multisig", 12)] {
        set_created_at(
            &dir,
            &file_of(&files, role),
            now - Months::new(months) - chrono::Duration::days(1),
        );
        let out = fails(acgs(&["keys", "audit", "--dir", s(&dir)]));
        assert!(
            out.contains(&format!("{role} key")) && out.contains(&format!("every {months} months")),
            "{out}"
        );
    }
    let listed: Value = serde_json::from_str(&ok(acgs(&["keys", "list", "--dir", s(&dir), "--json"]))).unwrap();
    let overdue = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["rotation_overdue"] == true)
        .count();
    assert_eq!(overdue, 4);
    // A creation time in the future is an edited manifest or a wrong clock.
    set_created_at(&dir, &file_of(&files, "emergency"), now + chrono::Duration::days(3));
    assert!(fails(acgs(&["keys", "audit", "--dir", s(&dir)])).contains("in the future"));
}

/// A passphrase file (0600).
fn passphrase_file(root: &Path, passphrase: &str) -> PathBuf {
    let path = root.join("passphrase");
    std::fs::write(&path, format!("{passphrase}\n")).unwrap();
    chmod(&path, 0o600);
    path
}

#[test]
fn backup_and_restore_give_back_the_same_keys_and_manifest() {
    let root = tempfile::tempdir().unwrap();
    let (dir, files) = directory_with_keys(root.path());
    // A manifest edited by hand (compact JSON) comes back byte for byte, not reformatted.
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_string(&manifest(&dir)).unwrap(),
    )
    .unwrap();
    ok(acgs(&["keys", "audit", "--dir", s(&dir)]));
    let pass = passphrase_file(root.path(), PASSPHRASE);
    let archive = root.path().join("offline").join("keys.acgsbak");
    std::fs::create_dir(archive.parent().unwrap()).unwrap();
    let out = ok(acgs(&[
        "keys",
        "backup",
        "--dir",
        s(&dir),
        "--out",
        s(&archive),
        "--passphrase-file",
        s(&pass),
    ]));
    assert!(out.contains("7 keys"), "{out}");
    assert_eq!(mode(&archive), 0o600);

    // Encrypted: neither a secret nor a public key nor the manifest is readable in it.
    let sealed = std::fs::read(&archive).unwrap();
    assert_eq!(&sealed[..8], b"ACGSKEYS");
    let haystack = String::from_utf8_lossy(&sealed);
    for (_, path) in &files {
        let keypair = std::fs::read_to_string(path).unwrap();
        assert!(!haystack.contains(&keypair[..20]));
        assert!(!haystack.contains(&solana_address(path)));
    }
    assert!(!haystack.contains("manifest"));

    // Never overwrites a backup.
    let out = fails(acgs(&[
        "keys",
        "backup",
        "--dir",
        s(&dir),
        "--out",
        s(&archive),
        "--passphrase-file",
        s(&pass),
    ]));
    assert!(out.contains("already exists"), "{out}");
    assert_eq!(std::fs::read(&archive).unwrap(), sealed);

    // Restore into a directory that does not exist yet, passphrase from the environment.
    let restored = root.path().join("restored").join("keys");
    let out = ok(acgs_env(
        &["keys", "restore", s(&archive), "--dir", s(&restored)],
        "ACGS_KEYS_PASSPHRASE",
        PASSPHRASE,
    ));
    assert!(out.contains("restored 7 keys"), "{out}");
    assert_eq!(snapshot(&restored), snapshot(&dir), "the same files, byte for byte");
    assert_eq!(mode(&restored), 0o700);
    for (name, _) in snapshot(&restored) {
        assert_eq!(mode(&restored.join(&name)), 0o600, "{name}");
    }
    ok(acgs(&["keys", "audit", "--dir", s(&restored)]));
    assert_eq!(
        ok(acgs(&["keys", "list", "--dir", s(&restored), "--json"])),
        ok(acgs(&["keys", "list", "--dir", s(&dir), "--json"])),
    );

    // Again: everything is already there, nothing changes.
    let out = ok(acgs_stdin(
        &[
            "keys",
            "restore",
            s(&archive),
            "--dir",
            s(&restored),
            "--passphrase-stdin",
        ],
        PASSPHRASE,
    ));
    assert!(
        out.contains("restored 0 keys") && out.contains("7 already there"),
        "{out}"
    );
    assert_eq!(snapshot(&restored), snapshot(&dir));

    // The restore procedure for a lost file: restore puts back just that one, and the audit is clean again.
    let lost = file_of(&files, "emergency");
    let lost_bytes = std::fs::read(&lost).unwrap();
    std::fs::remove_file(&lost).unwrap();
    fails(acgs(&["keys", "audit", "--dir", s(&dir)]));
    let out = ok(acgs(&[
        "keys",
        "restore",
        s(&archive),
        "--dir",
        s(&dir),
        "--passphrase-file",
        s(&pass),
    ]));
    assert!(out.contains("restored 1 keys"), "{out}");
    assert_eq!(std::fs::read(&lost).unwrap(), lost_bytes);
    ok(acgs(&["keys", "audit", "--dir", s(&dir)]));
}

#[test]
fn wrong_passphrase_or_altered_archive_writes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let (dir, _) = directory_with_keys(root.path());
    let archive = root.path().join("keys.acgsbak");
    ok(acgs_env(
        &["keys", "backup", "--dir", s(&dir), "--out", s(&archive)],
        "ACGS_KEYS_PASSPHRASE",
        PASSPHRASE,
    ));
    let target = root.path().join("target");
    let restore = |archive: &Path, passphrase: &str| {
        acgs_env(
            &["keys", "restore", s(archive), "--dir", s(&target)],
            "ACGS_KEYS_PASSPHRASE",
            passphrase,
        )
    };

    let out = fails(restore(&archive, "correct horse battery stapler"));
    assert!(out.contains("wrong passphrase"), "{out}");
    assert!(!target.exists(), "nothing written");

    let sealed = std::fs::read(&archive).unwrap();
    for (what, at) in [
        ("salt", 30),
        ("nonce", 50),
        ("ciphertext", 200),
        ("tag", sealed.len() - 1),
    ] {
        let mut altered = sealed.clone();
        altered[at] ^= 0x01;
        let path = root.path().join(format!("altered-{what}"));
        std::fs::write(&path, &altered).unwrap();
        let out = fails(restore(&path, PASSPHRASE));
        assert!(out.contains("altered"), "{what}: {out}");
        assert!(!target.exists(), "{what}: nothing written");
    }
    let truncated = root.path().join("truncated");
    std::fs::write(&truncated, &sealed[..sealed.len() / 2]).unwrap();
    fails(restore(&truncated, PASSPHRASE));
    let not_a_backup = root.path().join("not-a-backup");
    std::fs::write(&not_a_backup, "[1,2,3]").unwrap();
    assert!(fails(restore(&not_a_backup, PASSPHRASE)).contains("not an acgs key backup"));
    fails(restore(&root.path().join("no-such-file"), PASSPHRASE));
    assert!(!target.exists());

    // The right passphrase still opens the original.
    ok(restore(&archive, PASSPHRASE));
    assert_eq!(snapshot(&target), snapshot(&dir));
}

#[test]
fn restore_never_replaces_a_different_key() {
    let root = tempfile::tempdir().unwrap();
    let (dir, files) = directory_with_keys(root.path());
    let archive = root.path().join("keys.acgsbak");
    ok(acgs_env(
        &["keys", "backup", "--dir", s(&dir), "--out", s(&archive)],
        "ACGS_KEYS_PASSPHRASE",
        PASSPHRASE,
    ));
    // The program key is rotated: its file now holds a different key (as after a manual replacement).
    let program = file_of(&files, "program");
    std::fs::remove_file(&program).unwrap();
    let mut m = manifest(&dir);
    m["keys"].as_array_mut().unwrap().retain(|k| k["role"] != "program");
    write_manifest(&dir, &m);
    let other = tempfile::tempdir().unwrap();
    let other_dir = other.path().join("k");
    ok(acgs(&["keys", "init", "--dir", s(&other_dir)]));
    let out = ok(acgs(&["keys", "generate", "--dir", s(&other_dir), "--role", "program"]));
    std::fs::copy(&created(&out)[0].0, &program).unwrap();
    std::fs::remove_file(&files[1].1).unwrap(); // the governance key is lost too
    let before = snapshot(&dir);

    let out = fails(acgs_env(
        &["keys", "restore", s(&archive), "--dir", s(&dir)],
        "ACGS_KEYS_PASSPHRASE",
        PASSPHRASE,
    ));
    assert!(
        out.contains("nothing was written") && out.contains("holds a different key") && out.contains(s(&program)),
        "{out}"
    );
    assert_eq!(snapshot(&dir), before, "not even the lost governance key was written");
}

#[test]
fn backup_passphrase_rules() {
    let root = tempfile::tempdir().unwrap();
    let (dir, _) = directory_with_keys(root.path());
    let archive = root.path().join("keys.acgsbak");
    let backup = |extra: &[&str]| {
        let mut args = vec!["keys", "backup", "--dir", s(&dir), "--out", s(&archive)];
        args.extend_from_slice(extra);
        args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>()
    };
    let run = |args: Vec<String>| acgs(&args.iter().map(String::as_str).collect::<Vec<_>>());

    let out = fails(run(backup(&[])));
    assert!(
        out.contains("--passphrase-file") && out.contains("ACGS_KEYS_PASSPHRASE"),
        "{out}"
    );
    let short = passphrase_file(root.path(), "only11chars");
    let out = fails(run(backup(&["--passphrase-file", s(&short)])));
    assert!(out.contains("at least 12"), "{out}");
    assert!(!archive.exists());
    // The passphrase never shows in --help (clap would print an env value shown there).
    let help = ok(acgs_env(
        &["keys", "backup", "--help"],
        "ACGS_KEYS_PASSPHRASE",
        "secret-value-123",
    ));
    assert!(!help.contains("secret-value-123"));
    // Standard input, then restore with the same passphrase from a file.
    let args = backup(&["--passphrase-stdin"]);
    ok(acgs_stdin(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        "twelve chars ok\n",
    ));
    let pass = passphrase_file(root.path(), "twelve chars ok");
    let target = root.path().join("t");
    ok(acgs(&[
        "keys",
        "restore",
        s(&archive),
        "--dir",
        s(&target),
        "--passphrase-file",
        s(&pass),
    ]));
    assert_eq!(snapshot(&target), snapshot(&dir));
}

#[test]
fn verify_checks_single_keypair_files() {
    let root = tempfile::tempdir().unwrap();
    // RFC 8032 section 7.1, test 1, written as a Solana keypair file; its address computed independently.
    let rfc = root.path().join("rfc8032.json");
    let hex = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60\
               d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    let bytes: Vec<u8> = (0..64)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    std::fs::write(&rfc, serde_json::to_string(&bytes).unwrap()).unwrap();
    let address = "FVen3X669xLzsi6N2V91DoiyzHzg1uAgqiT8jZ9nS96Z";
    assert_eq!(ok(acgs(&["keys", "verify", s(&rfc)])).trim(), address);
    ok(acgs(&["keys", "verify", s(&rfc), "--pubkey", address]));
    let out = fails(acgs(&[
        "keys",
        "verify",
        s(&rfc),
        "--pubkey",
        "11111111111111111111111111111111",
    ]));
    assert!(out.contains("not 11111111111111111111111111111111"), "{out}");

    // Pretty-printed with spaces and newlines, as some tools write it: still valid.
    let spaced = root.path().join("spaced.json");
    std::fs::write(&spaced, serde_json::to_string_pretty(&bytes).unwrap()).unwrap();
    assert_eq!(ok(acgs(&["keys", "verify", s(&spaced)])).trim(), address);

    let mut tampered = bytes.clone();
    tampered[63] ^= 1;
    let cases: [(&str, String, &str); 6] = [
        ("tampered", serde_json::to_string(&tampered).unwrap(), "does not match"),
        (
            "short",
            serde_json::to_string(&bytes[..63]).unwrap(),
            "holds 63 numbers",
        ),
        (
            "long",
            serde_json::to_string(&[bytes.clone(), vec![0]].concat()).unwrap(),
            "holds 65 numbers",
        ),
        (
            "big",
            serde_json::to_string(&bytes).unwrap().replacen("157", "300", 1),
            "not a Solana keypair",
        ),
        ("object", "{\"secret\": 1}".into(), "not a Solana keypair"),
        ("empty", String::new(), "not a Solana keypair"),
    ];
    for (name, contents, expect) in cases {
        let path = root.path().join(format!("{name}.json"));
        std::fs::write(&path, contents).unwrap();
        let out = fails(acgs(&["keys", "verify", s(&path)]));
        assert!(out.contains(expect) && out.contains(s(&path)), "{name}: {out}");
    }
    fails(acgs(&["keys", "verify", s(&root.path().join("missing.json"))]));
}

fn file_name(path: &Path) -> &str {
    path.file_name().unwrap().to_str().unwrap()
}

/// `acgs keys retire NAME --dir DIR [extra…]`.
fn retire(dir: &Path, name: &str, extra: &[&str]) -> Output {
    let mut args = vec!["keys", "retire", name, "--dir", s(dir)];
    args.extend_from_slice(extra);
    acgs(&args)
}

fn audit_json(dir: &Path) -> Value {
    serde_json::from_slice(
        &command(&["keys", "audit", "--dir", s(dir), "--json"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
}

fn list_json(dir: &Path) -> Vec<Value> {
    let listed: Value = serde_json::from_str(&ok(acgs(&["keys", "list", "--dir", s(dir), "--json"]))).unwrap();
    listed.as_array().unwrap().clone()
}

#[test]
fn rotation_then_retire_makes_the_audit_pass_again() {
    let root = tempfile::tempdir().unwrap();
    let (dir, files) = directory_with_keys(root.path());
    let old = file_of(&files, "program");
    let old_name = file_name(&old).to_owned();
    let old_address = solana_address(&old);
    let old_bytes = std::fs::read(&old).unwrap();

    // Seven months old: past the program key's 6 months, and the audit fails until it is dealt with.
    set_created_at(&dir, &old, Utc::now() - Months::new(7));
    let out = fails(acgs(&["keys", "audit", "--dir", s(&dir)]));
    assert!(out.contains(&old_name) && out.contains("rotation was due"), "{out}");
    // A replacement alone does not help: the old key is still listed as active.
    let new = created(&ok(acgs(&["keys", "generate", "--dir", s(&dir), "--role", "program"])))[0]
        .0
        .clone();
    let report = audit_json(&dir);
    assert_eq!(report["clean"], false);
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["check"] == "rotation_overdue" && f["file"] == old_name.as_str()),
        "{report}"
    );

    let before = manifest(&dir);
    let out = ok(retire(
        &dir,
        old_name.strip_suffix(".json").unwrap(),
        &["--reason", "rotated to the new upgrade authority"],
    ));
    assert!(
        out.contains(&format!("retired `{old_name}`")) && out.contains(&old_address),
        "{out}"
    );

    // The audit passes, and counts the retired key.
    let out = ok(acgs(&["keys", "audit", "--dir", s(&dir)]));
    assert!(
        out.contains("keys audit: clean") && out.contains("8 keys (1 retired)"),
        "{out}"
    );
    let report = audit_json(&dir);
    assert_eq!(report["clean"], true, "{report}");
    assert_eq!(report["keys"], 8);
    assert_eq!(report["retired"], 1);

    // The file moved to retired/ (0700), still 0600, the same bytes, and the same key.
    let retired_dir = dir.join("retired");
    let moved = retired_dir.join(&old_name);
    assert!(!old.exists(), "the old name is gone");
    assert_eq!(mode(&retired_dir), 0o700);
    assert_eq!(mode(&moved), 0o600);
    assert_eq!(std::fs::read(&moved).unwrap(), old_bytes);
    assert_eq!(solana_address(&moved), old_address);
    assert_eq!(
        ok(acgs(&["keys", "verify", s(&moved), "--pubkey", &old_address])).trim(),
        old_address
    );
    assert!(new.exists(), "the replacement is untouched");

    // The manifest keeps the entry, with when and why; nothing else in it changed.
    let after = manifest(&dir);
    let keys = after["keys"].as_array().unwrap();
    assert_eq!(keys.len(), before["keys"].as_array().unwrap().len());
    let entry = keys.iter().find(|k| k["file"] == old_name.as_str()).unwrap();
    assert_eq!(entry["public_key"], old_address.as_str());
    assert_eq!(entry["retired_reason"], "rotated to the new upgrade authority");
    let retired_at = DateTime::parse_from_rfc3339(entry["retired_at"].as_str().unwrap()).unwrap();
    assert!((Utc::now() - retired_at.with_timezone(&Utc)).num_seconds().abs() < 120);
    for (b, a) in before["keys"].as_array().unwrap().iter().zip(keys) {
        if a["file"] != old_name.as_str() {
            assert_eq!(a, b);
            assert!(a.get("retired_at").is_none(), "{a}");
        }
    }

    // list: the retired key is shown as retired, never overdue; the others are not retired.
    let rows = list_json(&dir);
    assert_eq!(rows.len(), 8);
    let row = rows.iter().find(|r| r["file"] == old_name.as_str()).unwrap();
    assert_eq!(row["retired"], true);
    assert_eq!(row["rotation_overdue"], false);
    assert_eq!(row["retired_at"], entry["retired_at"]);
    assert_eq!(row["retired_reason"], "rotated to the new upgrade authority");
    for r in rows.iter().filter(|r| r["file"] != old_name.as_str()) {
        assert_eq!(r["retired"], false, "{r}");
        assert_eq!(r["retired_at"], Value::Null, "{r}");
    }
    let table = ok(acgs(&["keys", "list", "--dir", s(&dir)]));
    let line = table.lines().find(|l| l.contains(&old_address)).unwrap();
    assert!(
        line.starts_with(&format!("retired/{old_name}"))
            && line.contains(&format!(
                "retired {}: rotated to the new upgrade authority",
                Utc::now().format("%Y-%m-%d")
            ))
            && !line.contains("overdue"),
        "{table}"
    );

    // The name stays the retired key's: a new key cannot take it.
    let out = fails(acgs(&[
        "keys",
        "generate",
        "--dir",
        s(&dir),
        "--role",
        "program",
        "--name",
        &old_name,
    ]));
    assert!(out.contains("already exists") && out.contains(s(&moved)), "{out}");
}

#[test]
fn retire_refuses_unknown_retired_or_damaged_keys_and_never_replaces_a_file() {
    let root = tempfile::tempdir().unwrap();
    let (dir, files) = directory_with_keys(root.path());
    let before = snapshot(&dir);

    // Unknown names, including ones that would leave the directory.
    for unknown in ["no-such-key", "../keys/manifest", "retired", "manifest.json"] {
        let out = fails(retire(&dir, unknown, &[]));
        assert!(out.contains(&format!("no key `{unknown}`")), "{unknown}: {out}");
    }
    // A reason must be one line.
    let program = file_of(&files, "program");
    let out = fails(retire(&dir, file_name(&program), &["--reason", "two\nlines"]));
    assert!(out.contains("--reason"), "{out}");
    let out = fails(retire(&dir, file_name(&program), &["--reason", "  "]));
    assert!(out.contains("empty"), "{out}");
    assert_eq!(snapshot(&dir), before, "nothing changed");
    assert!(!dir.join("retired").exists());

    // A damaged or missing key file is not retired (it would be the copy an operator relies on).
    let emergency = file_of(&files, "emergency");
    let good = std::fs::read(&emergency).unwrap();
    std::fs::write(&emergency, "[1,2,3]").unwrap();
    let out = fails(retire(&dir, file_name(&emergency), &[]));
    assert!(
        out.contains("cannot retire") && out.contains("holds 3 numbers"),
        "{out}"
    );
    std::fs::rename(&emergency, root.path().join("aside")).unwrap();
    let out = fails(retire(&dir, file_name(&emergency), &[]));
    assert!(out.contains("missing") && out.contains("acgs keys restore"), "{out}");
    std::fs::rename(root.path().join("aside"), &emergency).unwrap();
    std::fs::write(&emergency, &good).unwrap();
    assert_eq!(snapshot(&dir), before);

    // A file already under retired/ with that name is never replaced: refused, nothing changes.
    let governance = file_of(&files, "governance");
    std::fs::create_dir(dir.join("retired")).unwrap();
    chmod(&dir.join("retired"), 0o700);
    std::fs::write(dir.join("retired").join(file_name(&governance)), "an older file").unwrap();
    let with_stray = snapshot(&dir);
    let out = fails(retire(&dir, file_name(&governance), &[]));
    assert!(out.contains("already exists"), "{out}");
    assert_eq!(snapshot(&dir), with_stray);
    std::fs::remove_file(dir.join("retired").join(file_name(&governance))).unwrap();

    // A retired/ that others can reach is refused.
    chmod(&dir.join("retired"), 0o755);
    let out = fails(retire(&dir, file_name(&governance), &[]));
    assert!(out.contains("mode 755") && out.contains("chmod 700"), "{out}");
    chmod(&dir.join("retired"), 0o700);
    assert!(governance.exists());

    // Retired once (by its full file name, no reason); twice is an error that changes nothing.
    ok(retire(&dir, file_name(&governance), &[]));
    let entry = manifest(&dir)["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["file"] == file_name(&governance))
        .unwrap()
        .clone();
    assert!(entry["retired_at"].is_string());
    assert!(entry.get("retired_reason").is_none(), "{entry}");
    let once = snapshot(&dir);
    let out = fails(retire(&dir, file_name(&governance), &["--reason", "again"]));
    assert!(out.contains("already retired"), "{out}");
    let out = fails(retire(&dir, file_name(&governance).strip_suffix(".json").unwrap(), &[]));
    assert!(out.contains("already retired"), "{out}");
    assert_eq!(snapshot(&dir), once);
    ok(acgs(&["keys", "audit", "--dir", s(&dir)]));

    // Not an initialised directory.
    let out = fails(retire(&root.path().join("nowhere"), "x", &[]));
    assert!(out.contains("acgs keys init"), "{out}");
}

/// A damage to a retired key (after retiring the program key) that the audit must report as `check`.
fn audit_finds_in_retired(damage: impl FnOnce(&Path, &Path) -> Vec<String>, check: &str) {
    audit_finds(
        |dir, files| {
            let program = file_of(files, "program");
            ok(retire(dir, file_name(&program), &[]));
            ok(acgs(&["keys", "audit", "--dir", s(dir)]));
            damage(dir, &dir.join("retired").join(file_name(&program)))
        },
        check,
    );
}

#[test]
fn audit_checks_a_retired_key_others_can_read() {
    audit_finds_in_retired(
        |_, key| {
            chmod(key, 0o640);
            vec![format!("`{}` has mode 640", key.display())]
        },
        "file_permissions",
    );
}

#[test]
fn audit_checks_a_shared_retired_directory() {
    audit_finds_in_retired(
        |dir, _| {
            chmod(&dir.join("retired"), 0o755);
            vec!["retired` has mode 755".into(), "chmod 700".into()]
        },
        "directory_permissions",
    );
}

#[test]
fn audit_checks_a_retired_key_altered() {
    audit_finds_in_retired(
        |_, key| {
            let mut bytes: Vec<u8> = serde_json::from_str(&std::fs::read_to_string(key).unwrap()).unwrap();
            bytes[40] ^= 0x20;
            std::fs::write(key, serde_json::to_string(&bytes).unwrap()).unwrap();
            vec![key.display().to_string(), "does not match the secret".into()]
        },
        "tampered",
    );
}

#[test]
fn audit_checks_a_retired_key_missing() {
    audit_finds_in_retired(
        |_, key| {
            std::fs::remove_file(key).unwrap();
            vec![
                key.display().to_string(),
                "retired program key".into(),
                "missing".into(),
            ]
        },
        "missing_file",
    );
}

#[test]
fn audit_checks_files_in_retired_that_the_manifest_does_not_list() {
    audit_finds_in_retired(
        |dir, key| {
            std::fs::copy(key, dir.join("retired").join("copy.json")).unwrap();
            vec!["retired/copy.json".into(), "not in the manifest".into()]
        },
        "unlisted",
    );
}

#[test]
fn audit_names_the_leftover_of_an_interrupted_retire() {
    audit_finds_in_retired(
        |dir, key| {
            // The state after a crash between the manifest's update and the removal of the old name.
            std::fs::hard_link(key, dir.join(file_name(key))).unwrap();
            vec!["second name of the retired key's file".into()]
        },
        "unlisted",
    );
}

#[test]
fn backup_and_restore_keep_retired_keys_under_retired() {
    let root = tempfile::tempdir().unwrap();
    let (dir, files) = directory_with_keys(root.path());
    let pass = passphrase_file(root.path(), PASSPHRASE);
    let backup = |out: &Path| {
        ok(acgs(&[
            "keys",
            "backup",
            "--dir",
            s(&dir),
            "--out",
            s(out),
            "--passphrase-file",
            s(&pass),
        ]))
    };
    let restore = |archive: &Path, target: &Path| {
        acgs(&[
            "keys",
            "restore",
            s(archive),
            "--dir",
            s(target),
            "--passphrase-file",
            s(&pass),
        ])
    };
    let before_retire = root.path().join("before-retire.acgsbak");
    backup(&before_retire);

    let emergency = file_of(&files, "emergency");
    ok(retire(&dir, file_name(&emergency), &["--reason", "drill"]));
    let retired = dir.join("retired").join(file_name(&emergency));
    let archive = root.path().join("keys.acgsbak");
    let out = backup(&archive);
    assert!(out.contains("7 keys"), "the retired key is in the backup: {out}");
    assert!(!out.contains("warning"), "{out}");

    // Into a new directory: the same files byte for byte, the retired one under retired/ (0700, 0600).
    let restored = root.path().join("restored");
    let out = ok(restore(&archive, &restored));
    assert!(out.contains("restored 7 keys"), "{out}");
    assert!(out.contains(&format!("retired/{}", file_name(&emergency))), "{out}");
    assert_eq!(snapshot(&restored), snapshot(&dir));
    let back = restored.join("retired").join(file_name(&emergency));
    assert!(!restored.join(file_name(&emergency)).exists());
    assert_eq!(mode(&restored.join("retired")), 0o700);
    assert_eq!(mode(&back), 0o600);
    assert_eq!(solana_address(&back), solana_address(&retired));
    let report = audit_json(&restored);
    assert_eq!(report["clean"], true, "{report}");
    assert_eq!(report["retired"], 1);
    assert_eq!(list_json(&restored), list_json(&dir));

    // A lost retired file: restore puts back just that one, under retired/.
    let bytes = std::fs::read(&retired).unwrap();
    std::fs::remove_file(&retired).unwrap();
    fails(acgs(&["keys", "audit", "--dir", s(&dir)]));
    let out = ok(restore(&archive, &dir));
    assert!(out.contains("restored 1 keys"), "{out}");
    assert_eq!(std::fs::read(&retired).unwrap(), bytes);
    assert_eq!(mode(&retired), 0o600);
    assert!(!emergency.exists());
    ok(acgs(&["keys", "audit", "--dir", s(&dir)]));

    // A backup from before the retirement does not bring the key back as active.
    let now = snapshot(&dir);
    let out = ok(restore(&before_retire, &dir));
    assert!(
        out.contains("restored 0 keys") && out.contains("7 already there"),
        "{out}"
    );
    assert_eq!(snapshot(&dir), now);
    // Nor does it when the retired file is lost: it comes back under retired/.
    std::fs::remove_file(&retired).unwrap();
    let out = ok(restore(&before_retire, &dir));
    assert!(out.contains("restored 1 keys"), "{out}");
    assert!(retired.exists() && !emergency.exists());
    assert_eq!(snapshot(&dir), now);
}

#[test]
fn a_manifest_written_before_retire_still_loads() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("keys");
    ok(acgs(&["keys", "init", "--dir", s(&dir)]));
    let made = created(&ok(acgs(&[
        "keys",
        "generate",
        "--dir",
        s(&dir),
        "--role",
        "program",
        "--count",
        "2",
    ])));
    // Exactly what the previous version wrote (see docs/quantumagi.md), with no retirement fields; the first key
    // is past its rotation date.
    let entry = |(path, address): &(PathBuf, String), created: &str| {
        format!(
            "    {{\n      \"file\": \"{}\",\n      \"role\": \"program\",\n      \"public_key\": \"{address}\",\n      \"created_at\": \"{created}\"\n    }}",
            file_name(path)
        )
    };
    let old = format!(
        "{{\n  \"format\": \"acgs-keys-manifest/v1\",\n  \"keys\": [\n{},\n{}\n  ]\n}}\n",
        entry(&made[0], "2020-01-01T00:00:00Z"),
        entry(&made[1], &Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string())
    );
    std::fs::write(dir.join("manifest.json"), &old).unwrap();
    assert!(!old.contains("retired"));

    let rows = list_json(&dir);
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter()
            .all(|r| r["retired"] == false && r["retired_reason"].is_null())
    );
    assert_eq!(rows[0]["rotation_overdue"], true);
    let out = fails(acgs(&["keys", "audit", "--dir", s(&dir)]));
    assert!(out.contains("rotation was due"), "{out}");

    // Retiring rewrites it with the new fields for that key only; the other entry keeps its old form.
    ok(retire(&dir, file_name(&made[0].0), &["--reason", "old"]));
    ok(acgs(&["keys", "audit", "--dir", s(&dir)]));
    let text = std::fs::read_to_string(dir.join("manifest.json")).unwrap();
    assert_eq!(text.matches("retired_at").count(), 1, "{text}");
    assert!(
        text.contains(&entry(&made[1], rows[1]["created_at"].as_str().unwrap())),
        "{text}"
    );
}
