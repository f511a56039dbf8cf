//! The manifest of a key directory (`manifest.json`): which file holds which role's key, its public key, when it
//! was created (so that key ages survive copies and restores; file times do not) and, for a key replaced in a
//! rotation, when and why it was retired; the roles and their rotation schedule.

use std::collections::HashSet;

use chrono::{DateTime, Months, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::keypair::PublicKey;

/// The manifest's file name in the key directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The subdirectory of the key directory that holds retired keys' files (mode 0700).
pub const RETIRED_DIR: &str = "retired";
/// Longest retirement reason, in characters.
pub const MAX_REASON_CHARS: usize = 500;
/// The value of the manifest's `format` field.
pub const MANIFEST_FORMAT: &str = "acgs-keys-manifest/v1";
/// A key due for rotation within this many days is reported (without failing the audit).
pub const DUE_SOON_DAYS: i64 = 30;

/// What a key is for in the Quantumagi deployment; each role has its rotation period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Program upgrade authority.
    Program,
    /// Governance authority (the constitution's authority).
    Governance,
    /// Emergency authority (pauses, emergency actions).
    Emergency,
    /// A governance council member.
    Council,
    /// The deployment wallet of Anchor.toml's `[provider] wallet`: pays for deployments and is the upgrade
    /// authority of what it deploys until that is transferred.
    Anchor,
    /// A signer of a multi-signature authority.
    Multisig,
}

impl Role {
    /// The role's name, as on the command line and in the manifest.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Program => "program",
            Role::Governance => "governance",
            Role::Emergency => "emergency",
            Role::Council => "council",
            Role::Anchor => "anchor",
            Role::Multisig => "multisig",
        }
    }

    /// Months between rotations: program 6, governance 12, emergency 3 (the runbook's schedule); council
    /// members 12 (they sign governance actions, like the governance key); the Anchor deployment wallet 6 (it can
    /// upgrade what it deployed, like a program key); multisig signers 12 (one signer alone can do nothing).
    pub fn rotation_months(self) -> u32 {
        match self {
            Role::Program | Role::Anchor => 6,
            Role::Governance | Role::Council | Role::Multisig => 12,
            Role::Emergency => 3,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One key of the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEntry {
    /// File name in the key directory.
    pub file: String,
    /// What the key is for.
    pub role: Role,
    /// Its public key.
    pub public_key: PublicKey,
    /// When it was generated (whole seconds, UTC).
    pub created_at: DateTime<Utc>,
    /// Set once the key is retired: its file is then `retired/FILE`, and it has no rotation date any more.
    pub retired: Option<Retirement>,
}

/// When and why a key was retired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retirement {
    /// When (whole seconds, UTC).
    pub at: DateTime<Utc>,
    /// Why, as the operator gave it.
    pub reason: Option<String>,
}

/// Where a key stands against its rotation schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationState {
    /// Not due within [`DUE_SOON_DAYS`].
    Current,
    /// Due within [`DUE_SOON_DAYS`] days.
    DueSoon,
    /// Past its rotation date.
    Overdue,
}

impl KeyEntry {
    /// Whether the key is retired.
    pub fn is_retired(&self) -> bool {
        self.retired.is_some()
    }

    /// Where its file is, relative to the key directory: `FILE`, or `retired/FILE` once retired.
    pub fn location(&self) -> String {
        if self.is_retired() {
            format!("{RETIRED_DIR}/{}", self.file)
        } else {
            self.file.clone()
        }
    }

    /// The date by which the key is to be replaced: its creation plus its role's months (calendar months: a key
    /// of 31 August with 6 months is due on 28 or 29 February).
    pub fn rotation_due(&self) -> DateTime<Utc> {
        self.created_at
            .checked_add_months(Months::new(self.role.rotation_months()))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// Whole days since the key was created (negative if its creation time is in the future).
    pub fn age_days(&self, now: DateTime<Utc>) -> i64 {
        (now - self.created_at).num_days()
    }

    /// Where the key stands at `now`.
    pub fn rotation_state(&self, now: DateTime<Utc>) -> RotationState {
        let due = self.rotation_due();
        if now >= due {
            RotationState::Overdue
        } else if (due - now).num_days() < DUE_SOON_DAYS {
            RotationState::DueSoon
        } else {
            RotationState::Current
        }
    }
}

/// The keys of a directory, checked: valid file names, public keys and times; no file or key listed twice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    /// The keys, in the order they were added.
    pub keys: Vec<KeyEntry>,
}

