//! `acgs entities …`: the entity registry of a running server — list, show, register (`put`), change attributes
//! (`set`), delete, import (JSON Lines or Cedar's entities JSON) and export. As the logged-in user (`acgs login`),
//! or with an API key (`--url` and `--api-key` or `ACGS_API_KEY`, e.g. a risk monitor's key). What a caller may
//! change is the constitution's writer rules' say (docs/entities.md).

use std::path::PathBuf;
use std::process::ExitCode;

use acgs_store::EntityName;
use anyhow::{Context, Result, bail};
use reqwest::{Method, Response};
use serde_json::{Map, Value, json};

use crate::amendments_cmd::print_json;
use crate::session::{ApiClient, api_key_or_env, http_client, json_of, parse_server_url, send_with_key};

/// Entities per import request: well within the server's default body limit for ordinary entities.
const IMPORT_CHUNK: usize = 500;

/// `Agent::"ap-agent"` (or `Agent::ap-agent`, or a namespaced `Acme::Agent::"x"`) as a type and an id.
pub fn parse_entity(text: &str) -> Result<EntityName, String> {
    let (entity_type, id) = text
        .rsplit_once("::")
        .ok_or_else(|| format!("`{text}` is not an entity: write it as Type::\"id\", e.g. Agent::\"ap-agent\""))?;
    let id = if id.starts_with('"') {
        serde_json::from_str::<String>(id).map_err(|e| format!("`{id}` is not a quoted id: {e}"))?
    } else {
        id.to_owned()
    };
    if entity_type.is_empty() || id.is_empty() {
        return Err(format!("`{text}` needs a type and an id, e.g. Agent::\"ap-agent\""));
    }
    Ok(EntityName {
        entity_type: entity_type.to_owned(),
        id,
    })
}

/// The format of an import or export file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FileFormat {
    /// One entity per line: `{"type", "id", "attributes", "parents"}` (or Cedar's form).
    Jsonl,
    /// Cedar's entities JSON: one array of `{"uid", "attrs", "parents"}`.
    Cedar,
}

