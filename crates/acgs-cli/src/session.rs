//! The signed-in user's session with a server, and the client that acts with it. `acgs login` stores the session
//! (`{url, username, access_token, refresh_token, …}`) as JSON in the session file: `$ACGS_SESSION_FILE`, else
//! `$XDG_CONFIG_HOME/acgs/session.json`, else `~/.config/acgs/session.json`. The file is private (mode 0600, its
//! directory 0700 when created here), always replaced atomically, and refused when others may read it, as ssh
//! refuses a private key. [`ApiClient`] sends requests with the access token; on a 401 it exchanges the refresh
//! token once (each refresh token works once: the new pair is saved before the request is retried) and an error
//! answer becomes `<detail> (HTTP <status>)`.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use reqwest::{Method, Response, StatusCode, Url};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A signed-in user's session, as stored in the session file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    /// The server, e.g. `http://127.0.0.1:8080` (no trailing slash).
    pub url: String,
    /// Who is signed in.
    pub username: String,
    /// The access token (a JWT), sent as `Authorization: Bearer …`.
    pub access_token: String,
    /// The refresh token: exchanged once for the next pair.
    pub refresh_token: String,
    /// When the access token expires (RFC 3339).
    #[serde(default)]
    pub access_expires_at: String,
    /// When the refresh token expires (RFC 3339): log in again after that.
    #[serde(default)]
    pub refresh_expires_at: String,
    /// When the user logged in (RFC 3339).
    #[serde(default)]
    pub logged_in_at: String,
}

/// The server's answer to a login or a refresh.
#[derive(Debug, Deserialize)]
pub struct Tokens {
    /// The access token.
    pub access_token: String,
    /// Seconds until it expires.
    pub expires_in: u64,
    /// The refresh token.
    pub refresh_token: String,
    /// Seconds until it expires.
    pub refresh_expires_in: u64,
}

/// The server refused the refresh token: the session has ended (logged out, expired or revoked).
#[derive(Debug)]
pub struct SessionEnded {
    /// The session's user.
    pub username: String,
    /// The session's server.
    pub url: String,
    /// The server's answer, as `<detail> (HTTP 401)`.
    pub answer: String,
}

impl std::fmt::Display for SessionEnded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the session of {user} at {url} has ended ({answer}): log in again with `acgs login {url} --user {user}`",
            user = self.username,
            url = self.url,
            answer = self.answer
        )
    }
}

impl std::error::Error for SessionEnded {}

/// `now + secs` as RFC 3339.
fn rfc3339_in(secs: u64) -> String {
    let later = chrono::Utc::now() + chrono::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 1000));
    later.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Session {
    /// A new session of `username` at `url` from a login's tokens.
    pub fn new(url: &Url, username: &str, tokens: Tokens) -> Self {
        let mut session = Self {
            url: url.as_str().trim_end_matches('/').to_owned(),
            username: username.to_owned(),
            access_token: String::new(),
            refresh_token: String::new(),
            access_expires_at: String::new(),
            refresh_expires_at: String::new(),
            logged_in_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        };
        session.take(tokens);
        session
    }

    /// Adopt a new pair of tokens.
    fn take(&mut self, tokens: Tokens) {
        self.access_token = tokens.access_token;
        self.refresh_token = tokens.refresh_token;
        self.access_expires_at = rfc3339_in(tokens.expires_in);
        self.refresh_expires_at = rfc3339_in(tokens.refresh_expires_in);
    }
}

/// Where the session is kept: `$ACGS_SESSION_FILE`, else `$XDG_CONFIG_HOME/acgs/session.json`, else
/// `~/.config/acgs/session.json`.
pub fn session_path() -> Result<PathBuf> {
    let set = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(path) = set("ACGS_SESSION_FILE") {
        return Ok(path);
    }
    // The XDG base directory specification ignores a relative XDG_CONFIG_HOME.
    if let Some(config) = set("XDG_CONFIG_HOME").filter(|p| p.is_absolute()) {
        return Ok(config.join("acgs").join("session.json"));
    }
    let home = set("HOME").context("cannot tell where to keep the session: set HOME or ACGS_SESSION_FILE")?;
    Ok(home.join(".config").join("acgs").join("session.json"))
}