#[derive(Serialize, Deserialize)]
struct RawManifest {
    format: String,
    keys: Vec<RawEntry>,
}

/// An entry as written. The retirement fields are absent from active keys, so a manifest without retired keys
/// is byte for byte what earlier versions wrote, and their manifests (which have no such fields) load as they are.
#[derive(Serialize, Deserialize)]
struct RawEntry {
    file: String,
    role: Role,
    public_key: String,
    created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retired_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retired_reason: Option<String>,
}

/// An RFC 3339 time of the manifest, in UTC.
fn parse_time(file: &str, field: &str, value: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("entry `{file}`: {field} `{value}` is not an RFC 3339 time: {e}"))
}

impl Manifest {
    /// Parse and check a manifest's text; the error says what is wrong.
    pub fn parse(text: &[u8]) -> Result<Self, String> {
        let raw: RawManifest = serde_json::from_slice(text).map_err(|e| e.to_string())?;
        if raw.format != MANIFEST_FORMAT {
            return Err(format!(
                "format `{}` is not `{MANIFEST_FORMAT}` (written by another version?)",
                raw.format
            ));
        }
        let mut files = HashSet::new();
        let mut public_keys = HashSet::new();
        let mut keys = Vec::with_capacity(raw.keys.len());
        for entry in raw.keys {
            check_file_name(&entry.file).map_err(|e| format!("entry `{}`: {e}", entry.file))?;
            let public_key: PublicKey = entry
                .public_key
                .parse()
                .map_err(|e| format!("entry `{}`: public key {e}", entry.file))?;
            let created_at = parse_time(&entry.file, "created_at", &entry.created_at)?;
            let retired = match (entry.retired_at, entry.retired_reason) {
                (None, None) => None,
                (None, Some(_)) => {
                    return Err(format!("entry `{}`: retired_reason without retired_at", entry.file));
                }
                (Some(at), reason) => Some(Retirement {
                    at: parse_time(&entry.file, "retired_at", &at)?,
                    reason,
                }),
            };
            if !files.insert(entry.file.clone()) {
                return Err(format!("`{}` is listed twice", entry.file));
            }
            if !public_keys.insert(public_key) {
                return Err(format!("public key {public_key} is listed twice"));
            }
            keys.push(KeyEntry {
                file: entry.file,
                role: entry.role,
                public_key,
                created_at,
                retired,
            });
        }
        Ok(Self { keys })
    }

    /// The manifest's text: pretty JSON with a final newline, times in whole seconds (`2026-01-31T09:30:00Z`).
    pub fn to_json(&self) -> String {
        let raw = RawManifest {
            format: MANIFEST_FORMAT.to_owned(),
            keys: self
                .keys
                .iter()
                .map(|k| RawEntry {
                    file: k.file.clone(),
                    role: k.role,
                    public_key: k.public_key.to_string(),
                    created_at: k.created_at.to_rfc3339_opts(SecondsFormat::Secs, true),
                    retired_at: k
                        .retired
                        .as_ref()
                        .map(|r| r.at.to_rfc3339_opts(SecondsFormat::Secs, true)),
                    retired_reason: k.retired.as_ref().and_then(|r| r.reason.clone()),
                })
                .collect(),
        };
        // Strings, an enum and a vector of them always serialize.
        let mut text = serde_json::to_string_pretty(&raw).unwrap_or_default();
        text.push('\n');
        text
    }

    /// The entry for a file name.
    pub fn get(&self, file: &str) -> Option<&KeyEntry> {
        self.keys.iter().find(|k| k.file == file)
    }

    /// The entry for a key name as the operator gives it: the file name, or the file name without `.json`.
    pub fn find(&self, name: &str) -> Option<&KeyEntry> {
        self.get(name).or_else(|| self.get(&format!("{name}.json")))
    }