/// Where to send the requests: the logged-in session, or a server with an API key.
#[derive(Debug, clap::Args)]
pub struct Target {
    /// Use an API key at this server (e.g. http://127.0.0.1:8080) instead of the session.
    #[arg(long, global = true)]
    url: Option<String>,
    /// The API key for --url [default: $ACGS_API_KEY].
    #[arg(long, global = true, requires = "url")]
    api_key: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct EntitiesArgs {
    #[command(flatten)]
    target: Target,
    #[command(subcommand)]
    command: EntitiesCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum EntitiesCommand {
    /// List registered entities by key: type, id, parents, attributes.
    List {
        /// Only this type.
        #[arg(long = "type")]
        entity_type: Option<String>,
        /// Only entities with this direct parent, e.g. 'Role::"finance-agent"'.
        #[arg(long, value_parser = parse_entity)]
        parent: Option<EntityName>,
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one entity with its revision and who changed it last.
    Show {
        /// The entity, e.g. 'Agent::"ap-agent"'.
        #[arg(value_parser = parse_entity)]
        entity: EntityName,
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Register an entity, or replace all its facts.
    Put {
        /// The entity, e.g. 'Agent::"ap-agent"'.
        #[arg(value_parser = parse_entity)]
        entity: EntityName,
        /// Its attributes as a JSON object (Cedar's value format: {"__entity": {...}} for references).
        #[arg(long, default_value = "{}")]
        attributes: String,
        /// A parent, e.g. 'Role::"finance-agent"' (repeat for several).
        #[arg(long = "parent", value_parser = parse_entity)]
        parents: Vec<EntityName>,
    },
    /// Change attributes of a registered entity: NAME=JSON sets one, --unset NAME removes one.
    Set {
        /// The entity, e.g. 'Agent::"ap-agent"'.
        #[arg(value_parser = parse_entity)]
        entity: EntityName,
        /// Attributes to set, e.g. risk_score=70 or 'home_region="eu"'.
        values: Vec<String>,
        /// Attributes to remove.
        #[arg(long)]
        unset: Vec<String>,
        /// Replace the parents with these (repeat; give none to leave them).
        #[arg(long = "parent", value_parser = parse_entity)]
        parents: Vec<EntityName>,
    },
    /// Delete a registered entity: requests naming it are refused from then on.
    Delete {
        /// The entity, e.g. 'Agent::"ap-agent"'.
        #[arg(value_parser = parse_entity)]
        entity: EntityName,
    },
    /// Changes held for a second principal's approval (writer rules with `needs_approval`), newest first.
    Changes {
        /// Only changes in this state: pending, approved or rejected.
        #[arg(long)]
        state: Option<String>,
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Approve a held change (not your own): it is applied.
    Approve {
        /// The change's id.
        id: String,
    },
    /// Reject a held change (or withdraw your own).
    Reject {
        /// The change's id.
        id: String,
    },
    /// Register the entities of a file, 500 per commit (each commit all or nothing).
    Import {
        /// The file: JSON Lines (`.jsonl`) or Cedar's entities JSON (`.json`).
        file: PathBuf,
        /// The file's format [default: by its extension].
        #[arg(long, value_enum)]
        format: Option<FileFormat>,
    },
    /// Write every registered entity (of one type) to standard output or a file.
    Export {
        /// Only this type.
        #[arg(long = "type")]
        entity_type: Option<String>,
        /// JSON Lines or Cedar's entities JSON.
        #[arg(long, value_enum, default_value = "jsonl")]
        format: FileFormat,
        /// Write to this file instead of standard output.
        #[arg(long, short = 'o')]
        output: Option<PathBuf>,
    },
}

/// The server, with the session's token or an API key.
enum Client {
    Session(ApiClient),
    Key {
        base: reqwest::Url,
        key: String,
        http: reqwest::Client,
    },
}

impl Client {
    fn open(target: Target) -> Result<Self> {
        let Some(url) = target.url else {
            return ApiClient::from_session_file().map(Client::Session);
        };
        let key = api_key_or_env(target.api_key, "--url uses an API key")?;
        Ok(Client::Key {
            base: parse_server_url(&url)?,
            key,
            http: http_client()?,
        })
    }

    async fn send(
        &mut self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Response> {
        match self {
            Client::Session(client) => client.send(method, segments, query, body).await,
            Client::Key { base, key, http } => send_with_key(http, base, key, method, segments, query, body).await,
        }
    }

    async fn json(
        &mut self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value> {
        json_of(self.send(method, segments, query, body).await?).await
    }
}

pub fn run(args: EntitiesArgs) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut client = Client::open(args.target)?;
    runtime.block_on(execute(&mut client, args.command))?;
    Ok(ExitCode::SUCCESS)
}

fn reference(e: &EntityName) -> Value {
    json!({"type": e.entity_type, "id": e.id})
}

fn key(e: &EntityName) -> String {
    format!("{}::{}", e.entity_type, Value::from(e.id.as_str()))
}

async fn execute(client: &mut Client, command: EntitiesCommand) -> Result<()> {
    use EntitiesCommand as C;
    match command {
        C::List {
            entity_type,
            parent,
            json,
        } => {
            let mut query: Vec<(&str, String)> = vec![("limit", "1000".into())];
            if let Some(t) = entity_type {
                query.push(("type", t));
            }
            if let Some(p) = parent {
                query.push(("parent_type", p.entity_type));
                query.push(("parent_id", p.id));
            }
            let mut all = Vec::new();
            loop {
                let page = client.json(Method::GET, &["v1", "entities"], &query, None).await?;
                all.extend(page["entities"].as_array().cloned().unwrap_or_default());
                match page["next"].as_str() {
                    Some(next) => {
                        query.retain(|(k, _)| *k != "after");
                        query.push(("after", next.to_owned()));
                    }
                    None => break,
                }
            }
            if json {
                return print_json(&Value::Array(all));
            }
            for e in &all {
                println!("{}", line(e));
            }
            println!("{} entities", all.len());
        }
        C::Show { entity, json } => {
            let answer = client
                .json(
                    Method::GET,
                    &["v1", "entities", &entity.entity_type, &entity.id],
                    &[],
                    None,
                )
                .await?;
            if json {
                return print_json(&answer);
            }
            println!("{}", line(&answer));
            println!(
                "revision {}, changed by {} at {}",
                answer["revision"],
                answer["updated_by"].as_str().unwrap_or("?"),
                crate::decisions_cmd::time(answer["updated_at_us"].as_i64().unwrap_or(0))
            );
        }
        C::Put {
            entity,
            attributes,
            parents,
        } => {
            let attributes: Map<String, Value> =
                serde_json::from_str(&attributes).context("--attributes must be a JSON object")?;
            let body = json!({
                "attributes": attributes,
                "parents": parents.iter().map(reference).collect::<Vec<_>>(),
            });
            let answer = client
                .json(
                    Method::PUT,
                    &["v1", "entities", &entity.entity_type, &entity.id],
                    &[],
                    Some(&body),
                )
                .await?;
            report_write(&entity, &answer, "registered");
        }
        C::Set {
            entity,
            values,
            unset,
            parents,
        } => {
            let mut attributes = Map::new();
            for pair in &values {
                let (name, value) = pair
                    .split_once('=')
                    .with_context(|| format!("`{pair}` is not NAME=JSON (e.g. risk_score=70)"))?;
                let value: Value = serde_json::from_str(value)
                    .with_context(|| format!("the value of `{name}` is not JSON (quote strings: {name}='\"eu\"')"))?;
                attributes.insert(name.to_owned(), value);
            }
            for name in unset {
                attributes.insert(name, Value::Null);
            }
            let mut body = json!({"attributes": attributes});
            if !parents.is_empty() {
                body["parents"] = parents.iter().map(reference).collect::<Vec<_>>().into();
            }
            let answer = client
                .json(
                    Method::PATCH,
                    &["v1", "entities", &entity.entity_type, &entity.id],
                    &[],
                    Some(&body),
                )
                .await?;
            report_write(&entity, &answer, "changed");
        }
        C::Delete { entity } => {
            let answer = client
                .json(
                    Method::DELETE,
                    &["v1", "entities", &entity.entity_type, &entity.id],
                    &[],
                    None,
                )
                .await?;
            report_write(&entity, &answer, "deleted");
        }
        C::Changes { state, json } => {
            let mut query = vec![("limit", "1000".to_owned())];
            if let Some(state) = state {
                query.push(("state", state));
            }
            let answer = client
                .json(Method::GET, &["v1", "entities", "changes"], &query, None)
                .await?;
            if json {
                return print_json(&answer);
            }
            for c in answer.as_array().into_iter().flatten() {
                println!(
                    "{}  {:<8}  {}::{}  proposed by {}{}",
                    c["id"].as_str().unwrap_or("?"),
                    c["state"].as_str().unwrap_or("?"),
                    c["entity_type"].as_str().unwrap_or("?"),
                    c["entity_id"],
                    c["proposed_by"].as_str().unwrap_or("?"),
                    c["decided_by"]
                        .as_str()
                        .map(|d| format!(", decided by {d}"))
                        .unwrap_or_default()
                );
            }
        }
        C::Approve { id } => {
            let answer = client
                .json(Method::POST, &["v1", "entities", "changes", &id, "approve"], &[], None)
                .await?;
            println!("change {id} {} and applied", answer["state"].as_str().unwrap_or("?"));
        }
        C::Reject { id } => {
            let answer = client
                .json(Method::POST, &["v1", "entities", "changes", &id, "reject"], &[], None)
                .await?;
            println!("change {id} {}", answer["state"].as_str().unwrap_or("?"));
        }
        C::Import { file, format } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read `{}`", file.display()))?;
            let format = format.unwrap_or(match file.extension().and_then(|e| e.to_str()) {
                Some("json") => FileFormat::Cedar,
                _ => FileFormat::Jsonl,
            });
            let entities = read_entities(&text, format).with_context(|| format!("`{}`", file.display()))?;
            let (mut created, mut updated, mut unchanged) = (0, 0, 0);
            for chunk in entities.chunks(IMPORT_CHUNK) {
                let answer = client
                    .json(
                        Method::POST,
                        &["v1", "entities", "import"],
                        &[],
                        Some(&json!({"entities": chunk})),
                    )
                    .await?;
                created += answer["created"].as_u64().unwrap_or(0);
                updated += answer["updated"].as_u64().unwrap_or(0);
                unchanged += answer["unchanged"].as_u64().unwrap_or(0);
            }
            println!(
                "imported {}: {created} created, {updated} updated, {unchanged} unchanged",
                file.display()
            );
        }
        C::Export {
            entity_type,
            format,
            output,
        } => {
            let mut query = vec![(
                "format",
                match format {
                    FileFormat::Jsonl => "jsonl",
                    FileFormat::Cedar => "cedar",
                }
                .to_owned(),
            )];
            if let Some(t) = entity_type {
                query.push(("type", t));
            }
            let response = client
                .send(Method::GET, &["v1", "entities", "export"], &query, None)
                .await?;
            let body = response.text().await.context("cannot read the export")?;
            match output {
                Some(path) => {
                    std::fs::write(&path, body).with_context(|| format!("cannot write `{}`", path.display()))?;
                    println!("wrote {}", path.display());
                }
                None => print!("{body}"),
            }
        }
    }
    Ok(())
}

/// What a write did: applied (with the entity's revision), or held for another principal's approval.
fn report_write(entity: &EntityName, answer: &Value, done: &str) {
    if answer["state"] == "pending" {
        let id = answer["id"].as_str().unwrap_or("?");
        println!(
            "{}: held for approval as change {id}; another principal approves it with `acgs entities approve {id}`",
            key(entity)
        );
    } else if answer.is_null() {
        println!("{} {done}", key(entity));
    } else {
        println!("{} {done} (revision {})", key(entity), answer["revision"]);
    }
}

/// The entities of an import file, as JSON values the server reads (either form per line for JSON Lines).
fn read_entities(text: &str, format: FileFormat) -> Result<Vec<Value>> {
    match format {
        FileFormat::Cedar => {
            let value: Value = serde_json::from_str(text).context("not JSON")?;
            match value {
                Value::Array(items) => Ok(items),
                _ => bail!("Cedar's entities JSON is an array of entities"),
            }
        }
        FileFormat::Jsonl => text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| serde_json::from_str(l).with_context(|| format!("line {}: not JSON", i + 1)))
            .collect(),
    }
}

/// One entity on a line: key, parents, attributes.
fn line(e: &Value) -> String {
    let parents: Vec<String> = e["parents"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| format!("{}::{}", p["type"].as_str().unwrap_or("?"), p["id"]))
        .collect();
    format!(
        "{}::{}  in [{}]  {}",
        e["type"].as_str().unwrap_or("?"),
        e["id"],
        parents.join(", "),
        e["attributes"]
    )
}
