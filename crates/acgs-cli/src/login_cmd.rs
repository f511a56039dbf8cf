//! `acgs login URL` and `acgs logout`: start a session with a server as a user (its tokens kept in the private
//! session file, see [`crate::session`]), and end it on the server and locally. The password comes from standard
//! input (`--password-stdin`), the environment (`ACGS_PASSWORD`), or a prompt on the terminal without echo.

use std::fs::{File, OpenOptions};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use reqwest::Method;
use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
use serde_json::{Value, json};

use crate::session::{
    ApiClient, Session, SessionEnded, Tokens, check_private, delete_session, endpoint, error_of, http_client,
    parse_server_url, read_session, session_path, write_session,
};

#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// The server, e.g. http://127.0.0.1:8080.
    url: String,
    /// Username (asked on the terminal if absent).
    #[arg(long)]
    user: Option<String>,
    /// Read the password from standard input (one line) instead of ACGS_PASSWORD or a prompt.
    #[arg(long)]
    password_stdin: bool,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?)
}

/// The controlling terminal, for prompts (also when standard input is redirected); without one, `hint` says what
/// to do instead.
fn terminal(what: &str, hint: &str) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|e| anyhow::anyhow!("no terminal to ask for the {what} on ({e}): {hint}"))
}

/// Ask for one line on the terminal, echoed.
fn prompt_line(prompt: &str) -> Result<String> {
    let mut tty = terminal("username", "give it with --user")?;
    write!(tty, "{prompt}")?;
    tty.flush()?;
    let mut line = String::new();
    BufReader::new(&tty).read_line(&mut line)?;
    Ok(line.trim().to_owned())
}

/// Puts the terminal's settings back when dropped (also when reading fails).
struct Restore<'a> {
    tty: &'a File,
    original: rustix::termios::Termios,
}

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        let _ = tcsetattr(self.tty, OptionalActions::Now, &self.original);
    }
}

/// Ask for a secret on the terminal with echo off.
fn prompt_hidden(prompt: &str) -> Result<String> {
    let mut tty = terminal("password", "pipe it with --password-stdin, or set ACGS_PASSWORD")?;
    let original = tcgetattr(&tty).context("cannot read the terminal's settings")?;
    let mut quiet = original.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    tcsetattr(&tty, OptionalActions::Flush, &quiet).context("cannot turn off the terminal's echo")?;
    let restore = Restore { tty: &tty, original };
    write!(&tty, "{prompt}")?;
    (&tty).flush()?;
    let mut line = String::new();
    let read = BufReader::new(&tty).read_line(&mut line);
    drop(restore);
    writeln!(tty)?;
    read.context("cannot read the password")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

/// The password: standard input with `--password-stdin`, else `ACGS_PASSWORD`, else a prompt.
fn password(args: &LoginArgs, user: &str) -> Result<String> {
    let password = if args.password_stdin {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the password from standard input")?;
        text.lines().next().unwrap_or("").to_owned()
    } else if let Some(p) = std::env::var_os("ACGS_PASSWORD").filter(|p| !p.is_empty()) {
        p.into_string()
            .map_err(|_| anyhow::anyhow!("ACGS_PASSWORD is not valid UTF-8"))?
    } else {
        prompt_hidden(&format!("password for {user}: "))?
    };
    if password.is_empty() {
        bail!("no password given");
    }
    Ok(password)
}

/// Whether the URL's host is this machine.
fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host_str() {
        Some(host) if host.eq_ignore_ascii_case("localhost") => true,
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

/// `acgs login URL`.
pub fn login(args: LoginArgs) -> Result<ExitCode> {
    let url = parse_server_url(&args.url)?;
    let shown = url.as_str().trim_end_matches('/').to_owned();
    let path = session_path()?;
    // A session file others can read is refused before anything is asked or sent.
    check_private(&path)?;
    if !is_loopback(&url) {
        eprintln!("warning: {shown} is plain HTTP: your password and tokens cross the network unencrypted");
    }
    let user = match &args.user {
        Some(user) => user.trim().to_owned(),
        None if args.password_stdin => bail!("give the username with --user when the password comes on standard input"),
        None => prompt_line("username: ")?,
    };
    if user.is_empty() {
        bail!("no username given");
    }
    let password = zeroize::Zeroizing::new(password(&args, &user)?);
    // A damaged file is simply replaced.
    let previous = read_session(&path).ok().flatten();
    runtime()?.block_on(async {
        let http = http_client()?;
        let response = http
            .post(endpoint(&url, &["v1", "auth", "login"], &[])?)
            .json(&json!({"username": user, "password": password.as_str()}))
            .send()
            .await
            .with_context(|| format!("cannot reach the server at {shown}"))?;
        if !response.status().is_success() {
            return Err(error_of(response)
                .await
                .context(format!("cannot log in to {shown} as {user}")));
        }
        let tokens: Tokens = response
            .json()
            .await
            .context("the server's answer to a login is not a token pair")?;
        // The session this one replaces ends on its server too (best effort: it may have expired already).
        if let Some(old) = &previous {
            end_replaced(&http, old).await;
        }
        let session = Session::new(&url, &user, tokens);
        write_session(&path, &session)?;
        let mut client = ApiClient::new(path.clone(), session)?;
        let roles = match client.get(&["v1", "auth", "me"], &[]).await {
            Ok(me) => roles_of(&me),
            Err(_) => String::new(),
        };
        println!(
            "logged in to {} as {user}{roles}; session saved in {} (refresh valid until {})",
            client.session().url,
            path.display(),
            client.session().refresh_expires_at
        );
        Ok(ExitCode::SUCCESS)
    })
}

fn roles_of(me: &Value) -> String {
    let roles: Vec<&str> = me["roles"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if roles.is_empty() {
        String::new()
    } else {
        format!(" (roles: {})", roles.join(", "))
    }
}

/// Log out the session a new login replaces, without refreshing it; failures are ignored.
async fn end_replaced(http: &reqwest::Client, old: &Session) {
    let Ok(base) = parse_server_url(&old.url) else { return };
    let Ok(url) = endpoint(&base, &["v1", "auth", "logout"], &[]) else {
        return;
    };
    let _ = http.post(url).bearer_auth(&old.access_token).send().await;
}

/// `acgs logout`: end the session on the server, then delete the session file. When the server cannot be
/// reached the file is kept (its tokens are still valid there), so the logout can be retried.
pub fn logout() -> Result<ExitCode> {
    let path = session_path()?;
    let Some(session) = read_session(&path)? else {
        println!("not logged in (no session in {})", path.display());
        return Ok(ExitCode::SUCCESS);
    };
    let (url, user) = (session.url.clone(), session.username.clone());
    let mut client = ApiClient::new(path.clone(), session)?;
    let ended = runtime()?.block_on(client.send(Method::POST, &["v1", "auth", "logout"], &[], None));
    match ended {
        Ok(_) => {
            delete_session(&path)?;
            println!("logged out of {url} ({user}); deleted {}", path.display());
        }
        Err(e) if e.downcast_ref::<SessionEnded>().is_some() => {
            // The server no longer knows the session (ended, expired, revoked): nothing is left to end there.
            delete_session(&path)?;
            println!(
                "the session of {user} at {url} had already ended on the server; deleted {}",
                path.display()
            );
        }
        Err(e) => {
            bail!(
                "{e:#}. The session may still be open on the server, so {} is kept: retry `acgs logout`, or delete \
                 the file to forget the session here only",
                path.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