/// Refuse a session file that is not private: readable or writable by group or others, or owned by another user.
pub fn check_private(path: &Path) -> Result<()> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot read the session file `{}`", path.display())),
    };
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        bail!(
            "the session file `{path}` is accessible by others (mode {mode:04o}) and holds your tokens: refusing to \
             use it. Make it private with `chmod 600 {path}` (and run `acgs logout`, then `acgs login` again if \
             anyone else may have read it)",
            path = path.display()
        );
    }
    let uid = rustix::process::getuid().as_raw();
    if meta.uid() != uid {
        bail!(
            "the session file `{}` belongs to another user (uid {}, you are {uid}): refusing to use it; delete it or \
             set ACGS_SESSION_FILE to a file of your own",
            path.display(),
            meta.uid()
        );
    }
    Ok(())
}

/// The session in `path`, if there is one (after checking that the file is private).
pub fn read_session(path: &Path) -> Result<Option<Session>> {
    check_private(path)?;
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read the session file `{}`", path.display())),
    };
    let session = serde_json::from_str(&text).with_context(|| {
        format!(
            "the session file `{}` is damaged: delete it and run `acgs login URL`",
            path.display()
        )
    })?;
    Ok(Some(session))
}

/// The directory of `path` (`.` for a bare file name).
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Write `session` to `path` atomically: a new file of mode 0600 in the same directory (created with mode 0700
/// if missing), synced, then renamed over `path`. The tokens are never in a file others can read, not even
/// briefly, and a reader never sees half a session.
pub fn write_session(path: &Path, session: &Session) -> Result<()> {
    let dir = parent_of(path);
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create the directory `{}`", dir.display()))?;
    let name = path
        .file_name()
        .with_context(|| format!("`{}` is not a file name", path.display()))?
        .to_string_lossy();
    let temp = dir.join(format!(
        ".{name}.{}.{:016x}.tmp",
        std::process::id(),
        rand::random::<u64>()
    ));
    let mut bytes = serde_json::to_vec_pretty(session)?;
    bytes.push(b'\n');
    let written = (|| -> std::io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(e).with_context(|| format!("cannot write the session file `{}`", path.display()));
    }
    // Make the rename itself durable (best effort: some file systems refuse to sync a directory).
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Delete the session file (no error when it is already gone).
pub fn delete_session(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot delete the session file `{}`", path.display())),
    }
}

/// A server URL as the user gave it: `http://host:port` (a path prefix is kept).
pub fn parse_server_url(text: &str) -> Result<Url> {
    let url = Url::parse(text.trim()).with_context(|| format!("`{text}` is not a URL (e.g. http://127.0.0.1:8080)"))?;
    match url.scheme() {
        "http" => {}
        "https" => bail!(
            "`{text}`: this build of acgs speaks plain HTTP only (no TLS): reach the server over http:// on a \
             trusted network, or through a local TLS tunnel"
        ),
        other => bail!("`{text}`: the scheme must be http, not `{other}`"),
    }
    if url.query().is_some() || url.fragment().is_some() {
        bail!("`{text}`: give the server's base URL, without a query or fragment");
    }
    Ok(url)
}

/// The HTTP client for talking to a server.
pub fn http_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .user_agent(concat!("acgs-cli/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .build()
        .context("cannot set up the HTTP client")
}

/// `base` with `segments` appended to its path (each percent-encoded) and `query` pairs.
pub fn endpoint(base: &Url, segments: &[&str], query: &[(&str, String)]) -> Result<Url> {
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|()| anyhow!("`{base}` cannot be a base URL"))?
        .pop_if_empty()
        .extend(segments);
    if !query.is_empty() {
        url.query_pairs_mut()
            .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
    }
    Ok(url)
}

/// An error answer as `<detail> (HTTP <status>)`: the problem document's `detail` (or `title`), else the body.
pub async fn error_of(response: Response) -> anyhow::Error {
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    let detail = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| {
            ["detail", "title"].iter().find_map(|k| {
                v.get(k)
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
            })
        })
        .unwrap_or_else(|| match body.trim() {
            "" => status.canonical_reason().unwrap_or("no detail").to_owned(),
            text => text.chars().take(500).collect(),
        });
    anyhow!("{detail} (HTTP {})", status.as_u16())
}