    /// The entry holding a public key.
    pub fn by_public_key(&self, public_key: &PublicKey) -> Option<&KeyEntry> {
        self.keys.iter().find(|k| &k.public_key == public_key)
    }
}

/// Whether `name` can be a key file's name: 1 to 100 letters, digits, `.`, `_`, `-`, not starting with `.`, not the
/// manifest nor the retired keys' directory. Keeps every key inside the directory (no `/`, no `..`), also for
/// names read from a backup.
pub fn check_file_name(name: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty() || name.len() > 100 || name.starts_with('.') || !name.chars().all(allowed) {
        return Err("a key file name has 1 to 100 letters, digits, `.`, `_` or `-` and does not start with `.`".into());
    }
    if name == MANIFEST_FILE {
        return Err(format!("`{MANIFEST_FILE}` is the manifest"));
    }
    if name == RETIRED_DIR {
        return Err(format!("`{RETIRED_DIR}` is the directory of retired keys"));
    }
    Ok(())
}

/// Check a retirement reason given on the command line: one line (no control characters), 1 to 500 characters
/// once surrounding spaces are removed; returns it trimmed.
pub fn check_reason(reason: &str) -> Result<String, String> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err("the reason is empty".into());
    }
    if reason.chars().any(char::is_control) {
        return Err("the reason is one line without control characters".into());
    }
    let chars = reason.chars().count();
    if chars > MAX_REASON_CHARS {
        return Err(format!("the reason has {chars} characters; at most {MAX_REASON_CHARS}"));
    }
    Ok(reason.to_owned())
}

