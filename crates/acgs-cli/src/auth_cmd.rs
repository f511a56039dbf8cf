//! `acgs users …`, `acgs auth …` and `acgs security audit`: administration of users, API keys and signing keys
//! directly on the server's database (for administrators and operators with access to the data directory or
//! the database), and the security audit.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use acgs_auth::{AuthService, AuthSettings, MasterKey, UserChanges, parse_roles};
use anyhow::{Context, Result, bail};

use crate::config::{AUDIT_KEY_FILE, AUTH_MASTER_KEY_FILE};
use crate::decisions_cmd::{Source, time};

/// Where the credentials are: the database, and the master key that encrypts the signing keys.
#[derive(Debug, clap::Args)]
pub struct CredentialSource {
    #[command(flatten)]
    source: Source,
    /// The server's authentication master key [default: DATA_DIR/auth-master.key].
    #[arg(long, env = "ACGS_AUTH_MASTER_KEY")]
    auth_master_key: Option<PathBuf>,
    /// The servers' access-token lifetime in seconds (as configured for them): a rotated signing key keeps
    /// verifying for this long, so no token it signed is cut short.
    #[arg(long, env = "ACGS_ACCESS_TOKEN_TTL_SECS", default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..))]
    access_token_ttl_secs: u64,
}

impl CredentialSource {
    fn master_key_path(&self) -> PathBuf {
        self.auth_master_key
            .clone()
            .unwrap_or_else(|| self.source.data_dir().join(AUTH_MASTER_KEY_FILE))
    }

    async fn open(&self) -> Result<AuthService> {
        let store = crate::decisions_cmd::open(&self.source).await?;
        let path = self.master_key_path();
        if !path.exists() {
            bail!(
                "no authentication master key at `{}` (the server creates it on first start; use --auth-master-key)",
                path.display()
            );
        }
        let master = MasterKey::load(&path)?;
        let settings = AuthSettings {
            access_token_ttl: std::time::Duration::from_secs(self.access_token_ttl_secs),
            ..AuthSettings::default()
        };
        Ok(AuthService::new(store, master, settings, acgs_auth::system_clock()).await?)
    }
}

/// Who is acting, as recorded in the audit log: `cli:<login name>`.
fn actor() -> String {
    format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "unknown".into()))
}

/// A password from standard input (one line), or `None` to generate one.
fn password(from_stdin: bool) -> Result<Option<String>> {
    if !from_stdin {
        return Ok(None);
    }
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("reading the password from standard input")?;
    let password = text.trim_end_matches(['\n', '\r']).to_owned();
    if password.is_empty() {
        bail!("no password on standard input");
    }
    Ok(Some(password))
}