/// Acts as the signed-in user: sends requests with the session's access token and refreshes it when needed.
pub struct ApiClient {
    http: reqwest::Client,
    base: Url,
    path: PathBuf,
    session: Session,
}

impl ApiClient {
    /// The client of the session in the session file; without one, a message saying how to log in.
    pub fn from_session_file() -> Result<Self> {
        let path = session_path()?;
        let Some(session) = read_session(&path)? else {
            bail!(
                "not logged in (no session in `{}`): run `acgs login URL` first, e.g. `acgs login \
                 http://127.0.0.1:8080 --user NAME`",
                path.display()
            );
        };
        Self::new(path, session)
    }

    /// The client of `session`, kept in `path`.
    pub fn new(path: PathBuf, session: Session) -> Result<Self> {
        let base = parse_server_url(&session.url)
            .with_context(|| format!("the session file `{}` names a bad server URL", path.display()))?;
        Ok(Self {
            http: http_client()?,
            base,
            path,
            session,
        })
    }

    /// The session in use.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// `GET` the JSON at `segments` with `query`.
    pub async fn get(&mut self, segments: &[&str], query: &[(&str, String)]) -> Result<Value> {
        let response = self.send(Method::GET, segments, query, None).await?;
        json_of(response).await
    }

    /// `POST` `body` to `segments`; the JSON answer (`null` for an empty one).
    pub async fn post(&mut self, segments: &[&str], body: &Value) -> Result<Value> {
        let response = self.send(Method::POST, segments, &[], Some(body)).await?;
        json_of(response).await
    }

    /// Send a request with the access token; after a 401, refresh the tokens once and send it again. An error
    /// answer becomes an error `<detail> (HTTP <status>)`.
    pub async fn send(
        &mut self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Response> {
        let url = endpoint(&self.base, segments, query)?;
        let mut refreshed = false;
        loop {
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .bearer_auth(&self.session.access_token);
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request
                .send()
                .await
                .with_context(|| format!("cannot reach the server at {}", self.session.url))?;
            if response.status() == StatusCode::UNAUTHORIZED && !refreshed {
                self.refresh().await?;
                refreshed = true;
                continue;
            }
            if !response.status().is_success() {
                return Err(error_of(response).await);
            }
            return Ok(response);
        }
    }

    /// Exchange the refresh token for a new pair and save it. Another `acgs` process of the same session may be
    /// doing the same: the session directory is locked while refreshing, and a pair that process saved meanwhile
    /// is adopted instead (presenting a used refresh token again would end the session).
    async fn refresh(&mut self) -> Result<()> {
        let dir = parent_of(&self.path);
        let lock = File::open(dir).with_context(|| format!("cannot open `{}`", dir.display()))?;
        lock.lock()
            .with_context(|| format!("cannot lock `{}` to refresh the session", dir.display()))?;
        if let Some(on_disk) = read_session(&self.path)?
            && on_disk.url == self.session.url
            && on_disk.username == self.session.username
            && on_disk.refresh_token != self.session.refresh_token
        {
            self.session = on_disk;
            return Ok(());
        }
        let url = endpoint(&self.base, &["v1", "auth", "refresh"], &[])?;
        let response = self
            .http
            .post(url)
            .json(&serde_json::json!({"refresh_token": self.session.refresh_token}))
            .send()
            .await
            .with_context(|| format!("cannot reach the server at {}", self.session.url))?;
        if response.status() == StatusCode::UNAUTHORIZED {
            return Err(SessionEnded {
                username: self.session.username.clone(),
                url: self.session.url.clone(),
                answer: error_of(response).await.to_string(),
            }
            .into());
        }
        if !response.status().is_success() {
            return Err(error_of(response).await.context("cannot refresh the session"));
        }
        let tokens: Tokens = response
            .json()
            .await
            .context("the server's answer to a refresh is not a token pair")?;
        self.session.take(tokens);
        write_session(&self.path, &self.session)?;
        drop(lock);
        Ok(())
    }
}

/// Send a request to `base` with an API key as the bearer (agents and monitors are API keys, not users); an error
/// answer becomes an error `<detail> (HTTP <status>)`, as [`ApiClient::send`]'s.
pub async fn send_with_key(
    http: &reqwest::Client,
    base: &Url,
    key: &str,
    method: Method,
    segments: &[&str],
    query: &[(&str, String)],
    body: Option<&Value>,
) -> Result<Response> {
    let mut request = http.request(method, endpoint(base, segments, query)?).bearer_auth(key);
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("cannot reach the server at {base}"))?;
    if !response.status().is_success() {
        return Err(error_of(response).await);
    }
    Ok(response)
}