/// Whole-second UTC time, as the manifest keeps it.
pub fn whole_seconds(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn entry(role: Role, created: &str) -> KeyEntry {
        KeyEntry {
            file: format!("{role}.json"),
            role,
            public_key: PublicKey([7; 32]),
            created_at: at(created),
            retired: None,
        }
    }

    #[test]
    fn the_runbook_schedule() {
        assert_eq!(
            entry(Role::Program, "2026-01-15T10:00:00Z").rotation_due(),
            at("2026-07-15T10:00:00Z")
        );
        assert_eq!(
            entry(Role::Governance, "2026-01-15T10:00:00Z").rotation_due(),
            at("2027-01-15T10:00:00Z")
        );
        assert_eq!(
            entry(Role::Emergency, "2026-01-15T10:00:00Z").rotation_due(),
            at("2026-04-15T10:00:00Z")
        );
        // Calendar months: the end of a month maps to the end of a shorter one.
        assert_eq!(
            entry(Role::Program, "2025-08-31T00:00:00Z").rotation_due(),
            at("2026-02-28T00:00:00Z")
        );
    }

    #[test]
    fn rotation_state_at_the_boundaries() {
        let e = entry(Role::Emergency, "2026-01-15T10:00:00Z"); // due 2026-04-15T10:00:00Z
        assert_eq!(e.rotation_state(at("2026-03-16T09:59:59Z")), RotationState::Current);
        assert_eq!(e.rotation_state(at("2026-03-16T10:00:01Z")), RotationState::DueSoon);
        assert_eq!(e.rotation_state(at("2026-04-15T09:59:59Z")), RotationState::DueSoon);
        assert_eq!(e.rotation_state(at("2026-04-15T10:00:00Z")), RotationState::Overdue);
        assert_eq!(e.age_days(at("2026-04-15T10:00:00Z")), 90);
    }

    #[test]
    fn manifest_round_trips_and_rejects_what_it_must() {
        let m = Manifest {
            keys: vec![entry(Role::Program, "2026-01-15T10:00:00Z")],
        };
        assert_eq!(Manifest::parse(m.to_json().as_bytes()).unwrap(), m);

        let twice = m
            .to_json()
            .replace("\"keys\": [", "\"keys\": [{\"file\": \"program.json\", \"role\": \"program\", \"public_key\": \"11111111111111111111111111111111\", \"created_at\": \"2026-01-15T10:00:00Z\"},");
        assert!(Manifest::parse(twice.as_bytes()).unwrap_err().contains("listed twice"));
        let escape = m.to_json().replace("program.json", "../program.json");
        assert!(Manifest::parse(escape.as_bytes()).is_err());
        let bad_time = m.to_json().replace("2026-01-15T10:00:00Z", "yesterday");
        assert!(Manifest::parse(bad_time.as_bytes()).unwrap_err().contains("RFC 3339"));
        let bad_role = m.to_json().replace("\"program\"", "\"janitor\"");
        assert!(Manifest::parse(bad_role.as_bytes()).is_err());
        let other_format = m.to_json().replace(MANIFEST_FORMAT, "acgs-keys-manifest/v9");
        assert!(Manifest::parse(other_format.as_bytes()).is_err());
    }

    #[test]
    fn file_names_stay_inside_the_directory() {
        for good in ["program-7xKXtg2C.json", "upgrade_authority.json", "a"] {
            assert!(check_file_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            ".hidden",
            "../x",
            "a/b",
            "manifest.json",
            "retired",
            "a b",
            &"x".repeat(101),
        ] {
            assert!(check_file_name(bad).is_err(), "{bad}");
        }
    }

    /// A manifest as versions before `retire` wrote it: no retirement fields. It loads, its keys are active, and
    /// writing it back gives the same bytes.
    #[test]
    fn a_manifest_from_before_retire_loads_unchanged() {
        let old = r#"{
  "format": "acgs-keys-manifest/v1",
  "keys": [
    {
      "file": "upgrade-authority.json",
      "role": "program",
      "public_key": "9t54g44HvcYBfeL8mRy5sVfzcrrBmP4u9nT1zzSYFzCg",
      "created_at": "2026-11-29T13:52:23Z"
    }
  ]
}
"#;
        let m = Manifest::parse(old.as_bytes()).unwrap();
        assert_eq!(m.keys.len(), 1);
        assert_eq!(m.keys[0].retired, None);
        assert!(!m.keys[0].is_retired());
        assert_eq!(m.keys[0].location(), "upgrade-authority.json");
        assert_eq!(m.to_json(), old);
    }

    #[test]
    fn retirement_round_trips_and_is_checked() {
        let mut m = Manifest {
            keys: vec![
                entry(Role::Program, "2026-01-15T10:00:00Z"),
                KeyEntry {
                    public_key: PublicKey([8; 32]),
                    ..entry(Role::Emergency, "2026-01-15T10:00:00Z")
                },
            ],
        };
        m.keys[0].retired = Some(Retirement {
            at: at("2026-06-01T08:00:00Z"),
            reason: Some("rotated to program-2".into()),
        });
        m.keys[1].retired = Some(Retirement {
            at: at("2026-06-02T08:00:00Z"),
            reason: None,
        });
        let text = m.to_json();
        assert!(text.contains("\"retired_at\": \"2026-06-01T08:00:00Z\""), "{text}");
        assert!(text.contains("\"retired_reason\": \"rotated to program-2\""), "{text}");
        assert_eq!(text.matches("retired_reason").count(), 1, "no reason, no field: {text}");
        let back = Manifest::parse(text.as_bytes()).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.keys[0].location(), "retired/program.json");

        let bad_time = text.replace("2026-06-01T08:00:00Z", "last week");
        assert!(Manifest::parse(bad_time.as_bytes()).unwrap_err().contains("retired_at"));
        let reason_only = text.replace("\"retired_at\": \"2026-06-01T08:00:00Z\",", "");
        assert!(
            Manifest::parse(reason_only.as_bytes())
                .unwrap_err()
                .contains("retired_reason without retired_at")
        );
    }

    #[test]
    fn names_and_reasons() {
        let m = Manifest {
            keys: vec![entry(Role::Program, "2026-01-15T10:00:00Z")],
        };
        assert!(m.find("program").is_some());
        assert!(m.find("program.json").is_some());
        assert!(m.find("program.json.json").is_none());
        assert!(m.find("governance").is_none());

        assert_eq!(check_reason("  rotated  ").unwrap(), "rotated");
        assert!(check_reason(" ").is_err());
        assert!(check_reason("two\nlines").is_err());
        assert!(check_reason(&"é".repeat(MAX_REASON_CHARS)).is_ok());
        assert!(check_reason(&"é".repeat(MAX_REASON_CHARS + 1)).is_err());
    }
}