#[derive(Debug, clap::Subcommand)]
pub enum UsersCommand {
    /// List users with their roles and lock status.
    List {
        #[command(flatten)]
        credentials: CredentialSource,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Create a user; its password is generated and printed once unless given with --password-stdin.
    Create {
        #[command(flatten)]
        credentials: CredentialSource,
        /// Username.
        username: String,
        /// Roles, comma-separated (admin, council, proposer, reviewer, auditor, operator, agent).
        #[arg(long, value_delimiter = ',', required = true)]
        roles: Vec<String>,
        /// Read the password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Replace a user's roles.
    SetRoles {
        #[command(flatten)]
        credentials: CredentialSource,
        /// Username.
        username: String,
        /// Roles, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        roles: Vec<String>,
    },
    /// Bind a user to the registry entity the person is (e.g. 'User::"maria"'), or unbind it with --none: the
    /// identity approvers and council members are checked against (docs/entities.md).
    SetEntity {
        #[command(flatten)]
        credentials: CredentialSource,
        /// Username.
        username: String,
        /// The entity, e.g. 'User::"maria"'.
        #[arg(value_parser = crate::entities_cmd::parse_entity, required_unless_present = "none")]
        entity: Option<acgs_store::EntityName>,
        /// Unbind the user.
        #[arg(long, conflicts_with = "entity")]
        none: bool,
    },
    /// Reset a user's password (generated and printed once unless given with --password-stdin); ends its
    /// sessions.
    SetPassword {
        #[command(flatten)]
        credentials: CredentialSource,
        /// Username.
        username: String,
        /// Read the password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable a user (it cannot log in; its sessions end).
    Disable {
        #[command(flatten)]
        credentials: CredentialSource,
        /// Username.
        username: String,
    },
    /// Enable a disabled user.
    Enable {
        #[command(flatten)]
        credentials: CredentialSource,
        /// Username.
        username: String,
    },
    /// Lift a lockout after failed logins.
    Unlock {
        #[command(flatten)]
        credentials: CredentialSource,
        /// Username.
        username: String,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum AuthCommand {
    /// Machine clients' API keys.
    #[command(subcommand)]
    ApiKeys(ApiKeysCommand),
    /// Make a new access-token signing key; the previous one keeps verifying for the longest access-token
    /// lifetime, so no session breaks.
    RotateSigningKey {
        #[command(flatten)]
        credentials: CredentialSource,
    },
    /// Incident response: revoke every session and refresh token and replace the signing key at once (every
    /// access token stops working); with --revoke-api-keys also every API key.
    RotateAll {
        #[command(flatten)]
        credentials: CredentialSource,
        /// Also revoke every API key.
        #[arg(long)]
        revoke_api_keys: bool,
    },
    /// When the master key file is lost or compromised: create a new one (the old file must be moved away
    /// first), revoke every session, and put a new signing key in force, retiring every earlier one at once.
    ReplaceMasterKey {
        #[command(flatten)]
        credentials: CredentialSource,
        /// Also revoke every API key.
        #[arg(long)]
        revoke_api_keys: bool,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum ApiKeysCommand {
    /// List API keys (never their secrets).
    List {
        #[command(flatten)]
        credentials: CredentialSource,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Create an API key and print it once (only its SHA-256 is kept).
    Create {
        #[command(flatten)]
        credentials: CredentialSource,
        /// What it is for.
        #[arg(long)]
        name: String,
        /// Roles, comma-separated (agents: `agent`).
        #[arg(long, value_delimiter = ',', required = true)]
        roles: Vec<String>,
        /// Days until it expires [default: never].
        #[arg(long)]
        expires_in_days: Option<u32>,
        /// The principal the key decides for, e.g. `Agent::"ap-agent"`: it may then ask decisions for that
        /// principal only (docs/entities.md). An agent key needs one, unless it is a gateway's (`gateway` role).
        #[arg(long, value_parser = crate::entities_cmd::parse_entity)]
        entity: Option<acgs_store::EntityName>,
    },
    /// Revoke an API key by its id (the key's visible prefix, e.g. acgs_3fa1c2b9d0e4).
    Revoke {
        #[command(flatten)]
        credentials: CredentialSource,
        /// The key's id.
        id: String,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum SecurityCommand {
    /// Report what needs attention: locked users, failed-login bursts, API keys never used or past expiry,
    /// a signing key due for rotation, administrators still on the bootstrap password, and key-file and
    /// data-directory permissions. Exits non-zero when anything is found.
    Audit {
        #[command(flatten)]
        credentials: CredentialSource,
        /// The audit log key file [default: DATA_DIR/audit-log.key].
        #[arg(long, env = "ACGS_AUDIT_KEY")]
        audit_key: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?)
}

pub fn run_users(cmd: UsersCommand) -> Result<ExitCode> {
    runtime()?.block_on(async move {
        match cmd {
            UsersCommand::List { credentials, json } => {
                let users = credentials.open().await?.users().await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&users)?);
                } else {
                    println!("{:<24} {:<28} {:<9} PASSWORD CHANGED", "USERNAME", "ROLES", "STATE");
                    for u in users {
                        let state = if u.disabled {
                            "disabled".to_owned()
                        } else if let Some(until) = u.locked_until_us {
                            format!("locked until {}", time(until))
                        } else {
                            "active".to_owned()
                        };
                        let bootstrap = if u.bootstrap_password {
                            " (bootstrap password)"
                        } else {
                            ""
                        };
                        println!(
                            "{:<24} {:<28} {:<9} {}{bootstrap}",
                            u.username,
                            u.roles.join(","),
                            state,
                            time(u.password_changed_at_us)
                        );
                    }
                }
            }
            UsersCommand::Create {
                credentials,
                username,
                roles,
                password_stdin,
            } => {
                let roles = parse_roles(&roles)?;
                let auth = credentials.open().await?;
                let (user, generated) = auth
                    .create_user(&actor(), &username, password(password_stdin)?, roles)
                    .await?;
                println!("created user {} with roles {}", user.username, user.roles.join(","));
                if let Some(p) = generated {
                    println!("password (shown once): {p}");
                }
            }
            UsersCommand::SetRoles {
                credentials,
                username,
                roles,
            } => {
                let roles = parse_roles(&roles)?;
                let user = credentials
                    .open()
                    .await?
                    .update_user(
                        &actor(),
                        &username,
                        UserChanges {
                            roles: Some(roles),
                            ..Default::default()
                        },
                    )
                    .await?;
                println!("{}: roles {}", user.username, user.roles.join(","));
            }
            UsersCommand::SetEntity {
                credentials,
                username,
                entity,
                none: _,
            } => {
                let user = credentials
                    .open()
                    .await?
                    .update_user(
                        &actor(),
                        &username,
                        UserChanges {
                            entity: Some(entity),
                            ..Default::default()
                        },
                    )
                    .await?;
                match &user.entity {
                    Some(e) => println!("{}: is {}::{:?}", user.username, e.entity_type, e.id),
                    None => println!("{}: bound to no entity", user.username),
                }
            }
            UsersCommand::SetPassword {
                credentials,
                username,
                password_stdin,
            } => {
                let given = password(password_stdin)?;
                let new = match &given {
                    Some(p) => p.clone(),
                    None => acgs_auth::credentials::generate_password()?,
                };
                credentials
                    .open()
                    .await?
                    .update_user(
                        &actor(),
                        &username,
                        UserChanges {
                            password: Some(new.clone()),
                            ..Default::default()
                        },
                    )
                    .await?;
                println!("{username}: password reset; its sessions ended");
                if given.is_none() {
                    println!("password (shown once): {new}");
                }
            }
            UsersCommand::Disable { credentials, username } => set_disabled(&credentials, &username, true).await?,
            UsersCommand::Enable { credentials, username } => set_disabled(&credentials, &username, false).await?,
            UsersCommand::Unlock { credentials, username } => {
                let had = credentials.open().await?.unlock(&actor(), &username).await?;
                println!(
                    "{username}: {}",
                    if had {
                        "unlocked"
                    } else {
                        "was not locked; failed logins cleared"
                    }
                );
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

async fn set_disabled(credentials: &CredentialSource, username: &str, disabled: bool) -> Result<()> {
    credentials
        .open()
        .await?
        .update_user(
            &actor(),
            username,
            UserChanges {
                disabled: Some(disabled),
                ..Default::default()
            },
        )
        .await?;
    println!(
        "{username}: {}",
        if disabled {
            "disabled; its sessions ended"
        } else {
            "enabled"
        }
    );
    Ok(())
}

pub fn run_auth(cmd: AuthCommand) -> Result<ExitCode> {
    runtime()?.block_on(async move {
        match cmd {
            AuthCommand::ApiKeys(ApiKeysCommand::List { credentials, json }) => {
                let keys = credentials.open().await?.api_keys().await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&keys)?);
                } else {
                    println!("{:<18} {:<28} {:<16} {:<24} LAST USED", "ID", "NAME", "ROLES", "STATE");
                    for k in keys {
                        let state = match (k.revoked_at_us, k.expires_at_us) {
                            (Some(at), _) => format!("revoked {}", time(at)),
                            (None, Some(at)) => format!("expires {}", time(at)),
                            (None, None) => "active".to_owned(),
                        };
                        println!(
                            "{:<18} {:<28} {:<16} {:<24} {}",
                            k.id,
                            k.name,
                            k.roles.join(","),
                            state,
                            k.last_used_at_us.map_or_else(|| "never".to_owned(), time)
                        );
                    }
                }
            }
            AuthCommand::ApiKeys(ApiKeysCommand::Create {
                credentials,
                name,
                roles,
                expires_in_days,
                entity,
            }) => {
                let roles = parse_roles(&roles)?;
                let auth = credentials.open().await?;
                let expires = expires_in_days.map(|d| auth.now_us() + i64::from(d) * 24 * 3600 * 1_000_000);
                let (view, key) = auth.create_api_key_for(&actor(), &name, roles, expires, entity).await?;
                println!(
                    "created API key {} ({}) with roles {}{}",
                    view.id,
                    view.name,
                    view.roles.join(","),
                    view.entity
                        .as_ref()
                        .map(|e| format!(", deciding for {}::{:?} only", e.entity_type, e.id))
                        .unwrap_or_default()
                );
                println!("key (shown once; send it as `Authorization: Bearer <key>`):");
                println!("{key}");
            }
            AuthCommand::ApiKeys(ApiKeysCommand::Revoke { credentials, id }) => {
                credentials.open().await?.revoke_api_key(&actor(), &id).await?;
                println!("revoked {id} (running servers refuse it within 10 s)");
            }
            AuthCommand::RotateSigningKey { credentials } => {
                let auth = credentials.open().await?;
                let kid = auth.rotate_signing_key(&actor()).await?;
                println!(
                    "new signing key {kid}; the previous key verifies for {} s more",
                    auth.settings().access_token_ttl.as_secs()
                );
            }
            AuthCommand::RotateAll {
                credentials,
                revoke_api_keys,
            } => {
                let report = credentials.open().await?.rotate_all(&actor(), revoke_api_keys).await?;
                println!(
                    "revoked {} sessions and {} API keys; new signing key {} (every earlier key retired)",
                    report.sessions_revoked, report.api_keys_revoked, report.signing_key
                );
            }
            AuthCommand::ReplaceMasterKey {
                credentials,
                revoke_api_keys,
            } => {
                let path = credentials.master_key_path();
                if path.exists() {
                    bail!(
                        "`{}` exists: move it away first (keep it if it may still be needed); this command creates a new one",
                        path.display()
                    );
                }
                let store = crate::decisions_cmd::open(&credentials.source).await?;
                let (master, _) = MasterKey::load_or_create(&path)?;
                let (_, report) = AuthService::replace_master_key(
                    store,
                    master,
                    AuthSettings::default(),
                    acgs_auth::system_clock(),
                    &actor(),
                    revoke_api_keys,
                )
                .await?;
                println!(
                    "created the master key `{}`; revoked {} sessions and {} API keys; new signing key {} (every earlier key retired)",
                    path.display(),
                    report.sessions_revoked,
                    report.api_keys_revoked,
                    report.signing_key
                );
                println!("give every replica the new file, then restart them");
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// A file or directory that others can reach when they should not.
fn permission_problem(path: &Path, private: bool) -> Option<String> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    let mask = if private { 0o077 } else { 0o007 };
    (mode & mask != 0).then(|| {
        format!(
            "`{}` has mode {mode:o}; run `chmod {} {}`",
            path.display(),
            if private { "600" } else { "o-rwx" },
            path.display()
        )
    })
}

pub fn run_security(cmd: SecurityCommand) -> Result<ExitCode> {
    let SecurityCommand::Audit {
        credentials,
        audit_key,
        json,
    } = cmd;
    runtime()?.block_on(async move {
        let auth = credentials.open().await?;
        let audit = auth.security_audit().await?;
        let data_dir = credentials.source.data_dir();
        let mut files = Vec::new();
        if credentials.source.database_url.is_none() {
            files.extend(permission_problem(&data_dir, false));
            files.extend(permission_problem(&data_dir.join("acgs.db"), false));
        }
        files.extend(permission_problem(
            &audit_key.unwrap_or_else(|| data_dir.join(AUDIT_KEY_FILE)),
            true,
        ));
        files.extend(permission_problem(&credentials.master_key_path(), true));
        let clean = audit.is_clean() && files.is_empty();
        if json {
            let mut value = serde_json::to_value(&audit)?;
            value["file_permissions"] = serde_json::json!(files);
            value["clean"] = serde_json::json!(clean);
            println!("{}", serde_json::to_string_pretty(&value)?);
        } else {
            let section = |title: &str, lines: Vec<String>| {
                if !lines.is_empty() {
                    println!("{title}:");
                    for line in lines {
                        println!("  {line}");
                    }
                }
            };
            section(
                "locked users",
                audit
                    .locked
                    .iter()
                    .map(|(u, until)| format!("{u} until {}", time(*until)))
                    .collect(),
            );
            section(
                "failed-login bursts by user (24 h)",
                audit
                    .failed_login_bursts_by_user
                    .iter()
                    .map(|(u, n)| format!("{u}: {n} failures"))
                    .collect(),
            );
            section(
                "failed-login bursts by source address (24 h)",
                audit
                    .failed_login_bursts_by_source
                    .iter()
                    .map(|(s, n)| format!("{s}: {n} failures"))
                    .collect(),
            );
            section("API keys never used", audit.api_keys_never_used.clone());
            section(
                "API keys past their expiry (revoke them)",
                audit.api_keys_expired.clone(),
            );
            section(
                "signing key due for rotation (`acgs auth rotate-signing-key`)",
                audit
                    .signing_key_due
                    .iter()
                    .map(|(kid, days)| format!("{kid}: {days} days old"))
                    .collect(),
            );
            section(
                "administrators still using the bootstrap password",
                audit.admins_with_bootstrap_password.clone(),
            );
            section("file permissions", files);
            println!(
                "{}",
                if clean {
                    "security audit: nothing found"
                } else {
                    "security audit: findings above"
                }
            );
        }
        Ok(if clean { ExitCode::SUCCESS } else { ExitCode::FAILURE })
    })
}