/// The API key given with `--api-key`, else `$ACGS_API_KEY`; `purpose` says why one is needed.
pub fn api_key_or_env(given: Option<String>, purpose: &str) -> Result<String> {
    match given {
        Some(key) => Ok(key),
        None => std::env::var("ACGS_API_KEY")
            .ok()
            .filter(|k| !k.is_empty())
            .with_context(|| format!("{purpose}: give --api-key KEY or set ACGS_API_KEY")),
    }
}

/// The JSON body of a successful answer (`null` when empty, as for 204).
pub async fn json_of(response: Response) -> Result<Value> {
    let bytes = response.bytes().await.context("cannot read the server's answer")?;
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes).context("the server's answer is not JSON")
}

/// The query of a list command: `state` and `limit` when given.
pub fn list_query(state: Option<&str>, limit: Option<u32>) -> Vec<(&'static str, String)> {
    let mut query = Vec::new();
    if let Some(state) = state {
        query.push(("state", state.to_owned()));
    }
    if let Some(limit) = limit {
        query.push(("limit", limit.to_string()));
    }
    query
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_keep_a_path_prefix_and_encode_segments() {
        let base = Url::parse("http://h:1/acgs/").unwrap();
        let url = endpoint(&base, &["v1", "amendments", "a/b?c"], &[("state", "queued".into())]).unwrap();
        assert_eq!(url.as_str(), "http://h:1/acgs/v1/amendments/a%2Fb%3Fc?state=queued");
        let base = Url::parse("http://h:1").unwrap();
        assert_eq!(
            endpoint(&base, &["v1", "emergency"], &[]).unwrap().as_str(),
            "http://h:1/v1/emergency"
        );
    }

    #[test]
    fn only_plain_http_urls_are_accepted() {
        assert!(parse_server_url("http://127.0.0.1:8080").is_ok());
        assert!(parse_server_url("https://example.com").is_err());
        assert!(parse_server_url("ftp://example.com").is_err());
        assert!(parse_server_url("127.0.0.1:8080").is_err());
    }

    #[test]
    fn a_session_is_written_privately_and_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("session.json");
        let url = Url::parse("http://127.0.0.1:1").unwrap();
        let tokens = Tokens {
            access_token: "a".into(),
            expires_in: 60,
            refresh_token: "r".into(),
            refresh_expires_in: 600,
        };
        write_session(&path, &Session::new(&url, "alice", tokens)).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        let read = read_session(&path).unwrap().unwrap();
        assert_eq!(
            (read.username.as_str(), read.url.as_str()),
            ("alice", "http://127.0.0.1:1")
        );
        // Only the session file is left: no temporary file.
        assert_eq!(std::fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
        let refused = read_session(&path).unwrap_err().to_string();
        assert!(refused.contains("chmod 600"), "{refused}");
    }
}
